# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""What the cluster planners share: the request, the drivers (RBD store, Pacemaker, the
runner), the step helpers (the VM's resource and images), the plan being built, and the
checks and renderings every plan makes before it adds a step: the final domain XML, the
intent a request asks for, the resource inputs checked against the cluster, the --diff."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.process import get_bin_path

from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.images import VmImages
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.resource import Resource
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.site_hooks import SiteHooks
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import (
    validate_domain)


class Context(object):
    """``req``: the ClusterRequest; ``run``: AnsibleModule.run_command; ``warn``: its warn."""

    def __init__(self, req, store, cluster, run, warn, plan):
        self.req = req
        self.store = store
        self.cluster = cluster
        self.run = run
        self.warn = warn
        self.plan = plan
        self.resource = Resource(cluster, store, req.store_options)
        self.images = VmImages(store, run, warn, req.purge_images, req.trash_delay)
        self.hooks = SiteHooks("cluster", req.hook_timeout, req.addresses, run, warn)
        self.allocating = None  # the action the allocate hooks run for
        self.allocation = None  # what they chose, once they ran

    def existing(self, vm):
        if not self.store.vm_exists(vm):
            raise VmError("VM %s does not exist." % vm)

    def diff(self, vm, before, after):
        """Definition and intent, before and after (the definition as readable XML)."""
        self.plan.diff(vm, "domain XML", dx.pretty(_definition_of(before)),
                       dx.pretty(_definition_of(after)))
        self.plan.diff(vm, "metadata", _metadata_text(before), _metadata_text(after))

    # ---- the definition and the intent -------------------------------------------------

    def render(self, vm, base, images, bus, stored_xml=None):
        """The final domain XML the resource agent runs: identity, stable MACs, the name for
        the guest, RBD network disks (and the Ceph access of RBD CD-ROMs), and our record
        of the definition. The UUID is the
        user's, else the one the VM has (vm_manager drew a random one), else stable."""
        root = dx.parse_domain(base, "stored definition")
        given = dx.uuid_of(root) or (stored_xml and dx.uuid_of(
            xmlutil.parse(stored_xml, "stored domain XML")))
        dx.set_identity(root, vm, spec.validate_uuid(given) if given else spec.stable_uuid(vm))
        dx.assign_macs(root, vm)
        dx.expose_name_to_guest(root, vm)
        ceph = self.req.ceph_access(self.store.monitors())
        dx.add_rbd_disks(root, images, bus, ceph)
        dx.complete_rbd_cdroms(root, ceph)
        dx.set_gv_metadata(root, dx.build_gv_metadata({}, dx.canonical(root)))
        return root

    def validate(self, root):
        """libvirt's schema, before anything is stored (check mode too)."""
        validate_domain(self.run, root)

    def define(self, vm, metadata, base, images, bus, stored_xml=None):
        """A new definition (create, re-create, clone) rendered on ``images``, checked with
        libvirt's schema and put into ``metadata`` as the one the agent runs."""
        root = self.render(vm, base, images, bus, stored_xml)
        metadata[ci.KEY_XML] = dx.to_string(root)
        self.validate(root)

    def metadata_for_new(self, vm, base, bus, inherited):
        metadata = dict(inherited)
        metadata.update(self.req.user_metadata)
        metadata.update({ci.KEY_BASE_XML: base, ci.KEY_NAME: vm, ci.KEY_BUS: bus})
        return ci.apply_updates(metadata, self.intent_updates())

    def intent_updates(self):
        """Metadata changes asked by the task's options (only the options it gives)."""
        req = self.req
        updates = dict(req.intent_updates)
        if req.constraints is not None:
            updates[ci.KEY_CONSTRAINTS] = (ci.dump_json(req.constraints)
                                           if req.constraints else None)
        if req.colocated_vms is not None and req.command != "define_colocation":
            kind = "strong" if req.strong else "weak"
            wanted = dict((other, kind) for other in req.colocated_vms)
            updates[ci.KEY_COLOCATION] = ci.dump_json(wanted) if wanted else None
        return updates

    # ---- the resource inputs -----------------------------------------------------------

    def check_resource_inputs(self, metadata, enabling, previous=None):
        """Before any change: the nodes named exist, colocated VMs exist, the resource can be
        built from the intent, raw constraint ids take over nothing, the stored crmsh lines
        are constraints of the VM and crmsh is there when they must run. ``previous``: the
        stored intent the request changes."""
        vm = self.req.name  # the VM asked for, not the name in metadata anyone can write
        # Built once before anything is stored: an intent that cannot make a resource fails
        # this task, instead of being stored and failing every later task on the VM.
        self.resource.desired_primitive(vm, metadata, "Stopped")
        ci.desired_constraints(vm, metadata, set())
        self._check_raw_constraint_ids(vm, metadata, previous or {})
        _check_nodes_named(metadata, self.cluster.status()["nodes"])
        for other in ci.colocation_intent(metadata):
            spec.validate_vm_name(other)
            if other == metadata.get(ci.KEY_NAME):
                raise VmError("VM %s cannot be colocated with itself." % other)
            self.existing(other)
        # The stored lines are checked whenever the intent is (a vm_manager VM's come as
        # text); crmsh itself is needed only when they run.
        if ci.stored_crm_commands(vm, metadata) and enabling:
            _require_crmsh()

    def _check_raw_constraint_ids(self, vm, metadata, previous):
        """A raw constraint's id may already be in the CIB only as one of this VM's own
        (its previous intent's): the module would otherwise take over, and later delete,
        another VM's or an operator's element of that id."""
        raw = [ci.build_constraint(vm, item) for item in
               ci.load_json(metadata, ci.KEY_CONSTRAINTS, []) if item["type"] == "xml"]
        if not raw:
            return
        held = pcib.element_ids(self.cluster.cib())
        for constraint in raw:
            element = held.get(constraint.get("id"))
            if element is not None and not ci.owned_constraint(vm, element, previous):
                raise VmError("The id %s of an xml constraint of VM %s is already used in the "
                              "CIB by a <%s> that is not one of its constraints: give the "
                              "constraint another id." % (constraint.get("id"), vm, element.tag))


def _check_nodes_named(metadata, nodes):
    for key, option in ((ci.KEY_PREFERRED, "preferred_host"), (ci.KEY_PINNED, "pinned_host")):
        host = metadata.get(key)
        if host and host not in nodes:
            raise VmError("%s %s is not a node of the cluster (nodes: %s)."
                          % (option, host, ", ".join(sorted(nodes))))
    for item in ci.load_json(metadata, ci.KEY_CONSTRAINTS, []):
        if item["type"] == "location" and item["node"] not in nodes:
            raise VmError("The location constraint names %s, which is not a node of the "
                          "cluster (nodes: %s)." % (item["node"], ", ".join(sorted(nodes))))


def _require_crmsh():
    try:
        get_bin_path("crm")
    except ValueError:
        raise VmError("crm_config_cmd needs crmsh (the crm command), which is not installed "
                      "on this node; install crmsh or use the constraints option.")


def _definition_of(metadata):
    if not metadata or not metadata.get(ci.KEY_XML):
        return ""
    root = xmlutil.parse(metadata[ci.KEY_XML], "stored domain XML")
    return dx.canonical(root)


def _metadata_text(metadata):
    skip = (ci.KEY_XML, ci.KEY_BASE_XML)
    return "".join("%s: %s\n" % (k, metadata[k]) for k in sorted(metadata or {})
                   if k not in skip)
