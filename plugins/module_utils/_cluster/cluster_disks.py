# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The disks of cluster VMs in RBD: import, linked and full clones, and the swap that makes a
forced re-create safe. Every function records what it created so a failure can undo exactly
that, and nothing else.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible_collections.gridvirt.kvm.plugins.module_utils import source_image
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import (
    data_image, system_image)

# Per-image snapshot a linked clone hangs from (protected while the clone exists).
CLONE_SNAP_PREFIX = "gvclone-"
# Images of a forced re-create live under this prefix until the swap (an RBD image name the
# VM naming rules can never produce, so it never collides with a VM's own images).
STAGING_PREFIX = "_gvnew_"
RETIRED_PREFIX = "_gvold_"


def clone_snapshot(clone_name):
    return CLONE_SNAP_PREFIX + clone_name


def vm_snapshots(store, vm):
    """[(name, epoch seconds, 'group'|'images')] oldest first: our group snapshots, and the
    per-image snapshots SEAPATH's vm_manager takes (one of the same name on each image, read
    on the system image as vm_manager lists them); not the snapshots linked clones hang from."""
    found = [(name, stamp, "group") for name, stamp in store.snapshots.group_snapshots(vm)]
    taken = set(snap[0] for snap in found)
    found += [(name, stamp, "images") for name, stamp in store.snapshots.image_snapshots(system_image(vm))
              if not name.startswith(CLONE_SNAP_PREFIX) and name not in taken]
    return sorted(found, key=lambda snap: (snap[1], snap[0]))


def remove_vm_snapshot(store, vm, snapshot):
    name, _stamp, kind = snapshot
    if kind == "group":
        store.snapshots.remove_group_snapshot(vm, name)
        return
    for image in store.images_of(vm):
        store.snapshots.remove_image_snapshot(image, name)


def rollback_vm_snapshot(store, vm, snapshot):
    """Every disk back to the snapshot. Per-image snapshots: refused before any disk is
    rolled back unless every disk has one of that name."""
    name, _stamp, kind = snapshot
    if kind == "group":
        store.snapshots.rollback_group_snapshot(vm, name)
        return
    check_rollback(store, vm, snapshot)
    for image in store.images_of(vm):
        store.snapshots.rollback_image_snapshot(image, name)


def check_rollback(store, vm, snapshot):
    """A per-image snapshot rolls back only if every disk has one of that name (a disk added
    since, or a snapshot removed by hand from one disk, would leave the disks apart)."""
    name, _stamp, kind = snapshot
    if kind == "group":
        return
    missing = [image for image in store.images_of(vm)
               if name not in [s[0] for s in store.snapshots.image_snapshots(image)]]
    if missing:
        raise VmError("VM %s cannot be rolled back to snapshot %s: its disks %s have no "
                      "snapshot of that name." % (vm, name, ", ".join(missing)))


def disk_plan(store, run, vm, system_path, data_disk, additional, prefix="", cleared=()):
    """[(image name, 'image'|'size', path or bytes)], checked before any change (check mode
    too): the source files are readable, self-contained qcow2 or raw images, and no image
    of that name exists (but those in ``cleared``, which the plan deletes first: what an
    interrupted run left). ``additional``: additional_disks, sizes or image paths."""
    plan = [(prefix + system_image(vm), "image", source_image.checked(run, system_path))]
    if data_disk:
        plan.append((prefix + data_image(vm, len(plan)), "image",
                     source_image.checked(run, data_disk)))
    for item in additional or []:
        plan.append((prefix + data_image(vm, len(plan)),) + additional_source(run, item))
    existing = store.image_names() - set(cleared)
    for name, _kind, _value in plan:
        if name in existing:
            raise VmError("The RBD image %s already exists but no VM %s owns it: remove it "
                          "first." % (name, vm))
    return plan


def final_names(plan):
    """The names the staged images of a disk plan take when the VM is registered."""
    return [name[len(STAGING_PREFIX):] for name, _kind, _value in plan]


def additional_source(run, item):
    """('image', checked path) or ('size', bytes) for an item of additional_disks."""
    kind, value = spec.additional_disk_source(item)
    return kind, source_image.checked(run, value) if kind == "image" else value


def make_disks(store, run, plan, created):
    """Import or create every image of the plan; ``created`` lists them as they appear."""
    for name, kind, value in plan:
        if kind == "image":
            fmt, size = source_image.importable(run, value)
            store.import_image(name, value, fmt, size)
        else:
            store.create_image(name, value)
        created.append(name)


def clone_disks(store, source_vm, clone_vm, full, snapshot, pause, created):
    """The clone's images from the source's, in the source's order.

    Linked (default): a protected per-image snapshot of each source disk and an RBD layered
    clone of it -- constant time. A running source with several disks is paused for the
    instant the snapshots take (``pause`` is a context manager), so its disks stay consistent
    together. Full: an independent copy taken at a group snapshot (consistent across disks
    without pausing), or at the user's named group snapshot."""
    images = store.images_of(source_vm)
    targets = [clone_image_name(name, source_vm, clone_vm) for name in images]
    taken = None
    if full or snapshot:
        taken = snapshot or "%s%s" % (CLONE_SNAP_PREFIX, clone_vm)
        if not snapshot:
            store.snapshots.create_group_snapshot(source_vm, taken)
        try:
            for image, target in zip(images, targets):
                store.snapshots.copy_image_at_group_snapshot(image, source_vm, taken, target)
                created.append(target)
        finally:
            if not snapshot:
                store.snapshots.remove_group_snapshot(source_vm, taken)
        return targets
    snap = clone_snapshot(clone_vm)
    with (pause() if len(images) > 1 else no_pause()):
        for image in images:
            store.snapshots.snapshot_image(image, snap, protect=True)
    for image, target in zip(images, targets):
        store.snapshots.clone_image(image, snap, target)
        created.append(target)
    return targets


@contextlib.contextmanager
def no_pause():
    yield


def clone_image_name(image, source_vm, clone_vm):
    if image == system_image(source_vm):
        return system_image(clone_vm)
    return data_image(clone_vm, int(image.rsplit("_", 1)[-1]))


def release_parent_snapshots(store, parents):
    """After a linked clone's images are deleted: the source snapshots they hung from are
    unprotected and removed once no other clone uses them."""
    for parent_id, snap in parents:
        store.snapshots.remove_snapshot_if_unused(parent_id, snap, by_id=True)


def undo_swap(store, retired):
    """A swap cut short by a killed run: the new images that already took the old names go
    back to their staging names, the old images get their names back. -> staging names."""
    staged = []
    for old in retired:
        final = old[len(RETIRED_PREFIX):]
        if store.image_exists(final):
            store.rename_image(final, STAGING_PREFIX + final)
            staged.append(STAGING_PREFIX + final)
        store.rename_image(old, final)
    return staged


def swap_in(store, vm, staged):
    """Forced re-create, the only moment the old VM changes: its images are renamed aside,
    the staged ones take their names and its group. Returns the retired names; on failure
    every rename is undone and the old VM is as it was."""
    current = store.images_of(vm)
    renames = []
    try:
        for name in current:
            store.rename_image(name, RETIRED_PREFIX + name)
            renames.append((RETIRED_PREFIX + name, name))
        for name in staged:
            final = name[len(STAGING_PREFIX):]
            store.rename_image(name, final)
            renames.append((final, name))
    except BaseException:
        for new, old in reversed(renames):
            store.rename_image(new, old)
        raise
    return [RETIRED_PREFIX + name for name in current]
