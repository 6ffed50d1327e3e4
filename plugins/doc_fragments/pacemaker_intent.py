# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The VM's intent in Pacemaker: placement, migration, the resource's settings,
    # constraints, colocation, pacemaker remote. Stored with the VM, so a disable/enable or a
    # rollback restores it. Paired with _cluster/request.pacemaker_intent_argument_spec().
    DOCUMENTATION = r"""
options:
  preferred_host:
    description:
      - Node the VM runs on when it can (location constraint C(location-<name>-prefer-<node>),
        score 100). When that node fails or goes to standby the VM fails over to another
        node; when the node returns the VM moves back to it (score 100 outweighs a
        resource-stickiness below 100, the lab sets 1), live when O(live_migration) allows.
      - An empty string removes it.
    type: str
  pinned_host:
    description:
      - Node the VM may only run on. The constraint C(location-<name>-pin-<node>) is a rule
        of score -INFINITY on every node whose name (C(#uname)) is not that node, so the VM
        never fails over; while that node is down or in standby the VM stays stopped, and it
        starts again there when the node returns.
      - Takes precedence over O(preferred_host) (giving it drops a stored preference). An
        empty string removes it.
    type: str
  live_migration:
    description:
      - Allow Pacemaker to live-migrate the VM (C(allow-migrate)). Left as it is when not
        given; C(false) for a new VM.
    type: bool
  migration_user:
    description:
      - User for the SSH connection to the destination node during a live migration.
    type: str
  migration_transport:
    description:
      - Transport of a live migration between the nodes' libvirt daemons
        (C(qemu+<transport>://<node>/system)), set as the resource's C(migration_transport)
        instance attribute.
      - The attribute is always set; a VM that was never given this option gets C(ssh), as
        SEAPATH sets it (VirtualDomain's own default, empty, means TLS).
      - Left as it is when not given.
    type: str
    choices: [ssh, tcp, tls]
  stop_timeout:
    description:
      - Timeout of the resource's stop operation (seconds, or with C(s), C(min) or C(h)),
        the time a guest has to shut down before it is powered off. 30 seconds for a new VM.
      - More than 0 and at most 24 hours (C(inf), C(nan) or C(1e400) are refused).
    type: str
  migrate_to_timeout:
    description:
      - Timeout of the resource's migrate_to operation. 120 seconds for a new VM.
      - More than 0 and at most 24 hours (seconds, or with C(ms), C(s), C(min) or C(h)).
    type: str
  migration_downtime:
    description:
      - Maximum downtime of a live migration, in milliseconds (a whole number, at most
        86400000, that is 24 hours).
    type: str
  priority:
    description:
      - Pacemaker priority of the resource (a whole number; higher ones are kept running
        when not everything can run).
    type: str
  clear_constraint:
    description:
      - With O(command=clone), do not take the source's preferred or pinned host.
    type: bool
    default: false
  pacemaker_meta:
    description:
      - Extra meta attributes of the resource (for example C(resource-stickiness)). Given,
        it replaces the previous set. Attributes the module sets itself (C(target-role),
        C(is-managed), C(allow-migrate), C(priority), C(remote-*)) are refused.
    type: dict
  pacemaker_params:
    description:
      - Extra instance attributes of the resource agent. Given, it replaces the previous set.
        A change applies to a running VM without restarting it (the agent reloads; its
        parameters are read by each action).
    type: dict
  pacemaker_utilization:
    description:
      - Utilization attributes of the resource (for example C(cpu), C(memory)). Given, it
        replaces the previous set.
    type: dict
  clear_pacemaker_meta:
    description:
      - With O(command=clone), do not take the source's O(pacemaker_meta).
    type: bool
    default: false
  clear_pacemaker_params:
    description:
      - With O(command=clone), do not take the source's O(pacemaker_params).
    type: bool
    default: false
  clear_pacemaker_utilization:
    description:
      - With O(command=clone), do not take the source's O(pacemaker_utilization).
    type: bool
    default: false
  crm_config_cmd:
    description:
      - crmsh C(configure) commands (SEAPATH's option), run as argument lists when the
        resource is added to Pacemaker (create, enable, clone). Needs crmsh on the node; the
        task fails with a clear message before any change when it is missing.
      - "Only lines that create a constraint naming the VM are accepted, for example
        C(location <id> <name> <score>: <node>), C(location <id> <name> rule <score>: <expression>),
        C(colocation <id> inf: <name> <other>) or C(order <id> Mandatory: <other> <name>), written
        with letters, digits, spaces and C(_ . : = + # - ( ) [ ]). Any other crmsh command
        (C(filter), C(load), C(erase), C(delete), C(primitive), C(property)...) is refused
        before any change, and again when stored lines are replayed at an enable."
      - Prefer O(constraints), which needs no crmsh and is kept in step on every run.
    type: list
    elements: str
  constraints:
    description:
      - Extra constraints of the VM, as data. Given, it is the whole set (constraints it no
        longer lists are removed). Stored with the VM, so they survive disable/enable.
      - Each item has a C(type). C(location) takes C(node) and C(score) (default 100);
        C(ban) takes C(node); C(colocation) takes C(with) (another resource) and C(score)
        (default INFINITY); C(order) takes C(first) or C(then) (the other end is the VM),
        C(kind) (Mandatory, Optional or Serialize) and C(symmetrical); C(xml) takes C(xml),
        one raw CIB constraint element (C(rsc_location), C(rsc_colocation), C(rsc_order) or
        C(rsc_ticket)) with an id and naming the VM.
    type: list
    elements: dict
  colocated_vms:
    description:
      - VMs to keep with this one (constraints C(colocation-<name>-<other>-strong|weak), with
        this VM placed after the other). With O(command=define_colocation) they are added to
        the VM's colocations; with O(state) or O(command=create) they are the whole set.
      - To keep two VMs apart (anti-colocation) give O(constraints) an item of C(type)
        C(colocation) with the other VM in C(with) and C(score) C(-INFINITY). They never run
        on the same node; when only one node is left, the VM placed second stays stopped.
    type: list
    elements: str
  strong:
    description:
      - Colocation kind for O(colocated_vms). C(true) is a strong colocation (score
        INFINITY); the VM runs only on the node where the other runs, it moves with it, and
        it stays stopped when the other cannot run. C(false) is a weak one (score 100),
        together when possible, apart when the other's node cannot take it.
    type: bool
    default: false
  remote_name:
    description:
      - Guest node name of O(command=add_pacemaker_remote) (C(remote-node)).
    type: str
  remote_address:
    description:
      - Address of the guest's pacemaker_remote; defaults to O(remote_name).
    type: str
  remote_port:
    description:
      - Port of the guest's pacemaker_remote (Pacemaker's default is 3121), 1 to 65535.
    type: raw
  remote_timeout:
    description:
      - Time to wait for the guest's pacemaker_remote connection (C(remote-connect-timeout)),
        more than 0 and at most 24 hours (seconds, or with C(ms), C(s), C(min) or C(h)).
    type: str
"""
