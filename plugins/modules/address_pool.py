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
module: address_pool
short_description: Create, change or remove a pool of the address registry
version_added: 0.2.0
description:
  - A pool is a network (IPv4 or IPv6) whose addresses the registry hands out to VM NICs
    (M(gridvirt.kvm.address)), with the gateway, DNS servers and domain the guests get, and the
    prefix of the MACs it generates.
  - Pools may not overlap. A change that would leave allocated addresses outside the pool is
    refused, naming them; removing a pool is refused while addresses are allocated in it.
  - Bad input changes nothing; check mode writes nothing and predicts C(changed).
author:
  - gridvirt.kvm contributors (@gridvirt)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - gridvirt.kvm.address_registry
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  name:
    description:
      - The pool's name (1 to 63 letters, digits, C(.), C(_) or C(-)).
    type: str
    required: true
  cidr:
    description:
      - The pool's network, e.g. C(10.20.0.0/24) or C(fd00:20::/64). Required with
        O(state=present).
    type: str
  ranges:
    description:
      - The addresses handed out, each C(first-last), one address or a CIDR inside O(cidr).
      - Default the whole network. The network and broadcast addresses and the gateway are
        never handed out; fixed addresses (M(gridvirt.kvm.address) O(gridvirt.kvm.address#module:ip))
        may lie anywhere in O(cidr).
    type: list
    elements: str
  gateway:
    description:
      - The default gateway the guests get.
    type: str
  dns_servers:
    description:
      - DNS servers the guests get.
    type: list
    elements: str
    default: []
  domain:
    description:
      - DNS domain of the pool's VMs; their FQDN is C(<vm>.<domain>).
    type: str
  mac_prefix:
    description:
      - First octets (1 to 5) of the MACs generated for the pool's NICs. Default C(02:67:76),
        locally administered and unicast, not QEMU's C(52:54:00).
    type: str
  release_hold:
    description:
      - Seconds a released address is kept out of reuse (unless nothing else is free), so a VM
        removed and deployed again gets its address back.
    type: int
    default: 2592000
  state:
    description:
      - C(present) creates or changes the pool, C(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The lab network's pool
  gridvirt.kvm.address_pool:
    name: lab
    cidr: 10.20.0.0/24
    ranges: [10.20.0.100-10.20.0.199]
    gateway: 10.20.0.1
    dns_servers: [10.20.0.1]
    domain: lab.example
  delegate_to: "{{ address_registry_host }}"
  run_once: true

- name: The same pool in the cluster's registry
  gridvirt.kvm.address_pool:
    name: lab
    cidr: 10.20.0.0/24
    registry:
      backend: rados
      pool: rbd
"""

RETURN = r"""
pool:
  description: The pool as the registry holds it, with its use. Absent after a removal.
  returned: success and O(state=present)
  type: dict
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
      description: The addresses it hands out, C(first-last) (network, broadcast and gateway left out).
      type: list
      elements: str
      returned: success
    gateway:
      description: The gateway, or null.
      type: str
      returned: success
    dns_servers:
      description: The DNS servers.
      type: list
      elements: str
      returned: success
    domain:
      description: The domain, or null.
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
      description: Number of addresses in its ranges.
      type: int
      returned: success
    used:
      description: Number of its addresses allocated (fixed ones outside the ranges included).
      type: int
      returned: success
    free:
      description: Number of addresses of its ranges not allocated.
      type: int
      returned: success
  sample:
    name: lab
    cidr: 10.20.0.0/24
    ranges: [10.20.0.100-10.20.0.199]
    gateway: 10.20.0.1
    dns_servers: [10.20.0.1]
    domain: lab.example
    mac_prefix: "02:67:76"
    release_hold: 2592000
    size: 100
    used: 2
    free: 98
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils._address import registry
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.pools import (
    check_pool_name)
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.request import (
    open_store, pool_argument_spec, pool_request)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def converge(state, name, pool):
    """(changed, before, after) of the pool named ``name`` made ``pool`` (None: removed)."""
    if pool is None:
        changed, before = registry.remove_pool(state, name)
        return changed, before, None
    changed, before = registry.put_pool(state, pool)
    after = dict(pool.definition, **registry.pool_usage(state, pool))
    return changed, before, after


def run(module):
    params = module.params
    name = check_pool_name(params["name"])
    pool = pool_request(params)
    store = open_store(params["registry"], module.run_command)
    try:
        changed, before, after = store.transact(lambda s: converge(s, name, pool),
                                                check_mode=module.check_mode)
    finally:
        store.close()
    result = dict(changed=changed, diff=dict(before=before or {}, after=_definition(after)))
    if after is not None:
        result["pool"] = after
    return result


def main():
    module = AnsibleModule(argument_spec=pool_argument_spec(), supports_check_mode=True)
    try:
        module.exit_json(**run(module))
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)


def _definition(after):
    if after is None:
        return {}
    return dict((k, v) for k, v in after.items() if k not in ("size", "used", "free"))


if __name__ == "__main__":
    main()
