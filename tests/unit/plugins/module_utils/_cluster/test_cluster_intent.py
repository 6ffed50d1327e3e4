"""The cluster VM's intent (metadata) -> desired Pacemaker resource and constraints: option
checks, constraint normalization, primitive building and comparison. The built XML is checked
by Pacemaker's own tools on an offline CIB."""
import json

import pytest
from lxml import etree

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

STORE = {"pool": "rbd", "ceph_user": "libvirt",
         "ceph_conf": "/etc/ceph/ceph.conf"}


def nv(element, block, name):
    found = element.find("%s/nvpair[@name='%s']" % (block, name))
    return found.get("value") if found is not None else None


@pytest.mark.parametrize("item,expected", [
    ({"type": "location", "node": "hv1"},
     {"type": "location", "node": "hv1", "score": "100"}),
    ({"type": "location", "node": "hv1", "score": "+inf".replace("+inf", "INFINITY")},
     {"type": "location", "node": "hv1", "score": "INFINITY"}),
    ({"type": "ban", "node": "hv2"}, {"type": "location", "node": "hv2",
                                      "score": "-INFINITY"}),
    ({"type": "colocation", "with": "db"}, {"type": "colocation", "with": "db",
                                            "score": "INFINITY"}),
    ({"type": "order", "first": "storage"},
     {"type": "order", "first": "storage", "then": "vm1", "kind": "Mandatory",
      "symmetrical": True}),
])
def test_constraints_are_normalized(item, expected):
    assert ci.normalize_constraint("vm1", item, 0) == expected


@pytest.mark.parametrize("item,message", [
    ({"node": "hv1"}, "type must be one of"),
    ({"type": "location"}, "needs a node"),
    ({"type": "location", "node": "hv1", "score": "lots"}, "is not a number"),
    ({"type": "colocation", "with": "vm1"}, "needs another resource"),
    ({"type": "order", "first": "a", "then": "b"}, "the VM is the other end"),
    ({"type": "order", "first": "a", "kind": "Sometimes"}, "kind must be one of"),
    ({"type": "ban", "node": "x", "extra": 1}, "unknown key(s) extra"),
    ({"type": "xml", "xml": "<rsc_location id='a' rsc='other' node='n' score='1'/>"},
     "must name the VM"),
    ({"type": "xml", "xml": "<primitive id='vm1'/>"}, "must be one of"),
    ({"type": "xml", "xml": "<rsc_location rsc='vm1' node='n' score='1'/>"}, "needs an id"),
    ("location hv1", "must be a dict"),
])
def test_bad_constraints_are_sentences(item, message):
    with pytest.raises(VmError) as err:
        ci.normalize_constraint("vm1", item, 3)
    assert message in err.value.msg and err.value.msg.startswith("constraints[3]")


def test_constraint_ids_are_stable_and_content_addressed():
    a = ci.build_constraint("vm1", ci.normalize_constraint("vm1", {"type": "ban",
                                                                   "node": "hv2"}, 0))
    b = ci.build_constraint("vm1", ci.normalize_constraint("vm1", {"type": "ban",
                                                                   "node": "hv2"}, 5))
    c = ci.build_constraint("vm1", ci.normalize_constraint("vm1", {"type": "ban",
                                                                   "node": "hv3"}, 0))
    assert a.get("id") == b.get("id") != c.get("id")
    assert a.get("id").startswith("gv-vm1-location-")
    assert ci.owned_constraint("vm1", a, {})


def test_options_become_intent_and_empty_strings_remove():
    updates = ci.intent_from_options({
        "pinned_host": "hv1", "stop_timeout": "2min", "priority": "7",
        "live_migration": True, "migration_downtime": "150",
        "pacemaker_meta": {"resource-stickiness": 10, "failure-timeout": "60s"},
        "pacemaker_utilization": {"cpu": 2}})
    assert updates[ci.KEY_PINNED] == "hv1" and updates[ci.KEY_PREFERRED] is None
    assert updates[ci.KEY_STOP_TIMEOUT] == "2min" and updates[ci.KEY_PRIORITY] == "7"
    assert updates[ci.KEY_LIVE_MIGRATION] == "true"
    assert json.loads(updates[ci.KEY_META]) == {"resource-stickiness": "10",
                                                "failure-timeout": "60s"}
    assert ci.intent_from_options({"preferred_host": ""}) == {ci.KEY_PREFERRED: None}
    assert ci.intent_from_options({"pacemaker_meta": {}}) == {ci.KEY_META: None}
    assert ci.intent_from_options({}) == {}


