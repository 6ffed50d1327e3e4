# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The libvirt layer: connection, domains, power, storage pools and volumes, snapshots.

Knows nothing of Ceph or Pacemaker. External commands (qemu-img) run through the ``run``
callable given by the caller (AnsibleModule.run_command), always as argument lists.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.gridvirt.kvm.plugins.module_utils import deps
from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml
from ansible_collections.gridvirt.kvm.plugins.module_utils import source_image
from ansible_collections.gridvirt.kvm.plugins.module_utils.errors import VmError

DEFAULT_POOL = "default"
DEFAULT_POOL_PATH = "/var/lib/libvirt/images"
STATE_POLL_SECONDS = 0.25


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


def validate_domain(run, root):
    """Check a domain XML against libvirt's schema without defining anything (check mode,
    and cluster VMs, whose definition lives in RBD and is defined by the resource agent)."""
    rc, out, err = run(["virt-xml-validate", "-", "domain"],
                       data=domain_xml.to_string(root), binary_data=False)
    if rc != 0:
        lines = [line for line in (err or out).strip().splitlines() if line.strip()]
        raise VmError("The domain XML does not pass libvirt's schema: %s."
                      % (lines[0] if lines else "virt-xml-validate failed"))


class Hypervisor(object):
    """One libvirt connection and the operations the orchestration layer needs."""

    def __init__(self, uri, run):
        self.uri = uri
        self._run = run
        self._conn = None

    # ---- connection and domains -------------------------------------------------------

    @property
    def conn(self):
        if self._conn is None:
            lv = _lv()
            try:
                self._conn = lv.open(self.uri)
            except lv.libvirtError as exc:
                raise VmError("Cannot connect to libvirt at %s: %s. Is libvirtd running on the "
                              "hypervisor?" % (self.uri, exc.get_error_message()))
        return self._conn

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
        return self.conn.listAllDomains()

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

    def validate(self, root):
        validate_domain(self._run, root)

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

    # ---- storage ----------------------------------------------------------------------

    def pool(self, name, create_missing=False, path=DEFAULT_POOL_PATH):
        lv = _lv()
        try:
            pool = self.conn.storagePoolLookupByName(name)
        except lv.libvirtError as exc:
            if exc.get_error_code() != lv.VIR_ERR_NO_STORAGE_POOL:
                raise VmError("Cannot look up storage pool %s: %s."
                              % (name, exc.get_error_message()))
            if not create_missing:
                raise VmError("The storage pool %s does not exist on this hypervisor." % name)
            pool = self._create_dir_pool(name, path)
        if not pool.isActive():
            pool.create()
        return pool

    def pool_exists(self, name):
        return name in self.conn.listStoragePools() + self.conn.listDefinedStoragePools()

    def _create_dir_pool(self, name, path):
        etree = deps.lxml_etree()
        root = etree.Element("pool", type="dir")
        etree.SubElement(root, "name").text = name
        target = etree.SubElement(root, "target")
        etree.SubElement(target, "path").text = path
        pool = self.conn.storagePoolDefineXML(domain_xml.to_string(root), 0)
        pool.build(0)
        pool.create()
        pool.setAutostart(1)
        return pool

    @staticmethod
    def pool_path(pool):
        return domain_xml.parse(pool.XMLDesc(0), "pool XML").findtext("target/path")

    def volume_path(self, pool, vol_name):
        return os.path.join(self.pool_path(pool), vol_name)

    def volume(self, pool, vol_name):
        lv = _lv()
        try:
            return pool.storageVolLookupByName(vol_name)
        except lv.libvirtError:
            return None

    def volume_by_path(self, path):
        lv = _lv()
        try:
            return self.conn.storageVolLookupByPath(path)
        except lv.libvirtError:
            return None

    def import_image(self, pool, vol_name, source):
        """Convert source (qcow2 or raw) into a new qcow2 volume. Written under a temporary
        name and renamed at the end, so an interrupted import never leaves a volume that
        looks complete."""
        fmt = source_image.importable(self._run, source)[0]
        final = self.volume_path(pool, vol_name)
        partial = final + ".importing"
        rc, out, err = self._run(["qemu-img", "convert", "-W", "-f", fmt, "-O", "qcow2",
                                  source, partial])
        if rc != 0:
            self._remove_file(partial)
            raise VmError("Importing %s failed: %s." % (source, err.strip() or out.strip()))
        os.rename(partial, final)
        pool.refresh(0)
        return final

    def copy_image(self, pool, source_path, vol_name, force_share=False):
        """Full, independent copy of a disk (its whole backing chain flattened)."""
        final = self.volume_path(pool, vol_name)
        partial = final + ".importing"
        args = ["qemu-img", "convert", "-W", "-O", "qcow2"]
        if force_share:
            args.append("-U")
        rc, out, err = self._run(args + [source_path, partial])
        if rc != 0:
            self._remove_file(partial)
            raise VmError("Copying %s failed: %s." % (source_path, err.strip() or out.strip()))
        os.rename(partial, final)
        pool.refresh(0)
        return final

    def create_volume(self, pool, vol_name, size_bytes=None, backing_path=None):
        """An empty qcow2 volume, or a qcow2 overlay on backing_path (O(1))."""
        etree = deps.lxml_etree()
        root = etree.Element("volume")
        etree.SubElement(root, "name").text = vol_name
        if size_bytes is None:
            size_bytes = int(source_image.info(self._run, backing_path, force_share=True)["virtual-size"])
        etree.SubElement(root, "capacity", unit="bytes").text = str(size_bytes)
        target = etree.SubElement(root, "target")
        etree.SubElement(target, "format", type="qcow2")
        if backing_path:
            backing = etree.SubElement(root, "backingStore")
            etree.SubElement(backing, "path").text = backing_path
            etree.SubElement(backing, "format", type="qcow2")
        lv = _lv()
        try:
            vol = pool.createXML(domain_xml.to_string(root), 0)
        except lv.libvirtError as exc:
            raise VmError("Cannot create volume %s: %s." % (vol_name, exc.get_error_message()))
        return vol.path()

    def delete_volume_path(self, path):
        vol = self.volume_by_path(path)
        if vol is not None:
            vol.delete(0)
        else:
            self._remove_file(path)

    @staticmethod
    def _remove_file(path):
        try:
            os.unlink(path)
        except OSError:
            pass

    def backing_file(self, path):
        info = source_image.info(self._run, path, force_share=True)
        backing = info.get("full-backing-filename") or info.get("backing-filename")
        if backing and not os.path.isabs(backing):
            backing = os.path.join(os.path.dirname(path), backing)
        return backing

    def backing_users(self, pool, path):
        """Volumes of the pool whose backing file is path."""
        pool.refresh(0)
        users = []
        for vol in pool.listAllVolumes(0):
            root = domain_xml.parse(vol.XMLDesc(0), "volume XML")
            if root.findtext("backingStore/path") == path:
                users.append(vol.path())
        return users

    # ---- snapshots --------------------------------------------------------------------

    def snapshots(self, dom):
        """[(name, creation time as int seconds)], oldest first."""
        result = []
        for snap in dom.listAllSnapshots(0):
            root = domain_xml.parse(snap.getXMLDesc(0), "snapshot XML")
            result.append((snap.getName(), int(root.findtext("creationTime") or 0)))
        return sorted(result, key=lambda item: (item[1], item[0]))

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
