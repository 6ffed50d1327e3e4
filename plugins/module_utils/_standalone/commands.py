# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The plans of standalone_vm's commands on an existing VM: clone (linked or full),
snapshots, purge, metadata. Like states.py, each function adds steps and acts in none."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils.cloud_init_seed import seed_sources
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.snapshot_policy import (
    snapshots_to_purge)
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import states
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import view as views
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.host import stamp


def existing(view):
    if not view.exists:
        raise VmError("VM %s does not exist." % view.name)
    return view


# ---- clone --------------------------------------------------------------------------------

def plan_clone(ctx, req, view):
    name, src_name = view.name, req.src_name
    if name == src_name:
        raise VmError("A clone needs a name different from its source (%s)." % name)
    source = views.read_view(ctx.hv, src_name)
    if not source.exists:
        raise VmError("Cannot clone VM %s: it does not exist." % src_name)
    if not view.exists:
        view = plan_new_clone(ctx, req, name, source)
    states.plan_autostart(ctx, req, view)
    states.plan_power(ctx, req, view, "present" if req.nostart else "running")
    return view


def plan_new_clone(ctx, req, name, source):
    if not req.full and source.snapshots:
        raise VmError("VM %s has snapshots (%s): a linked clone would freeze them into a "
                      "base shared with the clone. Remove them, or use full: true."
                      % (source.name, ", ".join(snap[0] for snap in source.snapshots)))
    desired = clone_definition(ctx, req, name, source)
    src_disks = dx.disk_info(source.root)
    bus = src_disks[0]["bus"] if src_disks else "virtio"
    pool = ctx.pool(req)
    paths = [ctx.host.path_of(pool, name, i) for i in range(len(src_disks))]
    for path in paths:
        if os.path.exists(path):
            raise VmError("Volume %s already exists but no VM %s owns it: remove it first."
                          % (path, name))
    states.finish_desired(req, desired, name, paths, bus)
    meta = source.meta if req.metadata is None else req.metadata
    ctx.allocate_first(name, "clone", desired, meta)

    def clone():
        created = []
        try:
            pool_now = ctx.pool_now(req)
            if req.full:
                created = copy_disks(ctx, pool_now, source.name, src_disks, paths)
            else:
                created = overlay_disks(ctx, pool_now, source.name, src_disks, paths)
            ctx.host.define_recorded(desired, meta)
        except BaseException:
            ctx.host.undefine_named(name)
            ctx.host.delete_paths(created)
            raise
    ctx.plan.change("%s clone %s of VM %s" % ("full" if req.full else "linked", name,
                                              source.name),
                    apply=clone, undo=lambda: ctx.host.remove_vm(name))
    ctx.diff(name, "", dx.canonical(desired))
    return views.created(name, desired, meta)


def clone_definition(ctx, req, name, source):
    if req.user_root is not None:
        return states.user_domain(ctx, req, name)
    root = dx.parse_domain(source.stored or dx.canonical(source.root), "source definition")
    dx.remove_owned_disks(root)
    dx.strip_macs(root)
    # The source's cloud-init seed holds the source's addresses: never the clone's.
    dx.drop_cdroms(root, seed_sources(source.name))
    dx.rename_log_files(root, source.name, name)
    dx.expose_name_to_guest(root, name, old_name=source.name)
    root.remove(root.find("uuid"))
    uuid = spec.stable_uuid(name)
    ctx.host.check_uuid_free(uuid, name)
    dx.set_identity(root, name, uuid)
    return root


def copy_disks(ctx, pool, src_name, src_disks, paths):
    """Full clone: independent copies; a running source is paused for the copy so all
    its disks are copied at the same instant."""
    src = ctx.domain(src_name)
    paused = ctx.hv.status(src) == "Started"
    created = []
    if paused:
        src.suspend()
    try:
        for disk, path in zip(src_disks, paths):
            created.append(ctx.hv.storage.copy_image(pool, disk["path"], os.path.basename(path),
                                                     force_share=ctx.hv.is_active(src)))
    finally:
        if paused:
            ctx.hv.resume(src)
    return created


