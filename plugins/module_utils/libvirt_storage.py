# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The libvirt layer's storage: pools (a directory pool made when the default one is
missing), volumes, images imported or copied into a pool with qemu-img (private files,
written under a temporary name), overlays and their backing files.

External commands run through the ``run`` callable given by the caller
(AnsibleModule.run_command), always as argument lists."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml
from ansible_collections.gridvirt.kvm.plugins.module_utils import source_image
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import deps
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.runner import run_checked

DEFAULT_POOL = "default"
DEFAULT_POOL_PATH = "/var/lib/libvirt/images"
POLL_SECONDS = 0.25
# Longest wait for another run's volume creation before a pool refresh gives up.
POOL_BUSY_SECONDS = 120


def _lv():
    return deps.libvirt()


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


class Storage(object):
    """The pools and volumes of one libvirt connection (``hv``: its Hypervisor)."""

    def __init__(self, hv, run):
        self.hv = hv
        self.run = run

    def pool(self, name, create_missing=False, path=DEFAULT_POOL_PATH):
        pool = self._lookup_pool(name)
        if pool is None:
            if not create_missing:
                raise VmError("The storage pool %s does not exist on this hypervisor." % name)
            pool = self._create_dir_pool(name, path)
        _start_pool(pool)
        return pool

    def active_pool(self, name):
        """The pool when it exists and runs, else None; read only (a plan's look)."""
        pool = self._lookup_pool(name)
        return pool if pool is not None and pool.isActive() else None

    def _lookup_pool(self, name):
        """The pool named ``name``, or None when there is none."""
        lv = _lv()
        try:
            return self.hv.conn.storagePoolLookupByName(name)
        except lv.libvirtError as exc:
            if exc.get_error_code() != lv.VIR_ERR_NO_STORAGE_POOL:
                raise VmError("Cannot look up storage pool %s: %s."
                              % (name, exc.get_error_message()))
            return None

    def pool_exists(self, name):
        return name in self.hv.conn.listStoragePools() + self.hv.conn.listDefinedStoragePools()

    def _create_dir_pool(self, name, path):
        etree = deps.lxml_etree()
        root = etree.Element("pool", type="dir")
        etree.SubElement(root, "name").text = name
        target = etree.SubElement(root, "target")
        etree.SubElement(target, "path").text = path
        lv = _lv()
        try:
            pool = self.hv.conn.storagePoolDefineXML(domain_xml.to_string(root), 0)
        except lv.libvirtError as exc:
            try:  # another run on this host (a first create of another VM) defined it meanwhile
                return self.hv.conn.storagePoolLookupByName(name)
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
            time.sleep(POLL_SECONDS)

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
            return self.hv.conn.storageVolLookupByPath(path)
        except lv.libvirtError:
            return None

    def check_image(self, path):
        """The path of a user's image the modules can import (refused with a sentence
        otherwise): checked when the disks are planned, before any change."""
        return source_image.checked(self.run, path)

    def import_image(self, pool, vol_name, source):
        """Convert source into a new qcow2 volume. The source is checked again right before
        qemu-img reads it (self-contained qcow2 or raw) and read in the format found."""
        fmt = source_image.importable(self.run, source)[0]
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
            run_checked(self.run, ["qemu-img", "convert", "-W"] + read_opts
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
            size_bytes = int(source_image.info(self.run, backing_path, force_share=True,
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
        info = source_image.info(self.run, path, force_share=True,
                                 fmt=self._volume_format(path))
        backing = info.get("full-backing-filename") or info.get("backing-filename")
        if backing and not os.path.isabs(backing):
            backing = os.path.join(os.path.dirname(path), backing)
        return backing

    @staticmethod
    def volume_backing(vol):
        """The backing file of a volume as its libvirt daemon reads it: right for a volume of
        another host too, where this host's qemu-img cannot look."""
        return domain_xml.parse(vol.XMLDesc(0), "volume XML").findtext("backingStore/path") or ""

    def backing_users(self, pool, path):
        """Volumes of the pool whose backing file is path."""
        self.refresh_pool(pool)
        volumes = still_there(pool.listAllVolumes(0), lambda vol: (vol.path(), vol.XMLDesc(0)),
                              _lv().VIR_ERR_NO_STORAGE_VOL)
        return [vol_path for vol_path, xml in volumes
                if domain_xml.parse(xml, "volume XML").findtext("backingStore/path") == path]