def test_the_addresses_given_are_kept_for_the_hooks_and_an_empty_list_drops_them():
    given = [{"vm": "vm1", "nic": 0, "ip": "10.0.0.5"}]
    assert ci.intent_from_options({"addresses": given}) == {
        ci.KEY_ADDRESSES: '[{"ip": "10.0.0.5", "nic": 0, "vm": "vm1"}]'}
    assert ci.intent_from_options({"addresses": []}) == {ci.KEY_ADDRESSES: None}
    assert ci.KEY_ADDRESSES not in ci.CLONE_INHERITED  # a clone gets addresses of its own


@pytest.mark.parametrize("params,message", [
    ({"stop_timeout": "0"}, "stop_timeout must be a positive duration"),
    ({"migrate_to_timeout": "fast"}, "migrate_to_timeout must be a positive duration"),
    ({"priority": "high"}, "priority must be a whole number"),
    ({"migration_downtime": "-5"}, "migration_downtime must be a whole number"),
    ({"pacemaker_meta": {"is-managed": "false"}}, "pacemaker_meta cannot set is-managed"),
    ({"pacemaker_params": {"config": "/x"}}, "pacemaker_params cannot set config"),
    ({"pacemaker_params": {"a b": "1"}}, "is not a valid attribute name"),
    ({"pacemaker_utilization": {"cpu": [1]}}, "must be a string or a number"),
])
def test_bad_options_are_sentences(params, message):
    with pytest.raises(VmError) as err:
        ci.intent_from_options(params)
    assert message in err.value.msg


def test_reserved_metadata_keys():
    for key in ("xml", "vm_name", "_base_xml", "_anything"):
        with pytest.raises(VmError):
            ci.validate_user_metadata({key: "x"})
    assert ci.validate_user_metadata({"site": "north"}) == {"site": "north"}


def test_remote_validation():
    assert ci.validate_remote({"remote_name": "g1"}) == {"name": "g1", "address": "g1"}
    assert ci.validate_remote({"remote_name": "g1", "remote_address": "10.0.0.5",
                               "remote_port": 3121, "remote_timeout": "30s"}) == {
        "name": "g1", "address": "10.0.0.5", "port": "3121", "timeout": "30s"}
    with pytest.raises(VmError):
        ci.validate_remote({"remote_name": "g1", "remote_port": 0})


def metadata(**updates):
    base = {ci.KEY_NAME: "vm1"}
    return ci.apply_updates(base, ci.intent_from_options(updates))


def test_desired_primitive_from_intent():
    meta = metadata(live_migration=True, migration_user="migr", migration_downtime="200",
                    stop_timeout="45s", migrate_to_timeout="3min", priority="9",
                    pacemaker_utilization={"cpu": 2, "memory": 512})
    meta[ci.KEY_REMOTE] = ci.dump_json({"name": "g1", "address": "10.0.0.5",
                                        "port": "3121"})
    prim = ci.desired_primitive("vm1", STORE, meta, "Stopped", managed=False)
    assert nv(prim, "instance_attributes", "migration_user") == "migr"
    assert nv(prim, "instance_attributes", "migration_downtime") == "200"
    assert nv(prim, "instance_attributes", "migration_transport") == "ssh"
    assert nv(prim, "instance_attributes", "autoset_utilization_cpu") == "false"
    assert nv(prim, "instance_attributes", "autoset_utilization_hv_memory") is None
    assert nv(prim, "meta_attributes", "allow-migrate") == "true"
    assert nv(prim, "meta_attributes", "priority") == "9"
    assert nv(prim, "meta_attributes", "remote-node") == "g1"
    assert nv(prim, "meta_attributes", "target-role") == "Stopped"
    assert nv(prim, "meta_attributes", "is-managed") == "false"
    assert nv(prim, "utilization", "memory") == "512"
    timeouts = pcib.primitive_timeouts(prim)
    assert timeouts["stop"] == 45 and timeouts["migrate_to"] == 180


