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
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_storage import DEFAULT_POOL

RECORD_SUFFIX = ".moving"
# A linked clone's disk flattened here before it is sent (removed once sent).
FLAT_SUFFIX = ".flat"


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
        """The destination pool, made there like standalone_vm makes its own (the default
        one only: another missing pool is a sentence)."""
        name = self.req.destination_pool
        if name != DEFAULT_POOL and not self.there.storage.pool_exists(name):
            raise VmError("The storage pool %s does not exist on %s."
                          % (name, self.there.hostname()))
        return self.there.storage.pool(name, create_missing=True)

    def record(self):
        """The record of a move of this VM left in the destination pool, or None (read
        only: a pool that does not run holds none this module made)."""
        pool = self.there.storage.active_pool(self.req.destination_pool)
        vol = self.there.storage.volume(pool, self.record_name()) if pool else None
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
    if req.destination_pool != DEFAULT_POOL and \
            not there_hv.storage.pool_exists(req.destination_pool):
        raise VmError("The storage pool %s does not exist on %s."
                      % (req.destination_pool, there_hv.hostname()))
    there = views.read_view(there_hv, req.name)
    ctx.plan.values.update(destination=there_hv.hostname(), bytes_copied=0,
                           stopped_seconds=0.0)
    record = move.record()
    if record is not None and finishes(move, view, there, record):
        return plan_finish(move, view, there, record)
    # A live move's source left paused at its end runs on once the undo resumes it.
    running_here = view.status in ("Started", "Stopping") or (
        view.status == "Paused" and record is not None and record.get("live"))
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
    # The hooks of this host: allocate names the destination; disallocate runs for the
    # source side once the VM has left.
    ctx.allocate_first(req.name, "move", view.root, view.meta, node=there_hv.hostname())
    if req.live and running_here:
        return plan_live(move, view, check_room_now=record is None)
    return plan_offline(move, view, check_room_now=record is None)


def finishes(move, view, there, record):
    """An earlier move stopped on the way finishes when its copy there is the VM's latest
    state: a live move whose guest runs there (the source, paused, is stale), or a copy
    defined there (complete: it is defined after its disks) while the VM does not run here
    and its disks here were not written since the copy (it did not run here since)."""
    if not there.exists:
        return False
    if record.get("live"):
        return there.active
    if view.active:
        return False
    return not view.exists or not written_since_copy(move, view, record)


