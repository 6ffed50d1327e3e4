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
module: address_info
short_description: Report the address registry's pools and addresses, and allocations whose VM is gone
version_added: 0.2.0
description:
  - Reads the address registry once and returns its pools, each with its use, and its
    addresses, filtered by O(pool) or O(vm).
  - With O(orphans=true), also the allocations whose VM exists neither in the cluster
    (O(cluster)) nor on any of the O(hypervisors), such as a VM removed behind Ansible's back.
author:
  - gridvirt.kvm contributors (@gridvirt)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - gridvirt.kvm.address_registry
  - gridvirt.kvm.address_fleet
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  pool:
    description:
      - Report this pool and its addresses only.
    type: str
  vm:
    description:
      - Report this VM's addresses only.
    type: str
  orphans:
    description:
      - Also return RV(orphans). The VMs are listed from O(cluster) and O(hypervisors); a source
        that does not answer fails the task (otherwise every VM on it would look gone).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Every pool and address
  gridvirt.kvm.address_info:
  register: addresses

- name: Allocations whose VM is gone from the cluster and the two standalone hosts
  gridvirt.kvm.address_info:
    orphans: true
    cluster: {}
    hypervisors:
      - qemu:///system
      - qemu+ssh://root@hv2/system
  register: registry

- name: Release them
  gridvirt.kvm.address:
    vm: "{{ item }}"
    state: absent
  loop: "{{ registry.orphans | map(attribute='vm') | unique }}"
"""

RETURN = r"""
pools:
  description: The pools (only O(pool) when given), sorted by name.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The pool's name.
      type: str
      returned: success
    cidr:
      description: Its network.
      type: str
      returned: success
    ranges:
      description: The addresses it hands out.
      type: list
      elements: str
      returned: success
    gateway:
      description: Its gateway, or null.
      type: str
      returned: success
    dns_servers:
      description: Its DNS servers.
      type: list
      elements: str
      returned: success
    domain:
      description: Its domain, or null.
      type: str
      returned: success
    mac_prefix:
      description: The prefix of its generated MACs.
      type: str
      returned: success
    release_hold:
      description: Seconds a released address is kept out of reuse.
      type: int
      returned: success
    size:
      description: Number of addresses of its ranges.
      type: int
      returned: success
    used:
      description: Number of its addresses allocated.
      type: int
      returned: success
    free:
      description: Number of addresses of its ranges not allocated.
      type: int
      returned: success
  sample:
    - {name: lab, cidr: 10.20.0.0/24, ranges: [10.20.0.100-10.20.0.199], gateway: 10.20.0.1,
       dns_servers: [10.20.0.1], domain: lab.example, mac_prefix: "02:67:76",
       release_hold: 2592000, size: 100, used: 2, free: 98}
addresses:
  description:
    - The allocated addresses, sorted by VM and NIC, each as M(gridvirt.kvm.address) returns
      it (C(vm), C(nic), C(pool), C(mac), C(ip), C(prefix), C(gateway), C(dns_servers),
      C(domain), C(fqdn), C(fixed)).
  returned: success
  type: list
  elements: dict
  sample:
    - {vm: db1, nic: 0, pool: lab, mac: "02:67:76:3a:9c:01", ip: 10.20.0.142, prefix: 24,
       gateway: 10.20.0.1, dns_servers: [10.20.0.1], domain: lab.example,
       fqdn: db1.lab.example, fixed: false}
orphans:
  description: The addresses (same form) whose VM exists neither in the cluster nor on the hypervisors.
  returned: success and O(orphans=true)
  type: list
  elements: dict
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils._address import registry
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.pools import (
    check_pool_name)
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.request import (
    info_argument_spec, open_store)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.fleet_listing import (
    existing_vm_names)


def report(state, pool_name, vm):
    pools = [dict(pool.definition, **registry.pool_usage(state, pool))
             for name, pool in sorted(state.pools().items())
             if not pool_name or name == pool_name]
    return dict(pools=pools, addresses=registry.addresses(state, pool_name, vm))


def run(module):
    params = module.params
    pool_name = check_pool_name(params["pool"]) if params.get("pool") else None
    vm = spec.validate_vm_name(params["vm"]) if params.get("vm") else None
    store = open_store(params["registry"], module.run_command)
    try:
        result = store.read(lambda state: report(state, pool_name, vm))
    finally:
        store.close()
    if params["orphans"]:
        existing = existing_vm_names(params["cluster"], params["hypervisors"],
                                     module.run_command, params["registry"]["connect_timeout"])
        result["orphans"] = [a for a in result["addresses"] if a["vm"] not in existing]
    return dict(changed=False, **result)


def main():
    module = AnsibleModule(argument_spec=info_argument_spec(), supports_check_mode=True)
    try:
        module.exit_json(**run(module))
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)


if __name__ == "__main__":
    main()