def test_migration_transport_is_always_set_ssh_by_default():
    """VirtualDomain's empty default would mean TLS; SEAPATH sets ssh, and so do we."""
    assert ci.resource_params("vm1", STORE, metadata())["migration_transport"] == "ssh"
    tcp = metadata(migration_transport="tcp")
    assert tcp[ci.KEY_MIGRATION_TRANSPORT] == "tcp"
    assert ci.resource_params("vm1", STORE, tcp)["migration_transport"] == "tcp"
    # Removing the stored choice goes back to ssh, and a clone takes its source's.
    back = ci.apply_updates(tcp, ci.intent_from_options({"migration_transport": ""}))
    assert ci.resource_params("vm1", STORE, back)["migration_transport"] == "ssh"
    assert ci.clone_intent(tcp, frozenset())[ci.KEY_MIGRATION_TRANSPORT] == "tcp"
    with pytest.raises(VmError) as err:
        ci.intent_from_options({"migration_transport": "rdma"})
    assert "migration_transport must be one of ssh, tcp, tls" in err.value.msg
    with pytest.raises(VmError):
        ci.intent_from_options({"pacemaker_params": {"migration_transport": "tls"}})


def test_comparison_ignores_power_and_what_the_agent_measured():
    meta = metadata()
    desired = ci.desired_primitive("vm1", STORE, meta, "Started")
    live = ci.desired_primitive("vm1", STORE, meta, "Stopped", managed=False)
    util = etree.SubElement(live, "utilization", id="vm1-utilization")
    etree.SubElement(util, "nvpair", id="vm1-utilization-cpu", name="cpu", value="1")
    assert ci.comparable(live, desired) == ci.comparable(desired, desired)
    changed = ci.desired_primitive("vm1", STORE, metadata(priority="3"), "Started")
    assert ci.comparable(live, changed) != ci.comparable(changed, changed)
    kept = ci.keep_agent_utilization(live, changed)
    assert nv(kept, "utilization", "cpu") == "1"


def test_placement_pinned_wins_and_colocations_need_defined_resources():
    meta = metadata(preferred_host="hv2", pinned_host="hv1")
    meta[ci.KEY_PREFERRED] = "hv2"
    meta[ci.KEY_COLOCATION] = ci.dump_json({"db": "strong", "web": "weak", "gone": "weak"})
    built = ci.desired_constraints("vm1", meta, {"vm1", "db", "web"})
    ids = [c.get("id") for c in built]
    assert ids == ["location-vm1-pin-hv1", "colocation-vm1-db-strong",
                   "colocation-vm1-web-weak"]
    assert built[0].find("rule").get("score") == "-INFINITY" and built[2].get("score") == "100"


def test_clone_takes_intent_but_not_identity():
    source = metadata(preferred_host="hv2", priority="4", pacemaker_meta={"a": "1"})
    source[ci.KEY_REMOTE] = ci.dump_json({"name": "g", "address": "g"})
    source[ci.KEY_CONSTRAINTS] = "[]"
    taken = ci.clone_intent(source, ci.clone_dropped_keys({}))
    assert taken[ci.KEY_PREFERRED] == "hv2" and taken[ci.KEY_PRIORITY] == "4"
    assert ci.KEY_REMOTE not in taken and ci.KEY_CONSTRAINTS not in taken
    cleared = ci.clone_intent(source, ci.clone_dropped_keys(
        {"clear_constraint": True, "clear_pacemaker_meta": True}))
    assert ci.KEY_PREFERRED not in cleared and ci.KEY_META not in cleared


