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
module: cluster_vm
short_description: Manage virtual machines of a Pacemaker cluster whose disks live in Ceph RBD
version_added: 0.1.0
description:
  - Creates, updates, starts, stops, moves in and out of Pacemaker, clones, snapshots and
    removes cluster VMs. Their disks are RBD images and they run as Pacemaker resources of
    type C(ocf:gridvirt:VirtualDomain) (installed by the C(gridvirt.kvm.hypervisor) role).
  - The data model is SEAPATH's, so clusters built with SEAPATH's C(cluster_vm) are managed
    without re-creating their VMs. A VM is the RBD group O(name) with the images
    C(system_<name>) and C(data_<name>_<i>); the definition and the VM's intent (placement,
    colocation, constraints, Pacemaker settings) are metadata of C(system_<name>).
  - Declarative with O(state), or SEAPATH's O(command) verbs with SEAPATH's option names.
    Both report the truth in C(changed), change nothing under C(--check) (CIB, RBD and
    libvirt), and show the definition and intent before and after under C(--diff).
  - One mutating run per VM at a time across the cluster (a RADOS lock with a 60 second
    lease, so a killed run blocks the VM for at most a minute).
author:
  - gridvirt.kvm contributors (@gridvirt)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - gridvirt.kvm.purge
  - gridvirt.kvm.hooks
  - gridvirt.kvm.ceph
  - gridvirt.kvm.pacemaker_intent
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
      - Name of the VM. 1 to 63 letters, digits, C(-) or C(_), starting with a letter or
        digit (SEAPATH allows letters and digits only; those names are valid here too).
      - Required except for O(command=list_vms).
    type: str
    aliases: [guest]
  state:
    description:
      - C(present) creates the VM (not started) or updates it, and makes sure it is a
        Pacemaker resource; its power state is left alone.
      - C(running) (alias C(started)) also starts it and waits until Pacemaker reports it
        Started, at most the start timeout. With O(node), the running VM is then moved to
        that node as O(command=migrate) does (a stopped VM is started first, then moved).
      - C(stopped) stops it through Pacemaker (graceful, then forced after O(stop_timeout));
        with O(force=true) it is powered off at once.
      - C(disabled) stops it and removes its resource and constraints from Pacemaker; the VM
        stays in RBD with its intent, and C(present)/C(running) bring it back as it was.
      - C(absent) removes the resource, constraints, group snapshots, group and images. The
        images go to the RBD trash for O(trash_delay) seconds, or are deleted with
        O(purge=true).
      - Mutually exclusive with O(command).
    type: str
    choices: [present, running, started, stopped, disabled, absent]
  command:
    description:
      - SEAPATH-style verb with SEAPATH's option names. Mutually exclusive with O(state).
      - C(create) converges like O(state=running), or C(present) with O(nostart=true), or
        C(disabled) with O(enable=false). On an existing VM it updates it in place (SEAPATH
        fails instead) and re-creates it only with O(force=true).
      - C(remove) is O(state=absent). C(start), C(stop), C(enable) and C(disable) need an
        existing VM. C(status) and C(list_vms) only read.
      - C(clone) creates O(name) from O(src_name).
      - C(create_snapshot), C(remove_snapshot), C(rollback_snapshot) and C(list_snapshots)
        work on O(snapshot_name); C(purge_image) deletes snapshots by O(purge_number),
        O(purge_keep) or O(purge_date), or all of them when none is given.
      - C(list_metadata), C(get_metadata) (O(metadata_name)) and C(set_metadata) (merges
        O(metadata)) work on the metadata of the system image.
      - C(define_colocation) keeps the VM with O(colocated_vms) (O(strong)); C(add_pacemaker_remote)
        and C(remove_pacemaker_remote) make the guest a Pacemaker guest node or not.
      - C(migrate) moves the running VM to O(node) through Pacemaker (not a SEAPATH verb).
        C(crm_resource --move) adds a temporary C(cli-prefer-<name>) constraint, Pacemaker
        migrates the VM live when O(live_migration) is on (C(allow-migrate)) or stops it and
        starts it there, the task waits until it is Started on O(node), and then always runs
        C(crm_resource --clear), which removes only the temporary C(cli-*) constraints (the
        VM's own constraints stay as they were), also when the move failed or timed out.
      - The wait lasts at most the migrate_to timeout (or the stop timeout when longer) plus
        the start timeout, longer while Pacemaker's controller is still busy (up to three
        times); it ends early when the controller is idle with the VM elsewhere.
      - C(migrate) refuses, changing nothing, when O(node) is not a cluster node, is offline,
        in standby, in maintenance or on its way out, when the partition has no quorum, when
        the VM is not running or is being stopped, when it is pinned to another node
        (O(pinned_host)), or when it prefers another node (O(preferred_host), as it would move
        back as soon as the temporary constraint is cleared). A VM already on O(node) is
        not changed. When Pacemaker does not place it on O(node) (a strong colocation or an
        anti-colocation forbids it, say) the task fails naming the constraints that involve
        the VM, after clearing the temporary constraint.
      - C(import) makes a standalone VM of the host of O(src_uri) a cluster VM (see
        O(src_uri)).
    type: str
    choices: [create, remove, list_vms, start, stop, status, clone, enable, disable,
              list_snapshots, create_snapshot, remove_snapshot, rollback_snapshot,
              purge_image, list_metadata, get_metadata, set_metadata, define_colocation,
              add_pacemaker_remote, remove_pacemaker_remote, migrate, import]
  node:
    description:
      - Cluster node (Pacemaker name) to move the VM to, with O(command=migrate) (required
        there) or O(state=running). Refused with any other state or command.
    type: str
  xml:
    description:
      - libvirt domain XML of the VM (the document, not a path), without disk devices (the
        module adds the RBD network disks with the monitors, the Ceph user and the libvirt
        secret). Its C(<name>) becomes O(name); the UUID is kept when given, else derived
        from the name; NICs without a MAC get a stable one.
      - Required to create a VM. On an existing VM a changed XML updates the stored
        definition in place; the running guest gets it at its next restart (see O(apply)).
    type: str
  system_image:
    description:
      - qcow2 or raw image on the node the task runs on, imported into C(system_<name>).
      - Required to create a VM. On an existing VM it is used only with O(force=true).
    type: path
  data_disk:
    description:
      - qcow2 or raw image imported as the first data disk (C(data_<name>_1)), before
        O(additional_disks). SEAPATH accepts this option and ignores it.
    type: path
  additional_disks:
    description:
      - Extra data disks, in order, after O(data_disk). Each item is an absolute path of a
        qcow2 or raw image on the node, imported (SEAPATH's deploy role passes the images it
        copied there), a size for an empty disk (C(10G), C(512M), or bytes), or a dict with
        exactly one of C(image) or C(size).
      - Disks added to the list are created (or imported) and attached to an existing VM;
        disks are never removed by shortening the list.
    type: list
    elements: raw
  disk_bus:
    description:
      - Bus of the VM's disks. Defaults to C(virtio) for a new VM and to the current bus for
        an existing one.
    type: str
    choices: [virtio, scsi, sata, ide]
  force:
    description:
      - With O(system_image) on an existing VM, re-create its disks. The new images are
        imported under temporary names while the VM runs on; only when they are complete is
        the VM stopped, its images swapped for the new ones (the old ones go to the trash
        with its snapshots) and the VM started again. A failure before the swap leaves the
        old VM as it was.
      - With O(state=stopped) or O(command=stop), power the guest off at once.
    type: bool
    default: false
  enable:
    description:
      - With O(command=create), C(false) creates the VM without adding it to Pacemaker
        (SEAPATH's option).
    type: bool
    default: true
  nostart:
    description:
      - With O(command=create), O(command=clone) or O(command=enable), do not start the VM.
    type: bool
    default: false
  apply:
    description:
      - What to do when a running VM's stored definition differs from the one it started
        with. C(none) leaves it running and returns RV(restart_required=true); C(restart)
        stops and starts it through Pacemaker.
    type: str
    choices: [none, restart]
    default: none
  src_name:
    description:
      - Source VM of O(command=clone); with O(command=import), the standalone VM's name on
        the source host (default O(name)).
    type: str
  src_uri:
    description:
      - With O(command=import), the libvirt URI of the standalone host the VM is on, as this
        node reaches it (C(qemu+ssh://[user@]host/system), C(qemu+tcp://host/system),
        C(qemu+tls://host/system), or C(qemu:///system) for this node's own libvirt), with
        no URI parameter but those of authentication. Required with O(command=import).
      - The import makes the standalone VM a cluster VM. Checked before anything changes,
        the VM must be there with self-contained qcow2 or raw pool volumes (not a linked
        clone) and without libvirt snapshots (the cluster's are RBD group snapshots). The
        cluster must have no VM, image or resource of its name.
      - The source is then shut down (powered off after 120 seconds). Each disk is streamed
        from the source's libvirt into RBD, SEAPATH's layout (C(system_<name>),
        C(data_<name>_<i>)), with no copy on the node. A qcow2 file is checked like any
        imported image (no backing file, no external data file) before qemu-img converts
        it.
      - The definition keeps the VM's UUID, MACs and the rest, its disks now RBD disks. The
        VM becomes a Pacemaker resource with this task's placement options and constraints,
        started if the source ran. Only once it runs is the source removed (O(remove_source))
        or defined again there, stopped.
      - A failure on the way removes what the import made in RBD and the CIB, and the source
        is defined again and started if it ran. A cluster VM of that name that exists
        already is not changed.
    type: str
  remove_source:
    description:
      - With O(command=import), remove the source VM (its definition and volumes) once the
        cluster VM runs. With V(false) it stays defined there, stopped (refused when the
        source host is a node of the cluster, where its definition would take over the
        cluster VM).
    type: bool
    default: true
  full:
    description:
      - With O(command=clone), copy the images (an independent VM, time proportional to
        the data) instead of the default linked clone.
      - A linked clone hangs from a protected snapshot of each source image (constant time,
        copy-on-write). A running source with several disks is paused for the instant the
        snapshots take, so its disks stay consistent together; a full copy is taken at a
        group snapshot, which is consistent without pausing.
    type: bool
    default: false
  snapshot_name:
    description:
      - Snapshot for the snapshot commands, and the snapshot O(command=clone) starts from.
        1 to 128 letters, digits, C(-), C(_), C(.) or C(:).
      - Snapshots are RBD group snapshots, consistent across all disks of the VM. A rollback
        stops the VM through Pacemaker, rolls every disk back and starts it again if it
        was running; its constraints are kept.
      - Ceph before 19 cannot clone from a group snapshot, so a clone from a snapshot is a
        full copy there (with a warning).
    type: str
  metadata:
    description:
      - Key/value strings stored as metadata of the system image. Keys are letters, digits,
        C(-), C(_) or C(.), may not start with C(_) and may not be C(xml) or C(vm_name).
      - Merged into the existing keys (never removes one). With O(command=clone) it replaces
        the keys the clone would take from its source.
    type: dict
  metadata_name:
    description:
      - Key read by O(command=get_metadata).
    type: str
  purge:
    description:
      - With O(state=absent), O(command=remove) or a forced re-create, delete the images at
        once instead of moving them to the RBD trash. Images that linked clones still use go
        to the trash anyway.
    type: bool
    default: false
  trash_delay:
    description:
      - Seconds removed images stay protected in the RBD trash (C(rbd trash restore) brings
        them back) before a trash purge may delete them (a whole number, 0 to 315360000,
        ten years).
    type: raw
    default: 0
notes:
  - RBD namespaces are not offered, although the RBD store and our resource agent handle
    them, because libvirt 9 (Debian 12) cannot point a guest's disk into an RBD namespace
    (it passes C(namespace/image) to QEMU as the image name).
  - Guests that must run under software emulation use C(<domain type='qemu'>) in O(xml).
  - The resource's operation timeouts bound every wait (start 120 s, stop O(stop_timeout),
    migrate_to O(migrate_to_timeout)), plus one monitor interval.
  - Changing O(xml) of a running VM sets RV(restart_required); Pacemaker options (meta
    attributes, instance attributes, utilization, operation timeouts) apply without a
    restart.
seealso:
  - module: gridvirt.kvm.standalone_vm
"""

EXAMPLES = r"""
- name: Create a VM and run it, preferably on hv1
  gridvirt.kvm.cluster_vm:
    name: rtu1
    state: running
    xml: "{{ lookup('template', 'vm.xml.j2') }}"
    system_image: /var/lib/images/rtu.qcow2
    preferred_host: hv1
    live_migration: true
    pacemaker_utilization:
      cpu: 2
      memory: 2048
    constraints:
      - type: ban
        node: hv3

- name: SEAPATH style, unchanged playbook
  gridvirt.kvm.cluster_vm:
    name: guest0
    command: create
    system_image: my_disk.qcow2
    xml: "{{ lookup('file', 'my_vm_config.xml', errors='strict') }}"
    metadata:
      myMetadata: value

- name: Snapshot, then roll back
  gridvirt.kvm.cluster_vm:
    name: rtu1
    command: "{{ item }}"
    snapshot_name: before-upgrade
  loop: [create_snapshot, rollback_snapshot]

- name: Keep rtu1 and rtu2 together
  gridvirt.kvm.cluster_vm:
    name: rtu1
    command: define_colocation
    colocated_vms: [rtu2]
    strong: true

- name: Move rtu1 to hv2 (live when live_migration is on), through Pacemaker
  gridvirt.kvm.cluster_vm:
    name: rtu1
    command: migrate
    node: hv2

- name: Declarative, the same move; a stopped rtu1 is started, then moved
  gridvirt.kvm.cluster_vm:
    name: rtu1
    state: running
    node: hv2

- name: Linked clone (constant time), not started
  gridvirt.kvm.cluster_vm:
    name: rtu9
    command: clone
    src_name: rtu1
    nostart: true

- name: Make a standalone VM of another host a cluster VM (its source removed once it runs)
  gridvirt.kvm.cluster_vm:
    name: edge1
    command: import
    src_uri: qemu+ssh://root@edge-host.example.com/system
    preferred_host: hv2

- name: Take it out of Pacemaker, keep its disks
  gridvirt.kvm.cluster_vm:
    name: rtu9
    state: disabled

- name: Remove it; its images stay in the RBD trash for a day
  gridvirt.kvm.cluster_vm:
    name: rtu9
    state: absent
    trash_delay: 86400
"""

RETURN = r"""
name:
  description: Name of the VM.
  returned: when O(name) is given
  type: str
  sample: rtu1
status:
  description: Status of the VM after the task (in check mode, before it).
  returned: for states and the commands on one VM, except the snapshot and metadata listings
  type: str
  sample: Started
  choices: [Undefined, Disabled, Starting, Started, Stopping, Stopped, Failed]
node:
  description: Cluster node running the VM (null when it does not run).
  returned: for states and the commands on one VM, except the snapshot and metadata listings
  type: str
  sample: hv1
previous_node:
  description: Node the VM ran on before the move (null when it did not run).
  returned: O(command=migrate), and O(state=running) with O(node)
  type: str
  sample: hv2
migrated_live:
  description: The VM was (in check mode, would be) moved by a live migration
    (C(allow-migrate) is true); false when it did not move or was stopped and started.
  returned: O(command=migrate), and O(state=running) with O(node)
  type: bool
uuid:
  description: UUID of the VM.
  returned: when the VM exists
  type: str
macs:
  description: MAC addresses of the NICs, in order.
  returned: when the VM exists
  type: list
  elements: str
images:
  description: RBD images of the VM, system image first.
  returned: when the VM exists
  type: list
  elements: str
  sample: [system_rtu1, data_rtu1_1]
metadata:
  description: User metadata of the VM.
  returned: when the VM exists
  type: dict
restart_required:
  description: The VM runs on another definition than the stored one; it takes effect at
    its next restart.
  returned: when the VM exists
  type: bool
changes:
  description:
    - What the task changed (or would change in check mode), one sentence each.
    - Also returned by a task that failed after it began to change the VM, which then
      reports C(changed=true); the last sentence is the change that failed.
  returned: always
  type: list
  elements: str
  sample: ["created VM rtu1"]
list_vms:
  description: Names of every VM of the pool (SEAPATH's return value).
  returned: O(command=list_vms)
  type: list
  elements: str
vms:
  description: Every VM of the pool with its status and node, from one CIB read and one
    RBD listing.
  returned: O(command=list_vms)
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    status:
      description: VM status.
      type: str
    node:
      description: Node running it, or null.
      type: str
list_snapshot:
  description: Snapshot names, oldest first (SEAPATH's return value name).
  returned: snapshot commands and O(command=purge_image)
  type: list
  elements: str
snapshots:
  description: Snapshots, oldest first, with their creation time.
  returned: snapshot commands and O(command=purge_image)
  type: list
  elements: dict
  contains:
    name:
      description: Snapshot name.
      type: str
    created:
      description: Creation time, ISO 8601 in UTC.
      type: str
purged:
  description: Snapshots deleted (or that would be, in check mode) by O(command=purge_image).
  returned: O(command=purge_image)
  type: list
  elements: str
list_metadata:
  description: Every metadata key of the VM, internal ones included (as SEAPATH lists them).
  returned: O(command=list_metadata)
  type: list
  elements: str
metadata_value:
  description: Value of O(metadata_name).
  returned: O(command=get_metadata)
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.backend import (
    ClusterBackend)
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.request import (
    ClusterRequest, argument_spec)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import lifecycle
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.request import MODULE_RULES


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           **MODULE_RULES)
    try:
        request = ClusterRequest(module.params)
        backend = ClusterBackend(request, module.run_command, module.warn)
        result = lifecycle.run(request, backend, module.check_mode)
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    diffs = result.pop("diff", None)
    if module._diff and diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
