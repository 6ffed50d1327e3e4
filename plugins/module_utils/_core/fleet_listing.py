# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The names of the VMs that exist in the fleet: the cluster's (RBD groups) and those of
listed libvirt hosts. Used to find registry entries whose VM is gone."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import Hypervisor
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_store import RbdStore


def cluster_vm_names(cluster, run, timeout):
    store = RbdStore(cluster["ceph_conf"], cluster["ceph_user"], cluster["keyring"],
                     cluster["pool"], run, timeout=timeout)
    try:
        return set(store.vm_names())
    finally:
        store.close()


def host_vm_names(uri, run, timeout):
    host = Hypervisor(uri, run, timeout=timeout)
    try:
        return set(host.read_domains(lambda dom: dom.name()))
    finally:
        host.close()


def existing_vm_names(cluster, hypervisors, run, timeout):
    """Every VM of the cluster (when given) and of the hosts at the ``hypervisors`` URIs; a
    source that does not answer is an error, not an empty list (every VM would look gone)."""
    names = cluster_vm_names(cluster, run, timeout) if cluster else set()
    for uri in hypervisors:
        names |= host_vm_names(uri, run, timeout)
    return names
