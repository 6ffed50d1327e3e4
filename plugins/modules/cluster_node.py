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
module: cluster_node
short_description: Put a Pacemaker cluster node in standby (its VMs move away) or back online
version_added: 0.1.0
description:
  - Maintenance of a hypervisor of the cluster. O(state=standby) sets the node's standby
    attribute (C(crm_attribute --type nodes --name standby --update on)); Pacemaker then
    moves its resources to the other nodes, live for the VMs whose C(allow-migrate) is true
    (C(cluster_vm)'s O(gridvirt.kvm.cluster_vm#module:live_migration)), by a stop and a start
    for the others. With O(wait) the task waits until no VM (resource of
    C(ocf:gridvirt:VirtualDomain)) runs on the node and Pacemaker has finished moving them
    (a VM stopped on the node is started elsewhere), and reports where each went.
  - A VM pinned to the node (O(gridvirt.kvm.cluster_vm#module:pinned_host)) stops and stays
    stopped until the node is back online (a warning names it). A VM that prefers the node
    (O(gridvirt.kvm.cluster_vm#module:preferred_host)) moves back when it is online again.
  - Standby is refused, changing nothing, when the node is not online, when the partition
    of the node the task runs on has no quorum, when the node is in maintenance with VMs
    on it (Pacemaker would leave them alone), or when it is the only node that can take VMs
    and VMs run on it (they would have nowhere to go).
  - O(state=online) removes the standby attribute (the permanent one and a transient one
    that lasts until reboot) and, with O(wait), waits until the node is online and not in
    standby in Pacemaker's status.
  - A node already in the state asked is not changed; with O(wait) a node in standby is
    still waited for until its VMs are gone.
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
  name:
    description:
      - Pacemaker name of the node (as C(crm_mon) and C(cluster_node_info) show it).
    type: str
    required: true
  state:
    description:
      - C(standby) moves the node's VMs away and keeps it from running resources.
      - C(online) lets it run resources again.
    type: str
    required: true
    choices: [standby, online]
  wait:
    description:
      - Wait until the VMs left the node (C(standby)) or until the node is online out of
        standby (C(online)).
      - Without it the task returns once the attribute is set; RV(moved) is then empty.
    type: bool
    default: true
  timeout:
    description:
      - Seconds the wait lasts at most (a whole number, 1 to 86400). When the VMs are still
        on the node then, the task fails naming them; the node stays in standby.
    type: raw
    default: 600
requirements:
  - Pacemaker's command line tools (C(crm_mon), C(crm_node), C(crm_attribute), C(cibadmin))
    on the node the task runs on, which must be a member of the cluster.
notes:
  - Nothing is changed under C(--check); RV(moved) is then empty.
seealso:
  - module: gridvirt.kvm.cluster_node_info
  - module: gridvirt.kvm.cluster_vm
"""

EXAMPLES = r"""
- name: Empty hv2 for maintenance (its VMs move to the other nodes)
  gridvirt.kvm.cluster_node:
    name: hv2
    state: standby
  register: standby

- name: Show where the VMs went
  ansible.builtin.debug:
    msg: "{{ standby.moved | map(attribute='name') | zip(standby.moved | map(attribute='to')) | list }}"

- name: Take hv2 back
  gridvirt.kvm.cluster_node:
    name: hv2
    state: online
"""

RETURN = r"""
node:
  description: The node after the task (in check mode, before it), as
    C(gridvirt.kvm.cluster_node_info) reports a node.
  returned: success
  type: dict
  contains:
    online:
      description: The node is a member of the cluster now.
      type: bool
      returned: success
    standby:
      description: The node is in standby (set by an operator or by a failure).
      type: bool
      returned: success
    maintenance:
      description: The node is in maintenance.
      type: bool
      returned: success
    usable:
      description: The node can take VMs (online, neither in standby nor in maintenance,
        not unclean, pending or shutting down).
      type: bool
      returned: success
    type:
      description: C(member) for a cluster node, C(remote) for a Pacemaker Remote node.
      type: str
      returned: success
    resources_running:
      description: Number of resources running on the node.
      type: int
      returned: success
  sample: {online: true, standby: true, maintenance: false, usable: false, type: member,
           resources_running: 0}
moved:
  description: The VMs that left the node during the wait, and where they run now.
  returned: O(state=standby)
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
      returned: success
    from:
      description: The node (O(name)).
      type: str
      returned: success
    to:
      description: Node the VM runs on now; null when it stopped (a VM pinned to the node, or
        one no other node can take).
      type: str
      returned: success
    live:
      description: The VM moved by a live migration (its C(allow-migrate) is true).
      type: bool
      returned: success
  sample: [{name: rtu1, from: hv2, to: hv1, live: true}]
changes:
  description: What the task changed (or would change in check mode), one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["put node hv2 in standby"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.cluster_nodes import (
    NodeMaintenance)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.spec import (
    MAX_WAIT_SECONDS, whole_number)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", required=True, choices=["standby", "online"]),
            wait=dict(type="bool", default=True),
            timeout=dict(type="raw", default=600),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        p["timeout"] = whole_number(p["timeout"], "timeout", 1, MAX_WAIT_SECONDS)
        result = NodeMaintenance(module.run_command, module.check_mode, module.warn).run(
            p["name"], p["state"], p["wait"], p["timeout"])
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
