# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The cluster kind of VM for the lifecycle: disks in Ceph RBD, run by Pacemaker through
ocf:gridvirt:VirtualDomain. Reads the VM, hands the plan to states.py, power.py,
cluster_migration.py or commands.py, and reports.

The data model is SEAPATH's (README, cluster_vm): group ``<vm>``, images ``system_<vm>`` and
``data_<vm>_<i>``, metadata on ``system_<vm>`` (``xml``, ``_base_xml``, ``vm_name`` and
``_<option>`` keys), primitive ``<vm>``. What the VM should look like in Pacemaker is
derived from that metadata by cluster_intent."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_disks as disks
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_import
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import commands
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import power
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import states
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.allocation import (
    plan_allocated_move)
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.context import Context
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.view import read_view
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.lifecycle import Backend
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.snapshot_policy import listing
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import (
    Hypervisor, validate_domain)
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_store import RbdStore

LOCK_WAIT_SECONDS = 600
# The commands on one existing VM, and their plans.
COMMAND_PLANS = {
    "start": lambda ctx, view: power.plan_power(ctx, view, "Started"),
    "stop": lambda ctx, view: power.plan_power(ctx, view, "Stopped"),
    "enable": lambda ctx, view: power.plan_enable(ctx, view, start=not ctx.req.nostart),
    "disable": power.plan_disable,
    "migrate": lambda ctx, view: plan_allocated_move(ctx, view, ctx.req.node),
    "define_colocation": commands.plan_colocation,
    "add_pacemaker_remote": commands.plan_add_remote,
    "remove_pacemaker_remote": commands.plan_remove_remote,
    "create_snapshot": commands.plan_create_snapshot,
    "remove_snapshot": commands.plan_remove_snapshot,
    "rollback_snapshot": commands.plan_rollback_snapshot,
    "purge_image": commands.plan_purge_image,
    "set_metadata": commands.plan_set_metadata,
}
# Commands that need the VM to exist (start and stop say so in their own sentences).
MUST_EXIST = ("enable", "disable", "define_colocation", "add_pacemaker_remote",
              "remove_pacemaker_remote", "create_snapshot", "remove_snapshot",
              "rollback_snapshot", "purge_image", "set_metadata", "list_snapshots",
              "list_metadata", "get_metadata")
# What a command returns besides what its plan set: the VM's snapshots, nothing, or the VM.
REPORTS_SNAPSHOTS = ("list_snapshots", "create_snapshot", "remove_snapshot",
                     "rollback_snapshot", "purge_image")
REPORTS_NOTHING = ("set_metadata", "define_colocation", "add_pacemaker_remote",
                   "remove_pacemaker_remote")


class ClusterBackend(Backend):
    """``run``: AnsibleModule.run_command; ``warn``: its warn; ``shared``: another backend
    whose connections this one uses (and leaves open), for many VMs planned in one call."""

    source = None  # command=import: the connection to the source host, once opened

    def __init__(self, request, run, warn, shared=None):
        self.owns_connections = shared is None
        if shared is not None:
            self.store, self.cluster = shared.store, shared.cluster
        else:
            options = request.store_options
            self.store = RbdStore(options["ceph_conf"], options["ceph_user"],
                                  options["keyring"], options["pool"], run,
                                  timeout=request.connect_timeout)
            self.cluster = pcmk.Cluster(run, timeout=request.connect_timeout)
        self.run = run
        self.warn = warn
        self.planned = None  # the plan of this run, once planned

    def where(self):
        return "node %s" % os.uname()[1]

    def timed_out(self, what):
        return self.store.not_answering(what)

    @contextlib.contextmanager
    def locks(self, request, check_mode):
        """One mutating run per VM (and per clone source) at a time, cluster-wide: a RADOS
        lock with a lease. Check mode takes none (it must not even create the lock object)."""
        with contextlib.ExitStack() as stack:
            if not (check_mode or request.read_only):
                for name in sorted(set(request.locked_names)):  # one order: no deadlock
                    stack.enter_context(self.store.lease(name, LOCK_WAIT_SECONDS))
            yield

    def read(self, request):
        view = read_view(self.store, self.cluster, request.name)
        if request.command in MUST_EXIST and not view.exists:
            raise VmError("VM %s does not exist." % request.name)
        return view

    def plan(self, request, view, plan):
        self.planned = plan
        ctx = Context(request, self.store, self.cluster, self.run, self.warn, plan)
        if request.command == "clone":
            source = read_view(self.store, self.cluster, request.src_name)
            return commands.plan_clone(ctx, view, source)
        if request.command == "import":
            return cluster_import.plan_import(ctx, view, self.source_host(request))
        if request.state is not None:
            return states.plan_state(ctx, view)
        if request.command in COMMAND_PLANS:
            COMMAND_PLANS[request.command](ctx, view)  # each updates the view in place
        return view

    def report(self, request, view, applied):
        command = request.command
        if command == "list_vms":
            return self.list_vms()
        answer = request.metadata_answer(view.stored)
        if answer is not None:
            return answer
        if command in REPORTS_NOTHING:
            return {}
        if request.state == "absent":
            return {"name": request.name, "status": "Undefined", "node": None}
        if command in REPORTS_SNAPSHOTS:
            return listing([snap[:2] for snap in disks.vm_snapshots(self.store, request.name)])
        return vm_report(self.current(request, view), view, applied)

    def current(self, request, view):
        """The VM as it is now: read again, unless the plan had no step at all (then the
        view is the VM as read, unchanged, and a second read would only cost RBD calls)."""
        if self.planned is not None and not self.planned.steps:
            return view
        return read_view(self.store, self.cluster, request.name)

    def list_vms(self):
        """Every VM with its status and node: one RBD listing, one status read."""
        status = self.cluster.status()
        vms = []
        for vm in self.store.vm_names():
            state, node = status["resources"].get(vm, ("Disabled", None))
            vms.append({"name": vm, "status": state, "node": node})
        return {"list_vms": [vm["name"] for vm in vms], "vms": vms}

    def check_new_definition(self, request):
        """The definition a VM would be created from, checked with libvirt's schema (what
        a create checks before its disks are known)."""
        if request.base_xml is None:
            raise VmError("VM %s does not exist: give xml to create it." % request.name)
        validate_domain(self.run, dx.parse_domain(request.base_xml))

    def source_host(self, request):
        """command=import: the source host's libvirt (opened once, closed with the backend)."""
        if self.source is None:
            self.source = Hypervisor(request.src_uri, self.run,
                                     timeout=request.connect_timeout)
        return self.source

    def close(self):
        if self.source is not None:
            self.source.close()
        if self.owns_connections:
            self.store.close()


def vm_report(now, planned, applied):
    """The VM as it is now; in check mode, ``restart_required`` as the plan leaves it."""
    result = {"name": now.name, "status": now.status if now.exists else "Undefined",
              "node": now.node if now.exists else None}
    if not now.exists:
        return result
    root = xmlutil.parse(now.intent[ci.KEY_XML], "stored domain XML")
    result.update(
        uuid=dx.uuid_of(root), macs=dx.macs(root), images=now.images,
        metadata=dict((k, v) for k, v in now.intent.items()
                      if not k.startswith("_") and k not in ci.RESERVED_KEYS),
        restart_required=now.restart_pending or (not applied and planned.restart_pending))
    return result
