# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The RBD store's snapshots and clones: group snapshots (every disk of a VM at one instant),
the per-image snapshots SEAPATH's vm_manager takes, layered clones and the parent snapshots
they hang from, full copies at a group snapshot. Through the rados/rbd Python bindings, on
the store's connection (``RbdStore.snapshots``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar

from ansible_collections.gridvirt.kvm.plugins.module_utils._common import deps
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import system_image


class RbdSnapshots(object):
    """``conn``: the RbdConnection of the pool."""

    def __init__(self, conn):
        self.conn = conn

    def group_snapshots(self, vm):
        """[(name, creation time as epoch seconds)] oldest first. The time is that of the
        member snapshots (a group snapshot has none of its own)."""
        rbd = deps.require("rbd")
        names = [s["name"] for s in rbd.Group(self.conn.ioctx, vm).list_snaps()]
        times = {}
        with rbd.Image(self.conn.ioctx, system_image(vm), read_only=True) as img:
            for snap in img.list_snaps():
                if snap.get("namespace") != rbd.RBD_SNAP_NAMESPACE_TYPE_GROUP:
                    continue
                group = img.snap_get_group_namespace(snap["id"])
                if group.get("name") == vm:
                    stamp = img.get_snap_timestamp(snap["id"])
                    # librbd gives a naive UTC datetime.
                    times[group["snap_name"]] = calendar.timegm(stamp.timetuple())
        return sorted(((n, times.get(n, 0)) for n in names), key=lambda s: (s[1], s[0]))

    def create_group_snapshot(self, vm, name):
        """All disks of the VM at one instant (librbd quiesces writers holding the
        exclusive lock, so a running guest's disks stay consistent together)."""
        deps.require("rbd").Group(self.conn.ioctx, vm).create_snap(name)

    def remove_group_snapshot(self, vm, name):
        deps.require("rbd").Group(self.conn.ioctx, vm).remove_snap(name)

    def rollback_group_snapshot(self, vm, name):
        deps.require("rbd").Group(self.conn.ioctx, vm).rollback_to_snap(name)

    def snapshot_image(self, image, snap, protect=True):
        rbd = deps.require("rbd")
        with rbd.Image(self.conn.ioctx, image) as img:
            if not img.snap_exists(snap):
                img.create_snap(snap)
            if protect and not img.is_protected_snap(snap):
                img.protect_snap(snap)

    def clone_image(self, parent, snap, child):
        """Layered clone: constant time, copy-on-write from the protected parent snapshot."""
        rbd = deps.require("rbd")
        self.conn._rbd().clone(self.conn.ioctx, parent, snap, self.conn.ioctx, child,
                               features=rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK)

    def user_snapshots(self, image):
        """Names of the image's own snapshots (not those of group snapshots)."""
        rbd = deps.require("rbd")
        with rbd.Image(self.conn.ioctx, image, read_only=True) as img:
            return [s["name"] for s in img.list_snaps()
                    if s.get("namespace", rbd.RBD_SNAP_NAMESPACE_TYPE_USER)
                    == rbd.RBD_SNAP_NAMESPACE_TYPE_USER]

    def image_snapshots(self, image):
        """[(name, creation time as epoch seconds)] of the image's own snapshots (those of
        group snapshots excluded), oldest first."""
        rbd = deps.require("rbd")
        with rbd.Image(self.conn.ioctx, image, read_only=True) as img:
            found = [(s["name"], calendar.timegm(img.get_snap_timestamp(s["id"]).timetuple()))
                     for s in img.list_snaps()
                     if s.get("namespace", rbd.RBD_SNAP_NAMESPACE_TYPE_USER)
                     == rbd.RBD_SNAP_NAMESPACE_TYPE_USER]
        return sorted(found, key=lambda snap: (snap[1], snap[0]))

    def remove_image_snapshot(self, image, snap):
        """Remove the image's own snapshot, unprotected first (vm_manager protects none, an
        operator may have); a snapshot already gone is fine."""
        rbd = deps.require("rbd")
        with rbd.Image(self.conn.ioctx, image) as img:
            if not img.snap_exists(snap):
                return
            if img.is_protected_snap(snap):
                img.unprotect_snap(snap)
            img.remove_snap(snap)

    def rollback_image_snapshot(self, image, snap):
        with deps.require("rbd").Image(self.conn.ioctx, image) as img:
            img.rollback_to_snap(snap)

    def parent_of(self, image):
        """(parent image id, snapshot) of a layered clone, or None. The id, because the
        parent may be in the trash (its VM removed while clones used it): only the id
        opens it there."""
        rbd = deps.require("rbd")
        with rbd.Image(self.conn.ioctx, image, read_only=True) as img:
            try:
                parent = img.get_parent_image_spec()
                parent_id = img.parent_id()  # Ceph 16's spec has no id
            except rbd.ImageNotFound:
                return None
        return parent_id, parent["snap_name"]

    def remove_snapshot_if_unused(self, image, snap, by_id=False):
        """Unprotect and remove a clone's parent snapshot once no clone hangs from it.
        ``image`` is a name, or an image id with by_id (a parent in the trash)."""
        rbd = deps.require("rbd")
        ref = {"image_id": image} if by_id else {"name": image}
        try:
            with rbd.Image(self.conn.ioctx, read_only=True, **ref) as img:
                if not img.snap_exists(snap):
                    return False
            # Children in the trash count: they still read through the snapshot.
            with rbd.Image(self.conn.ioctx, snapshot=snap, read_only=True, **ref) as img:
                if list(img.list_children2()):
                    return False
            with rbd.Image(self.conn.ioctx, **ref) as img:
                if img.is_protected_snap(snap):
                    img.unprotect_snap(snap)
                img.remove_snap(snap)
                return True
        except rbd.ImageNotFound:
            return False

    def copy_image_at_group_snapshot(self, image, vm, group_snap, dest):
        """Full copy of a member image as it was at the VM's group snapshot."""
        rbd = deps.require("rbd")
        with rbd.Image(self.conn.ioctx, image, read_only=True) as img:
            for snap in img.list_snaps():
                if snap.get("namespace") != rbd.RBD_SNAP_NAMESPACE_TYPE_GROUP:
                    continue
                group = img.snap_get_group_namespace(snap["id"])
                if group.get("name") == vm and group.get("snap_name") == group_snap:
                    img.set_snap_by_id(snap["id"])
                    img.copy(self.conn.ioctx, dest)
                    return
        raise VmError("Image %s has no snapshot of group snapshot %s." % (image, group_snap))
