# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""What a cluster VM should look like in Pacemaker, from the intent stored with the VM.

The intent (placement, colocation, extra constraints, migration settings, Pacemaker
meta/params/utilization, pacemaker-remote identity) lives in the metadata of ``system_<vm>``
as ``_<key>`` values, so it survives disable -> enable, rollback and a move to another
cluster node. From it this file builds the desired primitive and constraints; the
orchestration compares them with the CIB. Pure logic: no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import json

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import crmsh_lines
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.deps import lxml_etree
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

PREFERRED_SCORE = 100
DOMAIN_DIR = "/var/lib/gridvirt/domains"

# Metadata keys owned by the module (user keys may not start with "_" nor be these).
KEY_XML, KEY_BASE_XML, KEY_NAME, KEY_BUS = "xml", "_base_xml", "vm_name", "_disk_bus"
KEY_PREFERRED, KEY_PINNED = "_preferred_host", "_pinned_host"
KEY_STOP_TIMEOUT, KEY_MIGRATE_TO_TIMEOUT = "_stop_timeout", "_migrate_to_timeout"
KEY_LIVE_MIGRATION, KEY_MIGRATION_USER = "_live_migration", "_migration_user"
KEY_MIGRATION_DOWNTIME, KEY_PRIORITY = "_migration_downtime", "_priority"
KEY_MIGRATION_TRANSPORT = "_migration_transport"
KEY_META, KEY_PARAMS = "_pacemaker_meta", "_pacemaker_params"
KEY_UTILIZATION = "_pacemaker_utilization"
KEY_COLOCATION = "_colocated_vms"  # JSON {other VM: "strong"|"weak"}
KEY_CONSTRAINTS = "_constraints"  # JSON list of normalized constraint specs
KEY_ADDRESSES = "_addresses"  # JSON list: the addresses the task gave, for the site hooks
KEY_CRM_CMDS = "_crm_config_cmd"  # JSON list of crmsh configure lines
KEY_REMOTE = "_remote"  # JSON {name, address, port, timeout}
# JSON list of the XML of other resources' constraints naming the VM (another VM's
# colocation with it, an operator's order) that a disable had to remove with its resource.
KEY_HELD = "_held_constraints"
RESERVED_KEYS = (KEY_XML, KEY_NAME)

# option name -> (metadata key, how the value is stored)
SCALAR_OPTIONS = (
    ("preferred_host", KEY_PREFERRED), ("pinned_host", KEY_PINNED),
    ("stop_timeout", KEY_STOP_TIMEOUT), ("migrate_to_timeout", KEY_MIGRATE_TO_TIMEOUT),
    ("migration_user", KEY_MIGRATION_USER), ("migration_downtime", KEY_MIGRATION_DOWNTIME),
    ("migration_transport", KEY_MIGRATION_TRANSPORT), ("priority", KEY_PRIORITY),
)
# Transports of a live migration (libvirt URI qemu+<transport>://). Always set on the
# primitive: VirtualDomain's own default (empty) would mean TLS; SEAPATH sets ssh.
MIGRATION_TRANSPORTS = ("ssh", "tcp", "tls")
DEFAULT_MIGRATION_TRANSPORT = "ssh"
DICT_OPTIONS = (("pacemaker_meta", KEY_META), ("pacemaker_params", KEY_PARAMS),
                ("pacemaker_utilization", KEY_UTILIZATION))
# Keys a clone takes from its source (SEAPATH's clear_* options drop some of them).
# The remote identity and the constraints are never inherited.
CLONE_INHERITED = (KEY_BUS, KEY_STOP_TIMEOUT, KEY_MIGRATE_TO_TIMEOUT, KEY_LIVE_MIGRATION,
                   KEY_MIGRATION_USER, KEY_MIGRATION_DOWNTIME, KEY_MIGRATION_TRANSPORT,
                   KEY_PRIORITY, KEY_META, KEY_PARAMS, KEY_UTILIZATION, KEY_PREFERRED,
                   KEY_PINNED)
# Instance attributes and meta attributes that the module sets itself.
OWN_PARAMS = ("config", "hypervisor", "vm_name", "rbd_pool", "ceph_keyring",
              "ceph_user", "ceph_conf", "force_stop", "migration_user", "migration_downtime",
              "migration_transport")
OWN_META = ("target-role", "is-managed", "allow-migrate", "priority", "remote-node",
            "remote-addr", "remote-port", "remote-connect-timeout")