def overlay_disks(ctx, pool, src_name, src_disks, paths):
    """Linked clone: the source's current disks become read-only bases (its writes go to
    new overlays from now on); the clone gets its own overlays on the same bases."""
    suffix = stamp()
    moved = {}
    for index, disk in enumerate(src_disks):
        overlay = "%s.disk%d.%s.qcow2" % (src_name, index, suffix)
        moved[disk["path"]] = os.path.join(os.path.dirname(disk["path"]), overlay)
    src = ctx.domain(src_name)
    ctx.hv.freeze_disks(src, [(d["target"], moved[d["path"]]) for d in src_disks], suffix)
    rerecord_after_freeze(ctx, src, moved)
    ctx.hv.storage.refresh_pool(pool)
    created = []
    for disk, path in zip(src_disks, paths):
        created.append(ctx.hv.storage.create_volume(pool, os.path.basename(path),
                                                    backing_path=disk["path"]))
    return created


def rerecord_after_freeze(ctx, src, moved):
    """The source's disks moved to new overlays: record that in its stored definition so
    its next run does not see a change it did not ask for."""
    meta, stored = dx.read_gv_metadata(ctx.hv.xml_root(src))[:2]
    if stored is None:
        return
    desired = dx.parse_domain(stored, "stored definition")
    for disk in dx.owned_disks(desired):
        source = disk.find("source")
        source.set("file", moved.get(source.get("file"), source.get("file")))
    ctx.host.define_recorded(desired, meta)


# ---- snapshots ----------------------------------------------------------------------------

def snapshot_names(view):
    return [snap[0] for snap in view.snapshots]


def plan_create_snapshot(ctx, req, view):
    return plan_snapshot_presence(ctx, req, view, True)


def plan_remove_snapshot(ctx, req, view):
    return plan_snapshot_presence(ctx, req, view, False)


def plan_snapshot_presence(ctx, req, view, wanted):
    """The snapshot made (``wanted``) or removed, unless it already is as wanted."""
    existing(view)
    name = req.snapshot_name
    if (name in snapshot_names(view)) != wanted:
        sentence = "snapshot %s of VM %s" if wanted else "removed snapshot %s of VM %s"
        act = ctx.hv.create_snapshot if wanted else ctx.hv.delete_snapshot
        ctx.plan.change(sentence % (name, view.name),
                        apply=lambda: act(ctx.domain(view.name), name))
    return view


def plan_rollback_snapshot(ctx, req, view):
    """Stop the VM, put every disk back to the snapshot, restore the power state."""
    existing(view)
    if req.snapshot_name not in snapshot_names(view):
        raise VmError("VM %s has no snapshot %s." % (view.name, req.snapshot_name))

    def rollback():
        dom = ctx.domain(view.name)
        if ctx.hv.is_active(dom):
            ctx.hv.stop(dom, req.stop_timeout, force=req.force)
        ctx.hv.revert_snapshot(dom, req.snapshot_name)
        if view.status in ("Started", "Paused"):
            ctx.boot(dom, "restart")
    ctx.plan.change("rolled VM %s back to snapshot %s" % (view.name, req.snapshot_name),
                    apply=rollback)
    return view


def plan_purge_image(ctx, req, view):
    existing(view)
    doomed = snapshots_to_purge(view.snapshots, req.purge)
    if doomed:
        def purge():
            dom = ctx.domain(view.name)
            for snap in doomed:
                ctx.hv.delete_snapshot(dom, snap)
        ctx.plan.change("purged snapshots %s of VM %s" % (", ".join(doomed), view.name),
                        apply=purge)
    ctx.plan.values["purged"] = doomed
    return view


# ---- metadata -----------------------------------------------------------------------------

def plan_set_metadata(ctx, req, view):
    existing(view)
    wanted = dict(view.meta)
    wanted.update(req.metadata)
    if wanted != view.meta:
        desired = dx.parse_domain(view.stored or dx.canonical(view.root), "stored definition")
        ctx.plan.change("metadata of VM %s" % view.name,
                        apply=lambda: ctx.host.define_recorded(desired, wanted))
        ctx.meta_diff(view.name, view.meta, wanted)
    ctx.plan.values["metadata"] = wanted
    view.meta = wanted
    return view
