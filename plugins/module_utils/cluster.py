# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Orchestration of cluster VMs: disks in Ceph RBD, run by Pacemaker through
ocf:gridvirt:VirtualDomain. One function per state or command; each reads, compares, acts
unless in check mode, and reports ``changed``. Nothing here parses module arguments.

The data model is SEAPATH's (see DESIGN.md): group ``<vm>``, images ``system_<vm>`` and
``data_<vm>_<i>``, metadata on ``system_<vm>`` (``xml``, ``_base_xml``, ``vm_name`` and
``_<option>`` keys), primitive ``<vm>``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils import source_image
from ansible_collections.gridvirt.kvm.plugins.module_utils import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import validate_domain
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_store import (
    RbdStore, data_image, system_image)
from ansible_collections.gridvirt.kvm.plugins.module_utils.snapshot_policy import (
    listing, snapshots_to_purge)

LOCK_WAIT_SECONDS = 600
DOMAIN_DIR = "/var/lib/gridvirt/domains"
PREFERRED_SCORE = 100
# Metadata keys owned by the module (user keys may not start with "_" nor be "xml").
KEY_XML, KEY_BASE_XML, KEY_NAME, KEY_BUS = "xml", "_base_xml", "vm_name", "_disk_bus"
KEY_PREFERRED, KEY_PINNED = "_preferred_host", "_pinned_host"
KEY_STOP_TIMEOUT = "_stop_timeout"
# JSON {other VM: "strong"|"weak"}: colocation intent, restored by enable.
KEY_COLOCATION = "_colocated_vms"


def validate_user_metadata(metadata):
    """SEAPATH's rule on top of ours: user keys must not start with '_' (internal keys)."""
    values = spec.validate_metadata(metadata)
    for key in values:
        if key.startswith("_") or key == KEY_NAME:
            raise VmError("The metadata key %r is reserved for the module." % key)
    return values


def placement(vm, metadata):
    """Location constraints from the stored intent: pinned wins over preferred."""
    if metadata.get(KEY_PINNED):
        return [pcmk.build_location(vm, metadata[KEY_PINNED], pcmk.INFINITY, "pin")]
    if metadata.get(KEY_PREFERRED):
        return [pcmk.build_location(vm, metadata[KEY_PREFERRED], PREFERRED_SCORE, "prefer")]
    return []


def colocation_intent(metadata):
    try:
        return json.loads(metadata.get(KEY_COLOCATION) or "{}")
    except ValueError:
        raise VmError("The stored colocation of the VM is not valid JSON: %r."
                      % metadata.get(KEY_COLOCATION))


def colocations(vm, metadata, defined):
    """Colocation constraints from the stored intent, for the VMs that are resources now.
    SEAPATH's meaning: strong = always together (INFINITY), weak = together when possible."""
    result = []
    for other, kind in sorted(colocation_intent(metadata).items()):
        if other in defined:
            score = pcmk.INFINITY if kind == "strong" else PREFERRED_SCORE
            result.append(pcmk.build_colocation(vm, other, score))
    return result


