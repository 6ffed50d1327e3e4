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
module: address_import
short_description: Record in the address registry the MACs and IPs that existing VMs already use
version_added: 0.2.0
description:
  - Reads every VM of the cluster (O(cluster), the definition each runs) and of the libvirt
    hosts at O(hypervisors), and records each NIC's MAC in the registry as a fixed address of
    that NIC, so the registry never hands it to another VM. The IP a libvirt network of those
    hosts reserves for the MAC (C(<dhcp><host mac ip>)) is recorded too, in the registry's pool
    that holds it.
  - A MAC used by two NICs, or one the registry already gives another NIC, is refused with a
    sentence naming both, and nothing is recorded. A rerun changes nothing.
  - Run it once, after the pools exist and before the deploy roles use the registry for VMs that
    were deployed without it.
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
options: {}
"""

EXAMPLES = r"""
- name: Record what the cluster's and the standalone hosts' VMs use
  gridvirt.kvm.address_import:
    cluster: {}
    hypervisors:
      - qemu+ssh://root@hv3/system
      - qemu+ssh://root@hv4/system
  delegate_to: "{{ address_registry_host }}"
  run_once: true
"""

RETURN = r"""
addresses:
  description: Every NIC found, with the address now recorded for it (the form M(gridvirt.kvm.address) returns).
  returned: success
  type: list
  elements: dict
  sample:
    - {vm: db1, nic: 0, pool: lab, mac: "52:54:00:3a:9c:01", ip: 10.20.0.42, prefix: 24,
       gateway: 10.20.0.1, dns_servers: [10.20.0.1], domain: lab.example,
       fqdn: db1.lab.example, fixed: true}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils._address import registry
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.request import (
    import_argument_spec, open_store)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.fleet_listing import (
    fleet_vm_macs)


def run(module):
    params = module.params
    vm_macs, reserved = fleet_vm_macs(params["cluster"], params["hypervisors"],
                                      module.run_command, params["registry"]["connect_timeout"])
    store = open_store(params["registry"], module.run_command)
    try:
        changed, addresses = store.transact(
            lambda state: registry.import_existing(state, vm_macs, reserved),
            check_mode=module.check_mode)
    finally:
        store.close()
    return dict(changed=changed, addresses=addresses)


def main():
    module = AnsibleModule(argument_spec=import_argument_spec(), supports_check_mode=True)
    try:
        module.exit_json(**run(module))
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)


if __name__ == "__main__":
    main()
