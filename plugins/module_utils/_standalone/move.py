# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""standalone_vm command=move, offline: a VM of this host taken to another standalone host
over two libvirt connections, without ever losing it.

The order is what keeps it safe: everything that can refuse is checked before the VM is
stopped (the destination answers, the name and UUID are free there, its pool has room); the
disks are copied while a record of the move sits in the destination pool (a volume named
``<vm>.moving``, also the destination's side of the VM's lock); the VM is defined there only
once every disk is complete, started there if it ran, and only then is it removed here and
the record dropped. A failure undoes what the move made there and starts the VM here again;
a run killed on the way leaves the record, and the next run finishes the move (the VM is
defined there: its disks are complete) or undoes it (it is not)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils import libvirt_transfer as transfer
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import view as views
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.host import (
    StandaloneHost)

RECORD_SUFFIX = ".moving"


class Move(object):
    """One move's two ends: ``here`` (this host's Hypervisor and StandaloneHost) and
    ``there`` (the destination's), the destination pool's name, the VM's name."""

    def __init__(self, ctx, req, there_hv):
        self.ctx = ctx
        self.req = req
        self.vm = req.name
        self.there = there_hv
        self.there_host = StandaloneHost(there_hv)

    def record_name(self):
        return self.vm + RECORD_SUFFIX

    def dest_pool(self):
        """The destination pool, made there like standalone_vm makes its own."""
        return self.there.storage.pool(self.req.destination_pool, create_missing=True)

    def record(self):
        """The record of a move of this VM left in the destination pool, or None."""
        if not self.there.storage.pool_exists(self.req.destination_pool):
            return None
        pool = self.there.storage.pool(self.req.destination_pool)
        vol = self.there.storage.volume(pool, self.record_name())
        if vol is None:
            return None
        text = transfer.read_record(self.there.conn, vol)
        try:
            return json.loads(text.decode("utf-8"))
        except ValueError:
            return {"volumes": [], "was_running": False}


def plan_move(ctx, req, view, there_hv):
    """The move's steps, after the checks that can refuse it."""
    move = Move(ctx, req, there_hv)
    check_not_this_host(ctx.hv, there_hv)
    there = views.read_view(there_hv, req.name)
    ctx.plan.values.update(destination=there_hv.hostname(), bytes_copied=0,
                           stopped_seconds=0.0)
    record = move.record()
    if record is not None and there.exists and not view.active:
        return plan_finish(move, view, there, record)
    if record is not None:
        view = plan_undo(move, view, record)
        there = views.VmView(req.name)
    if not view.exists:
        if there.exists:
            return there  # already moved: nothing to do
        raise VmError("Cannot move VM %s: it is neither on this host nor on %s."
                      % (req.name, there_hv.hostname()))
    if there.exists:
        raise VmError("VM %s exists both here and on %s: remove the copy that should not "
                      "be there, then move again." % (req.name, there_hv.hostname()))
    if req.live and view.active:
        return plan_live(move, view, check_room_now=record is None)
    return plan_offline(move, view, check_room_now=record is None)


def check_not_this_host(here, there):
    if here.hostname() == there.hostname():
        raise VmError("destination_uri %s is this host (%s): a VM is moved to another host."
                      % (there.uri, here.hostname()))


# ---- a move cut short ------------------------------------------------------------------------

def plan_finish(move, view, there, record):
    """A record in the destination pool and the VM defined there: an earlier move stopped
    after its disks were complete (the source's lock is ours: none is running). Finished."""
    move.ctx.plan.change("finished the move of VM %s to %s" % (move.vm, move.there.hostname()),
                         apply=lambda: finish(move, view.exists, record))
    return there


def plan_undo(move, view, record):
    """A record there, and the VM not defined there (an earlier move stopped while copying)
    or running here again (a failed move started it again but could not clean up there):
    what it made there goes, and the move starts again; -> the VM as it was before that
    earlier move (running if it ran: the move starts it there, or here if it fails)."""
    move.ctx.plan.change("removed what an unfinished move of VM %s left on %s"
                         % (move.vm, move.there.hostname()),
                         apply=lambda: remove_copies(move, move.dest_pool(),
                                                     record.get("volumes", [])))
    if view.exists and record.get("was_running") and not view.active:
        view.status = "Started"
    return view


def finish(move, source_defined, record):
    dom = move.there.domain(move.vm)
    if record.get("was_running") and not move.there.is_active(dom):
        move.there.start(dom)
    if source_defined:
        move.ctx.host.remove_vm(move.vm)
    else:
        move.ctx.host.delete_disks_of(move.vm, record.get("source_paths", []))
    drop_record(move)


def drop_record(move):
    pool = move.dest_pool()
    vol = move.there.storage.volume(pool, move.record_name())
    if vol is not None:
        vol.delete(0)


# ---- offline -------------------------------------------------------------------------------

