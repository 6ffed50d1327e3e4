# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The libvirt layer: connection, domains, power, storage pools and volumes, snapshots.

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
from ansible_collections.gridvirt.kvm.plugins.module_utils import source_image
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.runner import run_checked

DEFAULT_POOL = "default"
DEFAULT_POOL_PATH = "/var/lib/libvirt/images"
STATE_POLL_SECONDS = 0.25
# Longest wait for another run's volume creation before a pool refresh gives up.
POOL_BUSY_SECONDS = 120
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


def _start_pool(pool):
    """Start the pool unless it runs; another run may start it at the same time."""
    lv = _lv()
    try:
        if not pool.isActive():
            pool.create()
    except lv.libvirtError as exc:
        if not pool.isActive():
            raise VmError("Cannot start storage pool %s: %s." % (pool.name(), exc.get_error_message()))


def _pool_busy(exc):
    """libvirt refuses to refresh a pool while a volume is being created in it; it says so
    only in the message of an internal error."""
    return (exc.get_error_code() == _lv().VIR_ERR_INTERNAL_ERROR
            and "asynchronous jobs" in (exc.get_error_message() or ""))


def still_there(entries, read, gone_code):
    """[read(entry)] for the entries of a listing that still exist when read.

    A listing is a snapshot: another run may undefine a domain or delete a volume between
    the listing and the read of one entry. libvirt then raises ``gone_code``
    (VIR_ERR_NO_DOMAIN, VIR_ERR_NO_STORAGE_VOL): that entry is skipped, being gone is
    what the caller would have seen a moment later. Any other error is raised."""
    lv = _lv()
    found = []
    for entry in entries:
        try:
            found.append(read(entry))
        except lv.libvirtError as exc:
            if exc.get_error_code() != gone_code:
                raise
    return found


def _create_private_file(path):
    """An empty file only root can read, for qemu-img to write a disk into: qemu-img keeps
    the mode of a file that exists, and would create one world-readable (0644). A partial
    file of an interrupted run goes first; a link planted at the name is never followed."""
    try:
        os.unlink(path)
    except OSError:
        pass  # nothing there; anything else makes the exclusive create below fail
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        raise VmError("Cannot create %s: %s." % (path, exc.strerror)) from None


