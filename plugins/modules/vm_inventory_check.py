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
module: vm_inventory_check
short_description: Check the inventory variables of every VM of a deploy at once
version_added: 0.4.0
description:
  - Runs on the controller only (an action plugin). Reads the variables of each VM host named
    in O(vms) and fails with one sentence per wrong VM, naming it and the variable, before
    any VM is touched.
  - Checks the types and choices of the variables of the C(gridvirt.kvm.vm_definition) role
    (its argument specification), the VM's name, its numbers, its additional disks, duplicate
    MAC addresses across the VMs, that the template and image exist, the pinned CPUs against
    O(host_cpus), the placement hosts against O(nodes), colocated VMs against
    O(colocation_group), the hypervisor against O(known_hosts), and the problems a
    M(gridvirt.kvm.deploy_plan) result reports in O(plan).
  - Checks what M(gridvirt.kvm.vm_render) resolved for each VM, given in O(rendered).
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
    platforms: all
options:
  vms:
    description: The VM hosts to check (usually C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  rendered:
    description:
      - What M(gridvirt.kvm.vm_render) resolved for each VM, by VM name (its
        RV(gridvirt.kvm.vm_render#module:vms)), with the state, template, image and cpuset
        checked here. A VM missing from it is checked as having no template, image or cpuset.
    type: dict
  host_cpus:
    description:
      - Online CPUs of the hypervisor, one number for every VM or one per VM name. A cpuset or
        emulatorpin beyond them is refused; 0 or missing skips that check.
    type: raw
  nodes:
    description: The cluster's nodes; a O(vms) C(preferred_host) or C(pinned_host) outside them is refused. Not checked when omitted.
    type: list
    elements: str
  colocation_group:
    description: The VMs a C(colocated_vms) entry may name. Not checked when omitted.
    type: list
    elements: str
  hypervisors:
    description: The hypervisor of each VM, by VM name (standalone VMs), checked against O(known_hosts).
    type: dict
  known_hosts:
    description: The inventory's hosts; a VM whose hypervisor in O(hypervisors) is not one of them is refused. Not checked when omitted.
    type: list
    elements: str
  listings:
    description:
      - The VMs defined on each hypervisor, by hypervisor (what the plans listed). A VM of
        O(vms) found on another hypervisor than its own in O(hypervisors) is returned in
        RV(moves); one found on two hypervisors is refused, naming both.
    type: dict
  plan:
    description: The RV(gridvirt.kvm.deploy_plan#module:vms) of a M(gridvirt.kvm.deploy_plan) result; each VM's error is reported.
    type: dict
  role_variables:
    description:
      - Roles of this collection whose C(vm_variables) entry point lists more VM variables to
        check the same way (C(deploy_vms_cluster) for the cluster-only ones).
    type: list
    elements: str
  role_options:
    description:
      - Roles of this collection whose own options (their C(main) entry point) are checked as
        the task sees them, once; the deploy playbooks run the roles' C(deploy) tasks, which
        Ansible does not check for every VM host.
    type: list
    elements: str
  copy_disk_images:
    description: Images named in C(additional_disks) are copied from the controller, so they must exist there.
    type: bool
    default: false
seealso:
  - module: gridvirt.kvm.deploy_plan
  - module: gridvirt.kvm.vm_render
"""

EXAMPLES = r"""
- name: Check every VM of the play before touching any
  gridvirt.kvm.vm_inventory_check:
    vms: "{{ ansible_play_hosts }}"
    rendered: "{{ vm_definition_render.vms }}"
    host_cpus: 8
  run_once: true
"""

RETURN = r"""
cloud_init_vms:
  description: The VMs of O(vms) whose C(cloud_init) is true (the deploy roles build their seeds).
  returned: success
  type: list
  elements: str
  sample: [web1]
moves:
  description: The VMs of O(vms) found on another hypervisor than their own, with the hypervisor each is on.
  returned: success
  type: dict
  sample: {web1: hv1}
msg:
  description: The problems found, one sentence per VM.
  returned: failure
  type: str
  sample: "vm1: vm_disk /srv/vm1.qcow2 does not exist on the controller."
"""
