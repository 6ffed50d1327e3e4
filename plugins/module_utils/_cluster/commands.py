# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The plans of the cluster commands that are not states: clone, colocation, pacemaker
remote, snapshots and metadata. Each reads the view, adds its steps and leaves the view as
they will leave the VM; the move to a node is in cluster_migration."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils.cloud_init_seed import seed_sources
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_disks as disks
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import states
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.power import (
    plan_enable, plan_power)
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.allocation import (
    plan_allocate)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.snapshot_policy import (
    snapshots_to_purge)
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import node_uri, paused
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import system_image


# ---- clone --------------------------------------------------------------------------------

def plan_clone(ctx, view, source):
    """A new VM from another one's disks: linked (RBD layered clone, constant time) or full;
    from the source's present state or a named group snapshot. It gets its own uuid, MACs,
    name for the guest, and constraints; not the source's remote identity. ``source``: the
    view of the source VM."""
    vm, src = view.name, source.name
    if vm == src:
        raise VmError("A clone needs a name different from its source (%s)." % vm)
    ctx.existing(src)
    view = states.plan_leftovers(ctx, view)
    if not view.exists:
        view = plan_new_clone(ctx, vm, source, view.cleared)
    plan_enable(ctx, view, start=not ctx.req.nostart)
    if not ctx.req.nostart:
        plan_power(ctx, view, "Started")
    return view


def plan_new_clone(ctx, vm, source, cleared):
    """``cleared``: image names an earlier step deletes (what an interrupted clone left)."""
    req, src = ctx.req, source.name
    snapshot, full = req.snapshot_name, bool(req.full)
    if snapshot and snapshot not in [s[0] for s in ctx.store.snapshots.group_snapshots(src)]:
        raise VmError("VM %s has no snapshot %s." % (src, snapshot))
    if snapshot and not full:
        ctx.warn("Ceph %s cannot clone from a group snapshot: VM %s is a full copy of "
                 "snapshot %s." % ("before 19", vm, snapshot))
    metadata, base, bus = clone_intent(ctx, vm, source)
    images = [disks.clone_image_name(name, src, vm) for name in source.images]
    for name in images:
        if ctx.store.image_exists(name) and name not in cleared:
            raise VmError("The RBD image %s already exists but no VM %s owns it: remove it "
                          "first." % (name, vm))
    ctx.define(vm, metadata, base, images, bus)
    ctx.check_resource_inputs(metadata, True)
    plan_allocate(ctx, vm, metadata, "clone")
    ctx.plan.change("%s clone %s of VM %s" % ("full" if full or snapshot else "linked", vm,
                                              src),
                    apply=lambda: make_clone(ctx, vm, src, metadata),
                    undo=lambda: states.undo_create(ctx, vm, []))
    ctx.diff(vm, {}, metadata)
    return states.created_view(ctx, vm, metadata, images, None)


def clone_intent(ctx, vm, source):
    """-> (metadata, base definition, disk bus) of the clone: the source's intent less what
    the task clears, its user metadata unless the task gives its own."""
    req, intent = ctx.req, source.intent
    base = req.base_xml or _clone_base(intent[ci.KEY_BASE_XML], source.name, vm,
                                       req.store_options["pool"])
    bus = req.disk_bus or intent.get(ci.KEY_BUS, "virtio")
    inherited = ci.clone_intent(intent, req.clone_drops)
    if req.metadata is None:
        inherited.update((k, v) for k, v in intent.items()
                         if not k.startswith("_") and k not in ci.RESERVED_KEYS)
    return ctx.metadata_for_new(vm, base, bus, inherited), base, bus


def make_clone(ctx, vm, src, metadata):
    """The clone's images, its metadata, its group; a failure takes back all of it."""
    store, created = ctx.store, []
    try:
        disks.clone_disks(store, src, vm, bool(ctx.req.full), ctx.req.snapshot_name,
                          lambda: _paused(ctx, src), created)
        for name in created[1:]:
            store.replace_metadata(name, {})
        store.replace_metadata(created[0], metadata)
        store.create_group(vm)
        for name in created[1:] + created[:1]:
            store.add_to_group(vm, name)
    except BaseException:
        states.undo_create(ctx, vm, [])
        for name in reversed(created):
            parent = store.snapshots.parent_of(name) if store.image_exists(name) else None
            store.remove_image(name)
            if parent:
                disks.release_parent_snapshots(store, [parent])
        # Snapshots taken on source images that were not cloned yet.
        for image in store.images_of(src):
            store.snapshots.remove_snapshot_if_unused(image, disks.clone_snapshot(vm))
        raise


@contextlib.contextmanager
def _paused(ctx, vm):
    """The running VM paused for an instant (all its disks at one point in time), through
    libvirt on the node that runs it."""
    state, node = ctx.resource.status_of(vm)
    if state != "Started" or not node:
        yield
        return
    user = ctx.store.metadata(system_image(vm)).get(ci.KEY_MIGRATION_USER) or "root"
    uri = node_uri(node, ctx.cluster.local_node(), user)
    with paused(uri, ctx.run, ctx.req.connect_timeout, vm):
        yield


def _clone_base(source_base, src, vm, pool):
    """The source's base definition made the clone's own: no uuid or MACs of the source (new
    ones are derived from the clone's name), log files named after the clone, and not the
    source's cloud-init seed (its addresses are the source's: the clone gets a seed of its
    own when it is deployed with one)."""
    root = dx.parse_domain(source_base, "source definition")
    dx.strip_macs(root)
    dx.drop_cdroms(root, seed_sources(src, pool))
    dx.rename_log_files(root, src, vm)
    product = root.find("sysinfo[@type='smbios']/system/entry[@name='product']")
    if product is not None and product.text == src:
        product.text = vm
    if root.find("uuid") is not None:
        root.remove(root.find("uuid"))
    return dx.canonical(root)