def test_every_kind_of_constraint_passes_crm_verify(offline_cluster):
    cluster, run = offline_cluster
    items = ci.normalize_constraints("vm1", [
        {"type": "location", "node": "hv1", "score": 50}, {"type": "ban", "node": "hv1"},
        {"type": "colocation", "with": "db", "score": "-INFINITY"},
        {"type": "order", "first": "db", "kind": "Optional", "symmetrical": False},
        {"type": "xml", "xml": '<rsc_location id="raw1" rsc="vm1" node="hv1" score="5"/>'}])
    meta = metadata(pinned_host="hv1", priority="2", pacemaker_utilization={"cpu": 1})
    meta[ci.KEY_CONSTRAINTS] = ci.dump_json(items)
    cluster.create(ci.desired_primitive("vm1", STORE, meta, "Stopped"), "resources")
    cluster.create(ci.desired_primitive("db", STORE, metadata(), "Stopped"), "resources")
    for constraint in ci.desired_constraints("vm1", meta, {"vm1", "db"}):
        cluster.create(constraint, "constraints")
    rc, out, err = run(["crm_verify", "--live-check", "--verbose"])
    assert rc == 0, out + err
    assert len(pcib.constraints_of(cluster.cib(), "vm1")) == 6


def test_ownership_needs_the_vm_as_subject():
    """VM web must not take VM web-2's constraints for its own."""
    theirs = pcib.build_colocation("web-2", "web", "INFINITY")
    mine = pcib.build_colocation("web", "db", "INFINITY")
    assert theirs.get("id").startswith("colocation-web-")
    assert not ci.owned_constraint("web", theirs, {})
    assert ci.owned_constraint("web", mine, {})
    assert ci.owned_constraint("web-2", theirs, {})


def test_raw_constraint_with_a_resource_set_is_refused():
    text = ('<rsc_order id="o1"><resource_set id="s1"><resource_ref id="vm1"/>'
            '<resource_ref id="db"/></resource_set></rsc_order>')
    with pytest.raises(VmError) as err:
        ci.normalize_constraint("vm1", {"type": "xml", "xml": text}, 0)
    assert "resource sets are not supported" in err.value.msg


def started_on(run, tmp_path, nodes_up):
    """Nodes where Pacemaker's scheduler starts vm1 with only ``nodes_up`` online (quorate):
    crm_simulate on the offline CIB, two transitions (probes, then starts), its XML kept."""
    out = str(tmp_path / "simulated.xml")
    args = ["crm_simulate", "--live-check", "--simulate", "--quorum", "true",
            "--save-output", out]
    for node in nodes_up:
        args += ["--node-up", node]
    for step in (args, ["crm_simulate", "--xml-file", out, "--simulate", "--quorum", "true",
                        "--save-output", out]):
        rc, stdout, stderr = run(step)
        assert rc == 0, stdout + stderr
    status = etree.parse(out).getroot().find("status")
    return sorted(state.get("uname") for state in status.findall("node_state")
                  for op in state.iter("lrm_rsc_op")
                  if op.get("operation") == "start" and op.get("rc-code") == "0")


def test_pin_is_a_rule_and_the_vm_never_fails_over(offline_cluster, tmp_path):
    cluster, run = offline_cluster
    pin = ci.desired_constraints("vm1", metadata(pinned_host="hv1"), {"vm1"})
    assert len(pin) == 1
    pin = pin[0]
    assert (pin.tag, pin.get("id"), pin.get("rsc")) == ("rsc_location", "location-vm1-pin-hv1",
                                                        "vm1")
    assert pin.get("node") is None and pin.get("score") is None
    rule = pin.find("rule")
    assert rule.get("score") == "-INFINITY" and rule.get("id") == "location-vm1-pin-hv1-rule"
    expression = rule.find("expression")
    assert dict(expression.attrib) == {"id": "location-vm1-pin-hv1-rule-expr",
                                       "attribute": "#uname", "operation": "ne",
                                       "value": "hv1"}
    assert ci.owned_constraint("vm1", pin, {})
    cluster.create(ci.desired_primitive("vm1", STORE, metadata(), "Started"), "resources")
    cluster.create(pin, "constraints")
    rc, out, err = run(["crm_verify", "--live-check", "--verbose"])
    assert rc == 0, out + err
    assert started_on(run, tmp_path, ["hv1", "hv2"]) == ["hv1"]
    assert started_on(run, tmp_path, ["hv2"]) == []  # its node is down: it stays stopped


