# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The Pacemaker layer's XML, without I/O: the VM primitive and its constraints built with
lxml (deterministic ids, derived from the VM name and what they express, so a rerun finds
the constraint it made before), and what the CIB and crm_mon's XML say (primitives,
constraints, node attributes, resource and node states, failures, durations)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.deps import lxml_etree
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

RA_CLASS, RA_PROVIDER, RA_TYPE = "ocf", "gridvirt", "VirtualDomain"
# Operation timeouts (seconds) and the monitor interval, as SEAPATH sets them.
DEFAULT_OPS = {"start": 120, "stop": 30, "monitor": 60, "migrate_from": 60, "migrate_to": 120}
MONITOR_INTERVAL = 10
# <resource>_<action>_<interval ms>, the resource id may contain "_".
OP_KEY_RE = re.compile(r"^(.+)_(start|stop|monitor|migrate_to|migrate_from|reload|notify|"
                       r"promote|demote|reload-agent)_\d+$")
INFINITY = "INFINITY"
# A duration: digits (ASCII, optional fraction) and one of Pacemaker's units (seconds when
# none). Exponents, "inf" and "nan" are not durations.
DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?) *(usec|us|msec|ms|sec|s|min|m|hr|h)?",
                         re.IGNORECASE)
DURATION_UNITS = {"us": 0.000001, "usec": 0.000001, "ms": 0.001, "msec": 0.001, "s": 1,
                  "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}
# The longest duration an option takes: a stop or a wait of more than a day is a typo, and
# the bound keeps every wait and every timeout Pacemaker is given finite.
MAX_DURATION_SECONDS = 24 * 3600


def _e():
    return lxml_etree()


def _nvpairs(parent, tag, owner_id, values):
    """<tag id=owner-tag><nvpair id=owner-tag-name name value/>…</tag> (sorted, stable ids)."""
    block = _e().SubElement(parent, tag, id="%s-%s" % (owner_id, tag))
    for name in sorted(values):
        _e().SubElement(block, "nvpair", id="%s-%s-%s" % (owner_id, tag, name), name=name,
                        value=str(values[name]))
    return block


def build_primitive(vm, params, meta, utilization=None, op_timeouts=None):
    """The VM's primitive. ``params`` are instance attributes of the resource agent, ``meta``
    meta attributes (is-managed, target-role, allow-migrate, priority…)."""
    timeouts = dict(DEFAULT_OPS)
    timeouts.update(op_timeouts or {})
    prim = _e().Element("primitive", id=vm, **{"class": RA_CLASS, "provider": RA_PROVIDER,
                                               "type": RA_TYPE})
    _nvpairs(prim, "instance_attributes", vm, params)
    _nvpairs(prim, "meta_attributes", vm, meta)
    if utilization:
        _nvpairs(prim, "utilization", vm, utilization)
    ops = _e().SubElement(prim, "operations")
    for name in ("start", "stop", "monitor", "migrate_from", "migrate_to"):
        interval = "%ds" % MONITOR_INTERVAL if name == "monitor" else "0s"
        _e().SubElement(ops, "op", id="%s-%s-interval-%s" % (vm, name, interval), name=name,
                        interval=interval, timeout="%ds" % int(timeouts[name]))
    return prim


def location_id(vm, node, kind):
    return "location-%s-%s-%s" % (vm, kind, node)


def build_location(vm, node, score, kind):
    """kind: 'prefer' (score), 'ban' (-INFINITY)."""
    return _e().Element("rsc_location", id=location_id(vm, node, kind), rsc=vm, node=node,
                        score=str(score))


def build_pin(vm, node):
    """The VM may run on ``node`` only: a rule bans it (-INFINITY) from every node whose
    name is not ``node``, so it never fails over and stays stopped while that node is down.
    (A score of INFINITY on the node would still let it run elsewhere.)"""
    cid = location_id(vm, node, "pin")
    location = _e().Element("rsc_location", id=cid, rsc=vm)
    rule = _e().SubElement(location, "rule", id="%s-rule" % cid, score="-" + INFINITY)
    _e().SubElement(rule, "expression", id="%s-rule-expr" % cid, attribute="#uname",
                    operation="ne", value=node)
    return location


def colocation_id(vm, other, strong):
    return "colocation-%s-%s-%s" % (vm, other, "strong" if strong else "weak")


def build_colocation(vm, other, score):
    strong = score in (INFINITY, "+" + INFINITY, "-" + INFINITY)
    return _e().Element("rsc_colocation", id=colocation_id(vm, other, strong), rsc=vm,
                        **{"with-rsc": other, "score": str(score)})


def primitive_timeouts(prim):
    """{op name: seconds} of a primitive element (for bounded waits)."""
    result = dict(DEFAULT_OPS)
    for op in prim.findall("operations/op"):
        result[op.get("name")] = duration_seconds(op.get("timeout", "20s"))
    return result


def duration_seconds(value):
    """Pacemaker duration text ('30', '30s', '500ms', '2min', '1h') -> seconds; ValueError
    when it is none of these or not finite ('1e400', 'inf', 'nan' are no durations)."""
    match = DURATION_RE.fullmatch(value.strip(" "))  # spaces only: "30s\n" is no duration
    if not match:
        raise ValueError("not a duration: %r" % value)
    seconds = float(match.group(1)) * DURATION_UNITS[(match.group(2) or "s").lower()]
    if not math.isfinite(seconds):
        raise ValueError("not a finite duration: %r" % value)
    return seconds


def resource_status(resource):
    """crm_mon <resource> -> (status, node), in the status names both modules report."""
    nodes = [n.get("name") for n in resource.findall("node")]
    node = nodes[0] if nodes else None
    role = resource.get("role", "Stopped")
    if resource.get("failed") == "true" or role == "Failed":
        return "Failed", node
    if resource.get("pending") in ("Starting", "Migrating"):
        return "Starting", node
    if role in ("Starting", "Stopping", "Started", "Stopped"):
        return role, node
    if role in ("Migrating",):
        return "Starting", node
    return ("Started" if resource.get("active") == "true" else "Stopped"), node


def meta_value(prim, name):
    """Value of a meta attribute of a primitive element, or None."""
    nv = prim.find("meta_attributes/nvpair[@name='%s']" % name)
    return nv.get("value") if nv is not None else None


def is_vm_agent(agent):
    """Is this crm_mon resource_agent ours (ocf:gridvirt:*), i.e. a VM?"""
    return (agent or "").startswith("%s:%s:" % (RA_CLASS, RA_PROVIDER))


def node_attribute(cib, node, name):
    """Value of a transient attribute of a node in the CIB status section, or None."""
    nv = cib.find("status/node_state[@uname='%s']/transient_attributes//nvpair[@name='%s']"
                  % (node, name))
    return nv.get("value") if nv is not None else None


def is_true(value):
    """Pacemaker's booleans ('on', 'yes', 'y', 'true', '1')."""
    return (value or "").strip().lower() in ("on", "yes", "y", "true", "1")


def standby_settings(cib, node):
    """-> (permanent, transient): the node's standby attribute in the configuration (what
    crm_attribute --type nodes sets) and in its status (until reboot)."""
    nv = cib.find("configuration/nodes/node[@uname='%s']/instance_attributes/"
                  "nvpair[@name='standby']" % node)
    return (is_true(nv.get("value")) if nv is not None else False,
            is_true(node_attribute(cib, node, "standby")))


def node_state(node, cluster_maintenance=False):
    """crm_mon <node> -> its state; usable = it can take VMs now."""
    state = dict((flag, node.get(flag) == "true") for flag in ("online", "standby", "maintenance"))
    state["maintenance"] = state["maintenance"] or cluster_maintenance
    # standby_onfail: put in standby by a failure; unclean/pending/shutdown: on its way out.
    state["standby"] = state["standby"] or node.get("standby_onfail") == "true"
    leaving = any(node.get(flag) == "true" for flag in ("unclean", "pending", "shutdown"))
    state["usable"] = (state["online"] and not state["standby"] and not state["maintenance"]
                       and not leaving)
    state["type"] = node.get("type")
    state["resources_running"] = int(node.get("resources_running", "0"))
    return state


def failures_by_resource(status_root):
    """{resource id: [exit reasons of its recorded failed operations]}."""
    result = {}
    for failure in status_root.findall("failures/failure"):
        match = OP_KEY_RE.match(failure.get("op_key", ""))
        rsc = match.group(1) if match else failure.get("op_key", "")
        reason = failure.get("exitreason") or failure.get("exitstatus") or "failed"
        text = "%s on %s: %s" % (failure.get("task"), failure.get("node"), reason)
        result.setdefault(rsc, []).append(text)
    return result


def named_resources(constraint):
    """The resources a constraint names: pairwise (rsc, with-rsc, first, then) or in its
    resource sets (crmsh makes one of ``colocation c inf: a ( b c )``)."""
    named = set(constraint.get(a) for a in ("rsc", "with-rsc", "first", "then"))
    named.update(ref.get("id") for ref in constraint.iter("resource_ref"))
    return named - set([None])


def failure_detail(out, err):
    """What a failed Pacemaker command said, as text: the errors of its XML result
    (--output-as=xml) rather than the XML itself."""
    text = (out or "").strip()
    if text.startswith("<pacemaker-result"):
        try:
            status = xmlutil.parse(text, "Pacemaker's reply").find("status")
        except VmError:
            status = None
        if status is not None:
            errors = [e.text.strip() for e in status.iter("error") if e.text and e.text.strip()]
            return "; ".join(errors) or status.get("message") or ""
    return (err or "").strip() or text


# ---- reading the CIB and crm_mon ------------------------------------------------------


def nodes_of(root):
    """{name: node_state} of every node in a crm_mon view."""
    options = root.find("summary/cluster_options")
    # maintenance-mode puts every node in maintenance at once.
    everywhere = options is not None and options.get("maintenance-mode") == "true"
    return dict((node.get("name"), node_state(node, everywhere))
                for node in root.findall("nodes/node"))


def primitive(cib, vm):
    return cib.find("configuration/resources/primitive[@id='%s']" % vm)


def primitive_ids(cib):
    return set(p.get("id") for p in cib.findall("configuration/resources/primitive"))


def constraints_of(cib, vm):
    """Every constraint that names the VM."""
    found = []
    for el in cib.find("configuration/constraints"):
        if vm in named_resources(el):
            found.append(el)
    return found


def element_ids(cib):
    """{id: element} of every element of the CIB that has an id."""
    return dict((el.get("id"), el) for el in cib.iter() if el.get("id"))