def _keep_private(path):
    """0600 again after qemu-img wrote the file (through the file itself, never a link)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def validate_domain(run, root, refusal=SCHEMA_REFUSAL):
    """Check a domain XML against libvirt's schema without defining anything (check mode,
    and cluster VMs, whose definition lives in RBD and is defined by the resource agent)."""
    run_checked(run, ["virt-xml-validate", "-", "domain"], refusal,
                data=domain_xml.to_string(root), detail=_first_line)


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

    def read_domains(self, read):
        """[read(domain)] for every domain of the host still defined (or, transient, still
        running) when read."""
        return still_there(self.domains(), read, _lv().VIR_ERR_NO_DOMAIN)

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
        _start_pool(pool)
        return pool

    def pool_exists(self, name):
        return name in self.conn.listStoragePools() + self.conn.listDefinedStoragePools()

    def _create_dir_pool(self, name, path):
        etree = deps.lxml_etree()
        root = etree.Element("pool", type="dir")
        etree.SubElement(root, "name").text = name
        target = etree.SubElement(root, "target")
        etree.SubElement(target, "path").text = path
        lv = _lv()
        try:
            pool = self.conn.storagePoolDefineXML(domain_xml.to_string(root), 0)
        except lv.libvirtError as exc:
            try:  # another run on this host (a first create of another VM) defined it meanwhile
                return self.conn.storagePoolLookupByName(name)
            except lv.libvirtError:
                raise VmError("Cannot create storage pool %s in %s: %s."
                              % (name, path, exc.get_error_message())) from None
        pool.build(0)
        _start_pool(pool)
        pool.setAutostart(1)
        return pool

    @staticmethod
    def refresh_pool(pool):
        """Rescan the pool's directory (a file qemu-img wrote becomes a volume). libvirt
        refuses while another run creates a volume in the same pool: that job ends once its
        volume is written, so wait for it, bounded."""
        lv = _lv()
        deadline = time.monotonic() + POOL_BUSY_SECONDS
        while True:
            try:
                pool.refresh(0)
                return
            except lv.libvirtError as exc:
                if not _pool_busy(exc) or time.monotonic() >= deadline:
                    raise VmError("Cannot refresh storage pool %s: %s."
                                  % (pool.name(), exc.get_error_message()))
            time.sleep(STATE_POLL_SECONDS)

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

    def check_image(self, path):
        """The path of a user's image the modules can import (refused with a sentence
        otherwise): checked when the disks are planned, before any change."""
        return source_image.checked(self._run, path)

    def import_image(self, pool, vol_name, source):
        """Convert source into a new qcow2 volume. The source is checked again right before
        qemu-img reads it (self-contained qcow2 or raw) and read in the format found."""
        fmt = source_image.importable(self._run, source)[0]
        return self._convert_into_pool(pool, vol_name, ["-f", fmt], source, "Importing")

    def copy_image(self, pool, source_path, vol_name, force_share=False, fmt=None):
        """Full, independent copy of a disk (its whole backing chain flattened), read in
        fmt, else in the format libvirt gives the volume (qcow2 for the modules' disks)."""
        read_opts = ["-f", fmt or self._volume_format(source_path)]
        if force_share:
            read_opts.append("-U")
        return self._convert_into_pool(pool, vol_name, read_opts, source_path, "Copying")

    def _convert_into_pool(self, pool, vol_name, read_opts, source, verb):
        """qemu-img convert into a new qcow2 volume that only root reads, like libvirt's own
        volumes. Written under a temporary name and renamed at the end, so an interrupted
        run never leaves a volume that looks complete."""
        final = self.volume_path(pool, vol_name)
        partial = final + ".importing"
        _create_private_file(partial)
        try:
            run_checked(self._run, ["qemu-img", "convert", "-W"] + read_opts
                        + ["-O", "qcow2", source, partial], "%s %s failed" % (verb, source))
        except VmError:
            self._remove_file(partial)
            raise
        _keep_private(partial)
        os.rename(partial, final)
        self.refresh_pool(pool)
        return final

    def _volume_format(self, path):
        """The format libvirt gives a pool volume; qcow2 when it is not one."""
        vol = self.volume_by_path(path)
        if vol is None:
            return "qcow2"
        fmt = domain_xml.parse(vol.XMLDesc(0), "volume XML").find("target/format")
        return fmt.get("type") if fmt is not None and fmt.get("type") else "qcow2"

    def create_volume(self, pool, vol_name, size_bytes=None, backing_path=None):
        """An empty qcow2 volume, or a qcow2 overlay on backing_path (O(1))."""
        etree = deps.lxml_etree()
        root = etree.Element("volume")
        etree.SubElement(root, "name").text = vol_name
        if size_bytes is None:
            size_bytes = int(source_image.info(self._run, backing_path, force_share=True,
                                               fmt="qcow2")["virtual-size"])
        etree.SubElement(root, "capacity", unit="bytes").text = str(size_bytes)
        target = etree.SubElement(root, "target")
        etree.SubElement(target, "format", type="qcow2")
        # libvirt's default, said explicitly: no local user but root reads a VM's disk.
        etree.SubElement(etree.SubElement(target, "permissions"), "mode").text = "0600"
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
        info = source_image.info(self._run, path, force_share=True,
                                 fmt=self._volume_format(path))
        backing = info.get("full-backing-filename") or info.get("backing-filename")
        if backing and not os.path.isabs(backing):
            backing = os.path.join(os.path.dirname(path), backing)
        return backing

    def backing_users(self, pool, path):
        """Volumes of the pool whose backing file is path."""
        self.refresh_pool(pool)
        volumes = still_there(pool.listAllVolumes(0), lambda vol: (vol.path(), vol.XMLDesc(0)),
                              _lv().VIR_ERR_NO_STORAGE_VOL)
        return [vol_path for vol_path, xml in volumes
                if domain_xml.parse(xml, "volume XML").findtext("backingStore/path") == path]

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
