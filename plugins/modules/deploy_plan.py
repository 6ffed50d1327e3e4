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
module: deploy_plan
short_description: Say what converging each of many VMs would change, in one read-only call
version_added: 0.4.0
description:
  - For every VM of O(vms), runs what M(gridvirt.kvm.cluster_vm) or M(gridvirt.kvm.standalone_vm)
    would run with those options in check mode, all VMs over one connection (one Ceph
    connection and one CIB read for a cluster, one libvirt connection for a hypervisor), and
    reports per VM whether it would change and what.
  - A VM that does not exist and has no C(system_image) yet is reported as to be created,
    with RV(vms.image_needed). Its definition is checked against libvirt's schema, the rest
    waits until its image is staged. The deploy roles use it so that a rerun that changes
    nothing costs one call per play, and images are staged only for VMs to create.
  - A wrong option, an invalid definition or any other problem with one VM is reported in that
    VM's RV(vms.error); the task fails only when the VMs cannot be listed at all.
  - Never changes anything, also outside check mode.
author:
  - gridvirt.kvm contributors (@gridvirt)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  kind:
    description:
      - C(cluster) plans M(gridvirt.kvm.cluster_vm) calls on the node the task runs on,
        C(standalone) plans M(gridvirt.kvm.standalone_vm) calls on the hypervisor.
    type: str
    required: true
    choices: [cluster, standalone]
  vms:
    description:
      - One dictionary per VM, with the options of that module for the VM (C(name), C(state),
        C(xml) and the others), as the converging task would pass them. Each is checked
        against the module's own argument specification.
      - A VM to create whose image is already on the host may name it in C(system_image);
        without it, a VM to create is reported with RV(vms.image_needed).
      - One key of a VM's dictionary is not a module option, C(keep_metadata), a list of
        metadata keys. When the VM exists, those the VM's C(metadata) does not set are planned
        with their current values (the deploy roles keep C(deployed_image_sha1) this way).
    type: list
    elements: dict
    required: true
  options:
    description:
      - Options every VM shares, merged under each VM's own; the connection's options (C(pool),
        C(ceph_conf), C(ceph_user), C(keyring), C(uri), C(connect_timeout)) are read from
        here.
    type: dict
    default: {}
  addresses:
    description:
      - The play's address pools and NICs, as the batch of M(gridvirt.kvm.address) takes them
        (C(registry), C(pools), C(nics)), when the registry is reachable from this host. The
        addresses the batch would give are read without writing anything (RV(addresses),
        RV(addresses_changed)) and each NIC's MAC is set in its VM's C(xml) before the VM is
        planned, so the deploy roles need no registry call of their own when nothing changes.
      - With O(kind=cluster), each VM is also planned with its addresses as its C(addresses)
        option. A cluster VM keeps them for the site hooks that its resource agent runs, so
        addresses the registry changed since the VM was deployed are a change to apply.
      - Its keys are checked against those options of M(gridvirt.kvm.address), and a wrong one
        fails the task with a sentence naming it.
    type: dict
requirements:
  - The requirements of M(gridvirt.kvm.cluster_vm) or M(gridvirt.kvm.standalone_vm).
seealso:
  - module: gridvirt.kvm.cluster_vm
  - module: gridvirt.kvm.standalone_vm
"""

EXAMPLES = r"""
- name: Plan the cluster's VMs in one call
  gridvirt.kvm.deploy_plan:
    kind: cluster
    options:
      pool: rbd
    vms:
      - name: guest0
        state: running
        xml: "{{ lookup('ansible.builtin.template', 'guest.xml.j2') }}"
  register: planned

- name: Converge only the VMs that would change
  gridvirt.kvm.cluster_vm:
    name: guest0
    state: running
    xml: "{{ lookup('ansible.builtin.template', 'guest.xml.j2') }}"
  when: planned.vms.guest0.changed
