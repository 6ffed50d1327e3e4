"""A SEAPATH playbook runs unchanged: its cluster_vm tasks (SEAPATH's verbs, option names and
types, return names) taken from SEAPATH's module examples, with the short module name
resolved through the play's `collections`."""
import itertools
import json
import os
import subprocess
import tempfile

import cluster_lab as cl
import lab

PREFIX = "its"
GUEST0, GUEST1 = PREFIX + "guest0", PREFIX + "guest1"

clean = cl.cleanup_fixture(PREFIX)
STATUS_TASKS = itertools.count()
REMOTE_XPATH = "//primitive[@id='%s']/meta_attributes/nvpair[@name='remote-node']" % GUEST1


def seapath_play(tasks):
    return [{"name": "SEAPATH-style play", "hosts": "hypervisors", "gather_facts": False,
             "collections": ["gridvirt.kvm"], "tasks": tasks}]


def run_playbook(play):
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=lab.REPO, delete=False) as f:
        json.dump(play, f)
    env = dict(lab.ansible_env(), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    try:
        proc = subprocess.run(["ansible-playbook", f.name], cwd=lab.REPO, env=env,
                              capture_output=True, text=True, timeout=1800, check=False)
    finally:
        os.unlink(f.name)
    return proc


def recap(output):
    line = [x for x in output.splitlines() if x.startswith(lab.HOST) and "ok=" in x][-1]
    return dict(item.split("=") for item in line.split(":", 1)[1].split())


def create_tasks(name):
    """SEAPATH's "Create and start guest0" example, with this lab's image and XML."""
    return [{"name": "Create and start %s" % name, "cluster_vm": {
        "name": name, "command": "create", "system_image": lab.GUEST_IMAGE,
        "xml": lab.guest_xml(name),
        "metadata": {"myMetadata": "value", "anotherMetadata": "value"},
        "pacemaker_meta": {"resource-stickiness": 1},
        "pacemaker_params": {"autoset_utilization_cpu": False,
                             "autoset_utilization_host_memory": False,
                             "autoset_utilization_hv_memory": False},
        "pacemaker_utilization": {"cpu": 4, "memory": 2048},
        "stop_timeout": "40", "migrate_to_timeout": "150", "migration_downtime": "100",
        "live_migration": True, "priority": "2"}}]


def assert_task(that, msg):
    return {"ansible.builtin.assert": {"that": that, "fail_msg": msg}}


def status_is(name, wanted, after):
    """Tasks asserting that VM ``name`` is ``wanted`` after the verb ``after``."""
    register = "status_%d" % next(STATUS_TASKS)
    return [{"name": "Status of %s after %s" % (name, after),
             "cluster_vm": {"name": name, "command": "status"}, "register": register},
            assert_task(["%s.status == '%s'" % (register, wanted)],
                        "%s: %s is not %s" % (after, name, wanted))]


def test_seapath_tasks_run_unchanged():
    tasks = create_tasks(GUEST0) + create_tasks(GUEST1) + [
        {"name": "List all VMs", "cluster_vm": {"command": "list_vms"}, "register": "vms"},
        assert_task(["'%s' in vms.list_vms" % GUEST0, "'%s' in vms.list_vms" % GUEST1],
                    "list_vms"),
        {"name": "Status", "cluster_vm": {"name": GUEST0, "command": "status"},
         "register": "st"},
        assert_task(["st.status == 'Started'"], "status"),
        {"name": "Stop guest0", "cluster_vm": {"name": GUEST0, "command": "stop"}},
    ] + status_is(GUEST0, "Stopped", "stop") + [
        {"name": "Force stopping (power off) guest1",
         "cluster_vm": {"name": GUEST1, "command": "stop", "force": True}},
    ] + status_is(GUEST1, "Stopped", "stop force") + [
        {"name": "Start guest0", "cluster_vm": {"name": GUEST0, "command": "start"}},
    ] + status_is(GUEST0, "Started", "start") + [
        {"name": "Disable guest1", "cluster_vm": {"name": GUEST1, "command": "disable"}},
    ] + status_is(GUEST1, "Disabled", "disable") + [
        {"name": "Enable guest1", "cluster_vm": {"name": GUEST1, "command": "enable",
                                                 "nostart": True}},
    ] + status_is(GUEST1, "Stopped", "enable nostart") + [
        {"name": "Create a snapshot of guest0",
         "cluster_vm": {"name": GUEST0, "command": "create_snapshot", "snapshot_name": "snap1"}},
        {"name": "List snapshots of guest0",
         "cluster_vm": {"name": GUEST0, "command": "list_snapshots"}, "register": "snaps"},
        assert_task(["snaps.list_snapshot == ['snap1']"], "list_snapshots"),
        {"name": "Rollback guest0 into snapshot snap1",
         "cluster_vm": {"name": GUEST0, "command": "rollback_snapshot",
                        "snapshot_name": "snap1"}, "register": "rolled"},
        assert_task(["rolled.changed"], "rollback_snapshot"),
    ] + status_is(GUEST0, "Started", "rollback_snapshot") + [
        {"name": "Remove snapshots of guest0 older than January 24th 2021 8:00 AM",
         "cluster_vm": {"name": GUEST0, "command": "purge_image",
                        "purge_date": {"date": "2021-01-24", "time": "08:00"}}},
        {"name": "List snapshots of guest0 after the purge by date",
         "cluster_vm": {"name": GUEST0, "command": "list_snapshots"}, "register": "kept"},
        assert_task(["kept.list_snapshot == ['snap1']"], "purge_image by date removed snap1"),
        {"name": "Remove all snapshots of guest0",
         "cluster_vm": {"name": GUEST0, "command": "purge_image"}},
        {"name": "List snapshots of guest0 after the purge",
         "cluster_vm": {"name": GUEST0, "command": "list_snapshots"}, "register": "purged"},
        assert_task(["purged.list_snapshot == []"], "purge_image left snapshots"),
        {"name": "List guest0 metadata",
         "cluster_vm": {"name": GUEST0, "command": "list_metadata"}, "register": "meta"},
        assert_task(["'myMetadata' in meta.list_metadata", "'xml' in meta.list_metadata"],
                    "list_metadata"),
        {"name": "Get metadata myMetadata stored on guest0",
         "cluster_vm": {"name": GUEST0, "command": "get_metadata",
                        "metadata_name": "myMetadata"}, "register": "value"},
        assert_task(["value.metadata_value == 'value'"], "get_metadata"),
        {"name": "Colocate guest1 with guest0",
         "cluster_vm": {"name": GUEST1, "command": "define_colocation",
                        "colocated_vms": [GUEST0]}},
        {"name": "Add a pacemaker remote",
         "cluster_vm": {"name": GUEST1, "command": "add_pacemaker_remote",
                        "remote_name": "remote1", "remote_address": "192.0.2.6",
                        "remote_port": 3121, "remote_timeout": 20}},
        {"name": "Read the remote's meta attribute from the CIB",
         "ansible.builtin.command": {"argv": ["cibadmin", "--query", "--xpath", REMOTE_XPATH]},
         "register": "remote", "changed_when": False},
        assert_task(["'value=\"remote1\"' in remote.stdout"], "add_pacemaker_remote"),
        {"name": "Remove a pacemaker remote",
         "cluster_vm": {"name": GUEST1, "command": "remove_pacemaker_remote"}},
        {"name": "Read the remote's meta attribute again",
         "ansible.builtin.command": {"argv": ["cibadmin", "--query", "--xpath", REMOTE_XPATH]},
         "register": "no_remote", "changed_when": False, "failed_when": False},
        assert_task(["'remote1' not in no_remote.stdout"], "remove_pacemaker_remote"),
        {"name": "Clone guest0 into a third VM",
         "cluster_vm": {"name": PREFIX + "guest2", "src_name": GUEST0, "command": "clone",
                        "xml": lab.guest_xml(PREFIX + "guest2"),
                        "clear_pacemaker_params": True, "nostart": True}},
    ] + status_is(PREFIX + "guest2", "Stopped", "clone nostart") + [
        {"name": "Remove the clone", "cluster_vm": {"name": PREFIX + "guest2",
                                                    "command": "remove"}},
    ] + status_is(PREFIX + "guest2", "Undefined", "remove")
    proc = run_playbook(seapath_play(tasks))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert int(recap(proc.stdout)["failed"]) == 0
    assert PREFIX + "guest2" not in cl.groups()
    prim = cl.cib_xpath("//primitive[@id='%s']" % GUEST0)
    for text in ('name="resource-stickiness" value="1"', 'name="memory" value="2048"',
                 'name="autoset_utilization_cpu" value="false"',
                 'name="stop" interval="0s" timeout="40s"', 'name="allow-migrate" value="true"'):
        assert text in prim, text
    assert cl.cib_xpath("//rsc_colocation[@id='colocation-%s-%s-weak']" % (GUEST1, GUEST0))


def test_a_seapath_deploy_play_is_idempotent():
    tasks = create_tasks(GUEST0) + create_tasks(GUEST1) + [
        {"name": "Colocate guest1 with guest0",
         "cluster_vm": {"name": GUEST1, "command": "define_colocation",
                        "colocated_vms": [GUEST0]}},
        {"name": "Start guest1", "cluster_vm": {"name": GUEST1, "command": "start"}},
    ]
    first = run_playbook(seapath_play(tasks))
    assert first.returncode == 0, first.stdout[-4000:]
    second = run_playbook(seapath_play(tasks))
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second.stdout)["changed"] == "0", second.stdout[-4000:]
