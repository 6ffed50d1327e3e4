# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""One standalone_vm call, read once: every option the argspec cannot check is checked and
normalized here, before any connection is opened. The lifecycle reads only this object."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.request import (
    VmRequest, optional_whole_number, purge_options)

# Commands that are states under another name.
COMMAND_TO_STATE = {"create": "present", "remove": "absent", "start": "running",
                    "stop": "stopped"}
SNAPSHOT_COMMANDS = ("create_snapshot", "remove_snapshot", "rollback_snapshot")


class StandaloneRequest(VmRequest):
    """The validated request. ``action``: the command, else the state; ``state``: the state a
    converging action brings the VM to (None for the other commands)."""

    def __init__(self, params):
        # In the order the checks were always made: the first bad option is the one named.
        self.stop_timeout = spec.whole_number(params["stop_timeout"], "stop_timeout", 0,
                                              spec.MAX_WAIT_SECONDS)
        self.connect_timeout = spec.validate_connect_timeout(params["connect_timeout"])
        memory, vcpus = optional_whole_number(params, "memory"), optional_whole_number(
            params, "vcpus")
        self.purge = purge_options(params)
        self.command = params["command"]
        self.action = self.command or params["state"]
        self.name = None if self.command == "list_vms" else spec.validate_vm_name(
            params["name"])
        self.src_name = params["src_name"]
        self.snapshot_name = params["snapshot_name"]
        self.metadata_name = params["metadata_name"]
        self.metadata = params["metadata"]
        self.destination_uri = params["destination_uri"]
        self._check_command_inputs(params)
        if self.purge["purge_date"] is not None:
            spec.parse_purge_date(self.purge["purge_date"])
        self.memory = spec.validate_memory(memory)
        self.vcpus = spec.validate_vcpus(vcpus)
        if self.metadata is not None:
            self.metadata = spec.validate_metadata(self.metadata)
        self.pool = spec.validate_pool_name(params["pool"])
        self.uri = params["uri"]
        self.state = _state_of(self.command, params["state"], params["nostart"])
        self.must_exist = self.command in ("remove", "start", "stop")
        self.user_root = _user_root(params["xml"])
        self.system_image = params["system_image"]
        self.additional_disks = _disk_sources(params["additional_disks"])
        self.disk_bus = params["disk_bus"]
        self.autostart = params["autostart"]
        self.force = params["force"]
        self.restart = params["apply"] == "restart"
        self.nostart = params["nostart"]
        self.full = params["full"]
        self.live = params["live"]
        self.destination_pool = spec.validate_pool_name(params["destination_pool"])
        self.read_hook_options(params)

    def _check_command_inputs(self, params):
        command = self.command
        if command == "clone":
            if not self.src_name:
                raise VmError("src_name is required when command is clone.")
            spec.validate_vm_name(self.src_name)
        if command in SNAPSHOT_COMMANDS:
            spec.validate_snapshot_name(self.snapshot_name)
        if command == "get_metadata":
            if not self.metadata_name:
                raise VmError("metadata_name is required when command is get_metadata.")
            spec.validate_metadata_key(self.metadata_name)
        if command == "set_metadata" and not self.metadata:
            raise VmError("metadata is required when command is set_metadata.")
        if command == "move":
            if not self.destination_uri:
                raise VmError("destination_uri is required when command is move.")
            spec.validate_libvirt_uri(self.destination_uri, "destination_uri")
            if params["live"] and params["nostart"]:
                raise VmError("nostart applies to an offline move: a live move keeps VM %s "
                              "running." % self.name)


def _state_of(command, state, nostart):
    if command is None:
        return "running" if state == "started" else state
    if command == "create":
        return "present" if nostart else "running"
    return COMMAND_TO_STATE.get(command)


def _user_root(xml_text):
    """The user's domain XML parsed (hardened) and checked once: no disks of its own, units
    normalized; the lifecycle copies it for each use."""
    if not xml_text:
        return None
    root = dx.parse_domain(xml_text)
    dx.reject_owned_disks(root)
    dx.normalize_units(root)
    return root


def _disk_sources(items):
    """additional_disks -> [('image', path) | ('size', bytes)], or None when not given."""
    if items is None:
        return None
    return [spec.additional_disk_source(item) for item in items]


COMMANDS = ["create", "remove", "start", "stop", "status", "list_vms", "clone",
            "create_snapshot", "remove_snapshot", "rollback_snapshot", "list_snapshots",
            "purge_image", "list_metadata", "get_metadata", "set_metadata", "move"]


def argument_spec():
    args = spec.purge_argument_spec()
    args.update(spec.libvirt_argument_spec())
    args.update(spec.hook_argument_spec())
    args.update(
        name=dict(type="str", aliases=["guest"]),
        state=dict(type="str", choices=["present", "running", "started", "stopped", "absent"]),
        command=dict(type="str", choices=COMMANDS),
        xml=dict(type="str"),
        system_image=dict(type="path"),
        additional_disks=dict(type="list", elements="raw"),
        disk_bus=dict(type="str", choices=["virtio", "scsi", "sata", "ide"]),
        pool=dict(type="str", default="default"),
        memory=dict(type="raw"),
        vcpus=dict(type="raw"),
        autostart=dict(type="bool"),
        metadata=dict(type="dict"),
        metadata_name=dict(type="str"),
        force=dict(type="bool", default=False),
        stop_timeout=dict(type="raw", default=60),
        apply=dict(type="str", choices=["none", "restart"], default="none"),
        nostart=dict(type="bool", default=False),
        src_name=dict(type="str"),
        full=dict(type="bool", default=False),
        snapshot_name=dict(type="str"),
        destination_uri=dict(type="str"),
        destination_pool=dict(type="str", default="default"),
        live=dict(type="bool", default=False),
    )
    return args
