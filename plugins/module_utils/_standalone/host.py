# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""What a standalone VM is made of on its host, above the libvirt layer: the volumes of its
disks (named after it), its definition with our record of it, and their removal. Each method
acts; deciding whether to act is the plan's (states, commands)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime
import os

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_storage import (
    DEFAULT_POOL, DEFAULT_POOL_PATH)


def volume_name(vm, index):
    # '.' cannot appear in a VM name, so these never collide between VMs.
    return "%s.disk%d.qcow2" % (vm, index)


def stamp():
    """Suffix of volumes that replace others: unique, and sorts by time."""
    return datetime.datetime.now().strftime("%Y%m%d%H%M%S%f")


class StandaloneHost(object):
    """The VM-level operations on one hypervisor (``hv``: a libvirt_host.Hypervisor)."""

    def __init__(self, hv):
        self.hv = hv

    # ---- disks ------------------------------------------------------------------------

    def pool_or_none(self, name):
        """The pool, or None when it does not exist yet and is the default one (the plan
        creates it); another missing pool is an error."""
        if self.hv.storage.pool_exists(name):
            return self.hv.storage.pool(name)
        if name != DEFAULT_POOL:
            raise VmError("The storage pool %s does not exist on this hypervisor." % name)
        return None

    def checked_sources(self, system_image, additional):
        """[('image', path) | ('size', bytes)]: the images checked (self-contained qcow2 or
        raw), read only; ``system_image`` None: only the additional disks."""
        plan = [("image", self.hv.storage.check_image(system_image))] if system_image else []
        for kind, value in additional or []:
            plan.append((kind, self.hv.storage.check_image(value) if kind == "image" else value))
        return plan

    def path_of(self, pool, vm, index):
        """The path of the VM's disk ``index`` (the pool's own path once it exists)."""
        if pool is None:
            return os.path.join(DEFAULT_POOL_PATH, volume_name(vm, index))
        return self.hv.storage.volume_path(pool, volume_name(vm, index))

    def check_volumes_free(self, pool, vm, first_index, count):
        for index in range(first_index, first_index + count):
            vol = volume_name(vm, index)
            if pool is not None and self.hv.storage.volume(pool, vol) is not None:
                raise VmError("Volume %s already exists in pool %s but no VM %s owns it: "
                              "remove it first." % (vol, pool.name(), vm))

    def make_volume(self, pool, vm, index, source):
        kind, value = source
        vol = volume_name(vm, index)
        if kind == "image":
            return self.hv.storage.import_image(pool, vol, value)
        return self.hv.storage.create_volume(pool, vol, size_bytes=value)

    def make_volumes(self, pool, vm, first_index, sources):
        """Create the volumes; a failure removes those this call made. -> their paths."""
        created = []
        try:
            for offset, source in enumerate(sources):
                created.append(self.make_volume(pool, vm, first_index + offset, source))
        except BaseException:
            self.delete_paths(created)
            raise
        return created

    def delete_paths(self, paths):
        for path in paths:
            self.hv.storage.delete_volume_path(path)

    def delete_unused_chain(self, path):
        self.hv.delete_unused_chain(path)

    # ---- definitions --------------------------------------------------------------------

    def check_uuid_free(self, uuid, vm):
        for other, other_uuid in self.hv.read_domains(lambda d: (d.name(), d.UUIDString())):
            if other_uuid == uuid and other != vm:
                raise VmError("UUID %s is already used by VM %s." % (uuid, other))

    def define_recorded(self, desired, meta):
        """Define the VM with our metadata: the definition we asked for, and the digest of
        what libvirt made of it, so later edits behind our back are noticed."""
        definition = dx.canonical(desired)
        first = copy.deepcopy(desired)
        dx.set_gv_metadata(first, dx.build_gv_metadata(meta, definition))
        dom = self.hv.define(first)
        defined = dx.digest(self.hv.xml_root(dom))
        final = copy.deepcopy(desired)
        dx.set_gv_metadata(final, dx.build_gv_metadata(meta, definition, defined))
        return self.hv.define(final)

    def undefine_named(self, vm):
        dom = self.hv.domain(vm)
        if dom is not None:
            self.hv.undefine(dom)

    def remove_vm(self, vm):
        """Power off, undefine, delete the disks no other VM uses."""
        dom = self.hv.domain(vm)
        if dom is None:
            return
        active = self.hv.is_active(dom)
        paths = dx.disk_paths(self.hv.xml_root(dom, inactive=not active))
        if active:
            self.hv.stop(dom, 0, force=True)
        self.hv.undefine(dom)
        self.delete_disks_of(vm, paths)

    def delete_disks_of(self, vm, paths):
        self.hv.delete_disks_of(vm, paths)
