# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Orchestration of cluster VMs: disks in Ceph RBD, run by Pacemaker through
ocf:gridvirt:VirtualDomain. One function per state or command; each reads, compares, acts
unless in check mode, and reports ``changed`` and a diff. Nothing here parses module
arguments.

The data model is SEAPATH's (README, cluster_vm): group ``<vm>``, images ``system_<vm>`` and
``data_<vm>_<i>``, metadata on ``system_<vm>`` (``xml``, ``_base_xml``, ``vm_name`` and
``_<option>`` keys), primitive ``<vm>``. What the VM should look like in Pacemaker is
derived from that metadata by cluster_intent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import hashlib
import os
import re

from ansible.module_utils.common.process import get_bin_path

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_disks as disks
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import library_errors
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import seapath_layout as seapath
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.cluster_commands import (
    ClusterCommands)
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.cluster_migration import (
    ClusterMigration)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import (
    validate_domain)
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_store import (
    RbdStore, data_image, system_image)

LOCK_WAIT_SECONDS = 600
READ_ONLY_COMMANDS = ("status", "list_vms", "list_snapshots", "list_metadata",
                      "get_metadata")
# Transient node attribute the resource agent sets when it starts a VM: the sha256 of the
# definition it started with (restart_required compares it with the stored one).
STARTED_DIGEST_ATTR = "gridvirt-xml-%s"
# Transient node attribute that turns the VM's next stop into a power-off (read by our agent).
FORCE_STOP_ATTR = "gridvirt-force-stop-%s"


def xml_digest(xml_text):
    """What the resource agent records: sha256 of the file `rbd image-meta get` writes."""
    return hashlib.sha256((xml_text + "\n").encode("utf-8")).hexdigest()