def test_a_score_of_infinity_would_fail_over(offline_cluster, tmp_path):
    """Why the pin is a rule: the old INFINITY location lets the VM start elsewhere."""
    cluster, run = offline_cluster
    cluster.create(ci.desired_primitive("vm1", STORE, metadata(), "Started"), "resources")
    cluster.create(pcib.build_location("vm1", "hv1", pcib.INFINITY, "pin"), "constraints")
    assert started_on(run, tmp_path, ["hv2"]) == ["hv2"]


def test_an_old_pin_is_replaced_by_the_rule_then_compares_equal(offline_cluster):
    """A pin written by an earlier version (same id, node/score attributes) differs from
    the wanted one, a replace leaves exactly the rule, and the next comparison of the CIB's
    (nested, re-serialized) element with the wanted one finds no difference."""
    cluster, run = offline_cluster
    cluster.create(ci.desired_primitive("vm1", STORE, metadata(), "Started"), "resources")
    cluster.create(pcib.build_location("vm1", "hv1", pcib.INFINITY, "pin"), "constraints")
    wanted = pcib.build_pin("vm1", "hv1")
    present = pcib.constraints_of(cluster.cib(), "vm1")[0]
    assert present.get("id") == wanted.get("id")
    assert xmlutil.canonical(present) != xmlutil.canonical(wanted)
    cluster.replace(wanted, "constraints")
    present = pcib.constraints_of(cluster.cib(), "vm1")[0]
    assert present.get("node") is None and present.get("score") is None
    assert xmlutil.canonical(present) == xmlutil.canonical(wanted)
    rc, out, err = run(["crm_verify", "--live-check", "--verbose"])
    assert rc == 0, out + err


# ---- durations: finite and bounded (24 h) ------------------------------------------------

DURATION_BOUND = "must be a positive duration of at most 24 h (seconds, or a number with ms, s, "


@pytest.mark.parametrize("option", ["stop_timeout", "migrate_to_timeout"])
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "1e3", "1" + "0" * 400,
                                   "infinity", "25h", "86401", "1441min", "0", "0s", "-30",
                                   "30 seconds", "\u0663\u0660", "30s\n", "1_000", ""])
def test_duration_options_accept_only_finite_bounded_durations(option, value):
    if value == "":
        # An empty string removes the stored value (not a duration to check).
        assert ci.intent_from_options({option: value}) == {
            dict(ci.SCALAR_OPTIONS)[option]: None}
        return
    with pytest.raises(VmError) as err:
        ci.intent_from_options({option: value})
    assert err.value.msg == "%s %s %r." % (option, DURATION_BOUND + "min or h), not", value)


@pytest.mark.parametrize("value,seconds", [("30", 30), ("30s", 30), ("500ms", 0.5),
                                           ("2min", 120), ("1h", 3600), ("24h", 86400),
                                           ("86400", 86400), ("1440min", 86400),
                                           ("1.5h", 5400), ("30 s", 30)])
def test_durations_up_to_a_day_build_the_primitive(value, seconds):
    meta = metadata(stop_timeout=value, migrate_to_timeout=value)
    prim = ci.desired_primitive("vm1", STORE, meta, "Stopped")
    timeouts = pcib.primitive_timeouts(prim)
    assert timeouts["stop"] == int(seconds) and timeouts["migrate_to"] == int(seconds)


@pytest.mark.parametrize("value", ["inf", "nan", "1e400", "25h", "0"])
def test_remote_timeout_is_bounded_too(value):
    with pytest.raises(VmError) as err:
        ci.validate_remote({"remote_name": "g1", "remote_timeout": value})
    assert err.value.msg.startswith("remote_timeout " + DURATION_BOUND)


