# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The plan of a declarative state (present, running, stopped, absent) for a standalone VM:
create, update in place, forced re-import of the system disk, autostart, restart on a new
definition, power. Each function reads the view, adds its steps, and leaves the view as the
steps will leave the VM. Nothing here acts: the steps do, when the plan is applied."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import view as views
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.host import stamp
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_storage import DEFAULT_POOL


class Context(object):
    """What the planners share: the libvirt layer, the VM-level host operations, the
    module's warn, and the plan being built."""

    def __init__(self, hv, host, warn, plan, hooks=None):
        self.hv = hv
        self.host = host
        self.warn = warn
        self.plan = plan
        self.pool_planned = False
        self.hooks = hooks
        self.allocating = None  # the action the allocate hooks run for
        self.allocation = None

    def domain(self, name):
        """The VM's libvirt handle when a step runs (an earlier step may have defined it)."""
        dom = self.hv.domain(name)
        if dom is None:
            raise VmError("VM %s disappeared during the run." % name)
        return dom

    def pool(self, req):
        """The request's pool while planning: None when it is the default one and missing
        (a step creates it)."""
        pool = self.host.pool_or_none(req.pool)
        if pool is None and not self.pool_planned:
            self.pool_planned = True
            self.plan.change("created storage pool %s" % req.pool,
                             apply=lambda: self.hv.storage.pool(req.pool, create_missing=True))
        return pool

    def pool_now(self, req):
        """The request's pool when a step runs (it exists by then)."""
        return self.hv.storage.pool(req.pool, create_missing=(req.pool == DEFAULT_POOL))

    # ---- the site hooks ----------------------------------------------------------------

    def allocate_first(self, name, action, root, meta, node=None):
        """The allocate hooks run before every step of the plan (a veto changes nothing),
        once per run, for ``action`` of VM ``name`` as the plan defines it (``root``), on
        this host (or ``node``: a move's destination)."""
        if self.hooks is None or self.allocating:
            return
        self.allocating = action

        def allocate():
            here = node or self.hv.hostname()
            self.allocation = self.hooks.allocate(name, here, action, root, meta)
            if self.allocation.node != here:
                raise VmError("The allocate hooks asked to start VM %s on %s, but a standalone "
                              "VM starts on the host it is defined on (%s): move it there with "
                              "command move." % (name, self.allocation.node, here))
        self.plan.first(allocate)

    def boot(self, dom, action):
        """Start the VM: through its preboot hooks, with the allocate hooks' NIC changes; a
        definition they changed runs for this boot only."""
        if self.hooks is None:
            return self.hv.start(dom)
        stored = self.hv.xml_root(dom)
        root = self.allocation.boot_root(stored) if self.allocation else stored
        boot = self.hooks.preboot(dom.name(), self.hv.hostname(), action, root,
                                  dx.read_gv_metadata(stored)[0])
        root = root if boot is None else boot
        if root is stored:
            return self.hv.start(dom)
        self.hv.check_definable(root)
        return self.hv.start_with(root)

    def stopped(self, name, action, root, meta):
        """The disallocate hooks after the VM stopped or was removed (warnings only)."""
        if self.hooks is not None:
            self.hooks.disallocate(name, self.hv.hostname(), action, root, meta)

    def diff(self, name, before, after):
        self.plan.diff(name, "domain XML", dx.pretty(before), dx.pretty(after))

    def meta_diff(self, name, before, after):
        def text(meta):
            return "".join("%s: %s\n" % (k, meta[k]) for k in sorted(meta))
        self.plan.diff(name, "metadata", text(before), text(after))


def user_domain(ctx, req, name, existing_uuid=None):
    """A copy of the request's XML made the VM's: its name, and its UUID (the existing one,
    else the user's, else a stable one, checked free on the host)."""
    root = copy.deepcopy(req.user_root)
    given = dx.uuid_of(root)
    uuid = existing_uuid or (spec.validate_uuid(given) if given else spec.stable_uuid(name))
    if existing_uuid is None:
        ctx.host.check_uuid_free(uuid, name)
    dx.set_identity(root, name, uuid)
    return root


def finish_desired(req, root, name, disk_paths, bus):
    dx.add_file_disks(root, disk_paths, bus)
    dx.assign_macs(root, name)
    dx.expose_name_to_guest(root, name)
    if req.memory:
        dx.set_memory(root, req.memory)
    if req.vcpus:
        dx.set_vcpus(root, req.vcpus)
    return root


