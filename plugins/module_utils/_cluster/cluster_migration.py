# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Moving a running cluster VM to a named node through Pacemaker (command migrate, and
state running with a node). The checks that refuse a move are pure functions; the plan adds
one step, which the VM's Resource carries out (resource.py): a temporary cli-prefer
constraint (crm_resource --move), a wait bounded by the VM's operation timeouts, and always
crm_resource --clear after it, so no temporary constraint outlives the run and the VM's own
constraints stay as they were.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.plan import NOT_NEEDED

TEMPORARY_PREFIX = "cli-"


# ---- pure checks ---------------------------------------------------------------------------

def check_running(vm, state, node, target_role):
    """The VM can be moved only when it runs and is meant to run; raises VmError."""
    if state == "Undefined":
        raise VmError("VM %s does not exist." % vm)
    if state == "Disabled":
        raise VmError("VM %s is disabled (not a cluster resource): enable and start it before "
                      "moving it." % vm)
    if target_role == "Stopped":
        raise VmError("VM %s is being stopped (its target-role is Stopped): start it before "
                      "moving it." % vm)
    if state != "Started" or not node:
        raise VmError("VM %s is not running (it is %s): start it before moving it."
                      % (vm, state))


def node_refusal(target, info):
    """Why ``target`` cannot take a VM now (a phrase), or None. ``info``: node_info()."""
    nodes = info["nodes"]
    if target not in nodes:
        return "%s is not a node of the cluster (nodes: %s)" % (target, ", ".join(sorted(nodes)))
    if not info["quorum"]:
        return "the cluster partition of this node has no quorum"
    node = nodes[target]
    if not node["online"]:
        return "node %s is offline" % target
    if node["standby"]:
        return "node %s is in standby" % target
    if node["maintenance"]:
        return "node %s is in maintenance" % target
    if not node["usable"]:
        return "node %s cannot take VMs now (unclean, pending or shutting down)" % target
    return None


def check_target(vm, target, info, metadata):
    """The target node can take the VM, and the VM's own placement lets it stay there once
    the temporary move constraint is cleared; raises VmError."""
    reason = node_refusal(target, info)
    if reason:
        raise VmError("VM %s cannot move to %s: %s." % (vm, target, reason))
    pinned = metadata.get(ci.KEY_PINNED)
    if pinned and pinned != target:
        raise VmError("VM %s is pinned to node %s and cannot run on %s; change its pinned_host "
                      "to move it." % (vm, pinned, target))
    preferred = metadata.get(ci.KEY_PREFERRED)
    if preferred and preferred != target and not pinned:
        raise VmError("VM %s prefers node %s and would move back there as soon as the move to "
                      "%s is over; change its preferred_host to %s (or remove it) instead."
                      % (vm, preferred, target, target))


def move_timeout(timeouts):
    """Bound of the wait for a move, seconds: the migrate_to timeout (or the stop timeout when
    longer: a move without live migration is a stop, then a start) plus the start timeout."""
    return max(timeouts["migrate_to"], timeouts["stop"]) + timeouts["start"]


def not_placed(vm, target, state, node, constraints, failures):
    """The sentence of a move Pacemaker did not carry out."""
    where = "on %s" % node if node and state == "Started" else state.lower()
    ids = sorted(c.get("id") for c in constraints
                 if not c.get("id", "").startswith(TEMPORARY_PREFIX))
    return ("VM %s was not moved to %s: Pacemaker keeps it %s; constraints involving it: "
            "%s%s." % (vm, target, where, ", ".join(ids) or "none",
                       " (failures: %s)" % "; ".join(failures) if failures else ""))


# ---- the plan of a move ------------------------------------------------------------------------

def plan_move(ctx, view, target):
    """Move the VM to ``target`` unless it runs there. A VM the plan starts first is moved
    only if Pacemaker did not start it there (known when the step runs)."""
    vm, node = view.name, view.node
    if not view.starting:
        check_running(vm, view.status, node, view.target_role)
    prim, metadata = view.primitive, view.intent
    live = (pcib.meta_value(prim, "allow-migrate") if prim is not None
            else ci.resource_meta(metadata)["allow-migrate"]) == "true"
    ctx.plan.values.update(previous_node=node, migrated_live=False)
    if node == target and not view.starting:
        return
    check_target(vm, target, ctx.cluster.node_info(), metadata)
    starting = view.starting

    def move():
        if starting:
            where = ctx.resource.status_of(vm)[1]
            ctx.plan.values["previous_node"] = where
            if where == target:
                ctx.plan.values["migrated_live"] = False
                return NOT_NEEDED
        ctx.resource.move(vm, target)
        return None
    origin = "from %s " % node if node else ""
    how = "live" if live else "stopped, then started"
    ctx.plan.change("moved VM %s %sto %s (%s)" % (vm, origin, target, how), apply=move,
                    partial=True)
    ctx.plan.values["migrated_live"] = live
    view.node, view.starting = target, False