class ClusterVm(ClusterCommands, ClusterMigration):
    """Runs one request on the cluster. ``run`` is AnsibleModule.run_command. The commands
    on an existing VM (clone, snapshots, metadata, colocation, remote) are in
    cluster_commands, the move to a named node in cluster_migration."""

    def __init__(self, params, check_mode, run, warn):
        super(ClusterVm, self).__init__()
        self.p = params
        self.check = check_mode
        self.warn = warn
        self._run = run
        self.store = RbdStore(params["ceph_conf"], params["ceph_user"], params.get("keyring"),
                              params["pool"], run, timeout=params["connect_timeout"])
        self.cluster = pcmk.Cluster(run, timeout=params["connect_timeout"])
        self.predicted_restart = False

    def close(self):
        self.store.close()

    # ---- entry point --------------------------------------------------------------------

    def run(self):
        try:
            action = self.p.get("command") or self.p["state"]
            what = library_errors.doing(self.p.get("command"), action, self.p.get("name"))
            with library_errors.as_sentences(what, "node %s" % os.uname()[1],
                                             timed_out=self.store.not_answering):
                if action in READ_ONLY_COMMANDS:
                    self._dispatch(action)
                else:
                    with self._locks(action):
                        self._dispatch(action)
            return self.finish()
        except VmError as exc:
            # A failure after a change began is reported as changed, with what it was.
            if self.changes and not self.check:
                exc.details.setdefault("changed", True)
                exc.details.setdefault("changes", list(self.changes))
            raise
        finally:
            self.close()

    @contextlib.contextmanager
    def _locks(self, action):
        """One mutating run per VM (and per clone source) at a time, cluster-wide: a RADOS
        lock with a lease. Check mode takes none (it must not even create the lock object)."""
        names = [self.p["name"]]
        if action == "clone":
            names.append(self.p["src_name"])
        with contextlib.ExitStack() as stack:
            if not self.check:
                for name in sorted(set(names)):
                    stack.enter_context(self.store.lease(name, LOCK_WAIT_SECONDS))
            yield

    def _dispatch(self, action):
        vm = self.p.get("name")
        simple = {
            "status": lambda: self.report(vm), "list_vms": self.list_vms,
            "start": lambda: self.command_power(vm, "Started"),
            "stop": lambda: self.command_power(vm, "Stopped"),
            "enable": lambda: self.enable(vm, self.p.get("nostart")),
            "disable": lambda: self.disable(vm), "clone": lambda: self.clone(vm),
            "list_snapshots": lambda: self.list_snapshots(vm),
            "create_snapshot": lambda: self.create_snapshot(vm, self.p["snapshot_name"]),
            "remove_snapshot": lambda: self.remove_snapshot(vm, self.p["snapshot_name"]),
            "rollback_snapshot": lambda: self.rollback_snapshot(vm, self.p["snapshot_name"]),
            "purge_image": lambda: self.purge_image(vm),
            "list_metadata": lambda: self.list_metadata(vm),
            "get_metadata": lambda: self.get_metadata(vm, self.p["metadata_name"]),
            "set_metadata": lambda: self.set_metadata(vm, self.p["metadata"]),
            "define_colocation": lambda: self.define_colocation(
                vm, self.p["colocated_vms"], self.p.get("strong")),
            "add_pacemaker_remote": lambda: self.add_pacemaker_remote(vm),
            "remove_pacemaker_remote": lambda: self.remove_pacemaker_remote(vm),
            "migrate": lambda: self.command_migrate(vm, self.p["node"]),
        }
        if action in simple:
            simple[action]()
        elif action == "create":
            if self.p.get("enable") is False:
                self.converge("disabled")
            else:
                self.converge("present" if self.p.get("nostart") else "running")
        elif action == "remove":
            self.converge("absent")
        else:
            self.converge("running" if action == "started" else action)

    # ---- reading ----------------------------------------------------------------------

    def status_of(self, vm, status=None):
        """-> (status, node): Undefined (no group), Disabled (no primitive), or the
        resource's state from crm_mon."""
        if not self.store.vm_exists(vm):
            return "Undefined", None
        status = status or self.cluster.status()
        return status["resources"].get(vm, ("Disabled", None))

    def list_vms(self):
        """Every VM with its status and node: one RBD listing, one status read."""
        status = self.cluster.status()
        vms = []
        for vm in self.store.vm_names():
            state, node = status["resources"].get(vm, ("Disabled", None))
            vms.append({"name": vm, "status": state, "node": node})
        self.result["list_vms"] = [vm["name"] for vm in vms]
        self.result["vms"] = vms

    def report(self, vm):
        state, node = self.status_of(vm)
        self.result.update(name=vm, status=state, node=node)
        if state == "Undefined":
            return
        metadata = self.stored_intent(vm)
        root = xmlutil.parse(metadata[ci.KEY_XML], "stored domain XML")
        self.result.update(
            uuid=dx.uuid_of(root), macs=dx.macs(root), images=self.store.images_of(vm),
            metadata=dict((k, v) for k, v in metadata.items()
                          if not k.startswith("_") and k not in ci.RESERVED_KEYS),
            restart_required=self.predicted_restart or self.restart_pending(vm, metadata,
                                                                            state, node))

    def restart_pending(self, vm, metadata, state, node):
        """The running guest started from another definition than the stored one: the
        resource agent records the digest of what it started on the node's attributes.
        ``state`` and ``node``: the VM's status, as the caller read it."""
        if state != "Started" or not node:
            return False
        cib = self.cluster.cib()
        started = pcmk.node_attribute(cib, node, STARTED_DIGEST_ATTR % vm)
        return started is not None and started != xml_digest(metadata[ci.KEY_XML])

    # ---- declarative states -----------------------------------------------------------

    def converge(self, state):
        vm = self.p["name"]
        if state == "absent":
            self.remove(vm)
            self.result.update(name=vm, status="Undefined", node=None)
            return
        if self._clear_incomplete(vm) and self.check:
            self.result.update(name=vm, status="Undefined", node=None)
            return
        if not self.store.vm_exists(vm):
            self.create(vm, state)
            if self.check:
                self.result.update(name=vm, status="Undefined", node=None)
                return
        elif self.p.get("force") and self.p.get("system_image"):
            self.recreate(vm, state)
        else:
            self.update(vm)
        if state == "disabled":
            self.disable(vm)
        elif self.enable(vm, nostart=state != "running") and self.check:
            pass  # check mode: the resource that would be added does not exist to act on
        else:
            if state in ("present", "running"):
                self.apply_restart(vm)
            if state in ("running", "stopped"):
                self.set_power(vm, "Started" if state == "running" else "Stopped")
        if state == "running" and self.p.get("node"):
            self.move(vm, self.p["node"], start_predicted=True)
        self.report(vm)

    # ---- create -----------------------------------------------------------------------

    def create(self, vm, state):
        """Import the disks, store the definition, add the resource (unless disabled),
        start it when running. A failure removes what this call created, and only that."""
        p = self.p
        if not p.get("xml") or not p.get("system_image"):
            raise VmError("VM %s does not exist: give both xml and system_image to create it."
                          % vm)
        base = self._base_definition(p["xml"])
        plan = disks.disk_plan(self.store, self._run, vm, p["system_image"], p.get("data_disk"),
                               p.get("additional_disks"), prefix=disks.STAGING_PREFIX)
        bus = p.get("disk_bus") or "virtio"
        metadata = self._metadata_for_new(vm, base, bus, {})
        images = [name[len(disks.STAGING_PREFIX):] for name, _k, _v in plan]
        root = self._render(vm, base, images, bus)
        metadata[ci.KEY_XML] = dx.to_string(root)
        validate_domain(self._run, root)
        self._check_resource_inputs(metadata, state != "disabled")
        if self.cluster.primitive(self.cluster.cib(), vm) is not None:
            raise VmError("A Pacemaker resource named %s exists but no VM %s is in RBD: remove "
                          "that resource first." % (vm, vm))
        self._changed("created VM %s" % vm)
        self._add_diff(vm, "", metadata)
        if self.check:
            return
        created = []
        try:
            disks.make_disks(self.store, self._run, plan, created)
            self._register(vm, created, metadata)
            created = []
            if state != "disabled":
                self._add_resource(vm, "Started" if state == "running" else "Stopped")
        except BaseException:
            self._undo_create(vm, created)
            raise

    def _base_definition(self, xml_text):
        """The user's XML as stored in _base_xml: no disks of its own, units normalized."""
        root = dx.parse_domain(xml_text)
        dx.reject_owned_disks(root)
        dx.normalize_units(root)
        return dx.canonical(root)

    def _render(self, vm, base, images, bus, stored_xml=None):
        """The final domain XML the resource agent runs: identity, stable MACs, the name for
        the guest, RBD network disks, and our record of the definition. The UUID is the
        user's, else the one the VM has (vm_manager drew a random one), else stable."""
        root = dx.parse_domain(base, "stored definition")
        given = dx.uuid_of(root) or (stored_xml and dx.uuid_of(
            xmlutil.parse(stored_xml, "stored domain XML")))
        dx.set_identity(root, vm, spec.validate_uuid(given) if given else spec.stable_uuid(vm))
        dx.assign_macs(root, vm)
        dx.expose_name_to_guest(root, vm)
        dx.add_rbd_disks(root, images, bus, self._ceph_access())
        dx.set_gv_metadata(root, dx.build_gv_metadata({}, dx.canonical(root)))
        return root

    def _metadata_for_new(self, vm, base, bus, inherited):
        metadata = dict(inherited)
        metadata.update(ci.validate_user_metadata(self.p.get("metadata")))
        metadata.update({ci.KEY_BASE_XML: base, ci.KEY_NAME: vm, ci.KEY_BUS: bus})
        return ci.apply_updates(metadata, self._intent_updates(vm, metadata))

    def _intent_updates(self, vm, metadata):
        """Metadata changes asked by the task's options (only the options it gives)."""
        p = self.p
        updates = ci.intent_from_options(p)
        if p.get("constraints") is not None:
            items = ci.normalize_constraints(vm, p["constraints"])
            updates[ci.KEY_CONSTRAINTS] = ci.dump_json(items) if items else None
        if p.get("colocated_vms") is not None and p.get("command") != "define_colocation":
            kind = "strong" if p.get("strong") else "weak"
            wanted = dict((other, kind) for other in p["colocated_vms"])
            updates[ci.KEY_COLOCATION] = ci.dump_json(wanted) if wanted else None
        return updates

    def _check_resource_inputs(self, metadata, enabling, previous=None):
        """Before any change: the nodes named exist, colocated VMs exist, the resource can be
        built from the intent, raw constraint ids take over nothing, the stored crmsh lines
        are constraints of the VM and crmsh is there when they must run. ``previous``: the
        stored intent the request changes."""
        vm = self.p["name"]  # the VM asked for, not the name in metadata anyone can write
        # Built once before anything is stored: an intent that cannot make a resource fails
        # this task, instead of being stored and failing every later task on the VM.
        ci.desired_primitive(vm, self._store_params(), metadata, "Stopped")
        ci.desired_constraints(vm, metadata, set())
        self._check_raw_constraint_ids(vm, metadata, previous or {})
        nodes = self.cluster.status()["nodes"]
        for key, option in ((ci.KEY_PREFERRED, "preferred_host"),
                            (ci.KEY_PINNED, "pinned_host")):
            host = metadata.get(key)
            if host and host not in nodes:
                raise VmError("%s %s is not a node of the cluster (nodes: %s)."
                              % (option, host, ", ".join(sorted(nodes))))
        for item in ci.load_json(metadata, ci.KEY_CONSTRAINTS, []):
            if item["type"] == "location" and item["node"] not in nodes:
                raise VmError("The location constraint names %s, which is not a node of the "
                              "cluster (nodes: %s)." % (item["node"], ", ".join(sorted(nodes))))
        for other in ci.colocation_intent(metadata):
            spec.validate_vm_name(other)
            if other == metadata.get(ci.KEY_NAME):
                raise VmError("VM %s cannot be colocated with itself." % other)
            self._existing(other)
        # The stored lines are checked whenever the intent is (a vm_manager VM's come as
        # text); crmsh itself is needed only when they run.
        if ci.stored_crm_commands(vm, metadata) and enabling:
            try:
                get_bin_path("crm")
            except ValueError:
                raise VmError("crm_config_cmd needs crmsh (the crm command), which is not "
                              "installed on this node; install crmsh or use the constraints "
                              "option.")

    def _check_raw_constraint_ids(self, vm, metadata, previous):
        """A raw constraint's id may already be in the CIB only as one of this VM's own
        (its previous intent's): the module would otherwise take over, and later delete,
        another VM's or an operator's element of that id."""
        raw = [ci.build_constraint(vm, item) for item in
               ci.load_json(metadata, ci.KEY_CONSTRAINTS, []) if item["type"] == "xml"]
        if not raw:
            return
        held = self.cluster.element_ids(self.cluster.cib())
        for constraint in raw:
            element = held.get(constraint.get("id"))
            if element is not None and not ci.owned_constraint(vm, element, previous):
                raise VmError("The id %s of an xml constraint of VM %s is already used in the "
                              "CIB by a <%s> that is not one of its constraints: give the "
                              "constraint another id." % (constraint.get("id"), vm, element.tag))

    def _register(self, vm, staged, metadata):
        """Staged images take their final names and join the new group; the system image,
        which carries the definition, joins last (a VM is complete when it is there)."""
        self.store.set_metadata(staged[0], metadata)
        self.store.create_group(vm)
        for name in list(staged[1:]) + [staged[0]]:
            final = name[len(disks.STAGING_PREFIX):]
            self.store.rename_image(name, final)
            staged[staged.index(name)] = final
            self.store.add_to_group(vm, final)

    def _undo_create(self, vm, created):
        if self.cluster.primitive(self.cluster.cib(), vm) is not None:
            # A start that timed out may still be running the guest on its images.
            self.cluster.set_meta(vm, "target-role", "Stopped")
            self._wait(vm, ("Stopped",), "stop")
            self._delete_resource(vm)
        for name in reversed(created):
            self.store.remove_image(name)
        if self.store.vm_exists(vm):
            for name in self.store.images_of(vm):
                self.store.remove_from_group(vm, name)
                self.store.remove_image(name)
            self.store.remove_group(vm)

    def _clear_incomplete(self, vm):
        """What a killed run left: staged images of this VM, a swap of a forced re-create
        cut short (undone: the old VM comes back), or a group whose system image never
        joined. We hold the VM's lock, so no other run is using them. -> whether anything
        was left (in check mode the rest of the run cannot be predicted beyond that)."""
        exists = self.store.vm_exists(vm)
        members = self.store.images_of(vm) if exists else []
        retired = [n for n in members if n.startswith(disks.RETIRED_PREFIX)]
        staged = sorted(n for n in self.store.image_names() if n.startswith(
            disks.STAGING_PREFIX) and _belongs(n[len(disks.STAGING_PREFIX):], vm))
        incomplete = exists and system_image(vm) not in members and not retired
        if not staged and not incomplete and not retired:
            return False
        self._changed("removed what an interrupted run left of VM %s" % vm)
        if self.check:
            return True
        self.warn("VM %s: removing what an interrupted run left (%s)."
                  % (vm, ", ".join(staged + retired) or "an incomplete group"))
        if retired:
            staged = sorted(set(staged) | set(disks.undo_swap(self.store, retired)))
        for name in staged:
            self.store.remove_image(name)
        if incomplete:
            for name in self.store.images_of(vm):
                self.store.remove_from_group(vm, name)
                self.store.remove_image(name)
            self.store.remove_group(vm)
        return True

    def _ceph_access(self):
        return {"pool": self.p["pool"], "user": self.p["ceph_user"],
                "secret_uuid": self.p["secret_uuid"],
                "monitors": self.store.monitors()}

    # ---- update in place ------------------------------------------------------------------

    def update(self, vm):
        """New XML, options or metadata: the stored definition and the live CIB are updated;
        disks are never re-imported. Additional disks beyond the existing ones are created."""
        p = self.p
        stored = self.store.metadata(system_image(vm))
        current = seapath.adopted(stored)
        images = self.store.images_of(vm)
        base = self._base_definition(p["xml"]) if p.get("xml") else current[ci.KEY_BASE_XML]
        bus = p.get("disk_bus") or current.get(ci.KEY_BUS, "virtio")
        wanted = dict(current)
        wanted.update(ci.validate_user_metadata(p.get("metadata")))
        wanted.update({ci.KEY_BASE_XML: base, ci.KEY_BUS: bus})
        wanted = ci.apply_updates(wanted, self._intent_updates(vm, wanted))
        new_disks = self._new_data_disks(vm, images)
        root = self._render(vm, base, images + [n for n, _k, _v in new_disks], bus,
                            stored_xml=current[ci.KEY_XML])
        old_root = xmlutil.parse(current[ci.KEY_XML], "stored domain XML")
        xml_changed = dx.canonical(root) != dx.canonical(old_root)
        wanted[ci.KEY_XML] = dx.to_string(root) if xml_changed else current[ci.KEY_XML]
        if wanted != stored:
            if xml_changed:
                validate_domain(self._run, root)
            self._check_resource_inputs(wanted, False, previous=current)
            keys = sorted(k for k in set(wanted) | set(stored)
                          if wanted.get(k) != stored.get(k))
            self._changed("updated %s of VM %s" % (", ".join(keys), vm))
            self._add_diff(vm, stored, wanted)
            self.predicted_restart = xml_changed and self.status_of(vm)[0] == "Started"
            if not self.check:
                self._add_data_disks(vm, new_disks)
                self.write_metadata(vm, stored, wanted)
        self.sync_resource(vm, wanted, previous=current)

    def stored_intent(self, vm):
        """The VM's metadata as this module reads it (a VM of SEAPATH's vm_manager too)."""
        return seapath.adopted(self.store.metadata(system_image(vm)))

    def write_metadata(self, vm, stored, wanted):
        """Store ``wanted`` over the metadata read as ``stored``: the keys that differ are
        set, those it no longer has (vm_manager's encodings among them) removed."""
        self.store.set_metadata(system_image(vm), dict(
            (k, v) for k, v in wanted.items() if stored.get(k) != v))
        self.store.remove_metadata(system_image(vm), [k for k in stored if k not in wanted])

    def _new_data_disks(self, vm, images):
        if self.p.get("additional_disks") is None:
            return []  # not given: the VM's disks are left as they are
        sizes = self.p["additional_disks"]
        have = len(images) - 1 - (1 if self.p.get("data_disk") else 0)
        if len(sizes) < have:
            self.warn("VM %s has %d additional disks and the task lists %d: disks are never "
                      "removed by an update." % (vm, have, len(sizes)))
        result = []
        for index in range(max(have, 0), len(sizes)):
            name = data_image(vm, len(images) + len(result))
            result.append((name,) + disks.additional_source(self._run, sizes[index]))
        return result

    def _add_data_disks(self, vm, plan):
        """Import or create the new data disks, then put them in the VM's group; a failure
        removes the images this call made, so the VM keeps the disks it had."""
        created, grouped = [], []
        try:
            disks.make_disks(self.store, self._run, plan, created)
            for name in created:
                self.store.add_to_group(vm, name)
                grouped.append(name)
        except Exception:
            for name in reversed(created):
                if name in grouped:
                    self.store.remove_from_group(vm, name)
                self.store.remove_image(name)
            raise

    # ---- forced re-create -------------------------------------------------------------------

    def recreate(self, vm, state):
        """force: new disks from system_image. They are imported under staging names while
        the old VM runs on; only when they are complete is the old VM stopped and its images
        swapped for the new ones. A failure before the swap leaves the old VM as it was."""
        p = self.p
        current = self.stored_intent(vm)
        base = self._base_definition(p["xml"]) if p.get("xml") else current[ci.KEY_BASE_XML]
        plan = disks.disk_plan(self.store, self._run, vm, p["system_image"], p.get("data_disk"),
                               p.get("additional_disks"), prefix=disks.STAGING_PREFIX)
        bus = p.get("disk_bus") or current.get(ci.KEY_BUS, "virtio")
        inherited = dict((k, v) for k, v in current.items() if k.startswith("_"))
        inherited.update((k, v) for k, v in current.items()
                         if not k.startswith("_") and k not in ci.RESERVED_KEYS)
        metadata = self._metadata_for_new(vm, base, bus, inherited)
        images = [name[len(disks.STAGING_PREFIX):] for name, _k, _v in plan]
        root = self._render(vm, base, images, bus, stored_xml=current[ci.KEY_XML])
        metadata[ci.KEY_XML] = dx.to_string(root)
        validate_domain(self._run, root)
        self._check_resource_inputs(metadata, False, previous=current)
        self._changed("re-created VM %s from %s" % (vm, p["system_image"]))
        self._add_diff(vm, current, metadata)
        if self.check:
            return
        staged = []
        try:
            disks.make_disks(self.store, self._run, plan, staged)
            self.store.set_metadata(staged[0], metadata)
        except BaseException:
            for name in staged:
                self.store.remove_image(name)
            raise
        self._swap(vm, staged)
        self.sync_resource(vm, metadata, previous=current)

    def _swap(self, vm, staged):
        was_started = self.status_of(vm)[0] in ("Started", "Starting")
        enabled = self.cluster.primitive(self.cluster.cib(), vm) is not None
        try:
            if enabled and was_started:
                self._power(vm, "Stopped")
            retired = disks.swap_in(self.store, vm, staged)
        except BaseException:
            for name in staged:
                self.store.remove_image(name)
            if enabled and was_started:
                self._power(vm, "Started")
            raise
        # Point of no return: the old disks leave the group (with their snapshots).
        for snap, _created in self.store.group_snapshots(vm):
            self.store.remove_group_snapshot(vm, snap)
        for name in retired:
            self._drop_own_snapshots(name)
        for name in retired:
            self.store.remove_from_group(vm, name)
        finals = [name[len(disks.STAGING_PREFIX):] for name in staged]
        for name in finals[1:] + finals[:1]:
            self.store.add_to_group(vm, name)
        for name in retired:
            self._dispose(name)
        if enabled and was_started:
            self._power(vm, "Started")

    def _dispose(self, image):
        """An image leaving its VM: purged, or to the trash. An image linked clones still
        hang from can only go to the trash (Ceph keeps it until its last clone is gone)."""
        parent = self.store.parent_of(image)
        for snap in self.store.user_snapshots(image):
            if snap.startswith(disks.CLONE_SNAP_PREFIX):
                self.store.remove_snapshot_if_unused(image, snap)
        in_use = [s for s in self.store.user_snapshots(image)
                  if s.startswith(disks.CLONE_SNAP_PREFIX)]
        if self.p.get("purge") and not in_use:
            self.store.remove_image(image)
            if parent:
                disks.release_parent_snapshots(self.store, [parent])
            return
        if self.p.get("purge"):
            self.warn("RBD image %s goes to the trash, not purged: linked clones still use "
                      "it." % image)
        self.store.trash_image(image, self.p.get("trash_delay") or 0)

    def _drop_own_snapshots(self, image):
        """The per-image snapshots of a disk that leaves (vm_manager's): RBD neither trashes
        nor removes an image that has snapshots. Those linked clones hang from stay."""
        for snap in self.store.user_snapshots(image):
            if not snap.startswith(disks.CLONE_SNAP_PREFIX):
                self.store.remove_image_snapshot(image, snap)

    # ---- the Pacemaker resource ----------------------------------------------------------------

    def _store_params(self):
        return dict((k, self.p.get(k)) for k in ("pool", "keyring", "ceph_user", "ceph_conf"))

    def _add_resource(self, vm, target_role):
        """Created unmanaged, constrained, then managed: it can never start on a wrong node
        in between. Everything comes from the VM's stored intent, so an enable after a
        disable restores it."""
        metadata = self.stored_intent(vm)
        # The resources the constraints may name: those read before, and this one.
        defined = self.cluster.primitive_ids(self.cluster.cib()) | set([vm])
        primitive = ci.desired_primitive(vm, self._store_params(), metadata, target_role,
                                         managed=False)
        self.cluster.create(primitive, "resources")
        for constraint in ci.desired_constraints(vm, metadata, defined):
            self.cluster.create(constraint, "constraints")
        # After the crmsh lines: those re-create their own constraints, which a disable
        # held like any other (their ids are not ours).
        self._run_crm_commands(metadata)
        self._restore_held_constraints(vm, metadata)
        self.cluster.set_meta(vm, "is-managed", "true")
        if target_role == "Started":
            self._wait(vm, ("Started",), "start", primitive)

    def _run_crm_commands(self, metadata):
        """SEAPATH's crm_config_cmd: crmsh configure lines, all checked again before the
        first runs (the stored lines may have been written by hand), run as argument lists."""
        for words in ci.stored_crm_commands(self.p["name"], metadata):
            self.cluster.configure(words)

    def sync_resource(self, vm, metadata, previous=None):
        """An enabled VM's primitive and constraints as its intent says (drift corrected).
        Its power state (target-role) is left alone. ``previous``: the intent before this
        run, whose constraints the module may remove too."""
        cib = self.cluster.cib()
        current = self.cluster.primitive(cib, vm)
        if current is None:
            return
        role = _meta_value(current, "target-role") or "Started"
        managed = _meta_value(current, "is-managed") != "false"
        desired = ci.desired_primitive(vm, self._store_params(), metadata, role, managed)
        if ci.comparable(current, desired) != ci.comparable(desired, desired):
            desired = ci.keep_agent_utilization(current, desired)
            self._changed("updated the Pacemaker resource of VM %s" % vm)
            self._add_text_diff(vm, "resource", xmlutil.to_string(current),
                                xmlutil.to_string(desired))
            if not self.check:
                self.cluster.replace(desired, "resources")
                if _agent(current) != _agent(desired) and role == "Started":
                    # Pacemaker restarts a resource whose agent changed (a VM taken over
                    # from vm_manager's): the guest now runs the stored definition.
                    timeouts = pcmk.primitive_timeouts(desired)
                    self.cluster.settle(timeouts["stop"] + timeouts["start"])
                    self._wait(vm, ("Started",), "start")
                    self.predicted_restart = False
        self._sync_constraints(vm, cib, metadata, previous or metadata)

    def _sync_constraints(self, vm, cib, metadata, previous):
        defined = self.cluster.primitive_ids(cib)
        wanted = dict((c.get("id"), c) for c in ci.desired_constraints(vm, metadata, defined))
        present = dict((c.get("id"), c) for c in self.cluster.constraints_of(cib, vm)
                       if self._owned(vm, c, metadata) or c.get("id") in wanted
                       or self._owned(vm, c, previous))
        stale = sorted(set(present) - set(wanted))
        missing = sorted(i for i in wanted if i not in present or xmlutil.canonical(
            present[i]) != xmlutil.canonical(wanted[i]))
        if not stale and not missing:
            return
        self._changed("constraints of VM %s: %s" % (
            vm, ", ".join(["-" + i for i in stale] + ["+" + i for i in missing])))
        if self.check:
            return
        for cid in stale:
            self.cluster.delete(present[cid].tag, cid)
        for cid in missing:
            if cid in present:
                self.cluster.replace(wanted[cid], "constraints")
            else:
                self.cluster.create(wanted[cid], "constraints")

    @staticmethod
    def _owned(vm, constraint, metadata):
        """A constraint the module manages for the VM: one of ours, or one vm_manager made
        from the same intent (ours replace it)."""
        return ci.owned_constraint(vm, constraint, metadata) or \
            seapath.replaced_by_ours(vm, constraint, metadata)

    def _wait(self, vm, wanted, op, prim=None):
        """Until the VM is in one of ``wanted``, bounded by its ``op`` timeout (of ``prim``,
        its primitive, when the caller has it: else read from the CIB)."""
        if prim is None:
            prim = self.cluster.primitive(self.cluster.cib(), vm)
        timeout = pcmk.primitive_timeouts(prim)[op] + pcmk.MONITOR_INTERVAL
        state, node = self.cluster.wait_for(vm, wanted, timeout)
        if state not in wanted:
            reasons = self.cluster.status()["failures"].get(vm, [])
            raise VmError("VM %s did not reach %s within %d seconds (it is %s%s)%s."
                          % (vm, " or ".join(wanted), timeout, state,
                             " on %s" % node if node else "",
                             ": " + "; ".join(reasons) if reasons else ""))
        return state, node

    def _power(self, vm, wanted):
        if self.status_of(vm)[0] == "Failed":
            self.cluster.cleanup(vm)
        self.cluster.set_meta(vm, "target-role", wanted)
        self._wait(vm, (wanted,), "start" if wanted == "Started" else "stop")

    def _delete_resource(self, vm):
        cib = self.cluster.cib()
        for constraint in self.cluster.constraints_of(cib, vm):
            self.cluster.delete(constraint.tag, constraint.get("id"))
        self.cluster.delete("primitive", vm)

    # ---- power ------------------------------------------------------------------------

    def command_power(self, vm, wanted):
        self.set_power(vm, wanted)
        self.report(vm)

    def set_power(self, vm, wanted):
        """wanted: 'Started' or 'Stopped', through the resource's target-role. A forced stop
        powers the guest off at once (the agent's force_stop for that one stop)."""
        state, _node = self.status_of(vm)
        if state == "Undefined":
            raise VmError("VM %s does not exist." % vm)
        if state == "Disabled":
            raise VmError("VM %s is disabled (not a cluster resource): enable it first." % vm)
        if state == wanted:
            return False
        if (state, wanted) in (("Starting", "Started"), ("Stopping", "Stopped")):
            if not self.check:
                self._wait(vm, (wanted,), "start" if wanted == "Started" else "stop")
            return False
        self._changed("%s VM %s" % ("started" if wanted == "Started" else "stopped", vm))
        if self.check:
            return True
        if wanted == "Stopped" and self.p.get("force"):
            self._force_stop(vm)
        else:
            self._power(vm, wanted)
        return True

    def _force_stop(self, vm):
        """Stop with an immediate power-off: a transient attribute of the VM's node asks our
        agent to destroy the guest for this one stop (Pacemaker stops a resource with the
        parameters it started with, so force_stop itself cannot be changed for it)."""
        node = self.status_of(vm)[1]
        attribute = FORCE_STOP_ATTR % vm
        self.cluster.set_node_attribute(node, attribute, "true")
        try:
            self._power(vm, "Stopped")
        finally:
            self.cluster.delete_node_attribute(node, attribute)

    def apply_restart(self, vm):
        """apply: restart -- a running VM whose stored definition changed is restarted."""
        if self.p.get("apply") != "restart":
            return
        metadata = self.stored_intent(vm)
        state, node = self.status_of(vm)
        if not (self.predicted_restart or self.restart_pending(vm, metadata, state, node)):
            return
        self._changed("restarted VM %s on its new definition" % vm)
        self.predicted_restart = False
        if not self.check:
            self._power(vm, "Stopped")
            self._power(vm, "Started")

    # ---- remove -----------------------------------------------------------------------

    def remove(self, vm):
        """Resource and constraints gone, images to the RBD trash (or purged), group and
        group snapshots gone. A linked clone's parent snapshot goes with its last clone."""
        if self._clear_incomplete(vm) and self.check:
            return True
        if not self.store.vm_exists(vm):
            return False
        self._changed("removed VM %s" % vm)
        self._add_diff(vm, self.store.metadata(system_image(vm)), {})
        if self.check:
            return True
        if self.cluster.primitive(self.cluster.cib(), vm) is not None:
            self._power(vm, "Stopped")
            self._delete_resource(vm)
        # Every snapshot first, while the group still holds the disks: a failure here leaves
        # the VM whole, for a rerun to finish the job.
        for snap, _created in self.store.group_snapshots(vm):
            self.store.remove_group_snapshot(vm, snap)
        for name in self.store.images_of(vm):
            self._drop_own_snapshots(name)
        for name in self.store.images_of(vm):
            self.store.remove_from_group(vm, name)
            self._dispose(name)
        self.store.remove_group(vm)
        return True

    # ---- enable / disable ---------------------------------------------------------------

    def _existing(self, vm):
        if not self.store.vm_exists(vm):
            raise VmError("VM %s does not exist." % vm)

    def disable(self, vm):
        """Stop the VM and remove it from Pacemaker; it lives on in RBD with its intent."""
        self._existing(vm)
        if self.cluster.primitive(self.cluster.cib(), vm) is None:
            return False
        self._changed("disabled VM %s" % vm)
        if not self.check:
            self._power(vm, "Stopped")
            self._hold_foreign_constraints(vm)
            self._delete_resource(vm)
        if self.p.get("command") == "disable":
            self.report(vm)
        return True

    def _hold_foreign_constraints(self, vm):
        """Pacemaker keeps no constraint that names a missing resource: the ones of others
        that name this VM are kept with it, for the enable to put back."""
        metadata = self.stored_intent(vm)
        held = [xmlutil.to_string(c, pretty=False)
                for c in self.cluster.constraints_of(self.cluster.cib(), vm)
                if not self._owned(vm, c, metadata)]
        if held:
            self.store.set_metadata(system_image(vm), {ci.KEY_HELD: ci.dump_json(held)})

    def _restore_held_constraints(self, vm, metadata):
        """The constraints a disable held, back once the VM is a resource again: those whose
        other resources are still there and whose id is free (a VM enabled meanwhile put its
        own colocation back itself)."""
        held = ci.load_json(metadata, ci.KEY_HELD, [])
        if not held:
            return
        cib = self.cluster.cib()
        defined = self.cluster.primitive_ids(cib)
        taken = self.cluster.element_ids(cib)
        for text in held:
            constraint = xmlutil.parse(text, "held constraint of VM %s" % vm)
            if constraint.get("id") not in taken and pcmk.named_resources(constraint) <= defined:
                self.cluster.create(constraint, "constraints")
        self.store.remove_metadata(system_image(vm), [ci.KEY_HELD])

    def enable(self, vm, nostart=False):
        """Add the VM back to Pacemaker with its stored intent; start unless nostart."""
        self._existing(vm)
        if self.cluster.primitive(self.cluster.cib(), vm) is not None:
            if self.p.get("command") == "enable":
                self.report(vm)
            return False
        metadata = self.stored_intent(vm)
        self._check_resource_inputs(metadata, True)
        self._changed("enabled VM %s" % vm)
        if not self.check:
            try:
                self._add_resource(vm, "Stopped" if nostart else "Started")
            except BaseException:
                if self.cluster.primitive(self.cluster.cib(), vm) is not None:
                    self._delete_resource(vm)
                raise
        if self.p.get("command") == "enable":
            self.report(vm)
        return True

    # ---- diff -------------------------------------------------------------------------

    def _add_diff(self, vm, before, after):
        """Definition and intent, before and after (the definition as readable XML)."""
        self._add_text_diff(vm, "domain XML", dx.pretty(_definition_of(before)),
                            dx.pretty(_definition_of(after)))
        self._add_text_diff(vm, "metadata", _metadata_text(before), _metadata_text(after))


def _definition_of(metadata):
    if not metadata or not metadata.get(ci.KEY_XML):
        return ""
    root = xmlutil.parse(metadata[ci.KEY_XML], "stored domain XML")
    return dx.canonical(root)


def _metadata_text(metadata):
    skip = (ci.KEY_XML, ci.KEY_BASE_XML)
    return "".join("%s: %s\n" % (k, metadata[k]) for k in sorted(metadata or {})
                   if k not in skip)


def _belongs(image, vm):
    """Is this one of the VM's image names (not those of a VM whose name extends it)?"""
    return image == system_image(vm) or re.fullmatch(r"data_%s_[0-9]+" % re.escape(vm),
                                                     image) is not None


def _agent(prim):
    return tuple(prim.get(a) for a in ("class", "provider", "type"))


def _meta_value(prim, name):
    nv = prim.find("meta_attributes/nvpair[@name='%s']" % name)
    return nv.get("value") if nv is not None else None