def plan_state(ctx, req, view):
    """The steps that bring the VM to req.state -> the view after them."""
    if req.state == "absent":
        return plan_absent(ctx, view)
    if not view.exists:
        view = plan_create(ctx, req, view)
    elif req.force and req.system_image:
        plan_replace_system_disk(ctx, req, view)
    else:
        plan_update(ctx, req, view)
    plan_autostart(ctx, req, view)
    if req.state in ("present", "running"):
        plan_restart(ctx, req, view)
    plan_power(ctx, req, view, req.state)
    return view


def plan_absent(ctx, view):
    if view.exists:
        root, meta = view.root, view.meta

        def remove():
            ctx.host.remove_vm(view.name)
            ctx.stopped(view.name, "remove", root, meta)
        ctx.plan.change("removed VM %s" % view.name, apply=remove)
        ctx.diff(view.name, dx.canonical(view.root), "")
        view.exists, view.status = False, "Undefined"
    return view


# ---- create -------------------------------------------------------------------------------

def plan_create(ctx, req, view):
    name = view.name
    if req.user_root is None or not req.system_image:
        raise VmError("VM %s does not exist: give both xml and system_image to create it."
                      % name)
    root = user_domain(ctx, req, name)
    # The images are refused before anything, even the pool, is made.
    sources = ctx.host.checked_sources(req.system_image, req.additional_disks)
    pool = ctx.pool(req)
    ctx.host.check_volumes_free(pool, name, 0, len(sources))
    paths = [ctx.host.path_of(pool, name, i) for i in range(len(sources))]
    desired = finish_desired(req, root, name, paths, req.disk_bus or "virtio")
    ctx.hv.check_definable(desired)
    meta = req.metadata or {}
    ctx.allocate_first(name, "create", desired, meta)

    def create():
        created = ctx.host.make_volumes(ctx.pool_now(req), name, 0, sources)
        try:
            ctx.host.define_recorded(desired, meta)
        except BaseException:
            ctx.host.undefine_named(name)
            ctx.host.delete_paths(created)
            raise
    ctx.plan.change("created VM %s" % name, apply=create,
                    undo=lambda: ctx.host.remove_vm(name))
    ctx.diff(name, "", dx.canonical(desired))
    return views.created(name, desired, meta)


# ---- update in place ----------------------------------------------------------------------

def plan_update(ctx, req, view):
    name = view.name
    desired, added = desired_for_existing(ctx, req, view)
    new_meta = view.meta if req.metadata is None else req.metadata
    drifted = bool(view.stored_digest) and view.stored_digest != dx.digest(view.root)
    before = view.stored if (view.stored and not drifted) else dx.canonical(view.root)
    definition_changed = dx.canonical(desired) != before
    if not (definition_changed or new_meta != view.meta):
        return

    def redefine():
        if added:
            ctx.host.make_volumes(ctx.pool_now(req), name, added[0], added[1])
        ctx.host.define_recorded(desired, new_meta)
    if definition_changed:
        suffix = " (edited outside Ansible)" if drifted else ""
        ctx.plan.change("redefined VM %s%s" % (name, suffix), apply=redefine)
        ctx.diff(name, before, dx.canonical(desired))
        view.restart_pending = view.restart_pending or view.active
    if new_meta != view.meta:
        ctx.plan.change("metadata of VM %s" % name,
                        apply=None if definition_changed else redefine)
        ctx.meta_diff(name, view.meta, new_meta)
    view.root, view.meta, view.stored = desired, new_meta, dx.canonical(desired)


def desired_for_existing(ctx, req, view):
    """The definition asked for now, keeping the VM's UUID and disks -> (root, added) with
    added = (first new disk index, checked sources) or None."""
    current = view.root
    bus = req.disk_bus or current_bus(current)
    if req.user_root is not None:
        root = user_domain(ctx, req, view.name, existing_uuid=dx.uuid_of(current))
    else:
        root = dx.parse_domain(view.stored or dx.canonical(current), "current definition")
        dx.remove_owned_disks(root)
    paths, added = dx.disk_paths(current), added_disks(ctx, req, view)
    if added:
        pool = ctx.pool(req)
        ctx.host.check_volumes_free(pool, view.name, added[0], len(added[1]))
        paths = paths + [ctx.host.path_of(pool, view.name, added[0] + i)
                         for i in range(len(added[1]))]
    return finish_desired(req, root, view.name, paths, bus), added


