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
module: address
short_description: Allocate or release the MAC and IP address of a VM's NIC
version_added: 0.2.0
description:
  - One address per (VM, NIC) in the address registry. A NIC with a O(pool) gets a MAC and an IP
    of that pool; without one, a MAC only. MACs are unique across the whole registry, IPs
    within a pool.
  - The first candidate is derived from the VM's name and the NIC's index, so a rerun, or a VM
    removed and deployed again, gets the same MAC and IP (a released address is kept out of
    reuse for the pool's C(release_hold), unless nothing else is free).
  - Allocation is atomic. Tasks allocating at the same time (from any process, or any cluster
    node with the C(rados) backend) never get the same address.
  - O(ip) and O(mac) reserve fixed addresses (for example the ones existing VMs already use);
    one allocated to another NIC is refused with its owner's name.
  - Bad input (an unknown pool, an IP outside it, its gateway or broadcast address, a
    multicast or malformed MAC) is refused with a sentence and changes nothing; check mode
    writes nothing and predicts C(changed).
author:
  - gridvirt.kvm contributors (@gridvirt)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - gridvirt.kvm.address_registry
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  vm:
    description:
      - The VM's name. One of O(vm) and O(nics) is required.
    type: str
  nic:
    description:
      - The NIC's index in the VM's definition (0 to 63). Default 0 with O(state=present); with
        O(state=absent) and no O(nic), every address of the VM is released.
    type: int
  pool:
    description:
      - The pool whose IP the NIC gets. Omitted, the NIC gets a MAC only.
    type: str
  ip:
    description:
      - A fixed IP address of O(pool) (anywhere in its network, not its gateway, network or
        broadcast address).
    type: str
  mac:
    description:
      - A fixed MAC address (unicast).
    type: str
  state:
    description:
      - C(present) allocates (or returns) the NIC's address, C(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  nics:
    description:
      - Many NICs at once, in one transaction (the deploy roles' single call per play),
        instead of O(vm). Each item takes O(vm), O(nic), O(pool), O(ip) and O(mac) as above.
        Returns RV(addresses).
    type: list
    elements: dict
    suboptions:
      vm:
        description: The VM's name.
        type: str
        required: true
      nic:
        description: The NIC's index.
        type: int
        default: 0
      pool:
        description: The pool whose IP the NIC gets; omitted, a MAC only.
        type: str
      ip:
        description: A fixed IP of O(nics[].pool).
        type: str
      mac:
        description: A fixed MAC.
        type: str
  expect:
    description:
      - With O(nics), the addresses the batch must give, as RV(addresses) lists them (the
        deploy roles pass those their plan read). When the registry gives others (another run
        allocated in between), the task fails and nothing is written.
    type: list
    elements: dict
  pools:
    description:
      - With O(nics), pools created or changed first, in the same transaction; each item takes
        the options of M(gridvirt.kvm.address_pool) (C(name), C(cidr), C(ranges), C(gateway),
        C(dns_servers), C(domain), C(mac_prefix), C(release_hold)).
    type: list
    elements: dict
    suboptions:
      name:
        description: The pool's name.
        type: str
        required: true
      cidr:
        description: Its network.
        type: str
      ranges:
        description: The addresses it hands out.
        type: list
        elements: str
      gateway:
        description: Its gateway.
        type: str
      dns_servers:
        description: Its DNS servers.
        type: list
        elements: str
        default: []
      domain:
        description: Its domain.
        type: str
      mac_prefix:
        description: The prefix of its generated MACs.
        type: str
      release_hold:
        description: Seconds a released address is kept out of reuse.
        type: int
        default: 2592000
"""

EXAMPLES = r"""
- name: The first NIC of db1 gets an address of pool lab
  gridvirt.kvm.address:
    vm: db1
    pool: lab
  register: db1_address

- name: A fixed address, reserved
  gridvirt.kvm.address:
    vm: gw1
    nic: 1
    pool: lab
    ip: 10.20.0.10
    mac: "52:54:00:aa:bb:cc"

- name: A play's pools and NICs in one call
  gridvirt.kvm.address:
    pools:
      - {name: lab, cidr: 10.20.0.0/24, gateway: 10.20.0.1}
    nics:
      - {vm: db1, nic: 0, pool: lab}
      - {vm: db1, nic: 1}
      - {vm: web1, nic: 0, pool: lab, ip: 10.20.0.20}
  register: play_addresses

- name: Release every address of db1
  gridvirt.kvm.address:
    vm: db1
    state: absent
"""

RETURN = r"""
address:
  description: The NIC's address.
  returned: success and O(state=present)
  type: dict
  contains:
    vm:
      description: The VM.
      type: str
      returned: success
    nic:
      description: The NIC's index.
      type: int
      returned: success
    pool:
      description: The pool, or null for a MAC only.
      type: str
      returned: success
    mac:
      description: The MAC address.
      type: str
      returned: success
    ip:
      description: The IP address, or null for a MAC only.
      type: str
      returned: success
    prefix:
      description: The prefix length of the pool's network, or null.
      type: int
      returned: success
    gateway:
      description: The pool's gateway, or null.
      type: str
      returned: success
    dns_servers:
      description: The pool's DNS servers.
      type: list
      elements: str
      returned: success
    domain:
      description: The pool's domain, or null.
      type: str
      returned: success
    fqdn:
      description: C(<vm>.<domain>), or the VM's name without a domain.
      type: str
      returned: success
    fixed:
      description: Whether the MAC or IP was given (O(mac), O(ip)) rather than allocated.
      type: bool
      returned: success
  sample:
    vm: db1
    nic: 0
    pool: lab
    mac: "02:67:76:3a:9c:01"
    ip: 10.20.0.142
    prefix: 24
    gateway: 10.20.0.1
    dns_servers: [10.20.0.1]
    domain: lab.example
    fqdn: db1.lab.example
    fixed: false
addresses:
  description: With O(nics), each NIC's address in the form of RV(address), in the order of O(nics).
  returned: success and O(nics) given
  type: list
  elements: dict
  sample:
    - {vm: db1, nic: 0, pool: lab, mac: "02:67:76:3a:9c:01", ip: 10.20.0.142, prefix: 24,
       gateway: 10.20.0.1, dns_servers: [10.20.0.1], domain: lab.example,
       fqdn: db1.lab.example, fixed: false}
released:
  description: The addresses released, in the form of RV(address).
  returned: success and O(state=absent)
  type: list
  elements: dict
  sample:
    - {vm: db1, nic: 0, pool: lab, mac: "02:67:76:3a:9c:01", ip: 10.20.0.142, prefix: 24,
       gateway: 10.20.0.1, dns_servers: [10.20.0.1], domain: lab.example,
       fqdn: db1.lab.example, fixed: false}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils._address import registry
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.request import (
    ADDRESS_RULES, address_argument_spec, address_request, batch_request, open_store)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def allocate(state, ask):
    changed, record = registry.allocate(state, ask)
    pool = state.pool(record["pool"]) if record.get("pool") else None
    return dict(changed=changed, address=registry.describe((ask.vm, ask.nic), record, pool))


def release(state, ask):
    pools = state.pools()
    released = [registry.describe(owner, record, pools.get(record.get("pool") or ""))
                for owner, record in registry.release(state, ask.vm, ask.nic)]
    return dict(changed=bool(released), released=released)


def converge(state, pools, asks, expected):
    changed, addresses = registry.converge(state, pools, asks)
    if expected is not None and addresses != expected:
        # Raised inside the transaction: nothing is written.
        raise VmError("The address registry changed since these addresses were read (another "
                      "run allocated in between): nothing was allocated; run the play again.")
    return dict(changed=changed, addresses=addresses)


def operation_of(params):
    """The registry operation the task asks for, its input checked before any I/O."""
    if params.get("nics") is not None:
        pools, asks = batch_request(params)
        return lambda state: converge(state, pools, asks, params.get("expect"))
    ask = address_request(params)
    act = release if params["state"] == "absent" else allocate
    return lambda state: act(state, ask)


def run(module):
    operation = operation_of(module.params)
    store = open_store(module.params["registry"], module.run_command)
    try:
        return store.transact(operation, check_mode=module.check_mode)
    finally:
        store.close()


def main():
    module = AnsibleModule(argument_spec=address_argument_spec(), supports_check_mode=True,
                           **ADDRESS_RULES)
    try:
        module.exit_json(**run(module))
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)


if __name__ == "__main__":
    main()
