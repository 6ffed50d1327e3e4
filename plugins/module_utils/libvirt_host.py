# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The libvirt layer: connection, domains, power, snapshots; storage pools and volumes are
in libvirt_storage (``Hypervisor.storage``).

Knows nothing of Ceph or Pacemaker. External commands (qemu-img) run through the ``run``
callable given by the caller (AnsibleModule.run_command), always as argument lists.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import threading
import time

from ansible_collections.gridvirt.kvm.plugins.module_utils._common import deps
from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import (
    InvalidDefinition, VmError)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.runner import run_checked
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_storage import (
    Storage, still_there)

STATE_POLL_SECONDS = 0.25
# How long the module waits for libvirtd to accept its connection.
DEFAULT_CONNECT_TIMEOUT = 30
SCHEMA_REFUSAL = "The domain XML does not pass libvirt's schema"


def _lv():
    return deps.libvirt()


def status_of(state, reason):
    """libvirt (state, reason) -> the status names used by both modules."""
    lv = _lv()
    if state in (lv.VIR_DOMAIN_RUNNING, lv.VIR_DOMAIN_BLOCKED):
        return "Started"
    if state in (lv.VIR_DOMAIN_PAUSED, lv.VIR_DOMAIN_PMSUSPENDED):
        return "Paused"
    if state == lv.VIR_DOMAIN_SHUTDOWN:
        return "Stopping"
    if state == lv.VIR_DOMAIN_CRASHED or (
            state == lv.VIR_DOMAIN_SHUTOFF and reason == lv.VIR_DOMAIN_SHUTOFF_CRASHED):
        return "Failed"
    if state == lv.VIR_DOMAIN_SHUTOFF:
        return "Stopped"
    return "Unknown"


def validate_domain(run, root, refusal=SCHEMA_REFUSAL):
    """Check a domain XML against libvirt's schema without defining anything (check mode,
    and cluster VMs, whose definition lives in RBD and is defined by the resource agent)."""
    try:
        run_checked(run, ["virt-xml-validate", "-", "domain"], refusal,
                    data=domain_xml.to_string(root), detail=_first_line)
    except VmError as exc:
        raise InvalidDefinition(exc.msg)


def _first_line(out, err):
    lines = [line for line in (err or out or "").strip().splitlines() if line.strip()]
    return lines[0] if lines else "virt-xml-validate failed"


def node_uri(node, local_node, user):
    """libvirt's URI of a cluster node's daemon: local, else over SSH as ``user``."""
    return "qemu:///system" if node == local_node else "qemu+ssh://%s@%s/system" % (user, node)


@contextlib.contextmanager
def paused(uri, run, timeout, name):
    """The running domain ``name`` paused while inside (all its disks at one instant), through
    a connection of its own to ``uri``; not running (or not there): nothing is paused."""
    hv = Hypervisor(uri, run, timeout=timeout)
    try:
        dom = hv.domain(name)
        if dom is None or not hv.is_active(dom):
            yield
            return
        dom.suspend()
        try:
            yield
        finally:
            dom.resume()
    finally:
        hv.close()