def current_bus(root):
    info = dx.disk_info(root)
    return (info[0]["bus"] if info else None) or "virtio"


def added_disks(ctx, req, view):
    """Additional disks asked for beyond those the VM has (never fewer) -> (index of the
    first, checked sources) or None."""
    wanted = req.additional_disks
    have = len(dx.disk_paths(view.root)) - 1
    if wanted is None or len(wanted) == have:
        return None
    if len(wanted) < have:
        ctx.warn("VM %s has %d additional disks and additional_disks lists %d: disks are "
                 "never removed by this module." % (view.name, have, len(wanted)))
        return None
    return have + 1, ctx.host.checked_sources(None, wanted[have:])


# ---- forced re-import -----------------------------------------------------------------------

def plan_replace_system_disk(ctx, req, view):
    """force: the new system image is imported beside the old disk and swapped in only once
    it is complete: a failed import leaves the VM exactly as it was."""
    ctx.hv.storage.check_image(req.system_image)
    ctx.pool(req)
    ctx.plan.change("re-imported the system disk of VM %s" % view.name,
                    apply=lambda: replace_system_disk(ctx, req, view))


def replace_system_disk(ctx, req, view):
    name = view.name
    dom = ctx.domain(name)
    current = ctx.hv.xml_root(dom)
    old_system = dx.disk_paths(current)[0]
    new_system = ctx.hv.storage.import_image(ctx.pool_now(req), "%s.disk0.%s.qcow2" % (name, stamp()),
                                             req.system_image)
    was_active = ctx.hv.is_active(dom)
    try:
        if was_active:
            ctx.hv.stop(dom, req.stop_timeout)
        for snap in reversed(ctx.hv.snapshots(dom)):
            ctx.hv.delete_snapshot(dom, snap[0])
        desired = desired_for_existing(ctx, req, views.read_view(ctx.hv, name))[0]
        dx.owned_disks(desired)[0].find("source").set("file", new_system)
        dom = ctx.host.define_recorded(desired, dx.read_gv_metadata(current)[0])
    except BaseException:
        ctx.hv.storage.delete_volume_path(new_system)
        raise
    ctx.host.delete_unused_chain(old_system)
    if was_active:
        ctx.boot(dom, "restart")


# ---- autostart, restart, power -----------------------------------------------------------

def plan_autostart(ctx, req, view):
    wanted = req.autostart
    if wanted is None or view.autostart == wanted:
        return
    ctx.plan.change("autostart %s" % ("enabled" if wanted else "disabled"),
                    apply=lambda: ctx.hv.set_autostart(ctx.domain(view.name), wanted))
    view.autostart = wanted


def plan_restart(ctx, req, view):
    """apply: restart -- a running VM whose definition is newer than it is restarted."""
    if not (req.restart and view.exists and view.restart_pending):
        return

    ctx.allocate_first(view.name, "restart", view.root, view.meta)

    def restart():
        dom = ctx.domain(view.name)
        ctx.hv.stop(dom, req.stop_timeout, force=req.force)
        ctx.boot(dom, "restart")
    ctx.plan.change("restarted VM %s to apply its new definition" % view.name, apply=restart)
    view.restart_pending = False


def plan_power(ctx, req, view, state):
    status = view.status if view.exists else "Stopped"
    if state == "running" and status != "Started":
        action = ctx.allocating or "start"
        if status != "Paused":
            ctx.allocate_first(view.name, action, view.root, view.meta)

        def start():
            dom = ctx.domain(view.name)
            if ctx.hv.status(dom) == "Paused":
                ctx.hv.resume(dom)
            else:
                ctx.boot(dom, action)
        ctx.plan.change("started VM %s" % view.name, apply=start)
        view.status = "Started"
    elif state == "stopped" and status not in ("Stopped", "Failed"):
        root, meta = view.root, view.meta

        def stop():
            ctx.plan.values["stop"] = ctx.hv.stop(ctx.domain(view.name), req.stop_timeout,
                                                  force=req.force)
            ctx.stopped(view.name, "stop", root, meta)
        ctx.plan.change("stopped VM %s" % view.name, apply=stop)
        view.status = "Stopped"
