"""The site hooks of cluster VMs on the one-node lab: our resource agent runs this node's
preboot hooks at every start Pacemaker makes (their XML boots once; the definition in RBD
does not change and the VM does not ask for a restart) and its disallocate hooks after each
stop; cluster_vm runs the allocate hooks first in its plan, whose veto changes nothing and
whose NICs boot wherever Pacemaker starts the VM until a stop releases them.
(tests/multinode/test_hooks_three_nodes.py: allocate choosing the node, and preboot on the
survivor of a power cut.)"""
import os
import subprocess

import cluster_lab as cl
import lab
import site_hooks_lab as hooks
from test_hooks_standalone import ALLOCATE_MAC, FAIL, PREBOOT_ADD_DISK, VETO

PREFIX = "ichk"
VM = PREFIX + "1"
EXTRA_DISK = os.path.join(lab.POOL_DIR, "ihk-extra.raw")

clean = cl.cleanup_fixture(PREFIX)


def stored_xml():
    return cl.image_meta("system_" + VM)["xml"]


def test_preboot_at_the_agents_start_and_disallocate_at_its_stop():
    with open(EXTRA_DISK, "wb") as out:
        out.truncate(1024 * 1024)
    cl.ok(cl.vm_args(VM, state="stopped", metadata={"rack": "r4"},
                     addresses=[{"vm": VM, "nic": 0, "ip": "10.77.0.8", "prefix": 24}]))
    stored = stored_xml()
    console = lab.Console(VM)
    with hooks.installed({("preboot", "10-disk"): PREBOOT_ADD_DISK,
                          ("preboot", "20-record"): hooks.RECORDER,
                          ("disallocate", "10-record"): hooks.RECORDER}):
        started = cl.ok({"name": VM, "state": "running"})
        assert started["changed"]
        assert console.wait_boot()["disks"] == ["vda", "vdb", "vdc"]  # system, data, hook's
        assert EXTRA_DISK in lab.domain_xml(VM, inactive=False).find(
            "devices/disk[last()]/source").get("file")
        assert stored_xml() == stored
        status = cl.ok({"name": VM, "command": "status"})
        assert status["status"] == "Started" and not status["restart_required"]
        preboot, = hooks.records("preboot")
        assert (preboot["vm"], preboot["kind"], preboot["action"], preboot["node"]) == (
            VM, "cluster", "start", lab.node_name())
        assert preboot["metadata"] == {"rack": "r4"} and EXTRA_DISK in preboot["xml"]
        # The addresses the task gave, kept with the VM for the agent (no task runs then).
        assert preboot["addresses"] == [{"vm": VM, "nic": 0, "ip": "10.77.0.8", "prefix": 24}]
        assert not cl.ok({"name": VM, "state": "running"})["changed"]
        cl.ok({"name": VM, "state": "stopped"})
        stop, = hooks.records("disallocate")
        assert (stop["action"], stop["node"]) == ("stop", lab.node_name())
    console.mark()
    cl.ok({"name": VM, "state": "running"})
    assert console.wait_boot()["disks"] == ["vda", "vdb"]


ALLOCATED_MAC = "02:67:76:ee:00:01"  # ALLOCATE_MAC's


def live_mac():
    return lab.domain_xml(VM, inactive=False).find("devices/interface/mac").get("address")


def test_allocate_nics_boot_at_every_start_until_a_stop_releases_them():
    cl.ok({"name": VM, "state": "stopped"})
    stored = stored_xml()
    assert ALLOCATED_MAC not in stored
    console = lab.Console(VM)
    with hooks.installed({("allocate", "10-mac"): ALLOCATE_MAC,
                          ("preboot", "10-record"): hooks.RECORDER}):
        assert cl.ok({"name": VM, "state": "running"})["changed"]
        console.wait_boot()
        assert live_mac() == ALLOCATED_MAC
        assert stored_xml() == stored
        assert not cl.ok({"name": VM, "command": "status"})["restart_required"]
        first, = hooks.records("preboot")
        assert ALLOCATED_MAC in first["xml"] and first["action"] == "start"
        # The guest dies and Pacemaker starts it again, no task running: its allocation holds.
        console.mark()
        lab.conn().lookupByName(VM).destroy()
        subprocess.run(["crm_resource", "--refresh", "--resource", VM], check=True,
                       capture_output=True)
        console.wait_boot()
        assert live_mac() == ALLOCATED_MAC
        assert [doc["action"] for doc in hooks.records("preboot")] == ["start", "start"]
        assert not cl.ok({"name": VM, "state": "running"})["changed"]
        # A stop releases it: the next start without allocate hooks boots the stored NICs.
        cl.ok({"name": VM, "state": "stopped"})
        assert "_allocated_from" not in cl.image_meta("system_" + VM)
    console.mark()
    cl.ok({"name": VM, "state": "running"})
    console.wait_boot()
    assert live_mac() != ALLOCATED_MAC and stored_xml() == stored


def test_a_failing_preboot_fails_the_start_on_this_node():
    cl.ok({"name": VM, "state": "stopped"})
    with hooks.installed({("preboot", "10-fail"): FAIL}):
        result = cl.run_cluster({"name": VM, "state": "running"})
        assert result["failed"]
        assert "The preboot hook 10-fail refused start of VM %s: the switch did not answer" % VM \
            in result["msg"]  # the agent's exit reason, as Pacemaker recorded it
    cl.ok({"name": VM, "state": "stopped"})
    assert cl.ok({"name": VM, "state": "running"})["status"] == "Started"


def test_allocate_veto_changes_nothing():
    before = cl.fingerprint()
    new = PREFIX + "2"
    with hooks.installed({("allocate", "10-veto"): VETO,
                          ("allocate", "20-record"): hooks.RECORDER}):
        result = cl.run_cluster(cl.vm_args(new))
        assert result["failed"] and result["msg"] == (
            "The allocate hook 10-veto refused create of VM %s: rack 4 has no free slot." % new)
        assert not result["changed"] and hooks.records("allocate") == []
        assert cl.fingerprint() == before
        cl.ok({"name": VM, "state": "stopped"})
        before = cl.fingerprint()
        result = cl.run_cluster({"name": VM, "state": "running"})
        assert result["failed"] and "refused start of VM %s" % VM in result["msg"]
        assert cl.fingerprint() == before and cl.status(VM)[0] == "Stopped"


def test_check_mode_runs_no_hook():
    with hooks.installed({("allocate", "10-record"): hooks.RECORDER,
                          ("preboot", "10-record"): hooks.RECORDER}):
        result = cl.run_cluster({"name": VM, "state": "running"}, check=True)
        assert result["changed"] and not result["failed"]
        assert hooks.records("allocate") == hooks.records("preboot") == []
        assert cl.status(VM)[0] == "Stopped"
