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
module: network_hosts
short_description: Keep a libvirt network's DHCP reservations and DNS hosts equal to a list
version_added: 0.2.0
description:
  - Makes the static DHCP hosts (C(<ip><dhcp><host mac ip name>)) and the DNS hosts
    (C(<dns><host ip><hostname>)) of a libvirt network those of O(hosts), through libvirt's
    network update API, in the network's definition and, when it runs, in the running network
    (its dnsmasq is updated by libvirt without a restart).
  - The address_services role passes the address registry's reservations.
  - An entry that shares a MAC, an IP or a name with one of O(hosts) but differs from it is
    replaced; other entries are removed only with O(purge=true).
author:
  - gridvirt.kvm contributors (@gridvirt)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - gridvirt.kvm.libvirt
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  network:
    description:
      - Name of the libvirt network.
    type: str
    required: true
  hosts:
    description:
      - The reservations. Two of them may share neither a MAC, an IP nor a name.
    type: list
    elements: dict
    required: true
    suboptions:
      mac:
        description:
          - MAC address of the NIC; required for an IPv4 address (libvirt matches IPv6
            reservations by name).
        type: str
      ip:
        description:
          - Its address, in one of the network's subnets.
        type: str
        required: true
      name:
        description:
          - Its host name (one label), sent over DHCP and answered in DNS.
        type: str
        required: true
      fqdn:
        description:
          - Its fully qualified name, also answered in DNS; default O(hosts[].name).
        type: str
  purge:
    description:
      - Also remove the DHCP and DNS hosts of the network that are not in O(hosts) (the
        network's hosts are then exactly those of O(hosts)).
    type: bool
    default: false
notes:
  - libvirt's dnsmasq keeps the name of a lease in DNS until the lease ends, even after the
    DHCP host is removed.
"""

EXAMPLES = r"""
- name: Serve the registry's reservations on the libvirt network "default"
  gridvirt.kvm.network_hosts:
    network: default
    purge: true
    hosts:
      - {mac: "02:67:76:12:34:56", ip: 192.168.122.50, name: web1, fqdn: web1.lab.example}
"""

RETURN = r"""
changes:
  description: One sentence per entry added or removed, naming the copy of the network
    changed (its definition or the running network).
  returned: always
  type: list
  elements: str
  sample: ["definition of libvirt network default: added DHCP host 02:67:76:12:34:56 192.168.122.50 web1"]
dhcp_hosts:
  description: The network's DHCP hosts after the task (predicted in check mode), sorted by IP.
  returned: success
  type: list
  elements: dict
  contains:
    mac:
      description: MAC address, or null.
      type: str
      returned: success
    ip:
      description: Address.
      type: str
      returned: success
    name:
      description: Host name, or null.
      type: str
      returned: success
  sample: [{mac: "02:67:76:12:34:56", ip: 192.168.122.50, name: web1}]
dns_hosts:
  description: The network's DNS hosts after the task (predicted in check mode), sorted by IP.
  returned: success
  type: list
  elements: dict
  contains:
    ip:
      description: Address.
      type: str
      returned: success
    hostnames:
      description: Its names.
      type: list
      elements: str
      returned: success
  sample: [{ip: 192.168.122.50, hostnames: [web1.lab.example, web1]}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils import libvirt_network
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import Hypervisor

ARGUMENT_SPEC = dict(
    network=dict(type="str", required=True),
    hosts=dict(type="list", elements="dict", required=True, options=dict(
        mac=dict(type="str"),
        ip=dict(type="str", required=True),
        name=dict(type="str", required=True),
        fqdn=dict(type="str"),
    )),
    purge=dict(type="bool", default=False),
)
ARGUMENT_SPEC.update(spec.libvirt_argument_spec())


def run(module):
    params = module.params
    hosts = libvirt_network.checked_hosts(params["hosts"])
    timeout = spec.validate_connect_timeout(params["connect_timeout"])
    hypervisor = Hypervisor(params["uri"], module.run_command, timeout=timeout)
    try:
        return libvirt_network.converge(hypervisor.conn, params["uri"], params["network"],
                                        hosts, params["purge"], module.check_mode)
    finally:
        hypervisor.close()


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        outcome = run(module)
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    result = dict(changed=outcome["changed"], changes=outcome["changes"],
                  dhcp_hosts=outcome["after"].get("dhcp_hosts", []),
                  dns_hosts=outcome["after"].get("dns_hosts", []))
    if module._diff:
        result["diff"] = dict(before=libvirt_network.diff_text(outcome["before"]),
                              after=libvirt_network.diff_text(outcome["after"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
