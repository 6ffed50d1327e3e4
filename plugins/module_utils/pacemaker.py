# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The Pacemaker layer: the CIB and the cluster status as XML, changes written with cibadmin
from XML built with lxml, actions through crm_resource. No crmsh, no text scraping, no shell.

The VM resources are primitives ``ocf:gridvirt:VirtualDomain`` whose id is the VM name.
Constraint ids are deterministic, derived from the VM name and what they express, so a rerun
finds the constraint it made before.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os
import re
import time

from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.deps import lxml_etree
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.runner import run_checked

RA_CLASS, RA_PROVIDER, RA_TYPE = "ocf", "gridvirt", "VirtualDomain"
POLL_SECONDS = 0.5
# A wait may last this many times its timeout while the controller is still busy.
BUSY_FACTOR = 3
# Operation timeouts (seconds) and the monitor interval, as SEAPATH sets them.
DEFAULT_OPS = {"start": 120, "stop": 30, "monitor": 60, "migrate_from": 60, "migrate_to": 120}
MONITOR_INTERVAL = 10
# A wait for a placement ends early when, this long after the change, the controller is idle
# and the resource is settled elsewhere: Pacemaker decided not to place it there.
SETTLE_SECONDS = 10
ATTRIBUTE_WAIT_SECONDS = 10
# Exit codes: coreutils' timeout when the command ran out of time; Pacemaker's
# CRM_EX_NOT_CONNECTED when its daemons do not run (or do not answer) on this node.
TIMED_OUT, NOT_CONNECTED = 124, 102
# <resource>_<action>_<interval ms>, the resource id may contain "_".
OP_KEY_RE = re.compile(r"^(.+)_(start|stop|monitor|migrate_to|migrate_from|reload|notify|"
                       r"promote|demote|reload-agent)_\d+$")
INFINITY = "INFINITY"
# The commands that only read; any other one changes the cluster (and what was read of it).
READS = (("cibadmin", "--query"),)
READ_TOOLS = ("crm_mon", "crm_node", "crmadmin")
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


