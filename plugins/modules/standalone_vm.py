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
module: standalone_vm
short_description: Manage virtual machines on one KVM hypervisor (libvirt, local storage pool)
version_added: 0.1.0
description:
  - Creates, updates, starts, stops, clones, snapshots and removes libvirt virtual machines
    whose disks live in a local libvirt storage pool.
  - Declarative with O(state), or imperative with SEAPATH's O(command) verbs and option names;
    both report the truth in C(changed), change nothing under C(--check), and show the
    definition before and after under C(--diff).
  - The module owns the VM's disks. The system disk is imported from O(system_image) into the
    pool as C(<name>.disk0.qcow2); additional disks are C(<name>.disk1.qcow2) and on.
    Disks are never re-imported unless O(force) is set.
  - The UUID is stable, taken from the XML or derived from the name, and so are the MAC
    addresses of NICs that have none in the XML (derived from the name and NIC index in
    C(52:54:00)). The VM name is given to the guest as its SMBIOS system product name unless
    the XML has its own C(<sysinfo>).
  - One mutating run per VM at a time on a hypervisor (a lock file per VM that the kernel
    releases if the run dies).
author:
  - gridvirt.kvm contributors (@gridvirt)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - gridvirt.kvm.purge
  - gridvirt.kvm.hooks
  - gridvirt.kvm.libvirt
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
      - Name of the VM. 1 to 63 letters, digits, C(-) or C(_), starting with a letter or digit.
      - Required except for O(command=list_vms).
    type: str
    aliases: [guest]
  state:
    description:
      - C(present) defines the VM (a new VM is not started) and updates its definition in place.
      - C(running) (alias C(started)) also starts it.
      - C(stopped) shuts it down gracefully (ACPI), waits up to O(stop_timeout) seconds and then
        powers it off; with O(force=true) it powers off at once.
      - C(absent) powers it off, undefines it (NVRAM and snapshots included) and deletes its
        volumes; bases still used by linked clones stay until their last clone is removed.
      - Mutually exclusive with O(command).
    type: str
    choices: [present, running, started, stopped, absent]
  command:
    description:
      - SEAPATH-style verb, with SEAPATH's option names. Mutually exclusive with O(state).
      - C(create) converges like O(state=running) (or C(present) with O(nostart=true)).
        C(remove) is O(state=absent); C(start) and C(stop) need an existing VM.
      - C(status) and C(list_vms) read only. C(clone) creates O(name) from O(src_name).
      - C(create_snapshot), C(remove_snapshot), C(rollback_snapshot) and C(list_snapshots)
        work on O(snapshot_name). C(purge_image) deletes snapshots by O(purge_number),
        O(purge_keep) or O(purge_date), or all of them when none is given.
      - C(list_metadata), C(get_metadata) (O(metadata_name)) and C(set_metadata) (merges
        O(metadata)) work on the user metadata kept in the domain XML.
      - C(move) takes the VM of this host to the host of O(destination_uri).
    type: str
    choices: [create, remove, start, stop, status, list_vms, clone, create_snapshot,
              remove_snapshot, rollback_snapshot, list_snapshots, purge_image, list_metadata,
              get_metadata, set_metadata, move]
  xml:
    description:
      - libvirt domain XML of the VM (the document, not a path), without disk devices (the
        module creates those; CD-ROMs are allowed). Its C(<name>) is replaced by O(name).
      - Required to create a VM. On an existing VM a changed XML redefines it in place.
      - Compared normalized, so addresses and aliases that libvirt adds do not count as a change.
    type: str
  system_image:
    description:
      - qcow2 or raw image on the hypervisor, imported (converted to qcow2) as the system disk.
      - Required to create a VM. On an existing VM it is used only with O(force=true).
    type: path
  additional_disks:
    description:
      - Extra disks, in order. Each item is an absolute image path to import, a size for an
        empty disk (C(10G), C(512M), or bytes), or a dict with exactly one of C(image) or C(size).
      - Disks added to the list are created and attached to an existing VM; disks are never
        removed by shortening the list.
    type: list
    elements: raw
  disk_bus:
    description:
      - Bus of the disks the module creates. Defaults to C(virtio) for a new VM and to the
        current bus for an existing one.
    type: str
    choices: [virtio, scsi, sata, ide]
  pool:
    description:
      - libvirt storage pool holding the disks. The pool C(default) is created at
        C(/var/lib/libvirt/images) when missing; any other pool must exist.
    type: str
    default: default
  memory:
    description:
      - Memory of the VM in MiB (a whole number, 16 MiB to 16 TiB); overrides the XML.
    type: raw
  vcpus:
    description:
      - Number of virtual CPUs (a whole number, 1 to 4096); overrides the XML.
    type: raw
  autostart:
    description:
      - Start the VM when libvirtd starts. Left as it is when not given.
    type: bool
  metadata:
    description:
      - Key/value strings kept in the domain's C(<metadata>) under the module's namespace.
        Keys are letters, digits, C(-), C(_) or C(.); C(xml) is reserved.
      - With O(state) it is the whole set (keys not listed are removed); with
        O(command=set_metadata) it is merged into the existing set; with O(command=clone)
        it replaces the source's set.
    type: dict
  metadata_name:
    description:
      - Key read by O(command=get_metadata).
    type: str
  force:
    description:
      - With O(system_image) on an existing VM, re-import the system disk. The new disk is
        imported first and swapped in only when complete; the VM's snapshots are removed and
        it is restarted if it was running.
      - With O(state=stopped), O(command=stop) or a rollback, power off at once instead of
        an ACPI shutdown.
    type: bool
    default: false
  stop_timeout:
    description:
      - Seconds to wait for a graceful shutdown before powering off (a whole number, 0 to
        86400).
    type: raw
    default: 60
  apply:
    description:
      - What to do when a running VM's definition changed. C(none) leaves it running and
        returns RV(restart_required=true); C(restart) shuts it down and starts it again.
    type: str
    choices: [none, restart]
    default: none
  nostart:
    description:
      - With O(command=create) or O(command=clone), do not start the VM.
      - With O(command=move) (offline), the VM arrives stopped even if it ran, for a task on
        the destination to start it. That start runs the destination's allocate and preboot
        hooks, which a start made from here cannot (the deploy role moves VMs this way).
        Refused with O(live).
    type: bool
    default: false
  src_name:
    description:
      - Source VM of O(command=clone).
    type: str
  full:
    description:
      - With O(command=clone), copy the disks (an independent VM, time proportional to the
        data) instead of the default linked clone.
      - A linked clone takes constant time. The source's current disks become read-only bases shared with
        the clone, and the source writes to new overlays from then on; its data does not
        change. It needs a source without snapshots.
      - A running source is paused during a full copy, so that all its disks are copied at one
        instant.
    type: bool
    default: false
  snapshot_name:
    description:
      - Snapshot for the snapshot commands. 1 to 128 letters, digits, C(-), C(_), C(.) or C(:).
      - A snapshot covers every disk of the VM at one instant. For a running VM the disks and
        memory are saved together while it is paused.
      - A rollback stops the VM, restores every disk, and starts the VM again if it was running.
        The guest boots from the restored disks; the saved memory is not resumed.
    type: str
  destination_uri:
    description:
      - With O(command=move), the libvirt URI of the destination host's QEMU driver, as this
        host reaches it (C(qemu+ssh://[user@]host/system), C(qemu+tcp://host/system) or
        C(qemu+tls://host/system)), with no URI parameter but those of authentication
        (C(keyfile), C(known_hosts), C(no_verify), C(sshauth)…). Required with O(command=move).
      - Without O(live), the move is offline. Everything that could refuse it is checked before the VM is
        stopped. The destination must answer, have neither a VM of that name nor its UUID, and
        its pool must have room for the disks as they take space here. The VM is then stopped
        (gracefully, bounded by O(stop_timeout)). Each disk is streamed over the two libvirt
        connections into a volume of the same name, format and size. Holes are not sent,
        and a qcow2 disk's internal snapshots travel with it.
      - The VM is defined there with the same UUID, MACs, metadata, autostart flag and
        snapshots list, and started there if it ran. Only then are its definition and
        volumes removed here.
      - A failure removes what the move made there and starts the VM here again if it ran.
        A run killed on the way leaves a record in the destination pool (volume
        C(<name>.moving), which also keeps a second move of the VM out). The next move
        finishes it (the VM is defined there) or undoes it (it is not).
      - A VM already there and not here is not changed.
      - A linked clone's disk (an overlay on a base shared with other VMs) arrives whole.
        Offline, it is flattened into a temporary volume here first (its pool must have the
        room); live, the migration copies its whole content. The base stays for its other
        users.
    type: str
  live:
    description:
      - With O(command=move), move a running VM without stopping it. libvirt's migration
        copies its disks into volumes made there with the same sizes while the guest runs
        on, and pauses it only for the last pass. Its definition here and its disks are
        removed once it runs there.
      - A VM with snapshots is refused (a live copy carries only the disks' current data).
        Move it offline, or remove them first. A stopped VM moves offline.
    type: bool
    default: false
  destination_pool:
    description:
      - With O(command=move), the storage pool of the destination that takes the disks.
        Made there (a directory pool in C(/var/lib/libvirt/images)) when it is the default
        one and missing.
    type: str
    default: default
notes:
  - Guests that must run under software emulation use C(<domain type='qemu'>) in O(xml).
seealso:
  - module: gridvirt.kvm.cluster_vm
"""

EXAMPLES = r"""
- name: Create and start a VM from an image
  gridvirt.kvm.standalone_vm:
    name: web1
    state: running
    xml: "{{ lookup('template', 'vm.xml.j2') }}"
    system_image: /var/lib/images/debian-12.qcow2
    additional_disks:
      - 20G
    autostart: true
    metadata:
      role: web

- name: Give it more memory; restart it to apply
  gridvirt.kvm.standalone_vm:
    name: web1
    state: running
    memory: 4096
    apply: restart

- name: Snapshot before an upgrade
  gridvirt.kvm.standalone_vm:
    name: web1
    command: create_snapshot
    snapshot_name: before-upgrade

- name: Roll back
  gridvirt.kvm.standalone_vm:
    name: web1
    command: rollback_snapshot
    snapshot_name: before-upgrade

- name: Keep only the 3 newest snapshots
  gridvirt.kvm.standalone_vm:
    name: web1
    command: purge_image
    purge_keep: 3

- name: Linked clone (constant time), not started
  gridvirt.kvm.standalone_vm:
    name: web2
    command: clone
    src_name: web1
    nostart: true

- name: Move it to another host (stopped during the copy, started there again)
  gridvirt.kvm.standalone_vm:
    name: web2
    command: move
    destination_uri: qemu+ssh://root@hv2.example.com/system

- name: Remove a VM and its disks
  gridvirt.kvm.standalone_vm:
    name: web2
    state: absent
"""

RETURN = r"""
name:
  description: Name of the VM.
  returned: when O(name) is given
  type: str
  sample: web1
status:
  description: State of the VM after the task.
  returned: for states and for the commands on one VM, except the snapshot and metadata listings
  type: str
  sample: Started
  choices: [Undefined, Stopped, Started, Paused, Stopping, Failed, Unknown]
node:
  description: Host name of the hypervisor the VM is defined on (after O(command=move), the destination).
  returned: when the VM exists
  type: str
  sample: hv1
uuid:
  description: UUID of the VM.
  returned: when the VM exists
  type: str
  sample: 6f0e3a2c-1f1b-5d7e-9b4a-2c1d0e9f8a7b
disks:
  description: Disks the module owns, in target order.
  returned: when the VM exists
  type: list
  elements: dict
  contains:
    path:
      description: Volume file.
      type: str
    target:
      description: Device name in the guest.
      type: str
    bus:
      description: Disk bus.
      type: str
macs:
  description: MAC addresses of the NICs, in order.
  returned: when the VM exists
  type: list
  elements: str
autostart:
  description: Whether libvirtd starts the VM at boot.
  returned: when the VM exists
  type: bool
metadata:
  description: User metadata of the VM.
  returned: when the VM exists
  type: dict
restart_required:
  description: The definition changed while the VM runs; it takes effect at the next restart.
  returned: when the VM exists
  type: bool
changes:
  description: What the task changed (or would change in check mode), one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["redefined VM web1"]
stop:
  description: How a stop ended, C(graceful) or C(forced) after O(stop_timeout).
  returned: when the task stopped the VM
  type: str
destination:
  description: Host name of the destination of O(command=move).
  returned: O(command=move)
  type: str
  sample: hv2
bytes_copied:
  description: Bytes of disk data the move sent (holes are not sent); 0 when nothing moved.
  returned: O(command=move)
  type: int
stopped_seconds:
  description: Seconds the guest was stopped by an offline move, from its stop here to its start there.
  returned: O(command=move)
  type: float
paused_seconds:
  description: Seconds the guest was paused at the end of a live move, as libvirt measured it.
  returned: O(command=move) with O(live=true), when the VM moved
  type: float
list_vms:
  description: Names of every VM of the hypervisor (SEAPATH's return value).
  returned: O(command=list_vms)
  type: list
  elements: str
vms:
  description: Every VM of the hypervisor with its status.
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
      description: Host name of the hypervisor.
      type: str
    persistent:
      description:
        - Whether the domain is defined. A transient domain (a cluster VM that Pacemaker
          runs on this host, or one started with C(virsh create)) is not a standalone VM.
      type: bool
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
  description: User metadata keys.
  returned: O(command=list_metadata)
  type: list
  elements: str
metadata_value:
  description: Value of O(metadata_name).
  returned: O(command=get_metadata)
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.backend import (
    StandaloneBackend)
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.request import (
    StandaloneRequest, argument_spec)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import lifecycle
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.request import MODULE_RULES


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           **MODULE_RULES)
    try:
        request = StandaloneRequest(module.params)
        result = lifecycle.run(request, StandaloneBackend(request, module.run_command,
                                                          module.warn), module.check_mode)
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    diffs = result.pop("diff", None)
    if module._diff and diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
