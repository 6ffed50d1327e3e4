# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Site hooks (the Rocks KVM roll's allocate / preboot / disallocate): the executables of
``<hooks_dir>/<stage>.d/`` run in name order, each given one JSON document on stdin,
bounded by a timeout, logged to a file on the node. This layer runs them and reads what
they print; it decides nothing about the VM itself.

Only the standard library is used: the ``hypervisor`` role also installs this file as
``/usr/libexec/gridvirt/hooks``, the command our resource agent runs (see ``main``).

What a local user could use to run code as root is refused: a hook that is not a regular
executable file owned by root and writable only by root, or a stage directory that is not
owned by root or is writable by others. Names follow run-parts' rule (letters, digits,
``_`` and ``-``), so editor and package-manager leftovers (``x.dpkg-old``, ``x~``) are
skipped, not run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import os
import re
import signal
import stat
import subprocess
import sys
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
    """The hooks of one node. ``log_file`` None: nothing is logged (tests of pure logic)."""

    def __init__(self, hooks_dir=HOOKS_DIR, timeout=DEFAULT_TIMEOUT, log_file=LOG_FILE):
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
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd="/", env=hook_environment(document), start_new_session=True)
        try:
            out, err = proc.communicate(json.dumps(document).encode(), timeout=self.timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            rc = None
        run = HookRun(os.path.basename(path), rc, decode(out), decode(err),
                      time.monotonic() - started)
        if len(out) > MAX_OUTPUT:
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
    """A clean environment (no module or agent internals leak into a site script)."""
    return {"PATH": HOOK_PATH, "LANG": "C.UTF-8", "GRIDVIRT_STAGE": document["stage"],
            "GRIDVIRT_VM": document["vm"], "GRIDVIRT_ACTION": document["action"]}


def kill_group(proc):
    """A hook past its timeout is killed with everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()


def decode(data):
    return data.decode("utf-8", "replace")


def write_log(path, text):
    """Append to the node's hook log, private to root (hooks may print addresses, keys)."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o750)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as log:
        log.write(text)


# ---- the command our resource agent runs -------------------------------------------------

def user_metadata(image_meta):
    """The VM's own metadata among its image's keys (not xml, not the internal _keys)."""
    return {key: value for key, value in image_meta.items()
            if key != "xml" and not key.startswith("_")}


def stored_addresses(image_meta):
    try:
        addresses = json.loads(image_meta.get("_addresses", "[]"))
    except ValueError:
        return []
    return addresses if isinstance(addresses, list) else []


def main(argv=None):
    """``hooks preboot|disallocate --vm NAME --node NODE --action ACTION --xml FILE
    [--image-meta FILE] [--timeout SECONDS]``: the resource agent's call. preboot writes
    the XML a hook returned over FILE (the agent then validates and boots it) and exits 3 if
    there was none; a refusal exits 1 with the sentence on stderr. disallocate exits 0 and
    prints its warnings on stderr."""
    parser = argparse.ArgumentParser(prog="hooks")
    parser.add_argument("stage", choices=("preboot", "disallocate"))
    for option in ("--vm", "--node", "--action", "--xml"):
        parser.add_argument(option, required=True)
    parser.add_argument("--kind", default="cluster")
    parser.add_argument("--image-meta")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT)
    parser.add_argument("--hooks-dir", default=HOOKS_DIR)
    args = parser.parse_args(argv)
    image_meta = {}
    if args.image_meta:
        with open(args.image_meta) as source:
            image_meta = json.load(source)
    with open(args.xml) as source:
        xml = source.read()
    document = document_for(args.vm, args.kind, args.node, args.action, xml,
                            user_metadata(image_meta), stored_addresses(image_meta))
    hooks = Hooks(args.hooks_dir, args.timeout)
    if args.stage == "disallocate":
        for warning in hooks.disallocate(document):
            sys.stderr.write(warning + "\n")
        return 0
    try:
        boot_xml = hooks.preboot(document)
    except HookError as exc:
        sys.stderr.write(str(exc) + "\n")
        return 1
    if boot_xml is None:
        return 3
    refusal = boot_xml_refusal(xml, boot_xml, args.vm)
    if refusal:
        sys.stderr.write(refusal + "\n")
        return 1
    with open(args.xml, "w") as target:
        target.write(boot_xml)
    return 0


def boot_xml_refusal(stored_xml, boot_xml, vm):
    """Why the XML a preboot hook printed cannot boot the VM (None: it can): it must be the
    same domain (name and UUID) and pass libvirt's schema."""
    from lxml import etree  # the agent's side only: Debian's python3-lxml on every node

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        stored = etree.fromstring(stored_xml.encode(), parser)
        boot = etree.fromstring(boot_xml.encode(), parser)
    except etree.XMLSyntaxError as exc:
        return "The preboot XML of VM %s is not well-formed XML: %s." % (vm, exc)
    for field in ("name", "uuid"):
        if boot.findtext(field) != stored.findtext(field):
            return "The preboot XML of VM %s names another domain (its %s differs)." % (
                vm, field)
    proc = subprocess.run(["virt-xml-validate", "-", "domain"], input=boot_xml.encode(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        said = decode(proc.stdout).strip().splitlines()
        return "The preboot XML of VM %s does not pass libvirt's schema: %s." % (
            vm, said[0] if said else "exit status %d" % proc.returncode)
    return None


if __name__ == "__main__":
    sys.exit(main())