CONSTRAINT_TAGS = ("rsc_location", "rsc_colocation", "rsc_order", "rsc_ticket")
ORDER_KINDS = ("Mandatory", "Optional", "Serialize")
# migration_downtime is in milliseconds: at most the 24 h every duration option is bound to.
MAX_MIGRATION_DOWNTIME_MS = pcib.MAX_DURATION_SECONDS * 1000
# Utilization the heartbeat agent sets itself at start (autoset_utilization_*).
AGENT_UTILIZATION = ("cpu", "hv_memory", "host_memory")


def validate_user_metadata(metadata):
    """SEAPATH's rule on top of ours: user keys must not start with '_' (internal keys)."""
    values = spec.validate_metadata(metadata)
    for key in values:
        if key.startswith("_") or key in RESERVED_KEYS:
            raise VmError("The metadata key %r is reserved for the module." % key)
    return values


def load_json(metadata, key, default):
    raw = metadata.get(key)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise VmError("The stored %s of the VM is not valid JSON: %r." % (key[1:], raw))


def dump_json(value):
    return json.dumps(value, sort_keys=True)


# ---- option checks -----------------------------------------------------------------------

def validate_duration(value, option):
    """A Pacemaker duration: seconds, or a number with ms/s/min/h; more than 0 and at most
    24 hours (a finite bound: 'inf', 'nan' or '1e400' would crash building the resource)."""
    if value is None:
        return None
    try:
        seconds = pcib.duration_seconds(str(value))
    except ValueError:
        seconds = -1
    if not 0 < seconds <= pcib.MAX_DURATION_SECONDS:
        raise VmError("%s must be a positive duration of at most 24 h (seconds, or a number "
                      "with ms, s, min or h), not %r." % (option, value))
    return str(value)


def validate_whole_number(value, option, minimum=0, maximum=None):
    if value is None:
        return None
    try:
        number = int(str(value))
    except ValueError:
        number = minimum - 1
    if number < minimum or (maximum is not None and number > maximum):
        raise VmError("%s must be a whole number of at least %d%s, not %r."
                      % (option, minimum, "" if maximum is None else
                         " and at most %d" % maximum, value))
    return str(number)


def validate_pacemaker_dict(values, option, forbidden):
    """Pacemaker attribute names/values as strings; the ones the module sets itself from
    its own options cannot be set through the generic dict."""
    result = {}
    for name, value in (values or {}).items():
        if not spec.METADATA_KEY_RE.fullmatch(str(name)):
            raise VmError("%s: %r is not a valid attribute name." % (option, name))
        if name in forbidden:
            raise VmError("%s cannot set %s: the module sets it (use the dedicated option or "
                          "the state)." % (option, name))
        if isinstance(value, bool):
            value = "true" if value else "false"
        if value is None or isinstance(value, (dict, list)):
            raise VmError("%s: the value of %s must be a string or a number." % (option, name))
        result[str(name)] = str(value)
    return result


def validate_remote(params):
    name = params.get("remote_name")
    if not name:
        raise VmError("remote_name is required when command is add_pacemaker_remote.")
    spec.validate_vm_name(name)
    remote = {"name": name, "address": params.get("remote_address") or name}
    if params.get("remote_port") is not None:
        port = int(params["remote_port"])
        if not 0 < port < 65536:
            raise VmError("remote_port must be between 1 and 65535, not %d." % port)
        remote["port"] = str(port)
    if params.get("remote_timeout") is not None:
        remote["timeout"] = validate_duration(params["remote_timeout"], "remote_timeout")
    return remote


# ---- structured constraints -----------------------------------------------------------------

def _score(value, option):
    text = str(value).strip()
    if text.upper().lstrip("+-") == "INFINITY":
        return text.upper().replace("+", "")
    try:
        return str(int(text))
    except ValueError:
        raise VmError("%s: score %r is not a number nor INFINITY/-INFINITY." % (option, value))


def normalize_constraint(vm, item, index):
    """One entry of the constraints option -> canonical dict (stored, compared, built)."""
    where = "constraints[%d]" % index
    if not isinstance(item, dict):
        raise VmError("%s must be a dict with a type." % where)
    kind = item.get("type")
    known = {"location": ("node", "score"), "ban": ("node",),
             "colocation": ("with", "score"), "order": ("first", "then", "kind",
                                                        "symmetrical"),
             "xml": ("xml",)}
    if kind not in known:
        raise VmError("%s: type must be one of %s, not %r."
                      % (where, ", ".join(sorted(known)), kind))
    unknown = set(item) - set(known[kind]) - set(["type"])
    if unknown:
        raise VmError("%s: unknown key(s) %s for a %s constraint."
                      % (where, ", ".join(sorted(unknown)), kind))
    return _NORMALIZERS[kind](vm, item, where)


