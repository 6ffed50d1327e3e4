# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""What the requests of both kinds of VM share: the commands that only read, the VMs a
request changes, the options every module reads the same way, and the answers of the
metadata commands (the same for both, from the metadata each kind keeps)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec

READ_ONLY_COMMANDS = ("status", "list_vms", "list_snapshots", "list_metadata", "get_metadata")
PURGE_OPTIONS = ("purge_number", "purge_keep", "purge_date")
# How the options of both VM modules depend on each other (AnsibleModule's keywords).
MODULE_RULES = dict(mutually_exclusive=[("state", "command"),
                                        ("purge_number", "purge_date", "purge_keep")],
                    required_one_of=[("state", "command")])


class VmRequest(object):
    """The base of a kind's request: ``command``, ``name``, ``src_name`` (a clone's source)
    and ``metadata_name`` are set by the kind's constructor."""

    command = name = src_name = metadata_name = None
    hook_timeout, addresses = 60, ()

    @property
    def read_only(self):
        return self.command in READ_ONLY_COMMANDS

    @property
    def locked_names(self):
        """The VMs this request changes: the VM, and a clone's source."""
        if self.command == "clone":
            return [self.name, self.src_name]
        return [self.name]

    def read_hook_options(self, params):
        """The site hooks' options: the timeout of one hook and the VM's addresses."""
        self.hook_timeout = spec.whole_number(params["hook_timeout"], "hook_timeout", 1,
                                              spec.MAX_WAIT_SECONDS)
        self.addresses = params["addresses"] or []

    def metadata_answer(self, metadata):
        """What list_metadata and get_metadata return from the VM's ``metadata``; None for
        the other commands."""
        if self.command == "list_metadata":
            return {"list_metadata": sorted(metadata)}
        if self.command != "get_metadata":
            return None
        if self.metadata_name not in metadata:
            raise VmError("VM %s has no metadata key %s." % (self.name, self.metadata_name))
        return {"metadata_value": metadata[self.metadata_name]}


def optional_whole_number(params, option):
    """The option as an int, None when not given (see spec.as_whole_number)."""
    value = params[option]
    return None if value is None else spec.as_whole_number(value, option)


def purge_options(params):
    """The purge options as snapshot_policy reads them (numbers normalized)."""
    options = dict((k, params[k]) for k in PURGE_OPTIONS)
    spec.normalize_purge_numbers(options)
    return options


def validated_params(argument_spec, options, rules=None):
    """The options of one VM as its module would get them (types converted, defaults set),
    checked outside a module call (deploy_plan's VMs; ``rules``: the VM modules' by
    default); raises VmError naming the first wrong option."""
    rules = MODULE_RULES if rules is None else rules
    result = ArgumentSpecValidator(argument_spec, **rules).validate(options)
    if result.error_messages:
        raise VmError(result.error_messages[0].rstrip(".") + ".")
    return result.validated_parameters
