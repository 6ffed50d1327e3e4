# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The Pacemaker layer: the CIB and the cluster status as XML, changes written with cibadmin
from XML built with lxml (pacemaker_cib), actions through crm_resource, bounded waits
(pacemaker_waits). No crmsh but SEAPATH's allow-listed lines, no text scraping, no shell.

The VM resources are primitives ``ocf:gridvirt:VirtualDomain`` whose id is the VM name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import time

from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.deps import lxml_etree
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.runner import run_checked
from ansible_collections.gridvirt.kvm.plugins.module_utils.pacemaker_cib import (
    failure_detail, failures_by_resource, is_vm_agent, node_attribute, nodes_of,
    resource_status)
from ansible_collections.gridvirt.kvm.plugins.module_utils.pacemaker_waits import (
    POLL_SECONDS, Waits)

ATTRIBUTE_WAIT_SECONDS = 10
# Exit codes: coreutils' timeout when the command ran out of time; Pacemaker's
# CRM_EX_NOT_CONNECTED when its daemons do not run (or do not answer) on this node.
TIMED_OUT, NOT_CONNECTED = 124, 102
# The commands that only read; any other one changes the cluster (and what was read of it).
READS = (("cibadmin", "--query"),)
READ_TOOLS = ("crm_mon", "crm_node", "crmadmin")


def installed():
    """Pacemaker's command line tools are on this node (it can be a cluster node)."""
    return shutil.which("crm_mon") is not None


class Cluster(object):
    """The local Pacemaker cluster, through its command line tools (XML in, XML out)."""

    def __init__(self, run, timeout=None):
        self._run = run
        self.timeout = timeout
        self.waits = Waits(self)
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

    def fresh_status(self):
        """status() read now; the CIB read before it is dropped too (time has passed)."""
        self.forget()
        return self.status()

    def _status_now(self):
        root = self._monitor()
        nodes = nodes_of(root)
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

    def node_info(self):
        """The nodes as the local node sees them, and which can take VMs (from the status
        this run read, if it read it)."""
        status = self.status()
        return {"local_node": self.local_node(), "nodes": status["nodes"],
                "quorum": status["quorum"],
                "usable_nodes": sorted(name for name, n in status["nodes"].items()
                                       if n["usable"])}

    def overview(self):
        """node_info() and, from the same crm_mon reading, ``vms``: {VM: (status, node)} of
        the resources of our agent (ocf:gridvirt:*)."""
        root = self._monitor()
        nodes = nodes_of(root)
        dc = root.find("summary/current_dc")
        local = self.local_node()
        vms = dict((res.get("id"), resource_status(res)) for res in root.iter("resource")
                   if is_vm_agent(res.get("resource_agent")))
        return {"local_node": local, "nodes": nodes, "vms": vms,
                "quorum": dc is not None and dc.get("with_quorum") == "true",
                "usable_nodes": sorted(name for name, n in nodes.items() if n["usable"])}

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
        element = lxml_etree().Element(tag, id=element_id)
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

    def controller_busy(self, dc):
        """The DC is working through a transition (its controller is not S_IDLE)."""
        if not dc:
            return False
        out = self._cmd(["crmadmin", "--status=%s" % dc, "--output-as=xml"],
                        what="the controller's state")
        crmd = xmlutil.parse(out, "controller state").find("crmd")
        return crmd is not None and crmd.get("state") != "S_IDLE"