def _location(vm, item, where):
    if not item.get("node"):
        raise VmError("%s: a location constraint needs a node." % where)
    return {"type": "location", "node": str(item["node"]),
            "score": _score(item.get("score", PREFERRED_SCORE), where)}


def _ban(vm, item, where):
    if not item.get("node"):
        raise VmError("%s: a ban needs a node." % where)
    return {"type": "location", "node": str(item["node"]), "score": "-INFINITY"}


def _colocation(vm, item, where):
    other = item.get("with")
    if not other or other == vm:
        raise VmError("%s: a colocation needs another resource in 'with'." % where)
    return {"type": "colocation", "with": str(other),
            "score": _score(item.get("score", "INFINITY"), where)}


def _order(vm, item, where):
    first, then = item.get("first", vm), item.get("then", vm)
    if vm not in (first, then) or first == then:
        raise VmError("%s: an order constraint needs 'first' or 'then' naming another "
                      "resource (the VM is the other end)." % where)
    kind = item.get("kind", "Mandatory")
    if kind not in ORDER_KINDS:
        raise VmError("%s: kind must be one of %s." % (where, ", ".join(ORDER_KINDS)))
    return {"type": "order", "first": str(first), "then": str(then), "kind": kind,
            "symmetrical": bool(item.get("symmetrical", True))}


def _raw(vm, item, where):
    text = item.get("xml")
    if not isinstance(text, str) or not text.strip():
        raise VmError("%s: an xml constraint needs the constraint element as text." % where)
    try:
        element = xmlutil.parse(text, where)
    except VmError as exc:
        raise VmError("%s: the xml is not well-formed: %s" % (where, exc.msg))
    if element.tag not in CONSTRAINT_TAGS:
        raise VmError("%s: the xml must be one of %s, not <%s>."
                      % (where, ", ".join(CONSTRAINT_TAGS), element.tag))
    if not element.get("id"):
        raise VmError("%s: the xml constraint needs an id." % where)
    if element.find(".//resource_set") is not None:
        raise VmError("%s: resource sets are not supported in an xml constraint; write one "
                      "constraint per pair (rsc/with-rsc or first/then)." % where)
    if vm not in pcib.named_resources(element):
        raise VmError("%s: the xml constraint must name the VM %s (so it goes with it)."
                      % (where, vm))
    return {"type": "xml", "xml": xmlutil.to_string(element, pretty=False)}


_NORMALIZERS = {"location": _location, "ban": _ban, "colocation": _colocation,
                "order": _order, "xml": _raw}


def normalize_constraints(vm, items):
    return [normalize_constraint(vm, item, i) for i, item in enumerate(items or [])]


def _spec_id(vm, item):
    digest = hashlib.sha256(dump_json(item).encode("utf-8")).hexdigest()[:10]
    return "gv-%s-%s-%s" % (vm, item["type"], digest)


def build_constraint(vm, item):
    e = lxml_etree()
    if item["type"] == "location":
        return e.Element("rsc_location", id=_spec_id(vm, item), rsc=vm, node=item["node"],
                         score=item["score"])
    if item["type"] == "colocation":
        return e.Element("rsc_colocation", id=_spec_id(vm, item), rsc=vm,
                         score=item["score"], **{"with-rsc": item["with"]})
    if item["type"] == "order":
        return e.Element("rsc_order", id=_spec_id(vm, item), first=item["first"],
                         then=item["then"], kind=item["kind"],
                         symmetrical="true" if item["symmetrical"] else "false")
    return xmlutil.parse(item["xml"], "stored constraint")


# ---- the desired resource ---------------------------------------------------------------

def placement(vm, metadata):
    """Location constraints from the stored intent: pinned (a rule: nowhere but that node)
    wins over preferred (score 100: fails over, and back when the node returns)."""
    if metadata.get(KEY_PINNED):
        return [pcib.build_pin(vm, metadata[KEY_PINNED])]
    if metadata.get(KEY_PREFERRED):
        return [pcib.build_location(vm, metadata[KEY_PREFERRED], PREFERRED_SCORE, "prefer")]
    return []


def colocation_intent(metadata):
    return load_json(metadata, KEY_COLOCATION, {})


def colocations(vm, metadata, defined):
    """Colocation constraints from the stored intent, for the VMs that are resources now.
    SEAPATH's meaning: strong = always together (INFINITY), weak = together when possible."""
    result = []
    for other, kind in sorted(colocation_intent(metadata).items()):
        if other in defined:
            score = pcib.INFINITY if kind == "strong" else PREFERRED_SCORE
            result.append(pcib.build_colocation(vm, other, score))
    return result


