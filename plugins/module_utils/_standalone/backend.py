# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The standalone kind of VM for the lifecycle: one libvirt host, disks in its storage pool.
Reads the VM, hands the plan to states.py or commands.py, and reports."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.lifecycle import Backend
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.site_hooks import SiteHooks
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.snapshot_policy import listing
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import commands
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import move
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import states
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.host import (
    StandaloneHost)
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.host_lock import VmLocks
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.view import read_view
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import Hypervisor

LOCK_WAIT_SECONDS = 600
COMMAND_PLANS = {
    "clone": commands.plan_clone,
    "create_snapshot": commands.plan_create_snapshot,
    "remove_snapshot": commands.plan_remove_snapshot,
    "rollback_snapshot": commands.plan_rollback_snapshot,
    "purge_image": commands.plan_purge_image,
    "set_metadata": commands.plan_set_metadata,
}
# The commands that return the VM's snapshots; the metadata commands return what they read
# or set; every other request returns the VM's report.
REPORTS_SNAPSHOTS = ("create_snapshot", "remove_snapshot", "list_snapshots", "purge_image")


class StandaloneBackend(Backend):
    """``run``: AnsibleModule.run_command; ``warn``: its warn; ``shared``: another backend
    whose connection this one uses (and leaves open), for many VMs planned in one call."""

    def __init__(self, request, run, warn, shared=None):
        self.owns_connections = shared is None
        self.hv = shared.hv if shared is not None else Hypervisor(
            request.uri, run, timeout=request.connect_timeout)
        self.host = StandaloneHost(self.hv)
        self.warn = warn
        self.ctx = None
        self.run = run
        self.destination = None

    def where(self):
        return self.hv.uri

    @contextlib.contextmanager
    def locks(self, request, check_mode):
        if request.read_only:
            yield
            return
        with VmLocks(request.locked_names, LOCK_WAIT_SECONDS):
            yield

    def read(self, request):
        view = read_view(self.hv, request.name)
        if request.must_exist and not view.exists:
            raise VmError("Cannot %s VM %s: it does not exist." % (request.command,
                                                                   request.name))
        return view

    def plan(self, request, view, plan):
        self.ctx = states.Context(self.hv, self.host, self.warn, plan, SiteHooks(
            "standalone", request.hook_timeout, request.addresses, self.run, self.warn))
        if request.state is not None:
            return states.plan_state(self.ctx, request, view)
        if request.command in COMMAND_PLANS:
            return COMMAND_PLANS[request.command](self.ctx, request, view)
        if request.command == "move":
            return move.plan_move(self.ctx, request, view, self.destination_of(request))
        if request.command in ("list_snapshots", "list_metadata", "get_metadata"):
            commands.existing(view)
        return view

    def report(self, request, view, applied):
        command = request.command
        if command == "list_vms":
            return self.list_vms()
        answer = request.metadata_answer(view.meta)
        if answer is not None:
            return answer
        if command == "set_metadata":
            return {}
        if request.state == "absent":
            return {"name": request.name, "status": "Undefined"}
        if command == "move":
            return self.moved_report(request, view, applied)
        now = read_view(self.hv, request.name)
        if command in REPORTS_SNAPSHOTS:
            return listing(now.snapshots)
        return self.vm_report(now, view, applied)

    def vm_report(self, now, planned, applied, node=None):
        """The VM as it is now (on ``node``, else this host); in check mode,
        ``restart_required`` as the plan leaves it."""
        if not now.exists:
            return {"name": now.name, "status": "Undefined"}
        return {"name": now.name, "status": now.status, "uuid": dx.uuid_of(now.root),
                "disks": dx.disk_info(now.root), "macs": dx.macs(now.root),
                "autostart": now.autostart, "metadata": now.meta,
                "node": node or self.hv.hostname(),
                "restart_required": now.restart_pending or (
                    not applied and planned.restart_pending)}

    def destination_of(self, request):
        """The destination host's connection (opened once, closed with this backend)."""
        if self.destination is None:
            self.destination = Hypervisor(request.destination_uri, self.run,
                                          timeout=request.connect_timeout)
        return self.destination

    def moved_report(self, request, planned, applied):
        """The VM where it went (in check mode: as the move would leave it)."""
        there = self.destination_of(request)
        now = read_view(there, request.name) if applied else planned
        return self.vm_report(now, planned, applied, node=there.hostname())

    def list_vms(self):
        node = self.hv.hostname()
        vms = sorted(self.hv.read_domains(lambda d: {
            "name": d.name(), "status": self.hv.status(d), "node": node,
            "persistent": bool(d.isPersistent())}), key=lambda vm: vm["name"])
        return {"list_vms": [vm["name"] for vm in vms], "vms": vms}

    def check_new_definition(self, request):
        """The definition a VM would be created from, checked with libvirt's schema (what
        a create checks before its disks are known)."""
        if request.user_root is None:
            raise VmError("VM %s does not exist: give xml to create it." % request.name)
        self.hv.check_definable(request.user_root)

    def close(self):
        if self.destination is not None:
            self.destination.close()
        if self.owns_connections:
            self.hv.close()