"""

RETURN = r"""
vms:
  description: Per VM name, what converging it would do.
  returned: success
  type: dict
  contains:
    changed:
      description: Converging the VM would change something.
      type: bool
      returned: when the VM has no error
    changes:
      description: The sentences of what would change, as the module reports them.
      type: list
      elements: str
      returned: when the VM has no error
    exists:
      description: The VM exists now.
      type: bool
      returned: when the VM has no error
    image_needed:
      description: The VM is to be created and needs its system image on the host first.
      type: bool
      returned: when the VM has no error
    status:
      description: The VM's status now (C(Undefined) when it does not exist).
      type: str
      returned: when the VM has no error
    metadata:
      description: The VM's metadata, as the module returns it.
      type: dict
      returned: when the VM exists
    images:
      description: The VM's RBD images, system image first (cluster).
      type: list
      elements: str
      returned: when a cluster VM exists
    options:
      description:
        - The options the VM was planned with (its kept metadata included, C(keep_metadata)
          left out), for the task that converges it.
      type: dict
      returned: when the VM has no error
    error:
      description: Why the VM cannot be converged with these options, in one sentence.
      type: str
      returned: when the VM has a problem
    xml_invalid:
      description: The problem is the VM's definition (not well-formed, or refused by libvirt's schema).
      type: bool
      returned: when the VM's definition is the problem
  sample:
    guest0:
      changed: false
      changes: []
      exists: true
      image_needed: false
      status: Started
listed:
  description: Every VM there is (the module's C(list_vms) answer), each with its name, status and node (and C(persistent) on a hypervisor).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "guest0", "status": "Started", "node": "hv1"}]
cluster:
  description:
    - How the node the task ran on sees the cluster, as M(gridvirt.kvm.cluster_node_info)
      returns it (C(local_node), C(quorum), C(nodes), C(usable_nodes)).
  returned: when O(kind=cluster)
  type: dict
  sample: {"local_node": "hv1", "quorum": true, "usable_nodes": ["hv1"], "nodes": {}}
addresses:
  description: With O(addresses), each NIC's address the batch gives (the form of M(gridvirt.kvm.address)'s RV(gridvirt.kvm.address#module:address)).
  returned: success and O(addresses) given
  type: list
  elements: dict
  sample:
    - {vm: db1, nic: 0, pool: lab, mac: "02:67:76:3a:9c:01", ip: 10.20.0.142, prefix: 24,
       gateway: 10.20.0.1, dns_servers: [], domain: null, fqdn: db1, fixed: false}
addresses_changed:
  description: With O(addresses), whether the batch would change the registry (allocate, change a pool).
  returned: success and O(addresses) given
  type: bool
  sample: false
cpus:
  description: Online CPUs of the host the task ran on (a VM's cpuset must fit in them).
  returned: success
  type: int
  sample: 8
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import backend as cluster
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import request as cluster_req
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.request import (
    batch_argument_spec)
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.request import (
    validated_params)
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.batch import (
    Kind, plan_all, predicted_addresses, with_kept_addresses, with_registry_macs)
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import (
    backend as standalone)
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import (
    request as standalone_req)

KINDS = {
    # cluster_vm's metadata option merges into the VM's metadata; standalone_vm's replaces it.
    "cluster": lambda: Kind(cluster_req.argument_spec(), cluster_req.ClusterRequest,
                            cluster.ClusterBackend, metadata_merges=True),
    "standalone": lambda: Kind(standalone_req.argument_spec(),
                               standalone_req.StandaloneRequest, standalone.StandaloneBackend),
}

# What the deploy role needs to know of the node the cluster's VMs were planned on: whether it
# can deploy them (cluster_node_info's answer), so that one call both plans and picks the node.
DESCRIBE = {"cluster": lambda backend: {"cluster": backend.cluster.node_info()}}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kind=dict(type="str", required=True, choices=sorted(KINDS)),
            vms=dict(type="list", elements="dict", required=True),
            options=dict(type="dict", default={}),
            # Checked by plan() against the address module's batch options (documented there).
            addresses=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    try:
        result = plan(module)
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(changed=False, cpus=os.sysconf("SC_NPROCESSORS_ONLN"), **result)


def plan(module):
    kind, vms, addresses = (module.params[k] for k in ("kind", "vms", "addresses"))
    predicted = {}
    if addresses:
        spec = validated_params(batch_argument_spec(), addresses, rules={})
        changed, given = predicted_addresses(spec, module.run_command)
        vms = with_registry_macs(vms, given)
        if kind == "cluster":
            vms = with_kept_addresses(vms, given)
        predicted = dict(addresses=given, addresses_changed=changed)
    result = plan_all(KINDS[kind](), module.params["options"], vms, module.run_command,
                      module.warn, describe=DESCRIBE.get(kind))
    result.update(predicted)
    return result


if __name__ == "__main__":
    main()
