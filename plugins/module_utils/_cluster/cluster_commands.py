# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The cluster VM commands that work on an existing VM: clone, colocation, pacemaker remote,
snapshots and metadata. A part of ClusterVm (cluster.py), which provides the store, the
cluster, the resource synchronisation and the reporting these methods use.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_disks as disks
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import seapath_layout as seapath
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import (
    node_uri, paused, validate_domain)
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.outcome import Outcome
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_store import system_image
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.snapshot_policy import (
    listing, snapshots_to_purge)


class ClusterCommands(Outcome):
    """Commands on one existing cluster VM (mixed into ClusterVm)."""

    # ---- clone --------------------------------------------------------------------------

    def clone(self, vm):
        """A new VM from another one's disks: linked (RBD layered clone, constant time) or
        full; from the source's present state or a named group snapshot. It gets its own
        uuid, MACs, name for the guest, and constraints; not the source's remote identity."""
        p = self.p
        src = p["src_name"]
        if vm == src:
            raise VmError("A clone needs a name different from its source (%s)." % vm)
        self._existing(src)
        if self._clear_incomplete(vm) and self.check:
            self.result.update(name=vm, status="Undefined", node=None)
            return
        if not self.store.vm_exists(vm):
            self._make_clone(vm, src)
        state = "present" if p.get("nostart") else "running"
        if self.check and not self.store.vm_exists(vm):
            self.result.update(name=vm, status="Undefined", node=None)
            return
        self.enable(vm, nostart=state != "running")
        if state == "running":
            self.set_power(vm, "Started")
        self.report(vm)

    def _make_clone(self, vm, src):
        p = self.p
        source = self.stored_intent(src)
        snapshot = p.get("snapshot_name")
        if snapshot and snapshot not in [s[0] for s in self.store.group_snapshots(src)]:
            raise VmError("VM %s has no snapshot %s." % (src, snapshot))
        full = bool(p.get("full"))
        if snapshot and not full:
            self.warn("Ceph %s cannot clone from a group snapshot: VM %s is a full copy of "
                      "snapshot %s." % ("before 19", vm, snapshot))
        if p.get("xml"):
            base = self._base_definition(p["xml"])
        else:
            base = _clone_base(source[ci.KEY_BASE_XML], src, vm)
        bus = p.get("disk_bus") or source.get(ci.KEY_BUS, "virtio")
        user = dict((k, v) for k, v in source.items()
                    if not k.startswith("_") and k not in ci.RESERVED_KEYS)
        inherited = ci.clone_intent(source, p)
        if p.get("metadata") is None:
            inherited.update(user)
        metadata = self._metadata_for_new(vm, base, bus, inherited)
        images = [disks.clone_image_name(name, src, vm) for name in self.store.images_of(src)]
        for name in images:
            if self.store.image_exists(name):
                raise VmError("The RBD image %s already exists but no VM %s owns it: remove "
                              "it first." % (name, vm))
        root = self._render(vm, base, images, bus)
        metadata[ci.KEY_XML] = dx.to_string(root)
        validate_domain(self._run, root)
        self._check_resource_inputs(metadata, True)
        self._changed("%s clone %s of VM %s" % ("full" if full or snapshot else "linked", vm,
                                                src))
        self._add_diff(vm, "", metadata)
        if self.check:
            return
        created = []
        try:
            disks.clone_disks(self.store, src, vm, full, snapshot,
                              lambda: self._paused(src), created)
            for name in created[1:]:
                self.store.replace_metadata(name, {})
            self.store.replace_metadata(created[0], metadata)
            self.store.create_group(vm)
            for name in created[1:] + created[:1]:
                self.store.add_to_group(vm, name)
        except BaseException:
            self._undo_create(vm, [])
            for name in reversed(created):
                parent = self.store.parent_of(name) if self.store.image_exists(name) else None
                self.store.remove_image(name)
                if parent:
                    disks.release_parent_snapshots(self.store, [parent])
            # Snapshots taken on source images that were not cloned yet.
            for image in self.store.images_of(src):
                self.store.remove_snapshot_if_unused(image, disks.clone_snapshot(vm))
            raise

    @contextlib.contextmanager
    def _paused(self, vm):
        """The running VM paused for an instant (all its disks at one point in time), through
        libvirt on the node that runs it."""
        state, node = self.status_of(vm)
        if state != "Started" or not node:
            yield
            return
        user = self.store.metadata(system_image(vm)).get(ci.KEY_MIGRATION_USER) or "root"
        uri = node_uri(node, self.cluster.local_node(), user)
        with paused(uri, self._run, self.p["connect_timeout"], vm):
            yield

    # ---- colocation ---------------------------------------------------------------------

    def define_colocation(self, vm, others, strong):
        """Keep the VM with the others (strong: always; weak: when possible). The intent is
        stored with the VM, so a disable/enable or a rollback keeps it."""
        self._existing(vm)
        if not others:
            raise VmError("colocated_vms must name at least one VM.")
        metadata = self.stored_intent(vm)
        wanted = dict(ci.colocation_intent(metadata))
        wanted.update(dict((o, "strong" if strong else "weak") for o in others))
        new_metadata = dict(metadata)
        new_metadata[ci.KEY_COLOCATION] = ci.dump_json(wanted)
        self._check_resource_inputs(new_metadata, False, previous=metadata)
        if ci.colocation_intent(metadata) != wanted:
            kind = "strong" if strong else "weak"
            self._changed("colocated VM %s with %s (%s)"
                          % (vm, ", ".join(sorted(others)), kind))
            if not self.check:
                self.store.set_metadata(system_image(vm),
                                        {ci.KEY_COLOCATION: new_metadata[ci.KEY_COLOCATION]})
        self.sync_resource(vm, new_metadata, previous=metadata)

    # ---- pacemaker remote ----------------------------------------------------------------

    def add_pacemaker_remote(self, vm):
        """The guest becomes a Pacemaker guest node (remote-node meta attributes)."""
        self._existing(vm)
        remote = ci.validate_remote(self.p)
        self._set_intent(vm, {ci.KEY_REMOTE: ci.dump_json(remote)},
                         "pacemaker remote %s of VM %s" % (remote["name"], vm))

    def remove_pacemaker_remote(self, vm):
        self._existing(vm)
        self._set_intent(vm, {ci.KEY_REMOTE: None}, "removed the pacemaker remote of VM %s"
                         % vm)

    def _set_intent(self, vm, updates, what):
        stored = self.store.metadata(system_image(vm))
        metadata = seapath.adopted(stored)
        wanted = ci.apply_updates(metadata, updates)
        if wanted != metadata:
            self._changed(what)
            self._add_diff(vm, metadata, wanted)
            if not self.check:
                self.write_metadata(vm, stored, wanted)
        self.sync_resource(vm, wanted, previous=metadata)

    # ---- snapshots ----------------------------------------------------------------------

    def _snapshots(self, vm):
        """{name: (name, time, kind)}: group snapshots and vm_manager's per-image ones."""
        return dict((snap[0], snap) for snap in disks.vm_snapshots(self.store, vm))

    def list_snapshots(self, vm):
        self._existing(vm)
        self.result.update(listing([snap[:2] for snap in disks.vm_snapshots(self.store, vm)]))
        return False

    def create_snapshot(self, vm, name):
        """A group snapshot: every disk of the VM at one instant."""
        self._existing(vm)
        changed = name not in self._snapshots(vm)
        if changed:
            self._changed("snapshot %s of VM %s" % (name, vm))
            if not self.check:
                self.store.create_group_snapshot(vm, name)
        self.list_snapshots(vm)
        return changed

    def remove_snapshot(self, vm, name):
        self._existing(vm)
        snapshot = self._snapshots(vm).get(name)
        if snapshot:
            self._changed("removed snapshot %s of VM %s" % (name, vm))
            if not self.check:
                disks.remove_vm_snapshot(self.store, vm, snapshot)
        self.list_snapshots(vm)
        return bool(snapshot)

    def rollback_snapshot(self, vm, name):
        """Stop the VM through Pacemaker, roll every disk back, restore its previous state.
        Its constraints are not touched."""
        self._existing(vm)
        snapshot = self._snapshots(vm).get(name)
        if not snapshot:
            raise VmError("VM %s has no snapshot %s." % (vm, name))
        disks.check_rollback(self.store, vm, snapshot)
        state = self.status_of(vm)[0]
        self._changed("rolled VM %s back to snapshot %s" % (vm, name))
        if not self.check:
            if state not in ("Disabled", "Stopped"):
                self._power(vm, "Stopped")
            disks.rollback_vm_snapshot(self.store, vm, snapshot)
            if state in ("Started", "Starting"):
                self._power(vm, "Started")
        self.list_snapshots(vm)
        return True

    def purge_image(self, vm):
        self._existing(vm)
        snapshots = disks.vm_snapshots(self.store, vm)
        doomed = snapshots_to_purge([snap[:2] for snap in snapshots], self.p)
        if doomed:
            self._changed("purged snapshots %s of VM %s" % (", ".join(doomed), vm))
            if not self.check:
                for snapshot in snapshots:
                    if snapshot[0] in doomed:
                        disks.remove_vm_snapshot(self.store, vm, snapshot)
        self.result["purged"] = doomed
        self.list_snapshots(vm)
        return bool(doomed)

    # ---- metadata -----------------------------------------------------------------------

    def list_metadata(self, vm):
        """Every key, internal ones included (as SEAPATH lists them)."""
        self._existing(vm)
        self.result["list_metadata"] = sorted(self.store.metadata(system_image(vm)))
        return False

    def get_metadata(self, vm, key):
        self._existing(vm)
        values = self.store.metadata(system_image(vm))
        if key not in values:
            raise VmError("VM %s has no metadata key %s." % (vm, key))
        self.result["metadata_value"] = values[key]
        return False

    def set_metadata(self, vm, values):
        """Merge user keys (not internal ones) into the VM's metadata."""
        self._existing(vm)
        wanted = ci.validate_user_metadata(values)
        current = self.store.metadata(system_image(vm))
        changed = dict((k, v) for k, v in wanted.items() if current.get(k) != v)
        if not changed:
            return False
        self._changed("metadata %s of VM %s" % (", ".join(sorted(changed)), vm))
        self._add_diff(vm, current, ci.apply_updates(current, changed))
        if not self.check:
            self.store.set_metadata(system_image(vm), changed)
        return True


def _clone_base(source_base, src, vm):
    """The source's base definition made the clone's own: no uuid or MACs of the source (new
    ones are derived from the clone's name), log files named after the clone."""
    root = dx.parse_domain(source_base, "source definition")
    dx.strip_macs(root)
    dx.rename_log_files(root, src, vm)
    product = root.find("sysinfo[@type='smbios']/system/entry[@name='product']")
    if product is not None and product.text == src:
        product.text = vm
    if root.find("uuid") is not None:
        root.remove(root.find("uuid"))
    return dx.canonical(root)