class ClusterVm(object):
    """Runs one request on the cluster. ``run`` is AnsibleModule.run_command."""

    def __init__(self, params, check_mode, run, warn):
        self.p = params
        self.check = check_mode
        self.warn = warn
        self._run = run
        self.store = RbdStore(params["ceph_conf"], params["ceph_user"], params.get("keyring"),
                              params["pool"], params.get("namespace"), run)
        self.cluster = pcmk.Cluster(run)
        self.changes = []
        self.result = {}

    def close(self):
        self.store.close()

    def _changed(self, what):
        self.changes.append(what)

    def finish(self):
        result = dict(self.result)
        result["changed"] = bool(self.changes)
        result["changes"] = self.changes
        return result

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

    # ---- create -----------------------------------------------------------------------

    def create(self, vm):
        """Import the disks, store the definition, add the resource; start unless nostart.
        A failure removes what this call created, and only that."""
        p = self.p
        if self.store.vm_exists(vm):
            return False
        if not p.get("xml") or not p.get("system_image"):
            raise VmError("VM %s does not exist: give both xml and system_image to create it."
                          % vm)
        root, base = self._definition(vm, p["xml"])
        disks = self._disk_plan(vm)
        metadata = self._metadata(vm, base, p.get("disk_bus") or "virtio")
        self._check_hosts()
        self._changed("created VM %s" % vm)
        if self.check:
            return True
        created = {"images": [], "group": False, "primitive": False}
        try:
            self._make_disks(vm, disks, created)
            images = [name for name, _kind, _value in disks]
            dx.add_rbd_disks(root, images, p.get("disk_bus") or "virtio", self._ceph_access())
            metadata[KEY_XML] = dx.to_string(root)
            validate_domain(self._run, root)
            self.store.set_metadata(system_image(vm), metadata)
            self._add_resource(vm, created)
        except BaseException:
            self._undo(vm, created)
            raise
        return True

    def _definition(self, vm, xml_text):
        root = dx.parse_domain(xml_text)
        dx.reject_owned_disks(root)
        dx.normalize_units(root)
        base = dx.canonical(root)
        given = dx.uuid_of(root)
        dx.set_identity(root, vm, spec.validate_uuid(given) if given else spec.stable_uuid(vm))
        dx.assign_macs(root, vm)
        dx.expose_name_to_guest(root, vm)
        return root, base

    def _disk_plan(self, vm):
        """[(image name, 'image'|'size', path or bytes)], checked before any change."""
        plan = [(system_image(vm), "image", source_image.readable(self.p["system_image"]))]
        for index, size in enumerate(self.p.get("additional_disks") or [], 1):
            plan.append((data_image(vm, index), "size",
                         spec.parse_size(size, "additional disk size")))
        existing = self.store.image_names()
        for name, _kind, _value in plan:
            if name in existing:
                raise VmError("The RBD image %s already exists but no VM %s owns it: remove "
                              "it first." % (name, vm))
        return plan

    def _metadata(self, vm, base, bus):
        metadata = validate_user_metadata(self.p.get("metadata"))
        metadata.update({KEY_BASE_XML: base, KEY_NAME: vm, KEY_BUS: bus})
        if self.p.get("pinned_host"):
            metadata[KEY_PINNED] = self.p["pinned_host"]
        elif self.p.get("preferred_host"):
            metadata[KEY_PREFERRED] = self.p["preferred_host"]
        if self.p.get("stop_timeout"):
            metadata[KEY_STOP_TIMEOUT] = str(self.p["stop_timeout"])
        return metadata

    def _check_hosts(self):
        nodes = self.cluster.status()["nodes"]
        for option in ("preferred_host", "pinned_host"):
            host = self.p.get(option)
            if host and host not in nodes:
                raise VmError("%s %s is not a node of the cluster (nodes: %s)."
                              % (option, host, ", ".join(sorted(nodes))))

    def _make_disks(self, vm, disks, created):
        self.store.create_group(vm)
        created["group"] = True
        for name, kind, value in disks:
            if kind == "image":
                fmt, size = source_image.importable(self._run, value)
                self.store.import_image(name, value, fmt, size)
            else:
                self.store.create_image(name, value)
            created["images"].append(name)
            self.store.add_to_group(vm, name)

    def _ceph_access(self):
        return {"pool": self.p["pool"], "namespace": self.p.get("namespace"),
                "user": self.p["ceph_user"], "secret_uuid": self.p["secret_uuid"],
                "monitors": self.store.monitors()}

    def _add_resource(self, vm, created, nostart=None):
        """Created unmanaged, constrained, then managed: it can never start on a wrong node
        in between. Placement and timeouts come from the VM's stored intent (metadata), so
        an enable after a disable restores them."""
        metadata = self.store.metadata(system_image(vm))
        nostart = self.p.get("nostart") if nostart is None else nostart
        params = {"config": "%s/%s.xml" % (DOMAIN_DIR, vm), "hypervisor": "qemu:///system",
                  "vm_name": vm, "rbd_pool": self.p["pool"], "ceph_user": self.p["ceph_user"],
                  "ceph_conf": self.p["ceph_conf"], "force_stop": "false"}
        if self.p.get("namespace"):
            params["rbd_namespace"] = self.p["namespace"]
        meta = {"is-managed": "false", "target-role": "Stopped" if nostart else "Started"}
        timeouts = {"stop": int(metadata.get(KEY_STOP_TIMEOUT, pcmk.DEFAULT_OPS["stop"]))}
        self.cluster.create(pcmk.build_primitive(vm, params, meta, op_timeouts=timeouts),
                            "resources")
        created["primitive"] = True
        cib = self.cluster.cib()
        defined = self.cluster.primitive_ids(cib)
        for constraint in placement(vm, metadata) + colocations(vm, metadata, defined):
            self.cluster.create(constraint, "constraints")
        self.cluster.set_meta(vm, "is-managed", "true")
        if not nostart:
            self._wait(vm, ("Started",), "start")

    def _wait(self, vm, wanted, op):
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

    def _undo(self, vm, created):
        if created["primitive"]:
            self._delete_resource(vm)
        for name in reversed(created["images"]):
            if self.store.vm_exists(vm):
                self.store.remove_from_group(vm, name)
            self.store.remove_image(name)
        if created["group"]:
            self.store.remove_group(vm)

    # ---- power ------------------------------------------------------------------------

    def set_power(self, vm, wanted):
        """wanted: 'Started' or 'Stopped', through the resource's target-role."""
        state, _node = self.status_of(vm)
        if state == "Undefined":
            raise VmError("VM %s does not exist." % vm)
        if state == "Disabled":
            raise VmError("VM %s is disabled (not a cluster resource): enable it first." % vm)
        if state == wanted:
            return False
        self._changed("%s VM %s" % ("started" if wanted == "Started" else "stopped", vm))
        if self.check:
            return True
        if state == "Failed":
            self.cluster.cleanup(vm)
        self.cluster.set_meta(vm, "target-role", wanted)
        self._wait(vm, (wanted,), "start" if wanted == "Started" else "stop")
        return True

    # ---- remove -----------------------------------------------------------------------

    def remove(self, vm, purge=False, trash_delay=0):
        """Resource and constraints gone, images to the RBD trash (or purged), group gone."""
        if not self.store.vm_exists(vm):
            return False
        self._changed("removed VM %s" % vm)
        if self.check:
            return True
        if self.cluster.primitive(self.cluster.cib(), vm) is not None:
            self.cluster.set_meta(vm, "target-role", "Stopped")
            if self.status_of(vm)[0] == "Failed":
                self.cluster.cleanup(vm)
            self._wait(vm, ("Stopped",), "stop")
            self._delete_resource(vm)
        # Group snapshots pin the members to the group: they go with the VM.
        for snap in self.store.group_snapshots(vm):
            self.store.remove_group_snapshot(vm, snap[0])
        for name in self.store.images_of(vm):
            self.store.remove_from_group(vm, name)
            if purge:
                self.store.remove_image(name)
            else:
                self.store.trash_image(name, trash_delay)
        self.store.remove_group(vm)
        return True

    def _delete_resource(self, vm):
        cib = self.cluster.cib()
        for constraint in self.cluster.constraints_of(cib, vm):
            self.cluster.delete(constraint.tag, constraint.get("id"))
        self.cluster.delete("primitive", vm)

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
            self.cluster.set_meta(vm, "target-role", "Stopped")
            if self.status_of(vm)[0] == "Failed":
                self.cluster.cleanup(vm)
            self._wait(vm, ("Stopped",), "stop")
            self._delete_resource(vm)
        return True

    def enable(self, vm, nostart=False):
        """Add the VM back to Pacemaker with its stored placement; start unless nostart."""
        self._existing(vm)
        if self.cluster.primitive(self.cluster.cib(), vm) is not None:
            return False
        self._changed("enabled VM %s" % vm)
        if not self.check:
            created = {"images": [], "group": False, "primitive": False}
            try:
                self._add_resource(vm, created, nostart=nostart)
            except BaseException:
                if created["primitive"]:
                    self._delete_resource(vm)
                raise
        return True

    # ---- colocation ---------------------------------------------------------------------

    def define_colocation(self, vm, others, strong):
        """Keep the VM with the others (strong: always; weak: when possible). The intent is
        stored with the VM, so a disable/enable or a rollback keeps it."""
        self._existing(vm)
        if not others:
            raise VmError("colocated_vms must name at least one VM.")
        for other in others:
            spec.validate_vm_name(other)
            if other == vm:
                raise VmError("VM %s cannot be colocated with itself." % vm)
            self._existing(other)
        metadata = self.store.metadata(system_image(vm))
        intent = colocation_intent(metadata)
        wanted = dict(intent)
        wanted.update(dict((o, "strong" if strong else "weak") for o in others))
        cib = self.cluster.cib()
        defined = self.cluster.primitive_ids(cib)
        present = set(c.get("id") for c in self.cluster.constraints_of(cib, vm))
        missing = [c for c in colocations(vm, {KEY_COLOCATION: json.dumps(wanted)}, defined)
                   if c.get("id") not in present] if vm in defined else []
        if wanted == intent and not missing:
            return False
        kind = "strong" if strong else "weak"
        self._changed("colocated VM %s with %s (%s)" % (vm, ", ".join(sorted(others)), kind))
        if self.check:
            return True
        self._replace_colocations(vm, cib, intent, wanted)
        stored = json.dumps(wanted, sort_keys=True)
        self.store.set_metadata(system_image(vm), {KEY_COLOCATION: stored})
        for constraint in missing:
            self.cluster.create(constraint, "constraints")
        return True

    def _replace_colocations(self, vm, cib, intent, wanted):
        """A VM whose kind of colocation changed loses its old constraint first."""
        for other, kind in intent.items():
            if wanted.get(other) != kind:
                old_id = pcmk.colocation_id(vm, other, kind == "strong")
                if cib.find(".//rsc_colocation[@id='%s']" % old_id) is not None:
                    self.cluster.delete("rsc_colocation", old_id)

    # ---- snapshots ----------------------------------------------------------------------

    def _snapshot_names(self, vm):
        return [snap[0] for snap in self.store.group_snapshots(vm)]

    def list_snapshots(self, vm):
        self._existing(vm)
        self.result.update(listing(self.store.group_snapshots(vm)))
        return False

    def create_snapshot(self, vm, name):
        """A group snapshot: every disk of the VM at one instant."""
        self._existing(vm)
        spec.validate_snapshot_name(name)
        changed = name not in self._snapshot_names(vm)
        if changed:
            self._changed("snapshot %s of VM %s" % (name, vm))
            if not self.check:
                self.store.create_group_snapshot(vm, name)
        self.list_snapshots(vm)
        return changed

    def remove_snapshot(self, vm, name):
        self._existing(vm)
        changed = name in self._snapshot_names(vm)
        if changed:
            self._changed("removed snapshot %s of VM %s" % (name, vm))
            if not self.check:
                self.store.remove_group_snapshot(vm, name)
        self.list_snapshots(vm)
        return changed

    def rollback_snapshot(self, vm, name):
        """Stop the VM through Pacemaker, roll every disk back, restore its previous state.
        Its constraints are not touched."""
        self._existing(vm)
        if name not in self._snapshot_names(vm):
            raise VmError("VM %s has no snapshot %s." % (vm, name))
        state = self.status_of(vm)[0]
        self._changed("rolled VM %s back to snapshot %s" % (vm, name))
        if self.check:
            return True
        if state not in ("Disabled", "Stopped"):
            self.cluster.set_meta(vm, "target-role", "Stopped")
            self._wait(vm, ("Stopped",), "stop")
        self.store.rollback_group_snapshot(vm, name)
        if state in ("Started", "Starting"):
            self.cluster.set_meta(vm, "target-role", "Started")
            self._wait(vm, ("Started",), "start")
        return True

    def purge_image(self, vm):
        self._existing(vm)
        doomed = snapshots_to_purge(self.store.group_snapshots(vm), self.p)
        if doomed:
            self._changed("purged snapshots %s of VM %s" % (", ".join(doomed), vm))
            if not self.check:
                for snap in doomed:
                    self.store.remove_group_snapshot(vm, snap)
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
        wanted = validate_user_metadata(values)
        current = self.store.metadata(system_image(vm))
        changed = dict((k, v) for k, v in wanted.items() if current.get(k) != v)
        if not changed:
            return False
        self._changed("metadata %s of VM %s" % (", ".join(sorted(changed)), vm))
        if not self.check:
            self.store.set_metadata(system_image(vm), changed)
        return True
