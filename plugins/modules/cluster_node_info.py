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
module: cluster_node_info
short_description: Report the Pacemaker cluster's nodes as the node the task runs on sees them
version_added: 0.1.0
description:
  - Reads Pacemaker's XML status (C(crm_mon --output-as=xml)) on the node the task runs on and
    reports every node of the cluster, which one is the local node, and whether each can take
    VMs (online, not in standby, not in maintenance).
  - The deploy roles use it to pick the node they deploy through and to refuse one in standby
    or maintenance.
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
options: {}
requirements:
  - Pacemaker's command line tools (C(crm_mon), C(crm_node)) on the node.
"""

EXAMPLES = r"""
- name: Read the cluster's nodes
  gridvirt.kvm.cluster_node_info:
  register: cluster

- name: Refuse to deploy through a node that cannot take VMs
  ansible.builtin.assert:
    that: cluster.nodes[cluster.local_node].usable
    fail_msg: "{{ cluster.local_node }} is in standby or maintenance"
"""

RETURN = r"""
local_node:
  description: Pacemaker's name of the node the task ran on.
  returned: success
  type: str
  sample: hv1
quorum:
  description: Whether the partition of the local node has quorum.
  returned: success
  type: bool
  sample: true
nodes:
  description: Every node of the cluster, by Pacemaker name.
  returned: success
  type: dict
  contains:
    online:
      description: The node is a member of the cluster now.
      type: bool
      returned: success
    standby:
      description: The node is in standby (it runs no resources), set by an operator or by a failure (C(standby_onfail)).
      type: bool
      returned: success
    maintenance:
      description: The node is in maintenance (Pacemaker leaves its resources alone).
      type: bool
      returned: success
    usable:
      description:
        - Online, neither in standby nor in maintenance, and not unclean, pending or shutting
          down, so it can take VMs. Whether its partition has quorum is RV(quorum).
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
  sample:
    hv1: {online: true, standby: false, maintenance: false, usable: true, type: member,
          resources_running: 3}
usable_nodes:
  description: Names of the nodes that can take VMs, sorted.
  returned: success
  type: list
  elements: str
  sample: [hv1, hv2]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    try:
        info = pcmk.Cluster(module.run_command).node_info()
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(changed=False, **info)


if __name__ == "__main__":
    main()
