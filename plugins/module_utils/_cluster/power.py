# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The plans of a cluster VM's membership in Pacemaker and of its power: enable (the
resource added from the stored intent), disable (the VM lives on in RBD), start and stop
through the resource's target-role, restart on a new definition. Each function reads the
view, adds its steps and leaves the view as they will leave the VM."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.allocation import (
    add_resource, plan_allocate, start_placed)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

# A transition already under way: the plan waits for it, which is no change of its own.
UNDER_WAY = (("Starting", "Started"), ("Stopping", "Stopped"))


def plan_enable(ctx, view, start):
    """Add the VM back to Pacemaker with its stored intent; start it when ``start``."""
    if view.enabled:
        return
    vm, metadata = view.name, view.intent
    ctx.check_resource_inputs(metadata, True)
    role = "Started" if start else "Stopped"
    if start:
        plan_allocate(ctx, vm, metadata, "start")

    def enable():
        try:
            add_resource(ctx, vm, metadata, role)
        except BaseException:
            if pcib.primitive(ctx.cluster.cib(), vm) is not None:
                ctx.resource.delete(vm)
            raise
    ctx.plan.change("enabled VM %s" % vm, apply=enable)
    view.primitive = ctx.resource.desired_primitive(vm, metadata, role)
    view.status, view.node, view.starting = role, None, start
    view.restart_pending = False


def plan_disable(ctx, view):
    """Stop the VM and remove it from Pacemaker; it lives on in RBD with its intent."""
    if not view.enabled:
        return
    vm, metadata = view.name, view.intent

    def disable():
        ctx.resource.power(vm, "Stopped")
        ctx.resource.hold_foreign_constraints(vm, metadata)
        ctx.resource.delete(vm)
    ctx.plan.change("disabled VM %s" % vm, apply=disable, partial=True)
    view.primitive, view.status, view.node = None, "Disabled", None
    view.restart_pending = view.starting = False


def plan_power(ctx, view, wanted):
    """wanted: 'Started' or 'Stopped', through the resource's target-role. A forced stop
    powers the guest off at once (the agent's force_stop for that one stop)."""
    vm, state = view.name, view.status
    if state == "Undefined":
        raise VmError("VM %s does not exist." % vm)
    if state == "Disabled":
        raise VmError("VM %s is disabled (not a cluster resource): enable it first." % vm)
    if state == wanted:
        return
    op = "start" if wanted == "Started" else "stop"
    if (state, wanted) in UNDER_WAY:
        ctx.plan.act(lambda: ctx.resource.wait(vm, (wanted,), op))
    elif wanted == "Stopped" and ctx.req.force:
        ctx.plan.change("stopped VM %s" % vm, apply=lambda: ctx.resource.force_stop(vm),
                        partial=True)
    elif op == "start":
        plan_allocate(ctx, vm, view.intent, "start")
        ctx.plan.change("started VM %s" % vm, partial=True, apply=lambda: start_placed(
            ctx, vm, lambda: ctx.resource.power(vm, "Started")))
    else:
        ctx.plan.change("stopped VM %s" % vm, apply=lambda: ctx.resource.power(vm, wanted),
                        partial=True)
    view.status = wanted
    view.starting = wanted == "Started" and state != "Started"
    if wanted == "Stopped":
        view.node, view.restart_pending = None, False


def plan_restart(ctx, view):
    """apply: restart -- a running VM whose stored definition changed is restarted."""
    if not (ctx.req.restart and view.exists and view.restart_pending):
        return
    vm = view.name
    plan_allocate(ctx, vm, view.intent, "restart")

    def restart():
        ctx.resource.power(vm, "Stopped")
        start_placed(ctx, vm, lambda: ctx.resource.power(vm, "Started"))
    ctx.plan.change("restarted VM %s on its new definition" % vm, apply=restart,
                    partial=True)
    view.restart_pending = False
