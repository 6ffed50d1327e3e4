# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The VMs that exist in the fleet: the cluster's (RBD groups) and those of listed libvirt
hosts; their names (to find registry entries whose VM is gone) and their NICs' MACs with the
IPs libvirt networks reserve for them (to import what existing VMs use)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import Hypervisor
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import system_image
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_store import RbdStore


def cluster_vm_names(cluster, run, timeout):
    store = cluster_store(cluster, run, timeout)
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


def cluster_store(cluster, run, timeout):
    """The RBD store of the cluster the Ceph options (ceph_conf, ceph_user, keyring, pool)
    name."""
    return RbdStore(cluster["ceph_conf"], cluster["ceph_user"], cluster["keyring"],
                    cluster["pool"], run, timeout=timeout)


def cluster_vm_macs(cluster, run, timeout):
    """{vm: [MAC of NIC 0, 1, ...]} of the cluster's VMs, from the definition each runs."""
    store = cluster_store(cluster, run, timeout)
    try:
        out = {}
        for vm in store.vm_names():
            xml = store.metadata(system_image(vm)).get("xml")
            if xml:
                out[vm] = dx.macs(dx.parse(xml, "definition of cluster VM %s" % vm))
        return out
    finally:
        store.close()


def host_vm_macs(uri, run, timeout):
    """({vm: [MACs]}, {MAC: IP}) of a libvirt host: its domains' NICs, and the DHCP
    reservations of its libvirt networks."""
    host = Hypervisor(uri, run, timeout=timeout)
    try:
        vms = dict(host.read_domains(lambda dom: (dom.name(), dx.macs(host.xml_root(dom)))))
        reserved = {}
        for network in host.conn.listAllNetworks():
            root = dx.parse(network.XMLDesc(0), "definition of network %s" % network.name())
            for entry in root.findall("ip/dhcp/host"):
                if entry.get("mac") and entry.get("ip"):
                    reserved[entry.get("mac").lower()] = entry.get("ip")
        return vms, reserved
    finally:
        host.close()


def fleet_vm_macs(cluster, hypervisors, run, timeout):
    """({vm: [MACs]}, {MAC: IP}) of the whole fleet. A VM listed twice (a cluster VM running
    on a listed node, a VM on two hosts) must have the same MACs in both places."""
    vms = cluster_vm_macs(cluster, run, timeout) if cluster else {}
    reserved = {}
    for uri in hypervisors:
        host_vms, host_reserved = host_vm_macs(uri, run, timeout)
        reserved.update(host_reserved)
        for vm, macs in host_vms.items():
            if vm in vms and vms[vm] != macs:
                raise VmError("VM %s has the MACs %s at %s but %s elsewhere: one name, two "
                              "VMs; rename one before importing." % (
                                  vm, ", ".join(macs), uri, ", ".join(vms[vm])))
            vms[vm] = macs
    return vms, reserved
