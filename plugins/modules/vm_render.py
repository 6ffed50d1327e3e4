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
module: vm_render
short_description: Render the domain XML of every VM of a deploy at once
version_added: 0.7.1
description:
  - Runs on the controller only (an action plugin), once for the play (C(run_once)). For each
    VM host named in O(vms), reads its inventory variables, resolves its state, CPUs,
    template and image, and renders its domain XML, in one process.
  - The state is C(vm_state), else SEAPATH's switches (C(enable=false) gives C(disabled),
    C(nostart=true) gives C(present)), else C(running).
  - The template is C(xml_path) (a finished XML file, read as it is), else C(vm_template),
    else O(default_template). A relative template or image path is taken from the
    inventory's directory when the file is there, else from the playbook's.
  - The template sees the VM's variables, C(vm) (the same variables as one mapping, which
    the collection's template uses), C(addresses) (the VM's entries of O(addresses)),
    C(cloud_init_seed) and C(cloud_init_seed_rbd) (where the VM's cloud-init seed is, when
    its C(cloud_init) is true).
  - A VM whose state is C(absent), or whose template does not exist, gets an empty XML;
    M(gridvirt.kvm.vm_inventory_check) names the missing template.
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
    description: The VM hosts to render (usually C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  disks_directory:
    description: Directory of C(<vm>.qcow2) images, for VMs without C(vm_disk). Empty for none.
    type: str
    default: ""
  disk_copy:
    description:
      - The images are on the controller (true, relative paths are resolved there) or
        already on the hypervisor (false, taken as they are).
    type: bool
    default: true
  seed_rbd_pool:
    description: Ceph pool of the cluster VMs' seeds; with it, a seed is the RBD image C(seed_<vm>) instead of a file.
    type: str
    default: ""
  default_template:
    description: Template of VMs that have neither C(vm_template) nor C(xml_path).
    type: path
    required: true
  addresses:
    description:
      - The NICs' addresses from the address registry (the RV(gridvirt.kvm.address#module:address) form, each with C(vm)
        and C(nic)); each VM's template sees its own.
    type: list
    elements: dict
    default: []
seealso:
  - module: gridvirt.kvm.vm_inventory_check
"""

EXAMPLES = r"""
- name: Render every VM of the play
  gridvirt.kvm.vm_render:
    vms: "{{ ansible_play_hosts }}"
    default_template: /srv/templates/vm.xml.j2
  register: vm_definition_render
  run_once: true

- name: Show one VM's XML
  ansible.builtin.debug:
    msg: "{{ vm_definition_render.vms[inventory_hostname].xml }}"
"""

RETURN = r"""
vms:
  description: What was resolved for each VM of O(vms), by VM name.
  returned: success
  type: dict
  contains:
    state:
      description: The VM's state (C(vm_state) or what SEAPATH's switches say).
      type: str
      sample: running
    xml:
      description: The rendered domain XML; empty for an absent VM or a missing template.
      type: str
      sample: "<domain type='kvm'>...</domain>"
    template:
      description: The template or XML file used, as resolved; empty for O(default_template).
      type: str
      sample: /srv/inventory/templates/vm.xml.j2
    image:
      description: The VM's system image, as resolved; empty when it has none.
      type: str
      sample: /srv/images/web1.qcow2
    disk_copy:
      description: Whether the image is copied from the controller (O(disk_copy)).
      type: bool
      sample: true
    cpuset:
      description: The CPUs of C(cpuset) as numbers (empty when unset or not numbers).
      type: list
      elements: int
      sample: [2, 3]
  sample: {web1: {state: running, xml: "<domain>...</domain>", template: "", image: /srv/web1.qcow2, disk_copy: true, cpuset: []}}
msg:
  description: The VM whose XML could not be rendered, and why.
  returned: failure
  type: str
  sample: "web1: its domain XML could not be rendered: 'memory' is undefined"
"""
