# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The site hooks (allocate / preboot / disallocate) a VM module runs.
    DOCUMENTATION = r"""
options:
  hook_timeout:
    description:
      - Seconds one site hook may run (allocate, preboot or disallocate, in
        C(/etc/gridvirt/hooks/<stage>.d/) on the host the task runs on) before it is killed
        with the processes it started and counted as failed.
      - A killed allocate or preboot hook refuses the action; a killed disallocate hook is a
        warning.
      - See the notes for what the hooks are and when they run.
    type: int
    default: 60
  addresses:
    description:
      - The VM's addresses as M(gridvirt.kvm.address) returns them (the deploy roles pass
        those of the address registry), handed to the site hooks as C(addresses).
      - M(gridvirt.kvm.cluster_vm) keeps them with the VM (an empty list removes them), so
        that its resource agent hands them to the hooks too; a clone does not inherit them.
    type: list
    elements: dict
notes:
  - Site hooks (the Rocks KVM roll's allocate, preboot and disallocate) are the executables
    in C(/etc/gridvirt/hooks/allocate.d/), C(preboot.d/) and C(disallocate.d/) of a
    hypervisor, run in name order (names of letters, digits, C(_) and C(-); others, such as
    C(x.dpkg-old), are skipped). The C(hypervisor) role installs them from its
    C(hypervisor_hooks) variable; a site may drop its own there.
  - Each hook reads one JSON document on stdin with the keys C(vm), C(kind) (C(cluster) or
    C(standalone)), C(node) (where the VM is about to run; null for a cluster VM whose node
    Pacemaker chooses), C(action) (create, start, restart, clone, move, stop, remove, migrate,
    failover),
    C(stage), C(xml) (the domain XML), C(metadata) and C(addresses) (O(addresses), or for the
    resource agent what the VM's image records). Each runs under a timeout (O(hook_timeout)),
    in a clean environment, and its output is logged in C(/var/log/gridvirt/hooks.log)
    (mode 0600). A hook or stage directory that is not root's alone (owned by root, writable
    by nobody else) or a hook that is not executable is refused. Check mode runs no hook.
  - allocate runs first, before anything changes, for a create, clone, start, restart or move
    (on the host the task runs on). A non-zero exit vetoes the task with the hook's last
    stderr line as the error, and nothing changes. It may print a JSON document with the
    keys C(node) (a node name) and C(nics) (a list of NIC changes, each with C(index), the
    NIC's number, and some of C(network) or C(bridge), C(mac) and C(vlan)), which the next
    hook sees in its document, checked like the task's own inputs. For a
    cluster VM the node becomes the placement of that start (a temporary move constraint,
    cleared once the VM runs), and its NIC changes hold until the VM stops. The definition
    they make is kept beside the stored one (image metadata C(_allocated_xml)) and our
    resource agent boots it at every start, on any node and after a failover, while the
    stored definition is unchanged, until a stop where the guest ran releases it. A move
    refuses NIC changes (the running guest keeps its NICs). For a standalone VM NIC changes
    hold for the boot that follows (the stored definition stays the task's) and another node
    is refused (use C(command=move)).
  - preboot runs where the VM boots, right before it does (standalone_vm before each start;
    for cluster VMs our resource agent at every start Pacemaker makes, on whichever node and
    also after a failover, then with action C(failover); on the target of a live migration
    libvirt's qemu hook, with action C(migrate)). A hook may print a domain XML document, the same domain (name and
    UUID), checked with libvirt's schema; the VM boots it this time only (a migrating guest
    arrives with it), and the next hook sees it as C(xml). A failing preboot fails the start
    (Pacemaker then tries another node) or cancels the migration.
  - disallocate runs after the VM stopped (standalone_vm after a stop, a removal and on the
    source of a move; the resource agent after each stop and on the source of a live
    migration). Every hook runs even if one fails; failures are warnings and never block the
    stop.
"""
