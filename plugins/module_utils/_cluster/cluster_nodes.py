# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Orchestration of a cluster node's maintenance: standby (Pacemaker moves its VMs away,
and the run waits until none runs there) and back online. Reads, compares, acts unless in
check mode, reports; the refusals and the account of what moved are pure functions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.outcome import Outcome

POLL_SECONDS = 1.0


# ---- pure logic ----------------------------------------------------------------------------

def vms_on(view, node):
    """Sorted names of the VMs running (or starting, stopping, migrating) on the node."""
    return sorted(vm for vm, (_status, where) in view["vms"].items() if where == node)


def known_node(name, view):
    if name not in view["nodes"]:
        raise VmError("%s is not a node of the cluster (nodes: %s)."
                      % (name, ", ".join(sorted(view["nodes"]))))


def standby_refusal(name, view):
    """Why the node must not be put in standby now (a sentence), or None."""
    node = view["nodes"][name]
    running = vms_on(view, name)
    if not node["online"]:
        return "Node %s is not online (not a member of the cluster now)." % name
    if not view["quorum"]:
        return ("The cluster partition of this node has no quorum: Pacemaker would not move "
                "the VMs of %s." % name)
    if node["maintenance"] and running:
        return ("Node %s is in maintenance: Pacemaker leaves its VMs (%s) alone and would not "
                "move them." % (name, ", ".join(running)))
    others = [n for n in view["usable_nodes"] if n != name]
    if running and not others:
        return ("Node %s is the only node that can take VMs and runs %s: they would have "
                "nowhere to go." % (name, ", ".join(running)))
    return None


def moves(before, view, live):
    """What became of the VMs that ran on a node: [{name, from, to, live}]; ``to`` is None
    for a VM that stopped. ``before``: {VM: node}; ``live``: {VM: allow-migrate}."""
    result = []
    for vm in sorted(before):
        to = view["vms"].get(vm, ("Stopped", None))[1]
        if to != before[vm]:
            result.append({"name": vm, "from": before[vm], "to": to,
                           "live": bool(live.get(vm)) and to is not None})
    return result


def allow_migrate(cib, vms):
    """{VM: its allow-migrate meta attribute is true} from the CIB."""
    result = {}
    for vm in vms:
        prim = cib.find("configuration/resources/primitive[@id='%s']" % vm)
        result[vm] = prim is not None and pcib.is_true(pcib.meta_value(prim, "allow-migrate"))
    return result


def pinned_here(cib, vms, node):
    """The VMs pinned to the node (our location-<vm>-pin-<node> constraint)."""
    return [vm for vm in vms if cib.find("configuration/constraints/rsc_location[@id='%s']"
                                         % pcib.location_id(vm, node, "pin")) is not None]


# ---- the orchestration ----------------------------------------------------------------------

class NodeMaintenance(Outcome):
    """Puts one node in standby or back online. ``run`` is AnsibleModule.run_command."""

    def __init__(self, run, check_mode, warn):
        super(NodeMaintenance, self).__init__()
        self.cluster = pcmk.Cluster(run)
        self.check = check_mode
        self.warn = warn

    def run(self, name, state, wait, timeout):
        if timeout <= 0:
            raise VmError("timeout must be a positive number of seconds, not %d." % timeout)
        view = self.cluster.overview()
        known_node(name, view)
        if state == "standby":
            view = self.standby(name, view, wait, timeout)
        else:
            view = self.online(name, view, wait, timeout)
        self.result["node"] = view["nodes"][name]
        return self.finish()

    def standby(self, name, view, wait, timeout):
        cib = self.cluster.cib()
        before = dict((vm, name) for vm in vms_on(view, name))
        if not any(pcib.standby_settings(cib, name)):
            refusal = standby_refusal(name, view)
            if refusal:
                raise VmError(refusal)
            self._changed("put node %s in standby" % name)
            for vm in pinned_here(cib, before, name):
                self.warn("VM %s is pinned to node %s: it stops and stays stopped until the "
                          "node is back online." % (vm, name))
            if not self.check:
                self.cluster.set_standby(name)
        self.result["moved"] = []
        if self.check or not wait:
            return view if self.check else self.cluster.overview()
        view = self._wait_until_empty(name, timeout)
        self.result["moved"] = moves(before, view, allow_migrate(cib, before))
        return view

    def _wait_until_empty(self, name, timeout):
        deadline = time.monotonic() + timeout
        while True:
            view = self.cluster.overview()
            left = vms_on(view, name)
            if not left:
                return self._when_moves_end(deadline)
            if time.monotonic() >= deadline:
                raise VmError("Node %s is in standby, but VMs %s still run on it after %d "
                              "seconds; the node stays in standby (state online takes it "
                              "back)." % (name, ", ".join(left), timeout),
                              node=view["nodes"][name], vms_left=left)
            time.sleep(POLL_SECONDS)

    def _when_moves_end(self, deadline):
        """The overview once the controller has run its transition to the end: a VM that was
        stopped on the node (no live migration) is then started elsewhere, not half-way."""
        self.cluster.waits.settle(max(0.0, deadline - time.monotonic()))
        return self.cluster.overview()

    def online(self, name, view, wait, timeout):
        permanent, transient = pcib.standby_settings(self.cluster.cib(), name)
        if permanent or transient:
            self._changed("took node %s out of standby" % name)
            if not self.check:
                self.cluster.clear_standby(name, permanent, transient)
        if self.check or not wait:
            return view if self.check else self.cluster.overview()
        return self._wait_until_online(name, timeout)

    def _wait_until_online(self, name, timeout):
        deadline = time.monotonic() + timeout
        while True:
            view = self.cluster.overview()
            node = view["nodes"][name]
            if node["online"] and not node["standby"]:
                return view
            if time.monotonic() >= deadline:
                raise VmError("Node %s is not online out of standby after %d seconds (it is "
                              "%s)." % (name, timeout, "still in standby" if node["online"]
                                        else "offline"), node=node)
            time.sleep(POLL_SECONDS)
