"""cluster_vm end to end on the lab, through ansible, with guests that really boot from RBD:
create, idempotence, check mode of every state and command, power, disable/enable,
snapshots, clones, metadata, colocation, update in place, removal. The steps build on each
other and run in file order."""
import datetime
import time

import pytest

import cluster_lab as cl
import lab

PREFIX = "itc"
VM = PREFIX + "vm1"
CLONE = PREFIX + "lnk"
FULL = PREFIX + "full"
OTHER = PREFIX + "vm2"

clean = cl.cleanup_fixture(PREFIX)


@pytest.fixture(scope="module")
def boots():
    """Boot counters seen on the VM's console, in order."""
    return []


def test_create_boots_from_rbd_on_the_node(boots):
    console = lab.Console(VM)
    result = cl.ok(cl.vm_args(VM, metadata={"role": "rtu"}))
    assert result["changed"] and result["status"] == "Started"
    assert result["node"] == lab.node_name()
    boot = console.wait_boot()
    assert boot["name"] == VM and boot["uuid"] == result["uuid"]
    assert boot["disks"] == ["vda", "vdb"]
    boots.append(boot["boot"])
    assert set(["system_" + VM, "data_%s_1" % VM]) <= set(cl.images())
    assert VM in cl.groups()
    meta = cl.image_meta("system_" + VM)
    assert meta["vm_name"] == VM and meta["role"] == "rtu" and "_base_xml" in meta
    # The disks are RBD network disks carrying the monitors and the libvirt secret.
    live = lab.domain_xml(VM, inactive=False)
    sources = live.findall("devices/disk/source")
    assert [s.get("protocol") for s in sources] == ["rbd", "rbd"]
    assert sources[0].get("name") == "rbd/system_" + VM
    assert sources[0].find("host") is not None
    assert live.find("devices/disk/auth/secret").get("usage") or \
        live.find("devices/disk/auth/secret").get("uuid")
    prim = cl.cib_xpath("//primitive[@id='%s']" % VM)
    assert 'provider="gridvirt"' in prim and 'type="VirtualDomain"' in prim
    assert cl.cib_xpath("//rsc_location[@id='location-%s-prefer-%s']"
                        % (VM, lab.node_name()))


def test_rerun_changes_nothing():
    before = cl.fingerprint()
    result = cl.ok(cl.vm_args(VM, metadata={"role": "rtu"}))
    assert not result["changed"], result["changes"]
    assert result["restart_required"] is False
    assert cl.fingerprint() == before


def create_command(name):
    args = cl.vm_args(name, command="create")
    del args["state"]
    return args


CHECK_CASES = [
    ("new VM running", lambda: cl.vm_args(PREFIX + "new")),
    ("new VM present", lambda: cl.vm_args(PREFIX + "new", state="present")),
    ("new VM disabled", lambda: cl.vm_args(PREFIX + "new", state="disabled")),
    ("create command", lambda: create_command(PREFIX + "new")),
    ("stopped", lambda: {"name": VM, "state": "stopped"}),
    ("stop command forced", lambda: {"name": VM, "command": "stop", "force": True}),
    ("disabled", lambda: {"name": VM, "state": "disabled"}),
    ("disable command", lambda: {"name": VM, "command": "disable"}),
    ("absent", lambda: {"name": VM, "state": "absent"}),
    ("remove command purge", lambda: {"name": VM, "command": "remove", "purge": True}),
    ("memory update", lambda: cl.vm_args(VM, xml=lab.guest_xml(VM, memory_mib=144))),
    ("forced re-create", lambda: cl.vm_args(VM, force=True)),
    ("placement update", lambda: {"name": VM, "state": "running", "preferred_host": ""}),
    ("pacemaker options", lambda: {"name": VM, "state": "running", "priority": "7",
                                   "pacemaker_meta": {"resource-stickiness": 10}}),
    ("constraints", lambda: {"name": VM, "state": "running",
                             "constraints": [{"type": "ban", "node": lab.node_name()}]}),
    ("create_snapshot", lambda: {"name": VM, "command": "create_snapshot",
                                 "snapshot_name": "chk"}),
    ("set_metadata", lambda: {"name": VM, "command": "set_metadata",
                              "metadata": {"site": "north"}}),
    ("linked clone", lambda: {"name": PREFIX + "new", "command": "clone", "src_name": VM}),
    ("full clone", lambda: {"name": PREFIX + "new", "command": "clone", "src_name": VM,
                            "full": True}),
    ("add_pacemaker_remote", lambda: {"name": VM, "command": "add_pacemaker_remote",
                                      "remote_name": "r1", "remote_address": "192.0.2.9"}),
]