# ---- colocation and pacemaker remote -------------------------------------------------------

def plan_colocation(ctx, view):
    """Keep the VM with the others (strong: always; weak: when possible). The intent is
    stored with the VM, so a disable/enable or a rollback keeps it."""
    req, vm = ctx.req, view.name
    others = req.colocated_vms
    if not others:
        raise VmError("colocated_vms must name at least one VM.")
    kind = "strong" if req.strong else "weak"
    metadata = view.intent
    wanted = dict(ci.colocation_intent(metadata))
    wanted.update(dict((other, kind) for other in others))
    new_metadata = dict(metadata)
    new_metadata[ci.KEY_COLOCATION] = ci.dump_json(wanted)
    ctx.check_resource_inputs(new_metadata, False, previous=metadata)
    if ci.colocation_intent(metadata) != wanted:
        ctx.plan.change("colocated VM %s with %s (%s)" % (vm, ", ".join(sorted(others)), kind),
                        apply=lambda: ctx.store.set_metadata(system_image(vm), {
                            ci.KEY_COLOCATION: new_metadata[ci.KEY_COLOCATION]}))
    states.plan_sync(ctx, view, new_metadata, previous=metadata)
    view.intent = new_metadata
    return view


def plan_add_remote(ctx, view):
    """The guest becomes a Pacemaker guest node (remote-node meta attributes)."""
    remote = ctx.req.remote
    return plan_intent(ctx, view, {ci.KEY_REMOTE: ci.dump_json(remote)},
                       "pacemaker remote %s of VM %s" % (remote["name"], view.name))


def plan_remove_remote(ctx, view):
    return plan_intent(ctx, view, {ci.KEY_REMOTE: None},
                       "removed the pacemaker remote of VM %s" % view.name)


def plan_intent(ctx, view, updates, sentence):
    vm, stored, metadata = view.name, view.stored, view.intent
    wanted = ci.apply_updates(metadata, updates)
    if wanted != metadata:
        ctx.plan.change(sentence, apply=lambda: ctx.images.write_metadata(vm, stored, wanted))
        ctx.diff(vm, metadata, wanted)
    states.plan_sync(ctx, view, wanted, previous=metadata)
    view.stored = view.intent = wanted
    return view


# ---- snapshots ------------------------------------------------------------------------------

def snapshots_of(ctx, vm):
    """{name: (name, time, kind)}: group snapshots and vm_manager's per-image ones."""
    return dict((snap[0], snap) for snap in disks.vm_snapshots(ctx.store, vm))


def plan_create_snapshot(ctx, view):
    """A group snapshot: every disk of the VM at one instant."""
    vm, name = view.name, ctx.req.snapshot_name
    if name not in snapshots_of(ctx, vm):
        ctx.plan.change("snapshot %s of VM %s" % (name, vm),
                        apply=lambda: ctx.store.snapshots.create_group_snapshot(vm, name))
    return view


def plan_remove_snapshot(ctx, view):
    vm, name = view.name, ctx.req.snapshot_name
    snapshot = snapshots_of(ctx, vm).get(name)
    if snapshot:
        ctx.plan.change("removed snapshot %s of VM %s" % (name, vm),
                        apply=lambda: disks.remove_vm_snapshot(ctx.store, vm, snapshot))
    return view


def plan_rollback_snapshot(ctx, view):
    """Stop the VM through Pacemaker, roll every disk back, restore its previous state. Its
    constraints are not touched."""
    vm, name = view.name, ctx.req.snapshot_name
    snapshot = snapshots_of(ctx, vm).get(name)
    if not snapshot:
        raise VmError("VM %s has no snapshot %s." % (vm, name))
    disks.check_rollback(ctx.store, vm, snapshot)
    state = view.status

    def rollback():
        if state not in ("Disabled", "Stopped"):
            ctx.resource.power(vm, "Stopped")
        disks.rollback_vm_snapshot(ctx.store, vm, snapshot)
        if state in ("Started", "Starting"):
            ctx.resource.power(vm, "Started")
    ctx.plan.change("rolled VM %s back to snapshot %s" % (vm, name), apply=rollback,
                    partial=True)
    return view


def plan_purge_image(ctx, view):
    vm = view.name
    snapshots = disks.vm_snapshots(ctx.store, vm)
    doomed = snapshots_to_purge([snap[:2] for snap in snapshots], ctx.req.purge)
    ctx.plan.values["purged"] = doomed

    def purge():
        for snapshot in snapshots:
            if snapshot[0] in doomed:
                disks.remove_vm_snapshot(ctx.store, vm, snapshot)
    if doomed:
        ctx.plan.change("purged snapshots %s of VM %s" % (", ".join(doomed), vm),
                        apply=purge, partial=True)
    return view


# ---- metadata -------------------------------------------------------------------------------

def plan_set_metadata(ctx, view):
    """Merge user keys (not internal ones) into the VM's metadata."""
    vm, current = view.name, view.stored
    changed = dict((k, v) for k, v in ctx.req.user_metadata.items() if current.get(k) != v)
    if changed:
        ctx.plan.change("metadata %s of VM %s" % (", ".join(sorted(changed)), vm),
                        apply=lambda: ctx.store.set_metadata(system_image(vm), changed))
        ctx.diff(vm, current, ci.apply_updates(current, changed))
    return view
