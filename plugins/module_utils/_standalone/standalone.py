# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Orchestration of VMs on one hypervisor (libvirt, disks in a local storage pool).

One function per state or command. Each reads, compares, acts unless in check mode, and
reports ``changed`` and a diff. Errors are VmError sentences; nothing here parses arguments.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime
import os

from ansible_collections.gridvirt.kvm.plugins.module_utils._common import library_errors
from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.host_lock import VmLocks
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import (
    DEFAULT_POOL, Hypervisor)
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.outcome import Outcome
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.snapshot_policy import (
    listing, snapshots_to_purge)

LOCK_WAIT_SECONDS = 600
COMMAND_TO_STATE = {"remove": "absent", "start": "running", "stop": "stopped"}
READ_ONLY_COMMANDS = ("status", "list_vms", "list_snapshots", "list_metadata", "get_metadata")


def volume_name(vm, index):
    # '.' cannot appear in a VM name, so these never collide between VMs.
    return "%s.disk%d.qcow2" % (vm, index)


class StandaloneVm(Outcome):
    """Runs one module call. ``run`` is AnsibleModule.run_command; ``warn`` its warn."""

    def __init__(self, params, check_mode, run, warn):
        super(StandaloneVm, self).__init__()
        self.p = params
        self.check = check_mode
        self.warn = warn
        self.hv = Hypervisor(params["uri"], run, timeout=params["connect_timeout"])
        self.predicted_restart = False  # check mode: a running VM's definition would change

    # ---- entry point ------------------------------------------------------------------

    def run(self):
        action = self.p.get("command") or self.p["state"]
        what = library_errors.doing(self.p.get("command"), action, self.p.get("name"))
        try:
            with library_errors.as_sentences(what, self.hv.uri):
                if action in READ_ONLY_COMMANDS:
                    getattr(self, "cmd_" + action)()
                else:
                    with VmLocks(self._locked_names(action), LOCK_WAIT_SECONDS):
                        self._dispatch(action)
            return self.finish()
        finally:
            self.hv.close()

    def _locked_names(self, action):
        names = [self.p["name"]]
        if action == "clone":
            names.append(self.p["src_name"])
        return names

    def _dispatch(self, action):
        if action == "create":
            self.converge("present" if self.p.get("nostart") else "running")
        elif action in COMMAND_TO_STATE:
            self._require_existing(action)
            self.converge(COMMAND_TO_STATE[action])
        elif action in ("present", "running", "started", "stopped", "absent"):
            self.converge("running" if action == "started" else action)
        else:
            getattr(self, "cmd_" + action)()

    def _require_existing(self, action):
        if self.hv.domain(self.p["name"]) is None:
            raise VmError("Cannot %s VM %s: it does not exist." % (action, self.p["name"]))

    # ---- declarative states -----------------------------------------------------------

    def converge(self, state):
        name = self.p["name"]
        if state == "absent":
            self.ensure_absent(name)
            self.result.update(name=name, status="Undefined")
            return
        dom = self.hv.domain(name)
        if dom is None:
            dom = self.create_new(name)
        else:
            dom = self.update_existing(name, dom)
        self.ensure_autostart(dom)
        if state in ("present", "running"):
            self.apply_restart(dom)
        self.ensure_power(dom, state)
        self.report_vm(name, dom)

    def report_vm(self, name, dom):
        if dom is None:  # check mode: what the VM would be
            self.result.update(name=name, status="Undefined")
            return
        root = self.hv.xml_root(dom)
        meta = dx.read_gv_metadata(root)[0]
        self.result.update(
            name=name, status=self.hv.status(dom), uuid=dx.uuid_of(root),
            disks=dx.disk_info(root), macs=dx.macs(root), autostart=self.hv.autostart(dom),
            metadata=meta, node=self.hv.hostname())
        self.result["restart_required"] = self.predicted_restart or self.restart_pending(dom)

    def restart_pending(self, dom):
        """The running guest started from another definition than the one now stored: the
        live XML carries the definition it started with, in our metadata."""
        if not self.hv.is_active(dom):
            return False
        live = dx.read_gv_metadata(self.hv.xml_root(dom, inactive=False))[1]
        stored = dx.read_gv_metadata(self.hv.xml_root(dom))[1]
        return bool(live and stored) and live != stored

    # create ---------------------------------------------------------------------------

    def create_new(self, name):
        p = self.p
        if not p.get("xml") or not p.get("system_image"):
            raise VmError("VM %s does not exist: give both xml and system_image to create it."
                          % name)
        root = self._user_domain(p["xml"], name)
        sources = self._disk_sources()  # images refused before anything, even the pool, is made
        pool = self._pool()
        self._check_volumes_free(pool, name, 0, len(sources))
        paths = [self.hv.volume_path(pool, volume_name(name, i)) for i in range(len(sources))]
        desired = self._finish_desired(root, name, paths, p.get("disk_bus") or "virtio")
        meta = spec.validate_metadata(p.get("metadata"))
        self._changed("created VM %s" % name)
        self._add_diff(name, "", dx.canonical(desired))
        if self.check:
            self.hv.validate(desired)
            return None
        created = []
        try:
            for index, source in enumerate(sources):
                created.append(self._make_volume(pool, name, index, source))
            return self._define_recorded(desired, meta)
        except BaseException:
            self._undo_create(name, created)
            raise

    def _undo_create(self, name, created_paths):
        """A failed create removes what it created, and only that."""
        dom = self.hv.domain(name)
        if dom is not None:
            self.hv.undefine(dom)
        for path in created_paths:
            self.hv.delete_volume_path(path)

    def _user_domain(self, xml_text, name, existing_uuid=None):
        root = dx.parse_domain(xml_text)
        dx.reject_owned_disks(root)
        dx.normalize_units(root)
        given = dx.uuid_of(root)
        uuid = existing_uuid or (spec.validate_uuid(given) if given else spec.stable_uuid(name))
        if existing_uuid is None:
            self._check_uuid_free(uuid, name)
        dx.set_identity(root, name, uuid)
        return root

    def _check_uuid_free(self, uuid, name):
        for other, other_uuid in self.hv.read_domains(lambda d: (d.name(), d.UUIDString())):
            if other_uuid == uuid and other != name:
                raise VmError("UUID %s is already used by VM %s." % (uuid, other))

    def _finish_desired(self, root, name, disk_paths, bus):
        dx.add_file_disks(root, disk_paths, bus)
        dx.assign_macs(root, name)
        dx.expose_name_to_guest(root, name)
        if self.p.get("memory"):
            dx.set_memory(root, spec.validate_memory(self.p["memory"]))
        if self.p.get("vcpus"):
            dx.set_vcpus(root, spec.validate_vcpus(self.p["vcpus"]))
        return root

    def _pool(self):
        name = spec.validate_pool_name(self.p.get("pool") or DEFAULT_POOL)
        if self.check and not self.hv.pool_exists(name):
            if name != DEFAULT_POOL:
                raise VmError("The storage pool %s does not exist on this hypervisor." % name)
            self._changed("created storage pool %s" % name)
            return None
        return self.hv.pool(name, create_missing=(name == DEFAULT_POOL))

    def _new_disk_plan(self, pool, name, first_index=0, additional=None):
        """[('image', path) | ('size', bytes)] for the disks to create, checked up front."""
        plan = self._disk_sources(first_index, additional)
        self._check_volumes_free(pool, name, first_index, len(plan))
        return plan

    def _disk_sources(self, first_index=0, additional=None):
        """[('image', path) | ('size', bytes)]: the images checked (self-contained qcow2 or
        raw), the sizes parsed; reads only the images."""
        plan = []
        if first_index == 0:
            plan.append(("image", self.hv.check_image(self.p["system_image"])))
        items = (self.p.get("additional_disks") or []) if additional is None else additional
        for item in items:
            plan.append(self._additional_disk(item))
        return plan

    def _check_volumes_free(self, pool, name, first_index, count):
        for offset in range(count):
            vol = volume_name(name, first_index + offset)
            if pool is not None and self.hv.volume(pool, vol) is not None:
                raise VmError("Volume %s already exists in pool %s but no VM %s owns it: "
                              "remove it first." % (vol, pool.name(), name))

    def _additional_disk(self, item):
        kind, value = spec.additional_disk_source(item)
        return (kind, self.hv.check_image(value) if kind == "image" else value)

    def _make_volume(self, pool, name, index, source):
        kind, value = source
        vol = volume_name(name, index)
        if kind == "image":
            return self.hv.import_image(pool, vol, value)
        return self.hv.create_volume(pool, vol, size_bytes=value)

    def _define_recorded(self, desired, meta):
        """Define the VM with our metadata: the definition we asked for, and the digest of
        what libvirt made of it, so later edits behind our back are noticed."""
        definition = dx.canonical(desired)
        first = copy.deepcopy(desired)
        dx.set_gv_metadata(first, dx.build_gv_metadata(meta, definition))
        dom = self.hv.define(first)
        defined = dx.digest(self.hv.xml_root(dom))
        final = copy.deepcopy(desired)
        dx.set_gv_metadata(final, dx.build_gv_metadata(meta, definition, defined))
        return self.hv.define(final)

    # update ---------------------------------------------------------------------------

    def update_existing(self, name, dom):
        p = self.p
        current = self.hv.xml_root(dom)
        meta, stored, stored_digest = dx.read_gv_metadata(current)
        if p.get("force") and p.get("system_image"):
            return self.replace_disks(name, dom, current, meta)
        desired = self._desired_for_existing(name, current, stored)
        new_meta = meta if p.get("metadata") is None else spec.validate_metadata(p["metadata"])
        new_definition = dx.canonical(desired)
        drifted = bool(stored_digest) and stored_digest != dx.digest(current)
        before = stored if (stored and not drifted) else dx.canonical(current)
        definition_changed = new_definition != before
        if not (definition_changed or new_meta != meta):
            return dom
        if definition_changed:
            suffix = " (edited outside Ansible)" if drifted else ""
            self._changed("redefined VM %s%s" % (name, suffix))
            self._add_diff(name, before, new_definition)
            self.predicted_restart = self.check and self.hv.is_active(dom)
        if new_meta != meta:
            self._changed("metadata of VM %s" % name)
            self._add_meta_diff(name, meta, new_meta)
        if self.check:
            return dom
        self._create_added_disks(name, current, desired)
        return self._define_recorded(desired, new_meta)

    def _desired_for_existing(self, name, current, stored):
        """The definition asked for now, keeping the VM's UUID and disks."""
        uuid = dx.uuid_of(current)
        paths = dx.disk_paths(current)
        bus = self.p.get("disk_bus") or self._current_bus(current)
        if self.p.get("xml"):
            root = self._user_domain(self.p["xml"], name, existing_uuid=uuid)
        else:
            root = dx.parse_domain(stored or dx.canonical(current), "current definition")
            dx.remove_owned_disks(root)
        paths = paths + self._added_disk_paths(name, current)
        return self._finish_desired(root, name, paths, bus)

    @staticmethod
    def _current_bus(current):
        info = dx.disk_info(current)
        return (info[0]["bus"] if info else None) or "virtio"

    def _added_disk_paths(self, name, current):
        """Paths of additional disks asked for beyond those the VM has; never fewer."""
        wanted = self.p.get("additional_disks")
        have = len(dx.disk_paths(current)) - 1
        if wanted is None or len(wanted) == have:
            return []
        if len(wanted) < have:
            self.warn("VM %s has %d additional disks and additional_disks lists %d: disks are "
                      "never removed by this module." % (name, have, len(wanted)))
            return []
        count = len(self._disk_sources(first_index=have + 1, additional=wanted[have:]))
        pool = self._pool()
        self._check_volumes_free(pool, name, have + 1, count)
        return [self.hv.volume_path(pool, volume_name(name, i))
                if pool is not None else volume_name(name, i)
                for i in range(have + 1, len(wanted) + 1)]

    def _create_added_disks(self, name, current, desired):
        have = len(dx.disk_paths(current))
        new_paths = dx.disk_paths(desired)[have:]
        if not new_paths:
            return
        pool = self._pool()
        plan = self._new_disk_plan(pool, name, first_index=have,
                                   additional=self.p["additional_disks"][have - 1:])
        for offset, source in enumerate(plan):
            self._make_volume(pool, name, have + offset, source)

    def apply_restart(self, dom):
        """apply: restart -- restart a running VM whose definition is newer than it."""
        if self.p.get("apply") != "restart" or dom is None:
            return
        if not (self.predicted_restart or self.restart_pending(dom)):
            return
        self._changed("restarted VM %s to apply its new definition" % self.p["name"])
        self.predicted_restart = False
        if not self.check:
            self.hv.stop(dom, self.p["stop_timeout"], force=self.p.get("force"))
            self.hv.start(dom)

    def replace_disks(self, name, dom, current, meta):
        """force: import the new system image beside the old disk, and swap only once it is
        complete: a failed import leaves the VM exactly as it was."""
        self.hv.check_image(self.p["system_image"])
        pool = self._pool()
        self._changed("re-imported the system disk of VM %s" % name)
        if self.check:
            return dom
        old_system = dx.disk_paths(current)[0]
        new_system = self.hv.import_image(pool, "%s.disk0.%s.qcow2" % (name, _stamp()),
                                          self.p["system_image"])
        was_active = self.hv.is_active(dom)
        try:
            if was_active:
                self.hv.stop(dom, self.p["stop_timeout"])
            for snap in reversed(self.hv.snapshots(dom)):
                self.hv.delete_snapshot(dom, snap[0])
            desired = self._desired_for_existing(name, current, dx.read_gv_metadata(current)[1])
            disk = dx.owned_disks(desired)[0]
            disk.find("source").set("file", new_system)
            dom = self._define_recorded(desired, meta)
        except BaseException:
            self.hv.delete_volume_path(new_system)
            raise
        self._delete_unused_chain(old_system)
        if was_active:
            self.hv.start(dom)
        return dom

    # power and autostart ----------------------------------------------------------------

    def ensure_autostart(self, dom):
        wanted = self.p.get("autostart")
        if wanted is None:
            return
        current = self.hv.autostart(dom) if dom is not None else False
        if current == wanted:
            return
        self._changed("autostart %s" % ("enabled" if wanted else "disabled"))
        if not self.check:
            self.hv.set_autostart(dom, wanted)

    def ensure_power(self, dom, state):
        status = self.hv.status(dom) if dom is not None else "Stopped"
        if state == "running" and status != "Started":
            self._changed("started VM %s" % self.p["name"])
            if not self.check:
                if status == "Paused":
                    self.hv.resume(dom)
                else:
                    self.hv.start(dom)
        elif state == "stopped" and status not in ("Stopped", "Failed"):
            self._changed("stopped VM %s" % self.p["name"])
            if not self.check:
                self.result["stop"] = self.hv.stop(dom, self.p["stop_timeout"],
                                                   force=self.p.get("force"))

    # absent -----------------------------------------------------------------------------

    def ensure_absent(self, name):
        dom = self.hv.domain(name)
        if dom is None:
            return
        self._changed("removed VM %s" % name)
        current = self.hv.xml_root(dom)
        self._add_diff(name, dx.canonical(current), "")
        if self.check:
            return
        paths = dx.disk_paths(self.hv.xml_root(dom, inactive=False)
                              if self.hv.is_active(dom) else current)
        if self.hv.is_active(dom):
            self.hv.stop(dom, 0, force=True)
        self.hv.undefine(dom)
        in_use = self._paths_used_by_other_vms(name)
        for path in paths:
            if path not in in_use:
                self._delete_unused_chain(path)

    def _paths_used_by_other_vms(self, name):
        used = set()
        for other, root in self.hv.read_domains(lambda d: (d.name(), self.hv.xml_root(d))):
            if other != name:
                used.update(dx.disk_paths(root))
        return used

    def _delete_unused_chain(self, path):
        """Delete a pool volume, then each backing file no other volume still needs
        (bases shared with linked clones stay until their last user is gone)."""
        while path:
            vol = self.hv.volume_by_path(path)
            if vol is None:
                return  # not a volume of a libvirt pool: not ours to delete
            pool = vol.storagePoolLookupByVolume()
            backing = self.hv.backing_file(path)
            self.hv.delete_volume_path(path)
            if not backing or self.hv.backing_users(pool, backing):
                return
            path = backing

    # ---- commands ---------------------------------------------------------------------

    def cmd_status(self):
        name = self.p["name"]
        dom = self.hv.domain(name)
        if dom is None:
            self.result.update(name=name, status="Undefined")
            return
        self.report_vm(name, dom)

    def cmd_list_vms(self):
        node = self.hv.hostname()
        vms = sorted(self.hv.read_domains(lambda d: {
            "name": d.name(), "status": self.hv.status(d), "node": node,
            "persistent": bool(d.isPersistent())}), key=lambda vm: vm["name"])
        self.result["list_vms"] = [vm["name"] for vm in vms]
        self.result["vms"] = vms

    def _existing(self):
        dom = self.hv.domain(self.p["name"])
        if dom is None:
            raise VmError("VM %s does not exist." % self.p["name"])
        return dom

    # clone ------------------------------------------------------------------------------

    def cmd_clone(self):
        name, src_name = self.p["name"], self.p["src_name"]
        if name == src_name:
            raise VmError("A clone needs a name different from its source (%s)." % name)
        src = self.hv.domain(src_name)
        if src is None:
            raise VmError("Cannot clone VM %s: it does not exist." % src_name)
        dom = self.hv.domain(name)
        if dom is None:
            dom = self._make_clone(name, src_name, src)
        self.ensure_autostart(dom)
        self.ensure_power(dom, "present" if self.p.get("nostart") else "running")
        self.report_vm(name, dom)

    def _make_clone(self, name, src_name, src):
        full = bool(self.p.get("full"))
        src_root = self.hv.xml_root(src)
        src_meta, src_stored = dx.read_gv_metadata(src_root)[:2]
        if not full and self.hv.snapshots(src):
            raise VmError("VM %s has snapshots (%s): a linked clone would freeze them into a "
                          "base shared with the clone. Remove them, or use full: true."
                          % (src_name, ", ".join(snap[0] for snap in self.hv.snapshots(src))))
        desired = self._clone_definition(name, src_name, src_root, src_stored)
        src_disks = dx.disk_info(src_root)
        bus = src_disks[0]["bus"] if src_disks else "virtio"
        pool = self._pool()
        paths = [self.hv.volume_path(pool, volume_name(name, i)) if pool is not None
                 else volume_name(name, i) for i in range(len(src_disks))]
        for path in paths:
            if os.path.exists(path):
                raise VmError("Volume %s already exists but no VM %s owns it: remove it first."
                              % (path, name))
        self._finish_desired(desired, name, paths, bus)
        meta = src_meta if self.p.get("metadata") is None else spec.validate_metadata(
            self.p["metadata"])
        self._changed("%s clone %s of VM %s" % ("full" if full else "linked", name, src_name))
        self._add_diff(name, "", dx.canonical(desired))
        if self.check:
            return None
        created = []
        try:
            if full:
                created = self._copy_disks(pool, src, src_disks, paths)
            else:
                created = self._overlay_disks(pool, src, src_name, src_disks, paths)
            return self._define_recorded(desired, meta)
        except BaseException:
            self._undo_create(name, created)
            raise

    def _clone_definition(self, name, src_name, src_root, src_stored):
        if self.p.get("xml"):
            return self._user_domain(self.p["xml"], name)
        root = dx.parse_domain(src_stored or dx.canonical(src_root), "source definition")
        dx.remove_owned_disks(root)
        dx.strip_macs(root)
        dx.rename_log_files(root, src_name, name)
        dx.expose_name_to_guest(root, name, old_name=src_name)
        root.remove(root.find("uuid"))
        uuid = spec.stable_uuid(name)
        self._check_uuid_free(uuid, name)
        dx.set_identity(root, name, uuid)
        return root

    def _copy_disks(self, pool, src, src_disks, paths):
        """Full clone: independent copies; a running source is paused for the copy so all
        its disks are copied at the same instant."""
        paused = self.hv.status(src) == "Started"
        created = []
        if paused:
            src.suspend()
        try:
            for disk, path in zip(src_disks, paths):
                created.append(self.hv.copy_image(pool, disk["path"], os.path.basename(path),
                                                  force_share=self.hv.is_active(src)))
        finally:
            if paused:
                self.hv.resume(src)
        return created

    def _overlay_disks(self, pool, src, src_name, src_disks, paths):
        """Linked clone: the source's current disks become read-only bases (its writes go to
        new overlays from now on); the clone gets its own overlays on the same bases."""
        stamp = _stamp()
        moved = {}
        for index, disk in enumerate(src_disks):
            overlay = "%s.disk%d.%s.qcow2" % (src_name, index, stamp)
            moved[disk["path"]] = os.path.join(os.path.dirname(disk["path"]), overlay)
        self.hv.freeze_disks(src, [(d["target"], moved[d["path"]]) for d in src_disks], stamp)
        self._rerecord_after_freeze(src, moved)
        self.hv.refresh_pool(pool)
        created = []
        for disk, path in zip(src_disks, paths):
            created.append(self.hv.create_volume(pool, os.path.basename(path),
                                                 backing_path=disk["path"]))
        return created

    def _rerecord_after_freeze(self, src, moved):
        """The source's disks moved to new overlays: record that in its stored definition so
        its next run does not see a change it did not ask for."""
        root = self.hv.xml_root(src)
        meta, stored = dx.read_gv_metadata(root)[:2]
        if stored is None:
            return
        desired = dx.parse_domain(stored, "stored definition")
        for disk in dx.owned_disks(desired):
            source = disk.find("source")
            source.set("file", moved.get(source.get("file"), source.get("file")))
        self._define_recorded(desired, meta)

    # snapshots --------------------------------------------------------------------------

    def _snapshot_name(self):
        return spec.validate_snapshot_name(self.p.get("snapshot_name"))

    def cmd_create_snapshot(self):
        dom = self._existing()
        snap = self._snapshot_name()
        if self.hv.snapshot(dom, snap) is None:
            self._changed("snapshot %s of VM %s" % (snap, self.p["name"]))
            if not self.check:
                self.hv.create_snapshot(dom, snap)
        self.cmd_list_snapshots()

    def cmd_remove_snapshot(self):
        dom = self._existing()
        snap = self._snapshot_name()
        if self.hv.snapshot(dom, snap) is not None:
            self._changed("removed snapshot %s of VM %s" % (snap, self.p["name"]))
            if not self.check:
                self.hv.delete_snapshot(dom, snap)
        self.cmd_list_snapshots()

    def cmd_rollback_snapshot(self):
        """Stop the VM, put every disk back to the snapshot, restore the power state."""
        dom = self._existing()
        snap = self._snapshot_name()
        if self.hv.snapshot(dom, snap) is None:
            raise VmError("VM %s has no snapshot %s." % (self.p["name"], snap))
        status = self.hv.status(dom)
        self._changed("rolled VM %s back to snapshot %s" % (self.p["name"], snap))
        if not self.check:
            if self.hv.is_active(dom):
                self.hv.stop(dom, self.p["stop_timeout"], force=self.p.get("force"))
            self.hv.revert_snapshot(dom, snap)
            if status in ("Started", "Paused"):
                self.hv.start(dom)
        self.report_vm(self.p["name"], dom)

    def cmd_list_snapshots(self):
        dom = self._existing()
        self.result.update(listing(self.hv.snapshots(dom)))

    def cmd_purge_image(self):
        dom = self._existing()
        doomed = snapshots_to_purge(self.hv.snapshots(dom), self.p)
        if doomed:
            self._changed("purged snapshots %s of VM %s" % (", ".join(doomed), self.p["name"]))
            if not self.check:
                for snap in doomed:
                    self.hv.delete_snapshot(dom, snap)
        self.result["purged"] = doomed
        self.cmd_list_snapshots()

    # metadata ---------------------------------------------------------------------------

    def _metadata(self):
        return dx.read_gv_metadata(self.hv.xml_root(self._existing()))[0]

    def cmd_list_metadata(self):
        self.result["list_metadata"] = sorted(self._metadata())

    def cmd_get_metadata(self):
        key = self.p.get("metadata_name")
        spec.validate_metadata_key(key)
        meta = self._metadata()
        if key not in meta:
            raise VmError("VM %s has no metadata key %s." % (self.p["name"], key))
        self.result["metadata_value"] = meta[key]

    def cmd_set_metadata(self):
        dom = self._existing()
        root = self.hv.xml_root(dom)
        meta, stored = dx.read_gv_metadata(root)[:2]
        wanted = dict(meta)
        wanted.update(spec.validate_metadata(self.p.get("metadata")))
        if wanted != meta:
            self._changed("metadata of VM %s" % self.p["name"])
            self._add_meta_diff(self.p["name"], meta, wanted)
            if not self.check:
                desired = dx.parse_domain(stored or dx.canonical(root), "stored definition")
                self._define_recorded(desired, wanted)
        self.result["metadata"] = wanted

    # ---- diff -------------------------------------------------------------------------

    def _add_diff(self, name, before, after):
        self._add_text_diff(name, "domain XML", dx.pretty(before), dx.pretty(after))

    def _add_meta_diff(self, name, before, after):
        def text(meta):
            return "".join("%s: %s\n" % (k, meta[k]) for k in sorted(meta))
        self._add_text_diff(name, "metadata", text(before), text(after))


def _stamp():
    """Suffix of volumes that replace others: unique, and sorts by time."""
    return datetime.datetime.now().strftime("%Y%m%d%H%M%S%f")
