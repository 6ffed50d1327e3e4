# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""One cluster_vm call, read once: every option the argspec cannot check is checked and
normalized here, before any connection is opened. The lifecycle reads only this object."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.request import (
    VmRequest, optional_whole_number, purge_options)

# Ten years: longer is a unit mistake.
MAX_TRASH_DELAY = 10 * 365 * 24 * 3600
SNAPSHOT_COMMANDS = ("create_snapshot", "remove_snapshot", "rollback_snapshot")
STORE_OPTIONS = ("pool", "keyring", "ceph_user", "ceph_conf")


def pacemaker_intent_argument_spec():
    """The options of the VM's intent in Pacemaker (doc fragment gridvirt.kvm.pacemaker_intent):
    placement, migration, the resource's settings, constraints, colocation, remote."""
    return dict(
        preferred_host=dict(type="str"),
        pinned_host=dict(type="str"),
        live_migration=dict(type="bool"),
        migration_user=dict(type="str"),
        migration_transport=dict(type="str", choices=["ssh", "tcp", "tls"]),
        stop_timeout=dict(type="str"),
        migrate_to_timeout=dict(type="str"),
        migration_downtime=dict(type="str"),
        priority=dict(type="str"),
        clear_constraint=dict(type="bool", default=False),
        pacemaker_meta=dict(type="dict"),
        pacemaker_params=dict(type="dict"),
        pacemaker_utilization=dict(type="dict"),
        clear_pacemaker_meta=dict(type="bool", default=False),
        clear_pacemaker_params=dict(type="bool", default=False),
        clear_pacemaker_utilization=dict(type="bool", default=False),
        crm_config_cmd=dict(type="list", elements="str"),
        constraints=dict(type="list", elements="dict"),
        colocated_vms=dict(type="list", elements="str"),
        strong=dict(type="bool", default=False),
        remote_name=dict(type="str"),
        remote_address=dict(type="str"),
        remote_port=dict(type="raw"),
        remote_timeout=dict(type="str"),
    )


class ClusterRequest(VmRequest):
    """The validated request. ``action``: the command, else the state; ``state``: the state
    a converging action brings the VM to (None for the other commands)."""

    def __init__(self, params):
        # In the order the checks were always made: the first bad option is the one named.
        self.command = params["command"]
        self.action = self.command or params["state"]
        self.name = None if self.command == "list_vms" else spec.validate_vm_name(
            params["name"])
        self.store_options = dict((k, params[k]) for k in STORE_OPTIONS)
        spec.validate_pool_name(params["pool"])
        self.secret_uuid = spec.validate_uuid(params["secret_uuid"])
        self.connect_timeout = spec.validate_connect_timeout(params["connect_timeout"])
        self.trash_delay = spec.whole_number(params["trash_delay"], "trash_delay", 0,
                                             MAX_TRASH_DELAY)
        self.remote_port = optional_whole_number(params, "remote_port")
        self.purge = purge_options(params)
        self._read_command_inputs(params)
        self.base_xml = _base_definition(params["xml"])
        self.additional_disks = params["additional_disks"]
        for item in self.additional_disks or []:
            spec.additional_disk_source(item)
        if self.purge["purge_date"] is not None:
            spec.parse_purge_date(self.purge["purge_date"])
        for option in ("purge_number", "purge_keep"):
            if self.purge[option] is not None and self.purge[option] < 0:
                raise VmError("%s must be zero or more." % option)
        self.metadata = params["metadata"]
        self.user_metadata = ci.validate_user_metadata(self.metadata)
        self.intent_updates = ci.intent_from_options(params)
        self.constraints = None
        if self.name and params["constraints"] is not None:
            self.constraints = ci.normalize_constraints(self.name, params["constraints"])
        self.colocated_vms = params["colocated_vms"]
        for other in self.colocated_vms or []:
            spec.validate_vm_name(other)
            if other == self.name:
                raise VmError("VM %s cannot be colocated with itself." % other)
        self._read_plain_options(params)
        self.read_hook_options(params)

    def _read_plain_options(self, params):
        self.system_image = params["system_image"]
        self.data_disk = params["data_disk"]
        self.disk_bus = params["disk_bus"]
        self.force = params["force"]
        self.nostart = params["nostart"]
        self.restart = params["apply"] == "restart"
        self.full = params["full"]
        self.strong = params["strong"]
        self.purge_images = params["purge"]
        self.clone_drops = ci.clone_dropped_keys(params)
        self.state = _state_of(self.command, params["state"], params["enable"],
                               params["nostart"])

    def _read_command_inputs(self, params):
        command = self.command
        self.node = _checked_node(command, params["state"], params["node"])
        self.src_name = params["src_name"]
        self.snapshot_name = params["snapshot_name"]
        self.metadata_name = params["metadata_name"]
        if command == "clone":
            if not self.src_name:
                raise VmError("src_name is required when command is clone.")
            spec.validate_vm_name(self.src_name)
        if command in SNAPSHOT_COMMANDS or (command == "clone" and self.snapshot_name):
            spec.validate_snapshot_name(self.snapshot_name)
        if command == "get_metadata" and not self.metadata_name:
            raise VmError("metadata_name is required when command is get_metadata.")
        if command == "set_metadata" and not params["metadata"]:
            raise VmError("metadata is required when command is set_metadata.")
        self.src_uri = params["src_uri"]
        self.remove_source = params["remove_source"]
        if command == "import":
            if not self.src_uri:
                raise VmError("src_uri is required when command is import.")
            spec.validate_libvirt_uri(self.src_uri, "src_uri", local=True)
            spec.validate_vm_name(self.src_name or self.name)
        if command == "define_colocation" and not params["colocated_vms"]:
            raise VmError("colocated_vms is required when command is define_colocation.")
        self.remote = None
        if command == "add_pacemaker_remote":
            self.remote = ci.validate_remote(dict(params, remote_port=self.remote_port))

    def ceph_access(self, monitors):
        """What a domain's RBD disks name: pool, user, libvirt secret, monitors."""
        return {"pool": self.store_options["pool"], "user": self.store_options["ceph_user"],
                "secret_uuid": self.secret_uuid, "monitors": monitors}