class Cluster(object):
    """The local Pacemaker cluster, through its command line tools (XML in, XML out)."""

    def __init__(self, run, timeout=None):
        self._run = run
        self.timeout = timeout
        # The CIB and the status as last read, until this run changes something or waits:
        # one task then asks Pacemaker once for what it reads several times.
        self._read = {}

    def _cmd(self, args, data=None, what=None):
        what = what or " ".join(args[:2])
        if tuple(args[:2]) not in READS and args[0] not in READ_TOOLS:
            self.forget()
        if self.timeout:
            # A daemon that hangs must not hold the task: each command is bounded.
            args = ["timeout", "--kill-after=5", str(self.timeout)] + list(args)

        def explain(rc, detail):
            if rc == TIMED_OUT and self.timeout:
                return ("Pacemaker did not answer %s within %d seconds on node %s: check that "
                        "Corosync and Pacemaker run there and have quorum, then run the task "
                        "again." % (what, self.timeout, os.uname()[1]))
            if rc == NOT_CONNECTED:
                return ("Pacemaker does not answer on node %s (%s, for %s): start Corosync "
                        "and Pacemaker there, or run the task on another cluster node."
                        % (os.uname()[1], detail, what))
            return None
        return run_checked(self._run, args, "Pacemaker refused %s" % what, data=data,
                           detail=failure_detail, explain=explain)

    # ---- reading ----------------------------------------------------------------------

    def forget(self):
        """What was read is stale: the next cib() and status() ask Pacemaker again."""
        self._read.clear()

    def cib(self):
        """The CIB (as read since this run last changed or waited for something)."""
        if "cib" not in self._read:
            self._read["cib"] = xmlutil.parse(
                self._cmd(["cibadmin", "--query"], what="the CIB query"), "Pacemaker CIB")
        return self._read["cib"]

    def status(self):
        """crm_mon's XML view: {'nodes': {name: {...}}, 'resources': {id: (status, node)}}
        (as read since this run last changed or waited for something)."""
        if "status" not in self._read:
            self._read["status"] = self._status_now()
        return self._read["status"]

    def _fresh_status(self):
        """status() read now; the CIB read before it is dropped too (time has passed)."""
        self.forget()
        return self.status()

    def _status_now(self):
        root = self._monitor()
        nodes = self._nodes(root)
        failures = failures_by_resource(root)
        resources, roles, agents = {}, {}, {}
        for res in root.iter("resource"):
            status, node = resource_status(res)
            roles[res.get("id")] = status
            agents[res.get("id")] = res.get("resource_agent")
            # A start that failed everywhere leaves the resource Stopped, not failed: the
            # recorded failures tell it apart from a resource asked to stop.
            if status == "Stopped" and failures.get(res.get("id")):
                status = "Failed"
            resources[res.get("id")] = (status, node)
        dc = root.find("summary/current_dc")
        return {"nodes": nodes, "resources": resources, "failures": failures, "roles": roles,
                "agents": agents, "dc": dc.get("name") if dc is not None else None,
                "quorum": dc is not None and dc.get("with_quorum") == "true"}

    def _monitor(self):
        """crm_mon's XML view of the cluster, stopped resources included."""
        out = self._cmd(["crm_mon", "--output-as=xml", "--one-shot", "--inactive"],
                        what="the status query")
        return xmlutil.parse(out, "Pacemaker status")

    @staticmethod
    def _nodes(root):
        """{name: node_state} of every node in a crm_mon view."""
        options = root.find("summary/cluster_options")
        # maintenance-mode puts every node in maintenance at once.
        everywhere = options is not None and options.get("maintenance-mode") == "true"
        return dict((node.get("name"), node_state(node, everywhere))
                    for node in root.findall("nodes/node"))

    def node_info(self):
        """The nodes as the local node sees them, and which can take VMs."""
        info = self.overview()
        del info["vms"]
        return info

    def overview(self):
        """node_info() and, from the same crm_mon reading, ``vms``: {VM: (status, node)} of
        the resources of our agent (ocf:gridvirt:*)."""
        root = self._monitor()
        nodes = self._nodes(root)
        dc = root.find("summary/current_dc")
        local = self.local_node()
        vms = dict((res.get("id"), resource_status(res)) for res in root.iter("resource")
                   if is_vm_agent(res.get("resource_agent")))
        return {"local_node": local, "nodes": nodes, "vms": vms,
                "quorum": dc is not None and dc.get("with_quorum") == "true",
                "usable_nodes": sorted(name for name, n in nodes.items() if n["usable"])}

    @staticmethod
    def primitive(cib, vm):
        return cib.find("configuration/resources/primitive[@id='%s']" % vm)

    @staticmethod
    def primitive_ids(cib):
        return set(p.get("id") for p in cib.findall("configuration/resources/primitive"))

    @staticmethod
    def constraints_of(cib, vm):
        """Every constraint that names the VM."""
        found = []
        for el in cib.find("configuration/constraints"):
            if vm in named_resources(el):
                found.append(el)
        return found

    @staticmethod
    def element_ids(cib):
        """{id: element} of every element of the CIB that has an id."""
        return dict((el.get("id"), el) for el in cib.iter() if el.get("id"))

    # ---- writing ----------------------------------------------------------------------

    def create(self, element, scope):
        self._cmd(["cibadmin", "--create", "--scope", scope, "--xml-pipe"],
                  data=xmlutil.to_string(element, pretty=False),
                  what="creating %s %s" % (element.tag, element.get("id")))

    def replace(self, element, scope):
        """Replace the element with the same id (its whole subtree)."""
        self._cmd(["cibadmin", "--replace", "--scope", scope, "--xml-pipe"],
                  data=xmlutil.to_string(element, pretty=False),
                  what="replacing %s %s" % (element.tag, element.get("id")))

    def delete(self, tag, element_id):
        element = _e().Element(tag, id=element_id)
        self._cmd(["cibadmin", "--delete", "--xml-pipe"],
                  data=xmlutil.to_string(element, pretty=False),
                  what="deleting %s %s" % (tag, element_id))

    def set_meta(self, vm, name, value):
        self._cmd(["crm_resource", "--resource", vm, "--meta", "--set-parameter", name,
                   "--parameter-value", str(value)], what="setting %s of %s" % (name, vm))

    def configure(self, words):
        """One crmsh ``configure`` line (SEAPATH's crm_config_cmd: allow-listed by the
        caller), as an argument list. crmsh is used for nothing else."""
        self._cmd(["crm", "configure"] + list(words), what="crm configure %s" % " ".join(words))

    def local_node(self):
        """The name of the node the task runs on, as Pacemaker knows it."""
        return self._cmd(["crm_node", "--name"], what="the local node's name").strip()

    def cleanup(self, vm):
        self._cmd(["crm_resource", "--cleanup", "--resource", vm], what="cleaning up %s" % vm)

    def move(self, vm, node):
        """Ask Pacemaker to move the resource to ``node``: a temporary cli-prefer-<vm>
        location constraint (live migration when allow-migrate is true)."""
        self._cmd(["crm_resource", "--resource", vm, "--move", "--node", node],
                  what="moving %s to %s" % (vm, node))

    def clear(self, vm):
        """Remove the resource's temporary cli-* constraints (only those)."""
        self._cmd(["crm_resource", "--resource", vm, "--clear"],
                  what="removing the temporary move constraint of %s (crm_resource --clear "
                       "--resource %s removes it)" % (vm, vm))

    def set_standby(self, node):
        """The node's permanent standby attribute on: Pacemaker moves its resources away."""
        self._cmd(["crm_attribute", "--type", "nodes", "--node", node, "--name", "standby",
                   "--update", "on"], what="putting %s in standby" % node)

    def clear_standby(self, node, permanent=True, transient=False):
        """Remove the node's standby attribute(s): it takes resources again."""
        if permanent:
            self._cmd(["crm_attribute", "--type", "nodes", "--node", node, "--name",
                       "standby", "--delete"], what="taking %s out of standby" % node)
        if transient:
            self.delete_node_attribute(node, "standby")

    def set_node_attribute(self, node, name, value):
        """A transient (until reboot) node attribute, visible in the CIB before returning."""
        self._cmd(["crm_attribute", "--lifetime", "reboot", "--node", node, "--name", name,
                   "--update", value], what="setting %s on %s" % (name, node))
        deadline = time.monotonic() + ATTRIBUTE_WAIT_SECONDS
        while node_attribute(self.cib(), node, name) != value:
            self.forget()
            if time.monotonic() >= deadline:
                raise VmError("Pacemaker did not record %s on %s." % (name, node))
            time.sleep(POLL_SECONDS / 5)

    def delete_node_attribute(self, node, name):
        self._cmd(["crm_attribute", "--lifetime", "reboot", "--node", node, "--name", name,
                   "--delete"], what="deleting %s on %s" % (name, node))

    # ---- waiting ----------------------------------------------------------------------

    def wait_for(self, vm, wanted, timeout):
        """Poll the status until the VM's resource is in one of ``wanted`` states; -> (status,
        node). The timeout comes from the resource's operation timeouts. Failures recorded
        earlier (a monitor failure Pacemaker recovered from, say) do not end the wait: a
        stopped resource is Stopped whatever its history, and a start may still succeed
        on another node."""
        start = time.monotonic()
        while True:
            current = self._fresh_status()
            status, node = current["resources"].get(vm, ("Disabled", None))
            if "Stopped" in wanted and current["roles"].get(vm) == "Stopped":
                return "Stopped", None
            if status in wanted:
                return status, node
            if self._wait_over(start, timeout, current.get("dc")):
                return status, node
            time.sleep(POLL_SECONDS)

    def wait_on(self, vm, node, timeout):
        """Poll until the VM is Started on ``node``; -> (status, node it is on). Bounded like
        wait_for, and over early when, SETTLE_SECONDS after the change, the controller is
        idle and the VM is Started, Stopped or Failed elsewhere (nothing left to do for it)."""
        start = time.monotonic()
        while True:
            current = self._fresh_status()
            status, where = current["resources"].get(vm, ("Disabled", None))
            if status == "Started" and where == node:
                return status, where
            settled = status in ("Started", "Stopped", "Failed") and \
                time.monotonic() - start >= SETTLE_SECONDS
            if settled and not self.controller_busy(current.get("dc")):
                return status, where
            if self._wait_over(start, timeout, current.get("dc")):
                return status, where
            time.sleep(POLL_SECONDS)

    def settle(self, timeout):
        """Wait, at most ``timeout`` seconds, until the controller has no transition left to
        run; -> whether it got there."""
        time.sleep(POLL_SECONDS)  # the controller notices the last change
        dc = self._fresh_status().get("dc")
        deadline = time.monotonic() + timeout
        try:
            while self.controller_busy(dc):
                if time.monotonic() >= deadline:
                    return False
                time.sleep(POLL_SECONDS)
            return True
        finally:
            self.forget()

    def _wait_over(self, start, timeout, dc):
        """Past the timeout, and the cluster has nothing left to do for it. Under load the
        controller throttles its actions and queues ours behind others: while it is still
        running a transition, the wait goes on, up to BUSY_FACTOR times the timeout."""
        elapsed = time.monotonic() - start
        if elapsed < timeout:
            return False
        return elapsed >= timeout * BUSY_FACTOR or not self.controller_busy(dc)

    def controller_busy(self, dc):
        """The DC is working through a transition (its controller is not S_IDLE)."""
        if not dc:
            return False
        out = self._cmd(["crmadmin", "--status=%s" % dc, "--output-as=xml"],
                        what="the controller's state")
        crmd = xmlutil.parse(out, "controller state").find("crmd")
        return crmd is not None and crmd.get("state") != "S_IDLE"