@pytest.mark.parametrize("value", ["86400001", "1e400", "inf", "nan", "9" * 400])
def test_migration_downtime_is_a_bounded_whole_number_of_milliseconds(value):
    with pytest.raises(VmError) as err:
        ci.intent_from_options({"migration_downtime": value})
    assert err.value.msg == ("migration_downtime must be a whole number of at least 0 and at "
                             "most 86400000, not %r." % value)
    assert ci.intent_from_options({"migration_downtime": "86400000"}) == {
        ci.KEY_MIGRATION_DOWNTIME: "86400000"}


@pytest.mark.parametrize("text", ["inf", "nan", "1e400", "1" + "0" * 400, "30 seconds", "1e3s",
                                  "0x10", "\u0663\u0660"])
def test_duration_parsing_refuses_what_is_not_a_finite_duration(text):
    with pytest.raises(ValueError):
        pcib.duration_seconds(text)


@pytest.mark.parametrize("key,option", [(ci.KEY_STOP_TIMEOUT, "stop_timeout"),
                                        (ci.KEY_MIGRATE_TO_TIMEOUT, "migrate_to_timeout")])
def test_a_bad_stored_duration_is_a_sentence_not_a_crash(key, option):
    """Seen on the lab: 'inf' stored by an earlier version crashed every later task
    ("cannot convert float infinity to integer")."""
    meta = metadata()
    meta[key] = "inf"
    with pytest.raises(VmError) as err:
        ci.desired_primitive("vm1", STORE, meta, "Started")
    assert err.value.msg == ("The stored %s of VM vm1 is 'inf', not a positive duration of at "
                             "most 24 h: give %s again to replace it." % (option, option))


# ---- crm_config_cmd: checked when read, and again when replayed ---------------------------

def test_crm_config_cmd_lines_are_checked_when_the_task_is_read():
    line = "location vm1-ping vm1 rule pingd: defined pingd"
    updates = ci.intent_from_options({"name": "vm1", "crm_config_cmd": [line]})
    assert json.loads(updates[ci.KEY_CRM_CMDS]) == [line]
    assert ci.intent_from_options({"name": "vm1", "crm_config_cmd": []}) == {
        ci.KEY_CRM_CMDS: None}
    with pytest.raises(VmError) as err:
        ci.intent_from_options({"name": "vm1", "crm_config_cmd": [line, 'filter "touch /x"']})
    assert err.value.msg.startswith("crm_config_cmd[1] ('filter \"touch /x\"'): only location")
    with pytest.raises(VmError) as err:
        ci.intent_from_options({"name": "vm1", "crm_config_cmd": ["location l vm1 1: 'hv1"]})
    assert "cannot be read as a crmsh line: No closing quotation" in err.value.msg


def test_stored_crm_lines_are_checked_again_before_they_are_replayed():
    good = "colocation vm1-with-db inf: vm1 db"
    meta = {ci.KEY_NAME: "vm1", ci.KEY_CRM_CMDS: ci.dump_json([good])}
    assert ci.stored_crm_commands("vm1", meta) == [good.split()]
    assert ci.stored_crm_commands("vm1", {}) == []
    meta[ci.KEY_CRM_CMDS] = ci.dump_json([good, 'filter "touch /tmp/x"'])
    with pytest.raises(VmError) as err:
        ci.stored_crm_commands("vm1", meta)
    assert err.value.msg.startswith("Stored crm_config_cmd[1] of VM vm1 ('filter \"touch "
                                    "/tmp/x\"'): only location, colocation and order")
    # A line naming another VM (vm_name rewritten with it) is refused for this VM.
    meta = {ci.KEY_NAME: "other", ci.KEY_CRM_CMDS: ci.dump_json(["location l other 1: hv1"])}
    with pytest.raises(VmError) as err:
        ci.stored_crm_commands("vm1", meta)
    assert "the location must be of VM vm1 itself" in err.value.msg
    meta[ci.KEY_CRM_CMDS] = ci.dump_json("location l vm1 1: hv1")
    with pytest.raises(VmError) as err:
        ci.stored_crm_commands("vm1", meta)
    assert err.value.msg.startswith("The stored crm_config_cmd of VM vm1 is not a list")