class Hypervisor(object):
    """One libvirt connection and the operations the orchestration layer needs."""

    def __init__(self, uri, run, timeout=DEFAULT_CONNECT_TIMEOUT):
        self.uri = uri
        self._run = run
        self.timeout = timeout
        self._conn = None
        self.storage = Storage(self, run)

    # ---- connection and domains -------------------------------------------------------

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self):
        """libvirt's open, bounded: a libvirtd that accepts but never answers (stopped,
        overloaded, a remote host gone) would otherwise hold the task forever. The opener
        runs in a thread of its own that the module stops waiting for."""
        lv = _lv()
        outcome = {}

        def opener():
            try:
                outcome["conn"] = lv.open(self.uri)
            except lv.libvirtError as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=opener, name="gridvirt-libvirt-open")
        worker.daemon = True
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            raise VmError("libvirt at %s did not answer within %d seconds (from node %s): "
                          "check that libvirtd runs there and answers, then run the task again."
                          % (self.uri, self.timeout, os.uname()[1]))
        if "error" in outcome:
            raise VmError("Cannot connect to libvirt at %s: %s. Is libvirtd running on the "
                          "hypervisor?" % (self.uri, outcome["error"].get_error_message()))
        return outcome["conn"]

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a dead connection must not hide the real result
                pass
            self._conn = None

    def domain(self, name):
        lv = _lv()
        try:
            return self.conn.lookupByName(name)
        except lv.libvirtError as exc:
            if exc.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
                return None
            raise VmError("Cannot look up VM %s: %s." % (name, exc.get_error_message()))

    def hostname(self):
        return self.conn.getHostname()

    def domains(self):
        """The host's domains now; any may vanish before a call on it (see read_domains)."""
        return self.conn.listAllDomains()

    def read_domains(self, read, domains=None):
        """[read(domain)] for every domain of the host (or of ``domains``) still defined (or,
        transient, still running) when read."""
        return still_there(self.domains() if domains is None else domains, read,
                           _lv().VIR_ERR_NO_DOMAIN)

    def xml_root(self, dom, inactive=True):
        flags = _lv().VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return domain_xml.parse(dom.XMLDesc(flags), "libvirt domain XML")

    def status(self, dom):
        if dom is None:
            return "Undefined"
        state, reason = dom.state()
        return status_of(state, reason)

    def is_active(self, dom):
        return dom is not None and bool(dom.isActive())

    def define(self, root):
        lv = _lv()
        try:
            return self.conn.defineXMLFlags(domain_xml.to_string(root),
                                            lv.VIR_DOMAIN_DEFINE_VALIDATE)
        except lv.libvirtError as exc:
            raise VmError("libvirt refused the domain definition: %s."
                          % exc.get_error_message())

    def check_definable(self, root):
        """What define() would refuse, said as define() says it, without defining anything
        (libvirt's schema, the check its define runs)."""
        validate_domain(self._run, root, refusal="libvirt refused the domain definition")

    def undefine(self, dom):
        lv = _lv()
        flags = (lv.VIR_DOMAIN_UNDEFINE_NVRAM | lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                 | lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
        dom.undefineFlags(flags)

    def autostart(self, dom):
        return bool(dom.autostart())

    def set_autostart(self, dom, value):
        dom.setAutostart(1 if value else 0)

    # ---- power ------------------------------------------------------------------------

    def start(self, dom):
        lv = _lv()
        try:
            dom.create()
        except lv.libvirtError as exc:
            raise VmError("VM %s failed to start: %s." % (dom.name(), exc.get_error_message()))

    def start_with(self, root):
        """Boot the (defined) VM once from the definition ``root``: libvirt runs it with that
        definition and keeps the stored one for the next start."""
        lv = _lv()
        try:
            return self.conn.createXML(domain_xml.to_string(root), 0)
        except lv.libvirtError as exc:
            raise VmError("VM %s failed to start: %s." % (root.findtext("name"),
                                                          exc.get_error_message()))

    def resume(self, dom):
        dom.resume()

    def stop(self, dom, timeout, force=False):
        """ACPI shutdown, wait up to timeout seconds, then power off. -> 'graceful'/'forced'."""
        lv = _lv()
        if not force:
            try:
                dom.shutdown()
            except lv.libvirtError:
                pass  # a paused guest cannot take ACPI events: fall through to destroy
            else:
                if self.wait_inactive(dom, timeout):
                    return "graceful"
        try:
            dom.destroy()
        except lv.libvirtError:
            if dom.isActive():
                raise
        return "forced"

    @staticmethod
    def wait_inactive(dom, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not dom.isActive():
                return True
            time.sleep(STATE_POLL_SECONDS)
        return not dom.isActive()

    # ---- snapshots --------------------------------------------------------------------

    def delete_disks_of(self, vm, paths):
        """The disks ``paths`` of VM ``vm`` deleted, with the bases no other VM still needs;
        a disk another VM of the host uses stays."""
        in_use = self.paths_used_by_other_vms(vm)
        for path in paths:
            if path not in in_use:
                self.delete_unused_chain(path)

    def delete_unused_chain(self, path):
        """Delete a pool volume, then each backing file no other volume still needs
        (bases shared with linked clones stay until their last user is gone)."""
        while path:
            vol = self.storage.volume_by_path(path)
            if vol is None:
                return  # not a volume of a libvirt pool: not ours to delete
            pool = vol.storagePoolLookupByVolume()
            backing = self.storage.volume_backing(vol)
            self.storage.delete_volume_path(path)
            if not backing or self.storage.backing_users(pool, backing):
                return
            path = backing

    def paths_used_by_other_vms(self, vm):
        used = set()
        for other, root in self.read_domains(lambda d: (d.name(), self.xml_root(d))):
            if other != vm:
                used.update(domain_xml.disk_paths(root))
        return used

    def mark_importing(self, dom, mark):
        """Set (``mark``: the element's XML) or clear (None) the importing mark in the VM's
        stored definition (domain_xml.IMPORTING_NS)."""
        lv = _lv()
        try:
            dom.setMetadata(lv.VIR_DOMAIN_METADATA_ELEMENT, mark,
                            domain_xml.IMPORTING_KEY if mark else None,
                            domain_xml.IMPORTING_NS, lv.VIR_DOMAIN_AFFECT_CONFIG)
        except lv.libvirtError as exc:
            raise VmError("Cannot record on VM %s that it is being imported: %s."
                          % (dom.name(), exc.get_error_message()))

    def snapshots(self, dom):
        """[(name, creation time as int seconds)], oldest first."""
        result = []
        for snap in dom.listAllSnapshots(0):
            root = domain_xml.parse(snap.getXMLDesc(0), "snapshot XML")
            result.append((snap.getName(), int(root.findtext("creationTime") or 0)))
        return sorted(result, key=lambda item: (item[1], item[0]))

    def snapshot_count(self, dom):
        return dom.snapshotNum(0)

    def snapshot(self, dom, name):
        lv = _lv()
        try:
            return dom.snapshotLookupByName(name, 0)
        except lv.libvirtError:
            return None

    def create_snapshot(self, dom, name, description=None):
        """Internal snapshot of every disk at one instant: a stopped VM's disks as they are;
        a running VM is paused while its disks and memory are saved together."""
        etree = deps.lxml_etree()
        root = etree.Element("domainsnapshot")
        etree.SubElement(root, "name").text = name
        if description:
            etree.SubElement(root, "description").text = description
        lv = _lv()
        try:
            dom.snapshotCreateXML(domain_xml.to_string(root), lv.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC)
        except lv.libvirtError as exc:
            raise VmError("Snapshot %s of VM %s failed: %s."
                          % (name, dom.name(), exc.get_error_message()))

    def revert_snapshot(self, dom, name):
        """Disks back to the snapshot; the VM ends stopped whatever the snapshot held."""
        lv = _lv()
        snap = dom.snapshotLookupByName(name, 0)
        try:
            # A snapshot of a running VM holds memory: revert it paused, then power off,
            # so the guest boots from the restored disks like after a cluster rollback.
            dom.revertToSnapshot(snap, lv.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED
                                 | lv.VIR_DOMAIN_SNAPSHOT_REVERT_FORCE)
        except lv.libvirtError as exc:
            raise VmError("Rollback of VM %s to snapshot %s failed: %s."
                          % (dom.name(), name, exc.get_error_message()))
        if dom.isActive():
            dom.destroy()

    def delete_snapshot(self, dom, name):
        dom.snapshotLookupByName(name, 0).delete(0)

    def snapshot_definitions(self, dom):
        """[(snapshot XML, is current)] of every snapshot, parents before their children:
        what redefine_snapshots needs to give the same list to a copy of the VM."""
        lv = _lv()
        snaps = dom.listAllSnapshots(lv.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL)
        return [(snap.getXMLDesc(lv.VIR_DOMAIN_SNAPSHOT_XML_SECURE), bool(snap.isCurrent(0)))
                for snap in snaps]

    def redefine_snapshots(self, dom, definitions):
        """The snapshots list of ``definitions`` (snapshot_definitions' form) given to
        ``dom``, whose disks already hold their data (internal snapshots travel with their
        qcow2 file)."""
        lv = _lv()
        for xml, current in definitions:
            flags = lv.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
            if current:
                flags |= lv.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
            try:
                dom.snapshotCreateXML(xml, flags)
            except lv.libvirtError as exc:
                raise VmError("Cannot give VM %s its snapshots list: %s."
                              % (dom.name(), exc.get_error_message()))

    def freeze_disks(self, dom, moves, suffix):
        """Redirect the VM's writes to new overlays (external disk-only snapshot, atomic for
        all disks, live or not) so its current disk files become read-only bases that linked
        clones can share. moves: [(target dev, new overlay path)]."""
        etree = deps.lxml_etree()
        root = etree.Element("domainsnapshot")
        etree.SubElement(root, "name").text = "gridvirt-freeze-%s" % suffix
        etree.SubElement(root, "memory", snapshot="no")
        disks_el = etree.SubElement(root, "disks")
        for target, new_path in moves:
            el = etree.SubElement(disks_el, "disk", name=target, snapshot="external")
            etree.SubElement(el, "driver", type="qcow2")
            etree.SubElement(el, "source", file=new_path)
        lv = _lv()
        flags = (lv.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | lv.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
                 | lv.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA)
        try:
            dom.snapshotCreateXML(domain_xml.to_string(root), flags)
        except lv.libvirtError as exc:
            raise VmError("Cannot freeze the disks of VM %s for a linked clone: %s."
                          % (dom.name(), exc.get_error_message()))
