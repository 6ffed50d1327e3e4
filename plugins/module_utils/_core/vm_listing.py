# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""What vm_info reports from the host it runs on: the cluster's VMs (when the host is a
cluster node, or when asked) and this host's standalone VMs, each summarised the same way,
with the addresses the address registry holds for them when asked."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils._address import registry
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.request import open_store
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.listing import cluster_vms
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.library_errors import (
    as_sentences)
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.fleet_listing import (
    cluster_store)
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.listing import host_vms
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import Hypervisor

KINDS = ("cluster", "standalone")


def kinds_here(asked, ceph_conf):
    """The kinds to list: those asked, else the cluster's VMs only on a cluster node (its
    Ceph configuration and Pacemaker's tools are here) and this host's standalone VMs."""
    if asked:
        return [kind for kind in KINDS if kind in asked]
    on_node = os.path.isfile(ceph_conf) and pcmk.installed()
    return list(KINDS) if on_node else ["standalone"]


def list_cluster(ceph, timeout, run, name=None):
    store = cluster_store(ceph, run, timeout)
    try:
        with as_sentences("list the cluster's VMs", "node %s" % os.uname()[1],
                          store.not_answering):
            return cluster_vms(store, pcmk.Cluster(run, timeout=timeout), name)
    finally:
        store.close()


def list_host(uri, timeout, run, name=None):
    """(the host's name, [its standalone VMs])."""
    hv = Hypervisor(uri, run, timeout=timeout)
    try:
        with as_sentences("list the VMs", "libvirt at %s" % uri):
            node = hv.hostname()
            return node, host_vms(hv, node, name)
    finally:
        hv.close()


def with_registry_addresses(vms, registry_options, run):
    """Each VM's addresses as the registry holds them (one read of the registry)."""
    store = open_store(registry_options, run)
    try:
        held = store.read(registry.addresses)
    finally:
        store.close()
    by_vm = {}
    for address in held:
        by_vm.setdefault(address["vm"], []).append(address)
    for vm in vms:
        if "error" not in vm:
            vm["addresses"] = by_vm.get(vm["name"], [])
    return vms