def desired_constraints(vm, metadata, defined):
    """Every constraint the VM should have, in CIB XML."""
    extra = [build_constraint(vm, item) for item in load_json(metadata, KEY_CONSTRAINTS, [])]
    return placement(vm, metadata) + colocations(vm, metadata, defined) + extra


def owned_constraint(vm, element, metadata):
    """Is this CIB constraint one the module manages for the VM (so it may remove it)?"""
    cid = element.get("id", "")
    prefixes = ("location-%s-" % vm, "colocation-%s-" % vm, "gv-%s-" % vm)
    # The VM must be the constraint's subject: "colocation-web-" is also the start of the
    # ids of VM "web-2".
    subject = vm in (element.get("rsc"), element.get("first"), element.get("then"))
    if cid.startswith(prefixes) and subject:
        return True
    raw_ids = [xmlutil.parse(i["xml"], "stored constraint").get("id")
               for i in load_json(metadata, KEY_CONSTRAINTS, []) if i["type"] == "xml"]
    return cid in raw_ids


def resource_params(vm, store, metadata):
    """Instance attributes of the primitive: where the definition lives, then migration
    settings, then the user's own pacemaker_params."""
    params = {"config": "%s/%s.xml" % (DOMAIN_DIR, vm), "hypervisor": "qemu:///system",
              "vm_name": vm, "rbd_pool": store["pool"], "ceph_user": store["ceph_user"],
              "ceph_conf": store["ceph_conf"], "force_stop": "false"}
    if store.get("keyring"):
        params["ceph_keyring"] = store["keyring"]
    if metadata.get(KEY_MIGRATION_USER):
        params["migration_user"] = metadata[KEY_MIGRATION_USER]
    if metadata.get(KEY_MIGRATION_DOWNTIME):
        params["migration_downtime"] = metadata[KEY_MIGRATION_DOWNTIME]
    params["migration_transport"] = (metadata.get(KEY_MIGRATION_TRANSPORT)
                                     or DEFAULT_MIGRATION_TRANSPORT)
    # Utilization the user sets is not overwritten by the agent's own measure at start.
    for name in load_json(metadata, KEY_UTILIZATION, {}):
        if name in AGENT_UTILIZATION:
            params["autoset_utilization_%s" % name] = "false"
    params.update(load_json(metadata, KEY_PARAMS, {}))
    return params


def resource_meta(metadata):
    meta = {"allow-migrate": "true" if metadata.get(KEY_LIVE_MIGRATION) == "true"
            else "false"}
    if metadata.get(KEY_PRIORITY):
        meta["priority"] = metadata[KEY_PRIORITY]
    remote = load_json(metadata, KEY_REMOTE, {})
    if remote:
        meta["remote-node"] = remote["name"]
        meta["remote-addr"] = remote["address"]
        if remote.get("port"):
            meta["remote-port"] = remote["port"]
        if remote.get("timeout"):
            meta["remote-connect-timeout"] = remote["timeout"]
    meta.update(load_json(metadata, KEY_META, {}))
    return meta


def op_timeouts(metadata):
    """Timeouts of the stored intent, checked again: a value stored by an older version or
    written by hand becomes a sentence, not a crash of every task on the VM."""
    timeouts = {}
    for op, key in (("stop", KEY_STOP_TIMEOUT), ("migrate_to", KEY_MIGRATE_TO_TIMEOUT)):
        if metadata.get(key):
            try:
                timeouts[op] = pcib.duration_seconds(validate_duration(metadata[key], key[1:]))
            except VmError:
                raise VmError("The stored %s of VM %s is %r, not a positive duration of at most "
                              "24 h: give %s again to replace it."
                              % (key[1:], metadata.get(KEY_NAME), metadata[key], key[1:]))
    return timeouts


def desired_primitive(vm, store, metadata, target_role, managed=True):
    meta = resource_meta(metadata)
    meta["target-role"] = target_role
    meta["is-managed"] = "true" if managed else "false"
    return pcib.build_primitive(vm, resource_params(vm, store, metadata), meta,
                                utilization=load_json(metadata, KEY_UTILIZATION, {}),
                                op_timeouts=op_timeouts(metadata))


def _agent_utilization(primitive, desired):
    """nvpairs of the primitive's utilization that the agent set and the user did not ask."""
    asked = set(nv.get("name") for nv in desired.findall("utilization/nvpair"))
    return [nv for nv in primitive.findall("utilization/nvpair")
            if nv.get("name") in AGENT_UTILIZATION and nv.get("name") not in asked]


