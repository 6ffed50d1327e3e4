#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Licensed under the Apache License 2.0 (see LICENSE), or at your option under the
# GNU General Public License version 3 or later (see https://www.gnu.org/licenses/gpl-3.0.txt).
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vm_info
short_description: List the cluster's VMs and this host's standalone VMs with their status, node and definition
version_added: 0.8.0
description:
  - On a cluster node, lists every cluster VM (one status read of Pacemaker, one listing of
    the RBD pool) and, on any hypervisor, the standalone VMs of this host (its persistent
    libvirt domains; the transient domains a cluster node runs are cluster VMs, listed as
    such).
  - Each VM comes with its status, the node it runs on, a summary of its definition (vCPUs,
    memory, disks, MACs), its number of snapshots, its addresses and its metadata.
  - A VM that cannot be read is listed with RV(vms[].error) and the others are still
    listed; a cluster or libvirt that does not answer fails the task.
  - The inventory plugin P(gridvirt.kvm.vms#inventory) and the playbook C(vm_status.yaml) use it.
author:
  - gridvirt.kvm contributors (@gridvirt)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - gridvirt.kvm.ceph
  - gridvirt.kvm.address_registry
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  name:
    description:
      - List this VM only (an empty RV(vms) when no VM has this name).
    type: str
  kinds:
    description:
      - The kinds of VM to list.
      - Default, the cluster's VMs when this host is a cluster node (O(ceph_conf) exists and
        Pacemaker's tools are installed), and this host's standalone VMs.
    type: list
    elements: str
    choices: [cluster, standalone]
  uri:
    description:
      - libvirt connection URI of this host's standalone VMs.
    type: str
    default: qemu:///system
  registry_addresses:
    description:
      - Read each VM's addresses from the address registry O(registry) (one read of it).
      - Otherwise RV(vms[].addresses) of a cluster VM are those its last deploy gave it, and
        those of a standalone VM are empty.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Every VM the cluster and this host know
  gridvirt.kvm.vm_info:
  register: fleet

- name: One VM, with its addresses from the cluster's RADOS address registry
  gridvirt.kvm.vm_info:
    name: db1
    registry:
      backend: rados
    registry_addresses: true
  register: db1

- name: The standalone VMs of a host, whatever else it is
  gridvirt.kvm.vm_info:
    kinds: [standalone]
  register: local_vms
"""

RETURN = r"""
host:
  description: This host's name, as libvirt reports it.
  returned: success
  type: str
  sample: hv1
cluster:
  description: Whether RV(vms) holds the cluster's VMs (this host is a cluster node, or O(kinds) asked).
  returned: success
  type: bool
  sample: true
vms:
  description: The VMs, the cluster's first, each kind sorted by name.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The VM's name.
      type: str
      returned: always
    kind:
      description: C(cluster) or C(standalone).
      type: str
      returned: always
    status:
      description:
        - C(Disabled), C(Starting), C(Started), C(Stopping), C(Stopped) or C(Failed) for a
          cluster VM; C(Started), C(Paused), C(Stopping), C(Stopped) or C(Failed) for a
          standalone VM.
      type: str
      returned: always
    node:
      description: The node a cluster VM runs on (null when it does not run); a standalone VM's host.
      type: str
      returned: always
    uuid:
      description: The VM's UUID.
      type: str
      returned: when the VM could be read
    vcpus:
      description: Its number of vCPUs.
      type: int
      returned: when the VM could be read
    memory_mib:
      description: Its memory in MiB.
      type: int
      returned: when the VM could be read
    disks:
      description: Its disks and CD-ROMs, each with C(target) (C(vda)), C(device) (C(disk) or C(cdrom)) and C(source) (file path, or C(pool/image) in RBD).
      type: list
      elements: dict
      returned: when the VM could be read
    macs:
      description: The MACs of its NICs, in order.
      type: list
      elements: str
      returned: when the VM could be read
    snapshots:
      description: Its number of snapshots.
      type: int
      returned: when the VM could be read
    addresses:
      description: Its addresses, each as M(gridvirt.kvm.address) returns it (see O(registry_addresses)).
      type: list
      elements: dict
      returned: when the VM could be read
    metadata:
      description: Its user metadata.
      type: dict
      returned: when the VM could be read
    error:
      description: Why this VM could not be read; only RV(vms[].name), RV(vms[].kind), RV(vms[].status) and RV(vms[].node) are given then.
      type: str
      returned: when the VM could not be read
  sample:
    - {name: plc1, kind: cluster, status: Started, node: node1, uuid: 4c1b5e0e-8d7a-4b9e-9f3c-2a6d1e0b7c55,
       vcpus: 2, memory_mib: 2048, disks: [{target: vda, device: disk, source: rbd/system_plc1}],
       macs: ["52:54:00:12:34:56"], snapshots: 1, addresses: [], metadata: {role: plc}}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils._address.request import (
    registry_argument_spec)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import vm_listing


def argument_spec():
    options = dict(
        name=dict(type="str"),
        kinds=dict(type="list", elements="str", choices=list(vm_listing.KINDS)),
        uri=dict(type="str", default="qemu:///system"),
        registry_addresses=dict(type="bool", default=False),
    )
    options.update(spec.ceph_argument_spec())
    options.update(registry_argument_spec())
    return options


def run(module):
    params = module.params
    name = spec.validate_vm_name(params["name"]) if params["name"] is not None else None
    timeout = spec.validate_connect_timeout(params["connect_timeout"])
    kinds = vm_listing.kinds_here(params["kinds"], params["ceph_conf"])
    vms = []
    if "cluster" in kinds:
        vms += vm_listing.list_cluster(params, timeout, module.run_command, name)
    host = os.uname()[1]
    if "standalone" in kinds:
        host, standalone = vm_listing.list_host(params["uri"], timeout, module.run_command, name)
        vms += standalone
    if params["registry_addresses"]:
        vm_listing.with_registry_addresses(vms, params["registry"], module.run_command)
    return dict(changed=False, host=host, cluster="cluster" in kinds, vms=vms)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        module.exit_json(**run(module))
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)


if __name__ == "__main__":
    main()
