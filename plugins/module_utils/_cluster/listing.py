# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Every cluster VM as an inventory shows it: its status and node from one status read, the
VMs from one RBD listing, then each VM's stored definition, snapshots and addresses. A VM
that cannot be read is listed with its error: one broken VM must not hide the others."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils import hooks
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_disks as disks
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import seapath_layout as seapath
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.library_errors import (
    as_sentences)
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import system_image


def cluster_vms(store, cluster, name=None):
    """[summary of each cluster VM] by name (only ``name`` when given)."""
    resources = cluster.status()["resources"]
    names = [vm for vm in store.vm_names() if name is None or vm == name]
    return [_summary(store, vm, resources.get(vm, ("Disabled", None))) for vm in names]


def _summary(store, vm, status_and_node):
    entry = {"name": vm, "kind": "cluster", "status": status_and_node[0],
             "node": status_and_node[1]}
    try:
        with as_sentences("read VM %s" % vm, "node %s" % os.uname()[1]):
            entry.update(_stored_summary(store, vm))
    except VmError as exc:
        entry["error"] = exc.msg
    return entry


def _stored_summary(store, vm):
    stored = store.metadata(system_image(vm))
    intent = seapath.adopted(stored)
    if not intent.get(ci.KEY_XML):
        raise VmError("VM %s has no stored definition (metadata %r of image %s)."
                      % (vm, ci.KEY_XML, system_image(vm)))
    summary = dx.device_summary(dx.parse(intent[ci.KEY_XML], "definition of VM %s" % vm))
    summary.update(
        snapshots=len(disks.vm_snapshots(store, vm)),
        addresses=hooks.stored_addresses(stored),
        metadata=hooks.user_metadata(intent))
    return summary