def comparable(primitive, desired):
    """The primitive as comparable text, without its power state (target-role, is-managed:
    compared on their own) and without the utilization the agent measured itself."""
    work = copy.deepcopy(primitive)
    for nv in list(work.iter("nvpair")):
        if nv.get("name") in ("target-role", "is-managed") and \
                nv.getparent().tag == "meta_attributes":
            nv.getparent().remove(nv)
    for nv in _agent_utilization(work, desired):
        nv.getparent().remove(nv)
    block = work.find("utilization")
    if block is not None and len(block) == 0:
        work.remove(block)
    return xmlutil.canonical(work)


def keep_agent_utilization(current, desired):
    """The desired primitive keeps what the agent measured, so a replace does not wipe it."""
    measured = _agent_utilization(current, desired)
    if not measured:
        return desired
    block = desired.find("utilization")
    if block is None:
        block = lxml_etree().SubElement(desired, "utilization",
                                        id="%s-utilization" % desired.get("id"))
    for nv in measured:
        block.append(copy.deepcopy(nv))
    return desired


# ---- options -> intent ------------------------------------------------------------------

def intent_from_options(params):
    """{metadata key: value or None (remove)} for the options the task gives. An empty
    string removes a stored value (e.g. preferred_host: '' drops the preference)."""
    updates = {}
    for option, key in SCALAR_OPTIONS:
        value = params.get(option)
        if value is None:
            continue
        if option in ("stop_timeout", "migrate_to_timeout") and value != "":
            value = validate_duration(value, option)
        elif option == "migration_downtime" and value != "":
            value = validate_whole_number(value, option, maximum=MAX_MIGRATION_DOWNTIME_MS)
        elif option == "priority" and value != "":
            value = validate_whole_number(value, option)
        elif option == "migration_transport" and value not in MIGRATION_TRANSPORTS + ("",):
            raise VmError("migration_transport must be one of %s, not %r."
                          % (", ".join(MIGRATION_TRANSPORTS), value))
        updates[key] = str(value) or None
    if params.get("pinned_host") and params.get("preferred_host") is None:
        updates[KEY_PREFERRED] = None  # pinning replaces a preference
    if params.get("live_migration") is not None:
        updates[KEY_LIVE_MIGRATION] = "true" if params["live_migration"] else "false"
    forbidden = {"pacemaker_meta": OWN_META, "pacemaker_params": OWN_PARAMS,
                 "pacemaker_utilization": ()}
    for option, key in DICT_OPTIONS:
        if params.get(option) is not None:
            values = validate_pacemaker_dict(params[option], option, forbidden[option])
            updates[key] = dump_json(values) if values else None
    if params.get("crm_config_cmd") is not None:
        lines = crmsh_lines.check_lines(params.get("name"), params["crm_config_cmd"],
                                        "crm_config_cmd")
        updates[KEY_CRM_CMDS] = dump_json(lines) if lines else None
    if params.get("addresses") is not None:
        # Kept with the VM: our resource agent hands them to the hooks where no task runs.
        updates[KEY_ADDRESSES] = dump_json(params["addresses"]) if params["addresses"] else None
    return updates


def stored_crm_commands(vm, metadata):
    """The stored crm_config_cmd lines as crmsh words, each checked again: anyone holding the
    Ceph key can write the metadata, so a line that is not a constraint of this VM fails the
    enable with a sentence before any line runs."""
    lines = load_json(metadata, KEY_CRM_CMDS, [])
    if not isinstance(lines, list):
        raise VmError("The stored crm_config_cmd of VM %s is not a list of lines: %r."
                      % (vm, metadata[KEY_CRM_CMDS]))
    return [crmsh_lines.constraint_words(vm, line, "Stored crm_config_cmd[%d] of VM %s"
                                         % (index, vm))
            for index, line in enumerate(lines)]


def apply_updates(metadata, updates):
    """The metadata after the updates (a copy)."""
    result = dict(metadata)
    for key, value in updates.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def clone_dropped_keys(params):
    """The keys a clone does not take from its source: SEAPATH's clear_constraint and
    clear_pacemaker_* options."""
    drop = set()
    if params.get("clear_constraint"):
        drop.update((KEY_PREFERRED, KEY_PINNED))
    for option, key in DICT_OPTIONS:
        if params.get("clear_" + option):
            drop.add(key)
    return frozenset(drop)


def clone_intent(source_metadata, dropped):
    """The keys a clone takes from its source, less ``dropped`` (clone_dropped_keys)."""
    return dict((k, source_metadata[k]) for k in CLONE_INHERITED
                if k in source_metadata and k not in dropped)
