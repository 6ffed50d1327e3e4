# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""A VM that SEAPATH's vm_manager created, read as one of ours: its encodings of the stored
intent, and the constraints it derived from that intent. Pure logic: no I/O.

vm_manager 2.0 keeps the same RBD layout (group ``<vm>``, ``system_<vm>``, ``data_<vm>_<i>``
from 0, metadata on the system image) but writes ``_crm_config_cmd`` as lines joined with
newlines, a pacemaker remote as four ``_remote_node*`` keys, the preferred host as a
``crm resource move`` (``cli-prefer-<vm>``), the pinned host as ``pin-<vm>-on<node>``, and a
colocation as a resource set ``colocation-[strong-]<vm>-with<vm1>-<vm2>``. A converge stores
the intent our way and replaces those constraints with ours: the takeover is one-way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci

# vm_manager's pacemaker remote, in its order: name, address, port, connect timeout.
REMOTE_KEYS = ("_remote_node", "_remote_node_address", "_remote_node_port",
               "_remote_node_timeout")


def adopted(metadata):
    """The stored metadata with vm_manager's encodings read as ours (a copy). A VM of ours
    comes back unchanged."""
    result = dict(metadata)
    lines = result.get(ci.KEY_CRM_CMDS)
    if lines and not _json_list(lines):
        result[ci.KEY_CRM_CMDS] = ci.dump_json([line for line in lines.split("\n")
                                                if line.strip()])
    remote = dict((key, result.pop(key)) for key in REMOTE_KEYS if key in result)
    if remote.get("_remote_node") and not result.get(ci.KEY_REMOTE):
        result[ci.KEY_REMOTE] = ci.dump_json(_remote(remote))
    return result


def _json_list(text):
    try:
        return isinstance(json.loads(text), list)
    except ValueError:
        return False


def _remote(keys):
    remote = {"name": keys["_remote_node"],
              "address": keys.get("_remote_node_address") or keys["_remote_node"]}
    if keys.get("_remote_node_port"):
        remote["port"] = keys["_remote_node_port"]
    if keys.get("_remote_node_timeout"):
        remote["timeout"] = keys["_remote_node_timeout"]
    return remote


def replaced_by_ours(vm, element, metadata):
    """Is this a constraint vm_manager made from an intent the VM's metadata holds (so ours,
    built from the same intent, replace it)? Its preferred host as a move constraint, its pin,
    and its colocation set once the colocation is our intent too."""
    cid = element.get("id", "")
    if cid == "cli-prefer-%s" % vm and element.get("rsc") == vm:
        return element.get("node") is not None and \
            element.get("node") == metadata.get(ci.KEY_PREFERRED)
    if cid == "pin-%s-on%s" % (vm, metadata.get(ci.KEY_PINNED)) and element.get("rsc") == vm:
        return True
    match = re.fullmatch(r"colocation-(strong-)?%s-with(.+)" % re.escape(vm), cid)
    if match and element.tag == "rsc_colocation":
        sets = element.findall("resource_set")
        members = [[ref.get("id") for ref in s.findall("resource_ref")] for s in sets]
        if len(members) != 2 or members[0] != [vm]:
            return False
        wanted = ci.colocation_intent(metadata)
        kind = "strong" if match.group(1) else "weak"
        return all(wanted.get(other) == kind for other in members[1])
    return False