def _state_of(command, state, enable, nostart):
    if command is None:
        return "running" if state == "started" else state
    if command == "create":
        if enable is False:
            return "disabled"
        return "present" if nostart else "running"
    return {"remove": "absent"}.get(command)


def _checked_node(command, state, node):
    if command == "migrate" and not node:
        raise VmError("node is required when command is migrate.")
    if node is None:
        return None
    if not node:
        raise VmError("node must name a cluster node.")
    if command != "migrate" and state not in ("running", "started"):
        raise VmError("node is only used with command migrate or state running (started).")
    return node


def _base_definition(xml_text):
    """The user's XML as stored in _base_xml: no disks of its own, units normalized."""
    if not xml_text:
        return None
    root = dx.parse_domain(xml_text)
    dx.reject_owned_disks(root)
    dx.normalize_units(root)
    return dx.canonical(root)


COMMANDS = ["create", "remove", "list_vms", "start", "stop", "status", "clone", "enable",
            "disable", "list_snapshots", "create_snapshot", "remove_snapshot",
            "rollback_snapshot", "purge_image", "list_metadata", "get_metadata",
            "set_metadata", "define_colocation", "add_pacemaker_remote",
            "remove_pacemaker_remote", "migrate", "import"]
STATES = ["present", "running", "started", "stopped", "disabled", "absent"]


def argument_spec():
    args = spec.purge_argument_spec()
    args.update(spec.ceph_argument_spec())
    args.update(spec.hook_argument_spec())
    args.update(pacemaker_intent_argument_spec())
    args.update(
        name=dict(type="str", aliases=["guest"]),
        state=dict(type="str", choices=STATES),
        command=dict(type="str", choices=COMMANDS),
        xml=dict(type="str"),
        system_image=dict(type="path"),
        data_disk=dict(type="path"),
        additional_disks=dict(type="list", elements="raw"),
        disk_bus=dict(type="str", choices=["virtio", "scsi", "sata", "ide"]),
        force=dict(type="bool", default=False),
        enable=dict(type="bool", default=True),
        nostart=dict(type="bool", default=False),
        apply=dict(type="str", choices=["none", "restart"], default="none"),
        src_name=dict(type="str"),
        full=dict(type="bool", default=False),
        snapshot_name=dict(type="str"),
        metadata=dict(type="dict"),
        metadata_name=dict(type="str"),
        node=dict(type="str"),
        src_uri=dict(type="str"),
        remove_source=dict(type="bool", default=True),
        purge=dict(type="bool", default=False),
        trash_delay=dict(type="raw", default=0),
    )
    return args
