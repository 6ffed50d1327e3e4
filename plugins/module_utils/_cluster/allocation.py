# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The allocate hooks of a cluster VM, run by the module on the node the task runs on:
first in the plan of a create, clone, enable with start, start, restart or move (a veto
changes nothing), and the node they choose made the placement of that start (a temporary
crm_resource --move constraint held while it starts, then cleared); their NIC changes make
the definition our resource agent boots until the VM stops. The preboot and
disallocate hooks are our resource agent's: they run wherever Pacemaker starts or stops
the VM."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils import hooks
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.cluster_migration import (
    check_target, plan_move)
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.view import xml_digest
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def plan_allocate(ctx, vm, metadata, action, node=None):
    """The allocate hooks before every step of the plan, once per run, for ``action`` of
    VM ``vm`` as the plan leaves its definition and intent (``metadata``); ``node``: where
    the task itself puts it (a move), which the hooks may veto but not change."""
    if ctx.allocating:
        return
    ctx.allocating = action
    if not ctx.hooks.addresses:
        ctx.hooks.addresses = hooks.stored_addresses(metadata)

    def allocate():
        root = dx.parse_domain(metadata[ci.KEY_XML], "stored definition of VM %s" % vm)
        allocation = ctx.hooks.allocate(vm, node, action, root,
                                        hooks.user_metadata(metadata))
        if node is not None:
            if allocation.nics:
                raise VmError("The allocate hooks changed the NICs of VM %s for a move, which "
                              "keeps its NICs: they can change at a start without a target "
                              "node." % vm)
            if allocation.node != node:
                raise VmError("The allocate hooks chose node %s for VM %s, but this task moves "
                              "it to %s." % (allocation.node, vm, node))
            return
        if allocation.node is not None:
            check_target(vm, allocation.node, ctx.cluster.node_info(), metadata)
        ctx.allocation = allocation
    ctx.plan.first(allocate)


def plan_allocated_move(ctx, view, target):
    """A move to ``target`` (state running with node, command migrate), the allocate hooks
    first when the VM is not there already."""
    if view.starting or view.node != target:
        plan_allocate(ctx, view.name, view.intent, "move", node=target)
    plan_move(ctx, view, target)


def chosen_node(ctx):
    return ctx.allocation.node if ctx.allocation is not None else None


def keep_allocation(ctx, vm):
    """Just before a start: the definition the allocate hooks' NICs make of the stored one,
    kept in RBD for our resource agent, which boots it wherever the VM starts until a stop
    releases it, as long as the stored one is unchanged. Without NIC changes, any allocation
    left (by a node that died before its stop) is dropped: this start boots the stored one."""
    if ctx.allocation is None or not ctx.allocation.nics:
        ctx.images.drop_allocation(vm)
        return
    stored = ctx.images.stored_xml(vm)
    allocated = ctx.allocation.boot_root(dx.parse_domain(stored, "stored definition of VM %s"
                                                         % vm))
    ctx.images.keep_allocation(vm, dx.to_string(allocated), xml_digest(stored))


def start_placed(ctx, vm, start):
    """``start()`` (which starts the enabled VM and waits) on the node the allocate hooks
    chose, if they chose one: a temporary move constraint holds it there while it starts."""
    keep_allocation(ctx, vm)
    node = chosen_node(ctx)
    if node is None:
        return start()
    ctx.cluster.move(vm, node)
    try:
        start()
    finally:
        ctx.cluster.clear(vm)
    # Pacemaker recomputes once the constraint is gone: the VM stays where it runs only if
    # nothing (a preferred host, no resource-stickiness) draws it elsewhere.
    prim = pcib.primitive(ctx.cluster.cib(), vm)
    ctx.cluster.waits.settle(pcib.primitive_timeouts(prim)["start"])
    where = ctx.resource.status_of(vm)[1]
    if where != node:
        raise VmError("VM %s started %s, not on %s where the allocate hooks placed it (its "
                      "constraints, a preferred host or a missing resource-stickiness draw it "
                      "there)." % (vm, "on %s" % where if where else "nowhere", node))
    return None


def add_resource(ctx, vm, metadata, role):
    """The VM added to Pacemaker with target ``role``; started where the allocate hooks
    chose when they chose (added stopped first, so it cannot start elsewhere)."""
    if role != "Started":
        return ctx.resource.add(vm, metadata, role)
    if chosen_node(ctx) is None:
        keep_allocation(ctx, vm)
        return ctx.resource.add(vm, metadata, role)
    ctx.resource.add(vm, metadata, "Stopped")
    return start_placed(ctx, vm, lambda: ctx.resource.power(vm, "Started"))
