# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The plan of a declarative state (present, running, stopped, disabled, absent) for a
cluster VM: clear what an interrupted run left, create, update in place, forced re-create,
enable or disable, restart on a new definition, power, move to a node. Each function reads
the view, adds its steps, and leaves the view as the steps will leave the VM. Nothing here
acts: the steps do, when the plan is applied."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_disks as disks
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import resource as rsc
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import view as views
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.power import (
    plan_disable, plan_enable, plan_power, plan_restart)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.allocation import (
    add_resource, plan_allocate, plan_allocated_move)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import data_image


def plan_state(ctx, view):
    """The steps that bring the VM to the request's state -> the view after them."""
    req = ctx.req
    view = plan_leftovers(ctx, view)
    if req.state == "absent":
        return plan_absent(ctx, view)
    if not view.exists:
        view = plan_create(ctx, view)
    elif req.force and req.system_image:
        plan_recreate(ctx, view)
    else:
        plan_update(ctx, view)
    if req.state == "disabled":
        plan_disable(ctx, view)
        return view
    plan_enable(ctx, view, start=req.state == "running")
    if req.state in ("present", "running"):
        plan_restart(ctx, view)
    if req.state in ("running", "stopped"):
        plan_power(ctx, view, "Started" if req.state == "running" else "Stopped")
    if req.state == "running" and req.node:
        plan_allocated_move(ctx, view, req.node)
    return view


def plan_leftovers(ctx, view):
    """What a killed run left is cleared first (the VM's lock is ours: no run uses it)."""
    leftovers = view.leftovers
    if not leftovers:
        return view
    ctx.plan.change("removed what an interrupted run left of VM %s" % view.name,
                    apply=lambda: ctx.images.clear_leftovers(view.name, leftovers),
                    partial=True)
    if leftovers.incomplete:
        view = views.ClusterView(view.name)
    view.leftovers = views.Leftovers()
    view.cleared = leftovers.removed()
    return view


def plan_absent(ctx, view):
    """Resource and constraints gone, images to the RBD trash (or purged), group and group
    snapshots gone. A linked clone's parent snapshot goes with its last clone."""
    vm = view.name
    if not view.exists:
        return view
    enabled = view.enabled

    def remove():
        if enabled:
            ctx.resource.power(vm, "Stopped")
            ctx.resource.delete(vm)
        ctx.images.remove_vm(vm)
    ctx.plan.change("removed VM %s" % vm, apply=remove, partial=True)
    ctx.diff(vm, view.stored, {})
    return views.ClusterView(vm)


# ---- create ---------------------------------------------------------------------------------

def plan_create(ctx, view):
    """Import the disks, store the definition, add the resource (unless disabled), start it
    when running. A failure removes what this call created, and only that."""
    req, vm = ctx.req, view.name
    if not req.base_xml or not req.system_image:
        raise VmError("VM %s does not exist: give both xml and system_image to create it."
                      % vm)
    disk_plan = disks.disk_plan(ctx.store, ctx.run, vm, req.system_image, req.data_disk,
                                req.additional_disks, prefix=disks.STAGING_PREFIX,
                                cleared=view.cleared)
    bus = req.disk_bus or "virtio"
    metadata = ctx.metadata_for_new(vm, req.base_xml, bus, {})
    images = disks.final_names(disk_plan)
    ctx.define(vm, metadata, req.base_xml, images, bus)
    enabling = req.state != "disabled"
    ctx.check_resource_inputs(metadata, enabling)
    if pcib.primitive(ctx.cluster.cib(), vm) is not None:
        raise VmError("A Pacemaker resource named %s exists but no VM %s is in RBD: remove "
                      "that resource first." % (vm, vm))
    role = "Started" if req.state == "running" else "Stopped"
    plan_allocate(ctx, vm, metadata, "create")

    def create():
        created = []
        try:
            disks.make_disks(ctx.store, ctx.run, disk_plan, created)
            ctx.images.register(vm, created, metadata)
            created = []
            if enabling:
                add_resource(ctx, vm, metadata, role)
        except BaseException:
            undo_create(ctx, vm, created)
            raise
    ctx.plan.change("created VM %s" % vm, apply=create, undo=lambda: undo_create(ctx, vm, []))
    ctx.diff(vm, {}, metadata)
    return created_view(ctx, vm, metadata, images, role if enabling else None)