def plan_offline(move, view, check_room_now=True):
    """Checked now, before anything stops: every disk a volume of a pool here, the UUID
    free there, room in the destination pool (again when the move runs: after an undone
    move, its copies still take room now)."""
    ctx = move.ctx
    disks = source_volumes(ctx.hv, view)
    move.there_host.check_uuid_free(dx.uuid_of(view.root), move.vm)
    if check_room_now:
        check_room(move, disks)
    ctx.plan.change("moved VM %s to %s" % (move.vm, move.there.hostname()),
                    apply=lambda: offline(move, view, disks))
    return view


def source_volumes(hv, view):
    """[VolumeFacts] of the VM's disks, in their order; a disk that is not a pool volume,
    or a linked clone's (on a base), is refused."""
    found = []
    for path in dx.disk_paths(view.root):
        vol = hv.storage.volume_by_path(path)
        if vol is None:
            raise VmError("Cannot move VM %s: its disk %s is not a volume of a libvirt "
                          "storage pool." % (view.name, path))
        facts = transfer.VolumeFacts(vol)
        if facts.backing:
            raise VmError("Cannot move VM %s: its disk %s is a linked clone's overlay on "
                          "%s. Make it a full clone first (command: clone, full: true)."
                          % (view.name, path, facts.backing))
        found.append((vol, facts))
    return found


def check_room(move, disks):
    """The destination pool has room for every disk as it is on disk here (a pool that does
    not exist yet is made in the default directory: its file system is asked)."""
    needed = sum(facts.allocation for _vol, facts in disks)
    storage = move.there.storage
    if storage.pool_exists(move.req.destination_pool):
        available = storage.pool(move.req.destination_pool).info()[3]
    else:
        available = None  # made at the move; its directory's room is checked then
    if available is not None and available < needed:
        raise VmError("Cannot move VM %s: pool %s on %s has %d bytes free, its disks take "
                      "%d." % (move.vm, move.req.destination_pool, move.there.hostname(),
                               available, needed))


def offline(move, view, disks):
    ctx = move.ctx
    was_running = view.active
    names = [facts.name for _vol, facts in disks]
    progress = {"recorded": False, "started_there": False}
    stopped_at = time.monotonic()
    try:
        pool = move.dest_pool()
        check_room(move, disks)
        create_record(move, pool, move_record(move, was_running, disks))
        progress["recorded"] = True
        stopped_at = time.monotonic()
        if ctx.hv.is_active(ctx.domain(move.vm)):
            ctx.hv.stop(ctx.domain(move.vm), move.req.stop_timeout)
        copied = copy_disks(move, pool, disks)
        dom = define_there(move, view, pool, disks)
        if was_running:
            move.there.start(dom)
            progress["started_there"] = True
    except BaseException:
        undo_offline(move, names, was_running, progress)
        raise
    ctx.plan.values.update(bytes_copied=copied,
                           stopped_seconds=round(time.monotonic() - stopped_at, 3))
    ctx.host.remove_vm(move.vm)
    drop_record(move)


def move_record(move, was_running, disks):
    return {"source": move.ctx.hv.hostname(), "was_running": was_running,
            "volumes": [facts.name for _vol, facts in disks],
            "source_paths": [facts.path for _vol, facts in disks],
            "started": int(time.time())}


def create_record(move, pool, record):
    try:
        transfer.create_record(move.there.conn, pool, move.record_name(),
                               json.dumps(record, sort_keys=True).encode("utf-8"))
    except VmError:
        raise VmError("VM %s is being moved to %s by another run (volume %s exists in pool "
                      "%s there); try again when it has finished."
                      % (move.vm, move.there.hostname(), move.record_name(), pool.name()))


def copy_disks(move, pool, disks):
    """Each disk into a new volume of the same name, format and capacity there."""
    copied = 0
    for vol, facts in disks:
        if move.there.storage.volume(pool, facts.name) is not None:
            raise VmError("Volume %s already exists in pool %s on %s but no VM %s owns it: "
                          "remove it first." % (facts.name, pool.name(),
                                                move.there.hostname(), move.vm))
        target = transfer.create_like(pool, facts, facts.name)
        copied += transfer.copy_volume(move.ctx.hv.conn, vol, move.there.conn, target)
    return copied


def there_paths(move, pool, disks):
    """{path here: path there} of the VM's disks."""
    there_path = move.there.storage.pool_path(pool)
    return dict((facts.path, os.path.join(there_path, facts.name)) for _vol, facts in disks)


