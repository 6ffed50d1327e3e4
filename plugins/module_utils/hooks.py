# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Site hooks (the Rocks KVM roll's allocate / preboot / disallocate): the executables of
``<hooks_dir>/<stage>.d/`` run in name order, each given one JSON document on stdin,
bounded by a timeout, logged to a file on the node. This layer runs them and reads what
they print; it decides nothing about the VM itself.

Only the standard library is used: the ``hypervisor`` role also installs this file in
``/usr/libexec/gridvirt/``, beside ``gridvirt_hooks.py``, the command our resource agent
runs.
Each hook runs through the caller's ``run`` (AnsibleModule.run_command in a module) under
coreutils' ``timeout``, which kills the hook's whole process group when its time is up, in
an environment of its own (``env -i``).

What a local user could use to run code as root is refused: a hook that is not a regular
executable file owned by root and writable only by root, or a stage directory that is not
owned by root or is writable by others. Names follow run-parts' rule (letters, digits,
``_`` and ``-``), so editor and package-manager leftovers (``x.dpkg-old``, ``x~``) are
skipped, not run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import stat
import time

HOOKS_DIR = "/etc/gridvirt/hooks"
LOG_FILE = "/var/log/gridvirt/hooks.log"
# Seconds one hook may run before it is killed (with its children) and counted as failed.
DEFAULT_TIMEOUT = 60
STAGES = ("allocate", "preboot", "disallocate")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# What one hook may print at most (a domain XML is a few KiB): more is a failure.
MAX_OUTPUT = 1024 * 1024
HOOK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Seconds between timeout's TERM and its KILL: a hook may clean up, briefly.
KILL_AFTER = 5
# What timeout(1) exits with when it ended the hook (TERM, or KILL after KILL_AFTER).
TIMEOUT_STATUSES = (124, 137)


class HookError(Exception):
    """A hook refused, failed, timed out or printed something unusable: the message is the
    sentence the user reads."""


class HookRun(object):
    """What one hook did: its name, exit status (None: killed at the timeout), output."""

    def __init__(self, name, rc, out, err, seconds):
        self.name = name
        self.rc = rc
        self.out = out
        self.err = err
        self.seconds = seconds

    @property
    def failed(self):
        return self.rc != 0

    def reason(self, timeout):
        """Why it failed, as a clause: its stderr (what Rocks hooks say), else the status."""
        if self.rc is None:
            return "did not finish within %d seconds" % timeout
        said = self.err.strip() or self.out.strip()
        if said:
            return said.splitlines()[-1].strip().rstrip(".")
        return "exited with status %d" % self.rc


class Hooks(object):
    """The hooks of one node. ``run(argv, data=text)`` -> (rc, stdout, stderr): the caller's
    command runner. ``log_file`` None: nothing is logged."""

    def __init__(self, run, hooks_dir=HOOKS_DIR, timeout=DEFAULT_TIMEOUT, log_file=LOG_FILE):
        self.run = run
        self.hooks_dir = hooks_dir
        self.timeout = timeout
        self.log_file = log_file

    # ---- finding them -----------------------------------------------------------------

    def stage_dir(self, stage):
        return os.path.join(self.hooks_dir, "%s.d" % stage)

    def executables(self, stage):
        """The stage's hooks, in name order -> [path]. Raises HookError for one that root
        alone must control and does not."""
        directory = self.stage_dir(stage)
        try:
            info = os.stat(directory)
        except OSError:
            return []
        refuse_unsafe(directory, info, "directory")
        paths = []
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if not NAME_RE.match(name):
                continue
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise HookError("Refused %s hook %s: it is not a regular file." % (stage, path))
            refuse_unsafe(path, info, "%s hook" % stage)
            if not info.st_mode & stat.S_IXUSR:
                raise HookError("Refused %s hook %s: it is not executable." % (stage, path))
            paths.append(path)
        return paths

    # ---- running them -----------------------------------------------------------------

    def run_one(self, path, document):
        """Run one hook with ``document`` (a dict) on stdin -> HookRun."""
        started = time.monotonic()
        argv = ["env", "-i"] + hook_environment(document) + [
            "timeout", "--kill-after=%d" % KILL_AFTER, "%d" % self.timeout, path]
        rc, out, err = self.run(argv, data=json.dumps(document))
        seconds = time.monotonic() - started
        if rc in TIMEOUT_STATUSES and seconds >= self.timeout:
            rc = None
        run = HookRun(os.path.basename(path), rc, out or "", err or "", seconds)
        if len(run.out) > MAX_OUTPUT:
            run.rc, run.err = 1, "printed more than %d bytes" % MAX_OUTPUT
        self.log(document, run)
        return run

    def log(self, document, run):
        if self.log_file is None:
            return
        status = "timeout" if run.rc is None else "exit %d" % run.rc
        lines = ["%s %s vm=%s kind=%s node=%s action=%s hook=%s %s %.2fs" % (
            time.strftime("%Y-%m-%dT%H:%M:%S%z"), document["stage"], document["vm"],
            document["kind"], document["node"], document["action"], run.name, status,
            run.seconds)]
        for label, text in (("stdout", run.out), ("stderr", run.err)):
            lines += ["  %s: %s" % (label, line) for line in text.splitlines()]
        write_log(self.log_file, "\n".join(lines) + "\n")

    def run_stage(self, stage, document, on_output):
        """Run the stage's hooks in order. Each sees ``document`` as the previous ones left
        it; ``on_output(document, hook_name, stdout)`` takes a successful hook's output and
        returns the document for the next. A refusal or failure raises HookError."""
        document = dict(document, stage=stage)
        for path in self.executables(stage):
            run = self.run_one(path, document)
            if run.failed:
                raise HookError("The %s hook %s refused %s of VM %s: %s." % (
                    stage, run.name, document["action"], document["vm"],
                    run.reason(self.timeout)))
            document = on_output(document, run.name, run.out)
        return document

    # ---- the three stages ---------------------------------------------------------------

    def allocate(self, document):
        """-> the changes the hooks asked for: {'node': name} and/or {'nics': [...]} (each
        NIC change a dict with 'index' and some of network, bridge, mac, vlan), checked in
        shape here and against the VM by the caller. A failing hook is a veto (HookError)."""
        def take(doc, name, out):
            changes = allocate_changes(name, out)
            doc = dict(doc)
            if "node" in changes:
                doc["node"] = changes["node"]
            if "nics" in changes:
                doc["nic_changes"] = doc.get("nic_changes", []) + changes["nics"]
            return doc
        final = self.run_stage("allocate", document, take)
        changes = {}
        if final["node"] != document["node"]:
            changes["node"] = final["node"]
        if final.get("nic_changes"):
            changes["nics"] = final["nic_changes"]
        return changes

    def preboot(self, document):
        """-> the domain XML of this boot when a hook printed one (the last one printed
        wins, each hook seeing the previous one's as ``xml``), else None."""
        def take(doc, name, out):
            if not out.strip():
                return doc
            if not out.lstrip().startswith("<"):
                raise HookError("The preboot hook %s printed something that is not a domain "
                                "XML document." % name)
            return dict(doc, xml=out, replaced=True)
        final = self.run_stage("preboot", document, take)
        return final["xml"] if final.get("replaced") else None

    def disallocate(self, document):
        """Run every disallocate hook (one failing does not stop the next) -> the warning
        sentences: a failure never blocks the stop or removal that came first."""
        document = dict(document, stage="disallocate")
        try:
            paths = self.executables("disallocate")
        except HookError as exc:
            return [str(exc)]
        warnings = []
        for path in paths:
            run = self.run_one(path, document)
            if run.failed:
                warnings.append("The disallocate hook %s failed after %s of VM %s: %s." % (
                    run.name, document["action"], document["vm"], run.reason(self.timeout)))
        return warnings