def undo_create(ctx, vm, created):
    """What a failed create or clone made, and only that: its resource, images and group."""
    ctx.resource.delete_if_present(vm)
    for name in reversed(created):
        ctx.store.remove_image(name)
    ctx.images.remove_group_and_members(vm)


def created_view(ctx, vm, metadata, images, role):
    """The view of a VM the plan makes: enabled with ``role`` as its target, or disabled
    (role None)."""
    view = views.ClusterView(vm)
    view.exists = True
    view.stored = view.intent = metadata
    view.images = images
    if role is not None:
        view.primitive = ctx.resource.desired_primitive(vm, metadata, role)
        view.status = role
        view.starting = role == "Started"
    else:
        view.status = "Disabled"
    return view


# ---- update in place -------------------------------------------------------------------------

def plan_update(ctx, view):
    """New XML, options or metadata: the stored definition and the live CIB are updated;
    disks are never re-imported. Additional disks beyond the existing ones are created."""
    req, vm = ctx.req, view.name
    stored, current = view.stored, view.intent
    base = req.base_xml or current[ci.KEY_BASE_XML]
    bus = req.disk_bus or current.get(ci.KEY_BUS, "virtio")
    wanted = dict(current)
    wanted.update(req.user_metadata)
    wanted.update({ci.KEY_BASE_XML: base, ci.KEY_BUS: bus})
    wanted = ci.apply_updates(wanted, ctx.intent_updates())
    new_disks = new_data_disks(ctx, vm, view.images)
    added = [name for name, _kind, _value in new_disks]
    root = ctx.render(vm, base, view.images + added, bus, stored_xml=current[ci.KEY_XML])
    old_root = xmlutil.parse(current[ci.KEY_XML], "stored domain XML")
    xml_changed = dx.canonical(root) != dx.canonical(old_root)
    wanted[ci.KEY_XML] = dx.to_string(root) if xml_changed else current[ci.KEY_XML]
    if wanted != stored:
        if xml_changed:
            ctx.validate(root)
        ctx.check_resource_inputs(wanted, False, previous=current)
        keys = sorted(k for k in set(wanted) | set(stored) if wanted.get(k) != stored.get(k))

        def update():
            ctx.images.add_data_disks(vm, new_disks)
            ctx.images.write_metadata(vm, stored, wanted)
        ctx.plan.change("updated %s of VM %s" % (", ".join(keys), vm), apply=update,
                        partial=True)
        ctx.diff(vm, stored, wanted)
        view.restart_pending = view.restart_pending or (xml_changed and
                                                        view.status == "Started")
        view.images = view.images + added
    plan_sync(ctx, view, wanted, previous=current)
    view.stored = view.intent = wanted


def new_data_disks(ctx, vm, images):
    """[(image, kind, value)] of the additional disks the task lists beyond the VM's."""
    req = ctx.req
    if req.additional_disks is None:
        return []  # not given: the VM's disks are left as they are
    sizes = req.additional_disks
    have = len(images) - 1 - (1 if req.data_disk else 0)
    if len(sizes) < have:
        ctx.warn("VM %s has %d additional disks and the task lists %d: disks are never "
                 "removed by an update." % (vm, have, len(sizes)))
    result = []
    for index in range(max(have, 0), len(sizes)):
        name = data_image(vm, len(images) + len(result))
        result.append((name,) + disks.additional_source(ctx.run, sizes[index]))
    return result


# ---- the resource as the intent says ------------------------------------------------------

