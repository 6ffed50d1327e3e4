# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""What the steps of a cluster plan do to a VM's images and group in RBD: register a new
VM, add data disks, swap in a re-created VM's disks, clear what an interrupted run left,
remove a VM (to the trash or purged), write its metadata. Each undoes what it made when it
fails part-way; nothing here decides whether to act: the planners did."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import hooks
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_disks as disks
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.cluster_intent import KEY_XML
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import system_image


class VmImages(object):
    """``purge``/``trash_delay``: what becomes of a leaving image; ``warn``: the module's."""

    def __init__(self, store, run, warn, purge, trash_delay):
        self.store = store
        self.run = run
        self.warn = warn
        self.purge = purge
        self.trash_delay = trash_delay

    # ---- new VMs ---------------------------------------------------------------------------

    def register(self, vm, staged, metadata):
        """Staged images take their final names and join the new group; the system image,
        which carries the definition, joins last (a VM is complete when it is there)."""
        self.store.set_metadata(staged[0], metadata)
        self.store.create_group(vm)
        for name in list(staged[1:]) + [staged[0]]:
            final = name[len(disks.STAGING_PREFIX):]
            self.store.rename_image(name, final)
            staged[staged.index(name)] = final
            self.store.add_to_group(vm, final)

    def remove_group_and_members(self, vm):
        """A new VM taken back: its group and the images in it deleted, and the source
        snapshots a linked clone's images hung from released."""
        if not self.store.vm_exists(vm):
            return
        for name in self.store.images_of(vm):
            parent = self.store.snapshots.parent_of(name)
            self.store.remove_from_group(vm, name)
            self.store.remove_image(name)
            if parent:
                disks.release_parent_snapshots(self.store, [parent])
        self.store.remove_group(vm)

    def add_data_disks(self, vm, plan):
        """Import or create the new data disks, then put them in the VM's group; a failure
        removes the images this call made, so the VM keeps the disks it had."""
        created, grouped = [], []
        try:
            disks.make_disks(self.store, self.run, plan, created)
            for name in created:
                self.store.add_to_group(vm, name)
                grouped.append(name)
        except Exception:
            for name in reversed(created):
                if name in grouped:
                    self.store.remove_from_group(vm, name)
                self.store.remove_image(name)
            raise

    # ---- leftovers ---------------------------------------------------------------------------

    def clear_leftovers(self, vm, leftovers):
        """What a killed run left: staged images removed, a swap cut short undone (the old
        VM comes back), a group whose system image never joined removed. We hold the VM's
        lock, so no other run is using them."""
        self.warn("VM %s: removing what an interrupted run left (%s)."
                  % (vm, ", ".join(leftovers.names()) or "an incomplete group"))
        staged = list(leftovers.staged)
        if leftovers.retired:
            staged = sorted(set(staged) | set(disks.undo_swap(self.store, leftovers.retired)))
        for name in staged:
            self.store.remove_image(name)
        if leftovers.incomplete:
            self.remove_group_and_members(vm)

    # ---- the swap of a forced re-create -----------------------------------------------------

    def stage(self, plan, metadata):
        """A re-created VM's disks under staging names -> their names; a failure removes
        them."""
        staged = []
        try:
            disks.make_disks(self.store, self.run, plan, staged)
            self.store.set_metadata(staged[0], metadata)
        except BaseException:
            for name in staged:
                self.store.remove_image(name)
            raise
        return staged

    def swap(self, vm, staged, stop, start):
        """The old disks swapped for the staged ones while the VM is stopped (``stop`` and
        ``start``: the power of an enabled running VM, else no-ops). A failure before the
        point of no return removes the staged images and starts the old VM again."""
        try:
            stop()
            retired = disks.swap_in(self.store, vm, staged)
        except BaseException:
            for name in staged:
                self.store.remove_image(name)
            start()
            raise
        # Point of no return: the old disks leave the group (with their snapshots).
        for snap, _created in self.store.snapshots.group_snapshots(vm):
            self.store.snapshots.remove_group_snapshot(vm, snap)
        for name in retired:
            self.drop_own_snapshots(name)
        for name in retired:
            self.store.remove_from_group(vm, name)
        finals = [name[len(disks.STAGING_PREFIX):] for name in staged]
        for name in finals[1:] + finals[:1]:
            self.store.add_to_group(vm, name)
        for name in retired:
            self.dispose(name)
        start()

    # ---- removal ----------------------------------------------------------------------------

    def remove_vm(self, vm):
        """Every snapshot first, while the group still holds the disks (a failure here leaves
        the VM whole, for a rerun to finish the job), then the images to the trash or
        purged, then the group."""
        for snap, _created in self.store.snapshots.group_snapshots(vm):
            self.store.snapshots.remove_group_snapshot(vm, snap)
        for name in self.store.images_of(vm):
            self.drop_own_snapshots(name)
        for name in self.store.images_of(vm):
            self.store.remove_from_group(vm, name)
            self.dispose(name)
        self.store.remove_group(vm)

    def dispose(self, image):
        """An image leaving its VM: purged, or to the trash. An image linked clones still
        hang from can only go to the trash (Ceph keeps it until its last clone is gone)."""
        parent = self.store.snapshots.parent_of(image)
        for snap in self.store.snapshots.user_snapshots(image):
            if snap.startswith(disks.CLONE_SNAP_PREFIX):
                self.store.snapshots.remove_snapshot_if_unused(image, snap)
        in_use = [s for s in self.store.snapshots.user_snapshots(image)
                  if s.startswith(disks.CLONE_SNAP_PREFIX)]
        if self.purge and not in_use:
            self.store.remove_image(image)
            if parent:
                disks.release_parent_snapshots(self.store, [parent])
            return
        if self.purge:
            self.warn("RBD image %s goes to the trash, not purged: linked clones still use "
                      "it." % image)
        self.store.trash_image(image, self.trash_delay or 0)

    def drop_own_snapshots(self, image):
        """The per-image snapshots of a disk that leaves (vm_manager's): RBD neither trashes
        nor removes an image that has snapshots. Those linked clones hang from stay."""
        for snap in self.store.snapshots.user_snapshots(image):
            if not snap.startswith(disks.CLONE_SNAP_PREFIX):
                self.store.snapshots.remove_image_snapshot(image, snap)

    # ---- metadata -----------------------------------------------------------------------------

    def stored_xml(self, vm):
        return self.store.metadata(system_image(vm))[KEY_XML]

    def keep_allocation(self, vm, allocated_xml, stored_digest):
        """The definition our resource agent boots while the stored one has ``stored_digest``
        (the XML first: the agent reads the digest first)."""
        self.store.set_metadata(system_image(vm), {hooks.ALLOCATED_XML: allocated_xml})
        self.store.set_metadata(system_image(vm), {hooks.ALLOCATED_FROM: stored_digest})

    def drop_allocation(self, vm):
        self.store.remove_metadata(system_image(vm), [hooks.ALLOCATED_FROM, hooks.ALLOCATED_XML])

    def write_metadata(self, vm, stored, wanted):
        """Store ``wanted`` over the metadata read as ``stored``: the keys that differ are
        set, those it no longer has (vm_manager's encodings among them) removed."""
        self.store.set_metadata(system_image(vm), dict(
            (k, v) for k, v in wanted.items() if stored.get(k) != v))
        self.store.remove_metadata(system_image(vm), [k for k in stored if k not in wanted])