def define_there(move, view, pool, disks):
    """The VM defined there with its definition, our record of it, its autostart flag and
    its snapshots list; its disks' paths are the destination pool's."""
    paths = there_paths(move, pool, disks)
    root = dx.parse_domain(dx.canonical(view.root), "definition")
    dx.remove_gv_metadata(root)
    move_disk_paths(root, paths)
    if view.stored is not None:
        stored = dx.parse_domain(view.stored, "stored definition")
        move_disk_paths(stored, paths)
        dom = move.there_host.define_recorded(stored, view.meta)
    else:
        dom = move.there.define(root)
    snapshots = [(moved_snapshot_xml(xml, paths), current)
                 for xml, current in move.ctx.hv.snapshot_definitions(move.ctx.domain(move.vm))]
    move.there.redefine_snapshots(dom, snapshots)
    move.there.set_autostart(dom, view.autostart)
    return dom


def move_disk_paths(root, paths):
    for source in root.iter("source"):
        if source.get("file") in paths:
            source.set("file", paths[source.get("file")])


def moved_snapshot_xml(xml, paths):
    root = dx.parse(xml, "snapshot XML")
    move_disk_paths(root, paths)
    return dx.to_string(root)


def undo_offline(move, names, was_running, progress):
    """What this move made there removed, the VM started here again if it ran. The
    destination may be what failed: what cannot be removed there stays with the record,
    for the next move to remove, and the VM still starts here, unless it runs there."""
    if progress["recorded"]:
        try:
            remove_copies(move, move.dest_pool(), names)
        except Exception as exc:  # pylint: disable=broad-except
            move.ctx.warn("The move of VM %s left part of it on %s (%s): the next move of "
                          "the VM removes it." % (move.vm, move.there.hostname(), exc))
            if progress["started_there"]:
                return
    here = move.ctx.hv.domain(move.vm)
    if was_running and here is not None and not move.ctx.hv.is_active(here):
        move.ctx.hv.start(here)


def remove_copies(move, pool, names):
    dom = move.there.domain(move.vm)
    if dom is not None:
        if move.there.is_active(dom):
            move.there.stop(dom, 0, force=True)
        move.there.undefine(dom)
    for name in names:
        vol = move.there.storage.volume(pool, name)
        if vol is not None:
            vol.delete(0)
    drop_record(move)


# ---- live ----------------------------------------------------------------------------------

def plan_live(move, view, check_room_now=True):
    """A running VM moved with libvirt's migration and a copy of its own disks: refused when
    it has snapshots (a live copy carries the disks' current data only)."""
    if view.snapshots:
        raise VmError("Cannot move VM %s live: it has snapshots (%s), which a live copy of its "
                      "disks does not carry. Move it offline (live: false) to keep them, or "
                      "remove them first." % (move.vm, ", ".join(s[0] for s in view.snapshots)))
    disks = source_volumes(move.ctx.hv, view)
    move.there_host.check_uuid_free(dx.uuid_of(view.root), move.vm)
    if check_room_now:
        check_room(move, disks)
    move.ctx.plan.change("moved VM %s live to %s" % (move.vm, move.there.hostname()),
                         apply=lambda: live(move, view, disks))
    return view


def live(move, view, disks):
    """Until the guest runs there, a failure undoes what the move made there (the guest runs
    on here). After, the VM is there: what is left to do is finished by the next move."""
    ctx = move.ctx
    names = [facts.name for _vol, facts in disks]
    progress = {"recorded": False, "started_there": False}
    try:
        pool = move.dest_pool()
        check_room(move, disks)
        create_record(move, pool, move_record(move, True, disks))
        progress["recorded"] = True
        for _vol, facts in disks:
            transfer.create_like(pool, facts, facts.name)
        dom, (paused, copied) = transfer.migrate_with_disks(
            ctx.domain(move.vm), move.there.conn, disk_targets(view),
            persisted_there(move, view, pool, disks))
    except BaseException:
        undo_offline(move, names, True, progress)
        raise
    if view.stored is not None:
        move.there_host.define_recorded(stored_there(move, view, pool, disks), view.meta)
    move.there.set_autostart(dom, view.autostart)
    ctx.plan.values.update(bytes_copied=copied or received_bytes(move, pool, disks),
                           paused_seconds=paused)
    move.ctx.host.delete_disks_of(move.vm, [facts.path for _vol, facts in disks])
    drop_record(move)


def received_bytes(move, pool, disks):
    """What the disks take there now (libvirt's count of the disk bytes a migration copied
    is kept only where the guest left)."""
    move.there.storage.refresh_pool(pool)
    return sum(transfer.VolumeFacts(move.there.storage.volume(pool, facts.name)).allocation
               for _vol, facts in disks)


def disk_targets(view):
    return [disk["target"] for disk in dx.disk_info(view.root)]


def stored_there(move, view, pool, disks):
    stored = dx.parse_domain(view.stored, "stored definition")
    move_disk_paths(stored, there_paths(move, pool, disks))
    return stored


def persisted_there(move, view, pool, disks):
    """The definition the destination keeps: this one, its disks' paths there's."""
    root = dx.parse_domain(dx.to_string(view.root), "definition")
    move_disk_paths(root, there_paths(move, pool, disks))
    return root
