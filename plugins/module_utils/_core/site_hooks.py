# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The site hooks as both kinds of VM call them from a module: the document of one VM and
action, allocate's changes checked like the task's own inputs, preboot's XML checked to be
the same domain, disallocate's failures turned into warnings. Running the executables is
the hooks layer's (module_utils/hooks.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils import hooks
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.pools import normalize_mac
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

# libvirt network and Linux bridge names an allocate hook may move a NIC to.
NETWORK_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


class SiteHooks(object):
    """The hooks of the host a module runs on, for VMs of ``kind`` ('cluster' or
    'standalone'). ``run``, ``warn``: the module's run_command and warn (disallocate's
    failures are warnings)."""

    def __init__(self, kind, timeout, addresses, run, warn, runner=None):
        self.kind = kind
        self.addresses = list(addresses or [])
        self.warn = warn
        self.runner = runner or hooks.Hooks(run, timeout=timeout)

    def document(self, vm, node, action, root, meta):
        return hooks.document_for(vm, self.kind, node, action, dx.to_string(root), meta,
                                  self.addresses)

    def allocate(self, vm, node, action, root, meta):
        """-> the Allocation the hooks made for ``action`` of VM ``vm`` (defined as
        ``root``) on ``node``; its NIC changes are checked against ``root`` here. A veto
        raises VmError."""
        try:
            changes = self.runner.allocate(self.document(vm, node, action, root, meta))
        except hooks.HookError as exc:
            raise VmError(str(exc))
        allocation = Allocation(vm, changes.get("node", node), changes.get("nics", []))
        if allocation.node != node:
            check_node_name(allocation.node)
        allocation.boot_root(root)
        return allocation

    def preboot(self, vm, node, action, root, meta):
        """-> the domain of this boot that a hook printed (parsed, the same name and UUID
        as ``root``; the caller checks it with libvirt's schema), else None."""
        try:
            text = self.runner.preboot(self.document(vm, node, action, root, meta))
        except hooks.HookError as exc:
            raise VmError(str(exc))
        if text is None:
            return None
        boot = dx.parse_domain(text, "XML the preboot hook printed for VM %s" % vm)
        for field in ("name", "uuid"):
            if boot.findtext(field) != root.findtext(field):
                raise VmError("The preboot XML of VM %s names another domain (its %s "
                              "differs)." % (vm, field))
        return boot

    def disallocate(self, vm, node, action, root, meta):
        for warning in self.runner.disallocate(self.document(vm, node, action, root, meta)):
            self.warn(warning)


class Allocation(object):
    """What the allocate hooks chose: the ``node`` to start on and NIC changes that apply to
    the boot that follows (the stored definition stays the task's)."""

    def __init__(self, vm, node, nics):
        self.vm = vm
        self.node = node
        self.nics = nics

    def boot_root(self, root):
        """``root`` with the NIC changes (a copy), or ``root`` itself when there are none."""
        if not self.nics:
            return root
        changed = dx.parse_domain(dx.to_string(root), "definition")
        for nic in self.nics:
            apply_nic_change(changed, self.vm, nic)
        return changed


def check_node_name(node):
    """A node name an allocate hook returned, checked like a hostname."""
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$", node):
        raise VmError("The allocate hooks returned the node %r, which is not a host name."
                      % (node,))


def apply_nic_change(root, vm, nic):
    """One NIC change of an allocate hook, checked like the task's own inputs."""
    target = nic.get("network") or nic.get("bridge")
    if nic.get("network") and nic.get("bridge"):
        raise VmError("The allocate hooks moved NIC %d of VM %s to both a network and a "
                      "bridge." % (nic["index"], vm))
    if target is not None and not NETWORK_NAME_RE.fullmatch(str(target)):
        raise VmError("The allocate hooks moved NIC %d of VM %s to %r, which is not a network "
                      "or bridge name." % (nic["index"], vm, target))
    mac = normalize_mac(nic["mac"], "MAC the allocate hooks gave") if nic.get("mac") else None
    vlan = nic.get("vlan")
    if vlan is not None and (isinstance(vlan, bool) or not isinstance(vlan, int)
                             or not 0 <= vlan <= 4095):
        raise VmError("The allocate hooks gave NIC %d of VM %s the VLAN %r: a tag is a number "
                      "from 0 to 4095." % (nic["index"], vm, vlan))
    if nic["index"] < 0 or not dx.retarget_nic(root, nic["index"], network=nic.get("network"),
                                               bridge=nic.get("bridge"), mac=mac, vlan=vlan):
        raise VmError("The allocate hooks changed NIC %d of VM %s, which has no such NIC."
                      % (nic["index"], vm))
