# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""What the steps of a cluster plan do to a VM's Pacemaker resource: add it (unmanaged,
constrained, then managed), power it through its target-role, wait for it (bounded by its
operation timeouts), move it to a node, hold and restore the constraints of others that name
it, delete it. Nothing here decides whether to act: the planners did."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_migration as mig
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import seapath_layout as seapath
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import system_image

# Transient node attribute that turns the VM's next stop into a power-off (read by our agent).
FORCE_STOP_ATTR = "gridvirt-force-stop-%s"


def owned(vm, constraint, metadata):
    """A constraint the module manages for the VM: one of ours, or one vm_manager made from
    the same intent (ours replace it)."""
    return ci.owned_constraint(vm, constraint, metadata) or \
        seapath.replaced_by_ours(vm, constraint, metadata)


def agent_of(primitive):
    return tuple(primitive.get(a) for a in ("class", "provider", "type"))


class Resource(object):
    """The VM resources of the cluster. ``store_options``: the Ceph options the agent gets."""

    def __init__(self, cluster, store, store_options):
        self.cluster = cluster
        self.store = store
        self.store_options = store_options

    def status_of(self, vm):
        """-> (status, node) as Pacemaker reports it now (Disabled: no resource)."""
        return self.cluster.status()["resources"].get(vm, ("Disabled", None))

    def desired_primitive(self, vm, metadata, target_role, managed=True):
        return ci.desired_primitive(vm, self.store_options, metadata, target_role, managed)

    # ---- adding and deleting ---------------------------------------------------------------

    def add(self, vm, metadata, target_role):
        """Created unmanaged, constrained, then managed: it can never start on a wrong node
        in between. Everything comes from the VM's stored intent, so an enable after a
        disable restores it."""
        # The resources the constraints may name: those read before, and this one.
        defined = pcib.primitive_ids(self.cluster.cib()) | set([vm])
        primitive = self.desired_primitive(vm, metadata, target_role, managed=False)
        self.cluster.create(primitive, "resources")
        for constraint in ci.desired_constraints(vm, metadata, defined):
            self.cluster.create(constraint, "constraints")
        # After the crmsh lines: those re-create their own constraints, which a disable
        # held like any other (their ids are not ours).
        for words in ci.stored_crm_commands(vm, metadata):
            self.cluster.configure(words)
        self.restore_held(vm, metadata)
        self.cluster.set_meta(vm, "is-managed", "true")
        if target_role == "Started":
            self.wait(vm, ("Started",), "start", primitive)

    def delete_if_present(self, vm):
        """What a failed add left: the resource stopped (a start that timed out may still be
        running the guest), its constraints and itself deleted."""
        if pcib.primitive(self.cluster.cib(), vm) is None:
            return
        self.cluster.set_meta(vm, "target-role", "Stopped")
        self.wait(vm, ("Stopped",), "stop")
        self.delete(vm)

    def delete(self, vm):
        cib = self.cluster.cib()
        for constraint in pcib.constraints_of(cib, vm):
            self.cluster.delete(constraint.tag, constraint.get("id"))
        self.cluster.delete("primitive", vm)

    def hold_foreign_constraints(self, vm, metadata):
        """Pacemaker keeps no constraint that names a missing resource: the ones of others
        that name this VM are kept with it, for the enable to put back."""
        held = [xmlutil.to_string(c, pretty=False)
                for c in pcib.constraints_of(self.cluster.cib(), vm)
                if not owned(vm, c, metadata)]
        if held:
            self.store.set_metadata(system_image(vm), {ci.KEY_HELD: ci.dump_json(held)})

    def restore_held(self, vm, metadata):
        """The constraints a disable held, back once the VM is a resource again: those whose
        other resources are still there and whose id is free (a VM enabled meanwhile put its
        own colocation back itself)."""
        held = ci.load_json(metadata, ci.KEY_HELD, [])
        if not held:
            return
        cib = self.cluster.cib()
        defined = pcib.primitive_ids(cib)
        taken = pcib.element_ids(cib)
        for text in held:
            constraint = xmlutil.parse(text, "held constraint of VM %s" % vm)
            if constraint.get("id") not in taken and pcib.named_resources(constraint) <= defined:
                self.cluster.create(constraint, "constraints")
        self.store.remove_metadata(system_image(vm), [ci.KEY_HELD])

    # ---- power and waits -------------------------------------------------------------------

    def wait(self, vm, wanted, op, prim=None):
        """Until the VM is in one of ``wanted``, bounded by its ``op`` timeout (of ``prim``,
        its primitive, when the caller has it: else read from the CIB)."""
        if prim is None:
            prim = pcib.primitive(self.cluster.cib(), vm)
        timeout = pcib.primitive_timeouts(prim)[op] + pcib.MONITOR_INTERVAL
        state, node = self.cluster.waits.wait_for(vm, wanted, timeout)
        if state not in wanted:
            reasons = self.cluster.status()["failures"].get(vm, [])
            raise VmError("VM %s did not reach %s within %d seconds (it is %s%s)%s."
                          % (vm, " or ".join(wanted), timeout, state,
                             " on %s" % node if node else "",
                             ": " + "; ".join(reasons) if reasons else ""))
        return state, node

    def power(self, vm, wanted):
        """wanted: 'Started' or 'Stopped', through the resource's target-role."""
        if self.status_of(vm)[0] == "Failed":
            self.cluster.cleanup(vm)
        self.cluster.set_meta(vm, "target-role", wanted)
        self.wait(vm, (wanted,), "start" if wanted == "Started" else "stop")

    def force_stop(self, vm):
        """Stop with an immediate power-off: a transient attribute of the VM's node asks our
        agent to destroy the guest for this one stop (Pacemaker stops a resource with the
        parameters it started with, so force_stop itself cannot be changed for it)."""
        node = self.status_of(vm)[1]
        attribute = FORCE_STOP_ATTR % vm
        self.cluster.set_node_attribute(node, attribute, "true")
        try:
            self.power(vm, "Stopped")
        finally:
            self.cluster.delete_node_attribute(node, attribute)

    def restart_on_new_agent(self, vm, primitive):
        """Pacemaker restarts a resource whose agent changed (a VM taken over from
        vm_manager's): wait until it runs again, on the stored definition."""
        timeouts = pcib.primitive_timeouts(primitive)
        self.cluster.waits.settle(timeouts["stop"] + timeouts["start"])
        self.wait(vm, ("Started",), "start")

    # ---- moving ----------------------------------------------------------------------------

    def move(self, vm, target):
        """crm_resource --move, the wait, then always --clear; fails when the VM is not on
        the target then, naming the constraints that involve it."""
        prim = pcib.primitive(self.cluster.cib(), vm)
        timeout = mig.move_timeout(pcib.primitive_timeouts(prim))
        try:
            self.cluster.move(vm, target)
            state, node = self.cluster.waits.wait_on(vm, target, timeout)
        finally:
            self.cluster.clear(vm)
        if state == "Started" and node == target:
            self.cluster.waits.settle(timeout)
            now = self.status_of(vm)[1]
            if now != target:
                raise VmError("VM %s moved to %s, but Pacemaker placed it %s again once the "
                              "temporary move constraint was cleared; give it a "
                              "resource-stickiness (pacemaker_meta) or preferred_host %s."
                              % (vm, target, "on %s" % now if now else "nowhere", target))
            return
        status = self.cluster.status()
        raise VmError(mig.not_placed(vm, target, state, node,
                                     pcib.constraints_of(self.cluster.cib(), vm),
                                     status["failures"].get(vm, [])))