def written_since_copy(move, view, record):
    """Whether a disk here was modified after the copies there were last written."""
    pool = move.there.storage.active_pool(move.req.destination_pool)
    copied = [move.there.storage.volume(pool, name) for name in record.get("volumes", [])
              if pool is not None]
    if not copied or None in copied:
        return True
    copied_at = max(transfer.VolumeFacts(vol).mtime for vol in copied)
    for path in dx.disk_paths(view.root):
        vol = move.ctx.hv.storage.volume_by_path(path)
        if vol is None or transfer.VolumeFacts(vol).mtime > copied_at:
            return True
    return False


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
    or not its latest state (the VM ran here since): what that move made there goes, a
    source it left paused (a live move) runs on, and the move starts again; -> the VM as
    it was before that earlier move (running if it ran: the move starts it there, or here
    if it fails)."""
    move.ctx.plan.change("removed what an unfinished move of VM %s left on %s"
                         % (move.vm, move.there.hostname()),
                         apply=lambda: undo_earlier(move, record))
    if view.exists and record.get("was_running") and view.status != "Started":
        view.status = "Started"
    return view


def undo_earlier(move, record):
    remove_copies(move, move.dest_pool(), record.get("volumes", []))
    here = move.ctx.hv.domain(move.vm)
    if here is not None and move.ctx.hv.status(here) == "Paused":
        move.ctx.hv.resume(here)


def finish(move, source_defined, record):
    """The copy there started if the VM ran, given its autostart; the VM here (stale, a
    live move's paused source included) removed; the record dropped."""
    dom = move.there.domain(move.vm)
    if record.get("start_there", record.get("was_running")) and not move.there.is_active(dom):
        move.there.start(dom)
    if "autostart" in record:
        move.there.set_autostart(dom, record["autostart"])
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
    free there, its volume names free and room in the destination pool (checked again when
    the move runs; only then after an undone move, whose copies are still there now)."""
    ctx = move.ctx
    disks = source_volumes(ctx.hv, view)
    if view.snapshots and any(facts.backing for _vol, facts in disks):
        raise VmError("Cannot move VM %s: it is a linked clone with snapshots (%s), which "
                      "its disks lose when they are flattened to be sent. Remove them first."
                      % (move.vm, ", ".join(snap[0] for snap in view.snapshots)))
    move.there_host.check_uuid_free(dx.uuid_of(view.root), move.vm)
    if check_room_now:
        check_names_free(move, disks)
        check_room(move, disks)
    check_room_to_flatten(ctx.hv, move.vm, disks)
    ctx.plan.change("moved VM %s to %s" % (move.vm, move.there.hostname()),
                    apply=lambda: offline(move, view, disks))
    if move.req.nostart:
        view.status = "Stopped"  # as the move leaves it there
    return view


def source_volumes(hv, view):
    """[(volume, VolumeFacts)] of the VM's disks, in their order, each with ``needed``: the
    bytes its data takes, a linked clone's base(s) included (it arrives flattened). A disk
    that is not a pool volume is refused."""
    found = []
    for path in dx.disk_paths(view.root):
        vol = hv.storage.volume_by_path(path)
        if vol is None:
            raise VmError("Cannot move VM %s: its disk %s is not a volume of a libvirt "
                          "storage pool." % (view.name, path))
        facts = transfer.VolumeFacts(vol)
        facts.needed = chain_allocation(hv, facts)
        found.append((vol, facts))
    return found


def chain_allocation(hv, facts):
    """What a disk's data takes with the bases it stands on: room enough for it flattened."""
    total, backing = facts.allocation, facts.backing
    while backing:
        base = hv.storage.volume_by_path(backing)
        if base is None:
            try:
                return total + os.path.getsize(backing)
            except OSError as exc:
                raise VmError("Cannot read the base %s of disk %s: %s."
                              % (backing, facts.path, exc.strerror)) from None
        base_facts = transfer.VolumeFacts(base)
        total, backing = total + base_facts.allocation, base_facts.backing
    return total


def check_room(move, disks):
    """The destination pool has room for every disk as it is on disk here (a pool that does
    not exist yet is made in the default directory: its file system is asked)."""
    needed = sum(facts.needed for _vol, facts in disks)
    pool = move.there.storage.active_pool(move.req.destination_pool)
    # A pool made (or started) by the move is checked when the move runs.
    available = pool.info()[3] if pool is not None else None
    if available is not None and available < needed:
        raise VmError("Cannot move VM %s: pool %s on %s has %d bytes free, its disks take "
                      "%d." % (move.vm, move.req.destination_pool, move.there.hostname(),
                               available, needed))


def check_names_free(move, disks):
    """The disks' volume names are free in the destination pool: a volume there that no
    move of this VM made is never written over, nor removed by an undo."""
    pool = move.there.storage.active_pool(move.req.destination_pool)
    for _vol, facts in disks:
        if pool is not None and move.there.storage.volume(pool, facts.name) is not None:
            raise VmError("Volume %s already exists in pool %s on %s but no VM %s owns it: "
                          "remove it first." % (facts.name, pool.name(),
                                                move.there.hostname(), move.vm))


def check_room_to_flatten(hv, vm, disks):
    """A linked clone's disk is flattened here before it is sent: its pool needs the room."""
    for vol, facts in disks:
        if not facts.backing:
            continue
        pool = vol.storagePoolLookupByVolume()
        hv.storage.refresh_pool(pool)
        if pool.info()[3] < facts.needed:
            raise VmError("Cannot move VM %s: its disk %s is a linked clone's, sent flattened, "
                          "and pool %s here has %d bytes free for the flat copy, which takes "
                          "up to %d." % (vm, facts.path, pool.name(), pool.info()[3],
                                         facts.needed))


def offline(move, view, disks):
    ctx = move.ctx
    was_running = view.active
    progress = {"recorded": False, "created": [], "started_there": False}
    stopped_at = time.monotonic()
    try:
        pool = move.dest_pool()
        check_names_free(move, disks)
        check_room(move, disks)
        create_record(move, pool, move_record(move, was_running, disks, view.autostart))
        progress["recorded"] = True
        stopped_at = time.monotonic()
        if ctx.hv.is_active(ctx.domain(move.vm)):
            ctx.hv.stop(ctx.domain(move.vm), move.req.stop_timeout)
        copied = copy_disks(move, pool, disks, progress["created"])
        dom = define_there(move, view, pool, disks)
        if was_running and not move.req.nostart:
            move.there.start(dom)
            progress["started_there"] = True
    except BaseException:
        undo_offline(move, was_running, progress)
        raise
    ctx.plan.values.update(bytes_copied=copied,
                           stopped_seconds=round(time.monotonic() - stopped_at, 3))
    # Last: a copy left there by a run killed before this point does not boot with its host.
    move.there.set_autostart(dom, view.autostart)
    ctx.host.remove_vm(move.vm)
    drop_record(move)
    ctx.stopped(move.vm, "move", view.root, view.meta)


def move_record(move, was_running, disks, autostart, live=False):
    return {"source": move.ctx.hv.hostname(), "was_running": was_running,
            "start_there": was_running and not move.req.nostart,
            "autostart": bool(autostart), "live": live,
            "volumes": [facts.name for _vol, facts in disks],
            "source_paths": [facts.path for _vol, facts in disks],
            "started": int(time.time())}


def create_record(move, pool, record):
    """The record of this move there; one that exists is another run's move (a run killed
    on the way left its record: this run's plan undid or finished it first)."""
    if move.there.storage.volume(pool, move.record_name()) is not None:
        raise VmError("VM %s is being moved to %s by another run (volume %s exists in pool "
                      "%s there); try again when it has finished."
                      % (move.vm, move.there.hostname(), move.record_name(), pool.name()))
    transfer.create_record(move.there.conn, pool, move.record_name(),
                           json.dumps(record, sort_keys=True).encode("utf-8"))


def copy_disks(move, pool, disks, created):
    """Each disk into a new volume of the same name, format and capacity there (``created``
    lists them as they are made); a linked clone's disk flattened first (a copy here,
    removed after), so it arrives whole and the base it shares with other VMs stays as it
    is."""
    copied = 0
    for vol, facts in disks:
        target = transfer.create_like(pool, facts, facts.name)
        created.append(facts.name)
        if not facts.backing:
            copied += transfer.copy_volume(move.ctx.hv.conn, vol, move.there.conn, target)
            continue
        flat = flattened(move, vol, facts)
        try:
            copied += transfer.copy_volume(move.ctx.hv.conn, flat, move.there.conn, target)
        finally:
            flat.delete(0)
    return copied


def flattened(move, vol, facts):
    """A self-contained copy of a linked clone's disk, in its pool here."""
    storage = move.ctx.hv.storage
    path = storage.copy_image(vol.storagePoolLookupByVolume(), facts.path,
                              facts.name + FLAT_SUFFIX)
    flat = storage.volume_by_path(path)
    if flat is None:
        raise VmError("The flattened copy %s of disk %s is not in its pool."
                      % (path, facts.path))
    return flat


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
    return dom


def move_disk_paths(root, paths):
    for source in root.iter("source"):
        if source.get("file") in paths:
            source.set("file", paths[source.get("file")])


def moved_snapshot_xml(xml, paths):
    root = dx.parse(xml, "snapshot XML")
    move_disk_paths(root, paths)
    return dx.to_string(root)


def undo_offline(move, was_running, progress):
    """What this move made there removed, the VM started here again if it ran. The
    destination may be what failed: what cannot be removed there stays with the record,
    for the next move to remove, and the VM still starts here, unless it runs there."""
    if progress["recorded"]:
        try:
            remove_copies(move, move.dest_pool(), progress["created"])
        except Exception as exc:  # pylint: disable=broad-except
            move.ctx.warn("The move of VM %s left part of it on %s (%s): the next move of "
                          "the VM removes it." % (move.vm, move.there.hostname(), exc))
            if progress["started_there"]:
                return
    here = move.ctx.hv.domain(move.vm)
    if here is not None and move.ctx.hv.status(here) == "Paused":
        move.ctx.hv.resume(here)  # a live migration that failed at its end
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
        check_names_free(move, disks)
        check_room(move, disks)
    move.ctx.plan.change("moved VM %s live to %s" % (move.vm, move.there.hostname()),
                         apply=lambda: live(move, view, disks))
    return view


def live(move, view, disks):
    """Until the guest runs there, a failure undoes what the move made there (the guest runs
    on here). After, the VM is there: what is left to do is finished by the next move."""
    ctx = move.ctx
    progress = {"recorded": False, "created": [], "started_there": False}
    try:
        pool = move.dest_pool()
        check_names_free(move, disks)
        check_room(move, disks)
        create_record(move, pool, move_record(move, True, disks, view.autostart, live=True))
        progress["recorded"] = True
        for _vol, facts in disks:
            transfer.create_like(pool, facts, facts.name)
            progress["created"].append(facts.name)
        paths = there_paths(move, pool, disks)
        dom, (paused, copied) = transfer.migrate_with_disks(
            ctx.domain(move.vm), move.there.conn, disk_targets(view), paths,
            persisted_there(view, paths))
    except BaseException:
        undo_offline(move, True, progress)
        raise
    if view.stored is not None:
        move.there_host.define_recorded(stored_there(view, paths), view.meta)
    move.there.set_autostart(dom, view.autostart)
    ctx.plan.values.update(bytes_copied=copied or received_bytes(move, pool, disks),
                           paused_seconds=paused)
    move.ctx.host.delete_disks_of(move.vm, [facts.path for _vol, facts in disks])
    drop_record(move)
    ctx.stopped(move.vm, "move", view.root, view.meta)


def received_bytes(move, pool, disks):
    """What the disks take there now (libvirt's count of the disk bytes a migration copied
    is kept only where the guest left)."""
    move.there.storage.refresh_pool(pool)
    return sum(transfer.VolumeFacts(move.there.storage.volume(pool, facts.name)).allocation
               for _vol, facts in disks)


def disk_targets(view):
    return [disk["target"] for disk in dx.disk_info(view.root)]


def stored_there(view, paths):
    stored = dx.parse_domain(view.stored, "stored definition")
    move_disk_paths(stored, paths)
    return stored


def persisted_there(view, paths):
    """The definition the destination keeps: this one, its disks' paths there's."""
    root = dx.parse_domain(dx.to_string(view.root), "definition")
    move_disk_paths(root, paths)
    return root