def plan_sync(ctx, view, metadata, previous):
    """An enabled VM's primitive and constraints as its intent says (drift corrected). Its
    power state (target-role) is left alone. ``previous``: the intent before this run,
    whose constraints the module may remove too."""
    vm, current = view.name, view.primitive
    if current is None:
        return
    role = view.target_role or "Started"
    managed = pcib.meta_value(current, "is-managed") != "false"
    desired = ctx.resource.desired_primitive(vm, metadata, role, managed)
    if ci.comparable(current, desired) != ci.comparable(desired, desired):
        desired = ci.keep_agent_utilization(current, desired)
        # Pacemaker restarts a resource whose agent changed (a VM taken over from
        # vm_manager's): the guest then runs the stored definition.
        restarts = rsc.agent_of(current) != rsc.agent_of(desired) and role == "Started"

        def replace():
            ctx.cluster.replace(desired, "resources")
            if restarts:
                ctx.resource.restart_on_new_agent(vm, desired)
        ctx.plan.change("updated the Pacemaker resource of VM %s" % vm, apply=replace,
                        partial=True)
        ctx.plan.diff(vm, "resource", xmlutil.to_string(current), xmlutil.to_string(desired))
        view.primitive = desired
        view.restart_pending = view.restart_pending and not restarts
    plan_constraints(ctx, view, metadata, previous)


def plan_constraints(ctx, view, metadata, previous):
    vm = view.name
    cib = ctx.cluster.cib()
    defined = pcib.primitive_ids(cib)
    wanted = dict((c.get("id"), c) for c in ci.desired_constraints(vm, metadata, defined))
    present = dict((c.get("id"), c) for c in pcib.constraints_of(cib, vm)
                   if rsc.owned(vm, c, metadata) or c.get("id") in wanted
                   or rsc.owned(vm, c, previous))
    stale = sorted(set(present) - set(wanted))
    missing = sorted(i for i in wanted if i not in present or xmlutil.canonical(
        present[i]) != xmlutil.canonical(wanted[i]))
    if not stale and not missing:
        return

    def sync():
        for cid in stale:
            ctx.cluster.delete(present[cid].tag, cid)
        for cid in missing:
            if cid in present:
                ctx.cluster.replace(wanted[cid], "constraints")
            else:
                ctx.cluster.create(wanted[cid], "constraints")
    ctx.plan.change("constraints of VM %s: %s" % (
        vm, ", ".join(["-" + i for i in stale] + ["+" + i for i in missing])), apply=sync,
        partial=True)


# ---- forced re-create ---------------------------------------------------------------------

def plan_recreate(ctx, view):
    """force: new disks from system_image. They are imported under staging names while the
    old VM runs on; only when they are complete is the old VM stopped and its images swapped
    for the new ones. A failure before the swap leaves the old VM as it was."""
    req, vm = ctx.req, view.name
    current = view.intent
    base = req.base_xml or current[ci.KEY_BASE_XML]
    disk_plan = disks.disk_plan(ctx.store, ctx.run, vm, req.system_image, req.data_disk,
                                req.additional_disks, prefix=disks.STAGING_PREFIX,
                                cleared=view.cleared)
    bus = req.disk_bus or current.get(ci.KEY_BUS, "virtio")
    inherited = dict((k, v) for k, v in current.items() if k.startswith("_"))
    inherited.update((k, v) for k, v in current.items()
                     if not k.startswith("_") and k not in ci.RESERVED_KEYS)
    metadata = ctx.metadata_for_new(vm, base, bus, inherited)
    images = disks.final_names(disk_plan)
    ctx.define(vm, metadata, base, images, bus, stored_xml=current[ci.KEY_XML])
    ctx.check_resource_inputs(metadata, False, previous=current)
    enabled = view.enabled

    def recreate():
        staged = ctx.images.stage(disk_plan, metadata)
        running = enabled and ctx.resource.status_of(vm)[0] in ("Started", "Starting")
        ctx.images.swap(vm, staged, stop=lambda: running and ctx.resource.power(vm, "Stopped"),
                        start=lambda: running and ctx.resource.power(vm, "Started"))
    ctx.plan.change("re-created VM %s from %s" % (vm, req.system_image), apply=recreate,
                    partial=True)
    ctx.diff(vm, current, metadata)
    view.images = images
    view.restart_pending = False  # a running VM was restarted on its new disks
    plan_sync(ctx, view, metadata, previous=current)
    view.stored = view.intent = metadata