def document_for(vm, kind, node, action, xml, metadata=None, addresses=None):
    """The JSON document every hook reads on stdin."""
    return {"vm": vm, "kind": kind, "node": node, "action": action, "xml": xml,
            "metadata": dict(metadata or {}), "addresses": list(addresses or [])}


NIC_KEYS = ("index", "network", "bridge", "mac", "vlan")


def allocate_changes(hook, out):
    """An allocate hook's output -> {'node'?, 'nics'?}; empty output: no change."""
    if not out.strip():
        return {}
    try:
        changes = json.loads(out)
    except ValueError:
        raise HookError("The allocate hook %s printed something that is not a JSON document."
                        % hook)
    if not isinstance(changes, dict) or set(changes) - {"node", "nics"}:
        raise HookError("The allocate hook %s printed a document whose keys are not node and "
                        "nics." % hook)
    if "node" in changes and not isinstance(changes["node"], str):
        raise HookError("The allocate hook %s printed a node that is not a name." % hook)
    nics = changes.get("nics", [])
    for nic in nics if isinstance(nics, list) else [None]:
        if not isinstance(nic, dict) or set(nic) - set(NIC_KEYS) or not isinstance(
                nic.get("index"), int) or isinstance(nic.get("index"), bool):
            raise HookError("The allocate hook %s printed a NIC change that is not a mapping "
                            "of index (a number) and some of network, bridge, mac, vlan." % hook)
    return changes


def refuse_unsafe(path, info, what):
    """A file or directory that someone other than root owns or may write."""
    if info.st_uid != 0:
        raise HookError("Refused %s %s: it is not owned by root." % (what, path))
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise HookError("Refused %s %s: users other than root may write it." % (what, path))


def hook_environment(document):
    """A clean environment (no module or agent internals leak into a site script), as
    env(1) arguments."""
    return ["PATH=%s" % HOOK_PATH, "LANG=C.UTF-8", "GRIDVIRT_STAGE=%s" % document["stage"],
            "GRIDVIRT_VM=%s" % document["vm"], "GRIDVIRT_ACTION=%s" % document["action"]]


def write_log(path, text):
    """Append to the node's hook log, private to root (hooks may print addresses, keys)."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o750)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as log:
        log.write(text)


# ---- what the resource agent's command reads from RBD ------------------------------------

# Keys of a cluster VM's image metadata that are not the user's (besides the _internal ones).
NOT_USER_KEYS = ("xml", "vm_name")
# What our resource agent keeps there: the node a guest started on, until a stop where it ran.
STARTED_ON = "_started_on"
# The definition cluster_vm made with the allocate hooks' NIC changes, and the sha256 of the
# stored definition it was made from (what the agent compares before booting it).
ALLOCATED_XML, ALLOCATED_FROM = "_allocated_xml", "_allocated_from"


def user_metadata(image_meta):
    """The VM's own metadata among its image's keys."""
    return {key: value for key, value in image_meta.items()
            if key not in NOT_USER_KEYS and not key.startswith("_")}


def stored_addresses(image_meta):
    try:
        addresses = json.loads(image_meta.get("_addresses", "[]"))
    except ValueError:
        return []
    return addresses if isinstance(addresses, list) else []


def start_action(image_meta, node):
    """The action of a start our resource agent makes on ``node``: 'failover' when the VM's
    last run, on another node, never stopped there; else 'start'."""
    previous = image_meta.get(STARTED_ON)
    return "failover" if previous and previous != node else "start"