@pytest.mark.parametrize("case, args", CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_check_mode_predicts_and_changes_nothing(case, args):
    before = cl.fingerprint()
    result = cl.run_cluster(args(), check=True, diff=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"], case
    assert cl.fingerprint() == before, case


def test_check_mode_of_the_commands_that_need_a_snapshot_or_colocation():
    """rollback, remove_snapshot, purge and define_colocation, predicted on real data."""
    cl.ok({"name": VM, "command": "create_snapshot", "snapshot_name": "pre"})
    before = cl.fingerprint()
    for args in ({"name": VM, "command": "rollback_snapshot", "snapshot_name": "pre"},
                 {"name": VM, "command": "remove_snapshot", "snapshot_name": "pre"},
                 {"name": VM, "command": "purge_image"},
                 {"name": VM, "command": "define_colocation", "colocated_vms": [VM + "x"]}):
        result = cl.run_cluster(args, check=True)
        if args["command"] == "define_colocation":
            assert result["failed"] and "does not exist" in result["msg"]
            continue
        assert not result["failed"] and result["changed"], (args, result.get("msg"))
    assert cl.fingerprint() == before
    cl.ok({"name": VM, "command": "remove_snapshot", "snapshot_name": "pre"})


def test_graceful_stop_then_start_boots_again(boots):
    console = lab.Console(VM)
    result = cl.ok({"name": VM, "command": "stop"})
    assert result["changed"] and result["status"] == "Stopped"
    console.wait_for("power button, powering off", 30)
    assert not cl.ok({"name": VM, "command": "stop"})["changed"]
    console.mark()
    result = cl.ok({"name": VM, "state": "running"})
    assert result["changed"] and result["status"] == "Started"
    boot = console.wait_boot()
    assert boot["boot"] == boots[-1] + 1
    boots.append(boot["boot"])


def test_forced_stop_powers_off_at_once(boots):
    console = lab.Console(VM)
    result = cl.ok({"name": VM, "state": "stopped", "force": True})
    assert result["changed"] and result["status"] == "Stopped"
    assert "power button" not in console.text()
    # The force is for that stop only: the resource keeps its graceful stop.
    assert 'name="force_stop" value="false"' in cl.cib_xpath("//primitive[@id='%s']" % VM)
    console.mark()
    cl.ok({"name": VM, "command": "start"})
    boots.append(console.wait_boot()["boot"])


def test_disable_enable_keeps_constraints_and_intent(boots):
    cl.ok({"name": VM, "state": "running", "priority": "3",
           "constraints": [{"type": "location", "node": lab.node_name(), "score": 20}]})
    constraints = sorted(c for c in cl.cib_xpath("//constraints").split("\n") if VM in c)
    result = cl.ok({"name": VM, "command": "disable"})
    assert result["changed"] and result["status"] == "Disabled" and result["node"] is None
    assert not cl.cib_xpath("//primitive[@id='%s']" % VM)
    assert VM not in cl.cib_xpath("//constraints")
    assert "system_" + VM in cl.images()
    assert not cl.ok({"name": VM, "command": "disable"})["changed"]
    console = lab.Console(VM)
    result = cl.ok({"name": VM, "command": "enable"})
    assert result["changed"] and result["status"] == "Started"
    boots.append(console.wait_boot()["boot"])
    assert sorted(c for c in cl.cib_xpath("//constraints").split("\n") if VM in c) == \
        constraints
    assert 'name="priority" value="3"' in cl.cib_xpath("//primitive[@id='%s']" % VM)


def test_snapshot_rollback_restores_every_disk_and_the_state(boots):
    result = cl.ok({"name": VM, "command": "create_snapshot", "snapshot_name": "s1"})
    assert result["changed"] and result["list_snapshot"] == ["s1"]
    assert not cl.ok({"name": VM, "command": "create_snapshot",
                      "snapshot_name": "s1"})["changed"]
    at_snapshot = boots[-1]
    console = lab.Console(VM)
    cl.ok({"name": VM, "command": "stop"})
    cl.ok({"name": VM, "command": "start"})
    assert console.wait_boot()["boot"] == at_snapshot + 1
    console.mark()
    result = cl.ok({"name": VM, "command": "rollback_snapshot", "snapshot_name": "s1"})
    assert result["changed"]
    # The guest was running: it runs again, from the disks as they were at the snapshot.
    assert console.wait_boot()["boot"] == at_snapshot + 1
    assert cl.status(VM)[0] == "Started"
    assert cl.cib_xpath("//rsc_location[@id='location-%s-prefer-%s']"
                        % (VM, lab.node_name()))
    boots.append(at_snapshot + 1)


def test_purge_by_number_and_by_date():
    for name in ("p1", "p2", "p3"):
        cl.ok({"name": VM, "command": "create_snapshot", "snapshot_name": name})
        time.sleep(1.1)
    result = cl.ok({"name": VM, "command": "purge_image", "purge_number": 2})
    assert result["purged"] == ["s1", "p1"] and result["list_snapshot"] == ["p2", "p3"]
    future = (datetime.datetime.now(datetime.timezone.utc)
              + datetime.timedelta(minutes=5)).isoformat()
    check = cl.run_cluster({"name": VM, "command": "purge_image",
                            "purge_date": {"iso_8601": future}}, check=True)
    assert check["changed"] and check["purged"] == ["p2", "p3"]
    past = {"date": "2020-01-01", "time": "00:00"}
    assert not cl.ok({"name": VM, "command": "purge_image", "purge_date": past})["changed"]
    result = cl.ok({"name": VM, "command": "purge_image", "purge_date": {"iso_8601": future}})
    assert result["purged"] == ["p2", "p3"] and result["list_snapshot"] == []


def test_linked_clone_boots_and_leaves_the_source_intact(boots):
    console = lab.Console(CLONE)
    result = cl.ok({"name": CLONE, "command": "clone", "src_name": VM})
    assert result["changed"] and result["status"] == "Started"
    boot = console.wait_boot()
    # Copy-on-write: the clone reads the source's data (its counter) and boots once more.
    assert boot["name"] == CLONE and boot["boot"] == boots[-1] + 1
    assert boot["uuid"] == result["uuid"] != cl.ok({"name": VM, "command": "status"})["uuid"]
    parent = cl.image_info("system_" + CLONE)["parent"]
    assert parent["image"] == "system_" + VM and parent["snapshot"] == "gvclone-" + CLONE
    assert cl.image_info("data_%s_1" % CLONE)["parent"]["image"] == "data_%s_1" % VM
    assert result["macs"] != cl.ok({"name": VM, "command": "status"})["macs"]
    # The source was not touched: its next boot counts from its own disks.
    console = lab.Console(VM)
    cl.ok({"name": VM, "command": "stop"})
    cl.ok({"name": VM, "command": "start"})
    assert console.wait_boot()["boot"] == boots[-1] + 1
    boots.append(boots[-1] + 1)
    rerun = cl.ok({"name": CLONE, "command": "clone", "src_name": VM})
    assert not rerun["changed"]


def test_full_clone_is_independent():
    result = cl.ok({"name": FULL, "command": "clone", "src_name": VM, "full": True,
                    "nostart": True, "clear_constraint": True})
    assert result["changed"] and result["status"] == "Stopped"
    assert "parent" not in cl.image_info("system_" + FULL)
    assert not cl.cib_xpath("//rsc_location[@rsc='%s']" % FULL)
    # The group snapshot the copy was taken from is gone.
    assert cl.fingerprint()["groups"][VM][1] == []


def test_metadata_set_get_list():
    result = cl.ok({"name": VM, "command": "set_metadata", "metadata": {"site": "north"}})
    assert result["changed"]
    assert not cl.ok({"name": VM, "command": "set_metadata",
                      "metadata": {"site": "north"}})["changed"]
    got = cl.ok({"name": VM, "command": "get_metadata", "metadata_name": "site"})
    assert got["metadata_value"] == "north" and not got["changed"]
    keys = cl.ok({"name": VM, "command": "list_metadata"})["list_metadata"]
    assert {"site", "role", "xml", "_base_xml", "vm_name"} <= set(keys)


def test_colocation_persists_through_disable_enable():
    result = cl.ok({"name": CLONE, "command": "define_colocation", "colocated_vms": [VM],
                    "strong": True})
    assert result["changed"]
    cid = "colocation-%s-%s-strong" % (CLONE, VM)
    assert cl.cib_xpath("//rsc_colocation[@id='%s']" % cid)
    assert not cl.ok({"name": CLONE, "command": "define_colocation", "colocated_vms": [VM],
                      "strong": True})["changed"]
    cl.ok({"name": CLONE, "state": "disabled"})
    assert not cl.cib_xpath("//rsc_colocation[@id='%s']" % cid)
    cl.ok({"name": CLONE, "state": "running"})
    assert 'score="INFINITY"' in cl.cib_xpath("//rsc_colocation[@id='%s']" % cid)


def test_memory_update_in_place_then_apply_restart():
    args = cl.vm_args(VM, metadata={"role": "rtu"}, xml=lab.guest_xml(VM, memory_mib=160))
    images_before = {n: cl.image_info(n)["id"] for n in cl.images() if VM in n}
    result = cl.run_cluster(args, diff=True)
    assert not result["failed"] and result["changed"]
    assert result["restart_required"] is True and result["status"] == "Started"
    # Same disks (not re-imported), same running guest, new stored definition.
    assert {n: cl.image_info(n)["id"] for n in cl.images() if VM in n} == images_before
    assert "163840" in cl.image_meta("system_" + VM)["xml"]
    assert lab.domain_xml(VM, inactive=False).findtext("memory") == "131072"
    again = cl.ok(args)
    assert not again["changed"] and again["restart_required"] is True
    console = lab.Console(VM)
    result = cl.ok(dict(args, apply="restart"))
    assert result["changed"] and result["restart_required"] is False
    console.wait_boot()
    assert lab.domain_xml(VM, inactive=False).findtext("memory") == "163840"
    assert not cl.ok(dict(args, apply="restart"))["changed"]


def test_pacemaker_options_and_constraints_update_the_live_cib():
    args = {"name": VM, "state": "running", "live_migration": True, "priority": "5",
            "stop_timeout": "45", "migration_downtime": "200",
            "pacemaker_meta": {"resource-stickiness": 50},
            "pacemaker_utilization": {"cpu": 1, "memory": 256},
            "constraints": [{"type": "xml", "xml": '<rsc_location id="raw-%s" rsc="%s" '
                             'node="%s" score="7"/>' % (VM, VM, lab.node_name())}]}
    console = lab.Console(VM)
    result = cl.ok(args)
    assert result["changed"] and result["status"] == "Started"
    # Meta attributes, utilization, timeouts and migration settings apply to the running
    # guest without restarting it (the agent reloads).
    time.sleep(3)
    assert "booted" not in console.text() and "power button" not in console.text()
    assert cl.status(VM)[0] == "Started"
    prim = cl.cib_xpath("//primitive[@id='%s']" % VM)
    for text in ('name="allow-migrate" value="true"', 'name="priority" value="5"',
                 'name="resource-stickiness" value="50"', 'name="memory" value="256"',
                 'name="stop" interval="0s" timeout="45s"',
                 'name="migration_downtime" value="200"',
                 'name="autoset_utilization_cpu" value="false"'):
        assert text in prim, text
    assert cl.cib_xpath("//rsc_location[@id='raw-%s']" % VM)
    assert not cl.ok(args)["changed"]
    # The constraints option is the whole set: an empty list removes what it added.
    result = cl.ok({"name": VM, "state": "running", "constraints": []})
    assert result["changed"] and not cl.cib_xpath("//rsc_location[@id='raw-%s']" % VM)


def test_pacemaker_remote_add_and_remove():
    args = {"name": FULL, "command": "add_pacemaker_remote", "remote_name": FULL + "-r",
            "remote_address": "192.0.2.10", "remote_port": 3121, "remote_timeout": "30s"}
    assert cl.ok(args)["changed"]
    prim = cl.cib_xpath("//primitive[@id='%s']" % FULL)
    assert 'name="remote-node" value="%s-r"' % FULL in prim
    assert 'name="remote-addr" value="192.0.2.10"' in prim
    assert not cl.ok(args)["changed"]
    assert cl.ok({"name": FULL, "command": "remove_pacemaker_remote"})["changed"]
    assert "remote-node" not in cl.cib_xpath("//primitive[@id='%s']" % FULL)


def test_crm_config_cmd_runs_through_crmsh_when_the_resource_is_added():
    node = lab.node_name()
    args = cl.vm_args(OTHER, state="present",
                      crm_config_cmd=["location %s-crm %s 15: %s" % (OTHER, OTHER, node)])
    assert cl.ok(args)["changed"]
    assert 'score="15"' in cl.cib_xpath("//rsc_location[@id='%s-crm']" % OTHER)
    assert not cl.ok(args)["changed"]
    cl.ok({"name": OTHER, "state": "disabled"})
    assert not cl.cib_xpath("//rsc_location[@id='%s-crm']" % OTHER)
    cl.ok({"name": OTHER, "state": "present"})
    assert cl.cib_xpath("//rsc_location[@id='%s-crm']" % OTHER)


def test_list_vms_reports_every_vm_with_status_and_node():
    result = cl.ok({"command": "list_vms"})
    by_name = dict((vm["name"], vm) for vm in result["vms"])
    assert {VM, CLONE, FULL, OTHER} <= set(result["list_vms"])
    assert by_name[VM]["status"] == "Started" and by_name[VM]["node"] == lab.node_name()
    assert by_name[FULL]["status"] == "Stopped" and by_name[FULL]["node"] is None
    assert not result["changed"]


def test_remove_to_trash_then_purge_and_idempotent():
    result = cl.ok({"name": CLONE, "state": "absent", "purge": True})
    assert result["changed"] and CLONE not in cl.groups()
    assert not [i for i in cl.images() if CLONE in i]
    # The source's snapshot the clone hung from went with it.
    snaps = cl.rbd("snap", "ls", "system_" + VM)
    assert not [s for s in snaps if s["name"] == "gvclone-" + CLONE]
    result = cl.ok({"name": VM, "command": "remove"})
    assert result["changed"] and result["status"] == "Undefined"
    assert VM not in cl.groups() and not [i for i in cl.images() if VM in i]
    assert {"system_" + VM, "data_%s_1" % VM} <= set(cl.trash())
    assert not cl.cib_xpath("//primitive[@id='%s']" % VM)
    assert VM not in cl.cib_xpath("//constraints")
    assert not cl.ok({"name": VM, "command": "remove"})["changed"]
    assert cl.ok({"name": VM, "command": "status"})["status"] == "Undefined"
