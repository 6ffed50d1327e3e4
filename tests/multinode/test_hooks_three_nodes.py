"""The site hooks of a cluster VM on the three-node lab. cluster_vm runs the allocate hooks
of the node the task runs on: the node they choose is where that start happens, and no
constraint of it is left once the VM runs. Our resource agent runs the preboot hooks of the
node Pacemaker starts the VM on -- also when that is a survivor starting it after its node
lost power, with no Ansible running -- and the disallocate hooks where it stopped. On a live
migration's target libvirt's qemu hook (installed by the hypervisor role) runs that node's
preboot hooks: what they print is the XML the guest arrives with, and a failing one cancels
the migration."""
import contextlib
import os
import time

import pytest
from lxml import etree

import cluster3 as c3
import lab
import site_hooks_lab as hooks

VM = "hk-alloc"
CHOOSE_NODE = hooks.script("""doc = json.load(sys.stdin)
print(json.dumps({"node": "%s"}))
""")
ADDRESSES = [{"vm": VM, "nic": 0, "ip": "10.77.0.27", "prefix": 24}]
ALLOCATED_MAC = "02:67:76:ee:00:07"
CHOOSE_NODE_AND_MAC = hooks.script("""doc = json.load(sys.stdin)
print(json.dumps({"node": "%%s", "nics": [{"index": 0, "mac": "%s"}]}))
""" % ALLOCATED_MAC)


def node_root(node):
    return os.path.join(c3.LAB_DIR, "nodes", node, "root")


def remove():
    result = c3.module("node1", "gridvirt.kvm.cluster_vm",
                       {"name": VM, "state": "absent", "purge": True})
    assert not result.get("failed"), result
    for node in c3.nodes():
        c3.node_run(node, "rm", "-f", "/var/log/libvirt/qemu/%s-serial.log" % VM)


@pytest.fixture(scope="module", autouse=True)
def clean():
    remove()
    yield
    c3.every_node_online()
    remove()


def cli_constraints():
    return [e.get("id") for e in c3.cib_constraints() if e.get("id", "").startswith("cli-")]


def test_allocate_chooses_the_node_of_the_start():
    with hooks.installed({("allocate", "10-node"): CHOOSE_NODE % "node3",
                          ("allocate", "20-record"): hooks.RECORDER}, root=node_root("node1")):
        result = c3.module("node1", "gridvirt.kvm.cluster_vm", {
            "name": VM, "state": "running", "xml": lab.guest_xml(VM),
            "system_image": lab.GUEST_IMAGE, "live_migration": True,
            "migration_transport": "tcp", "migration_user": "root",
            "metadata": {"rack": "r7"}, "addresses": ADDRESSES})
        assert result.get("changed") and result["node"] == "node3", result
        allocate, = hooks.records("allocate")
        # The recorder runs after 10-node: its document has the node 10-node chose.
        assert (allocate["action"], allocate["kind"], allocate["node"]) == (
            "create", "cluster", "node3")
        c3.wait(lambda: c3.boots_on("node3", VM) == [1], 180, "%s boot 1 on node3" % VM)
        assert cli_constraints() == [] and c3.resources()[VM] == "node3"
    # A stop and a start on another choice, with a NIC of its own (kept to the end: the
    # migration and the failover below boot it too).
    with hooks.installed({("allocate", "10-node"): CHOOSE_NODE_AND_MAC % "node2",
                          ("disallocate", "10-record"): hooks.RECORDER},
                         root=node_root("node1")), \
            hooks.installed({("disallocate", "10-record"): hooks.RECORDER},
                            root=node_root("node3")):
        stopped = c3.module("node1", "gridvirt.kvm.cluster_vm", {"name": VM, "state": "stopped"})
        assert stopped.get("changed"), stopped
        stop, = hooks.records("disallocate")  # run by the agent, on node3 where it stopped
        assert (stop["action"], stop["node"]) == ("stop", "node3")
        started = c3.module("node1", "gridvirt.kvm.cluster_vm", {"name": VM, "state": "running"})
        assert started["node"] == "node2" and cli_constraints() == [], started
        c3.wait(lambda: c3.boots_on("node2", VM) == [2], 180, "%s boot 2 on node2" % VM)
        assert running_mac("node2") == ALLOCATED_MAC


# On the target of a live migration (libvirt's qemu hook, "migrate begin"): adds a
# description, which libvirt accepts in an incoming guest's XML.
DESCRIBE = hooks.script("""import xml.etree.ElementTree as ET
doc = json.load(sys.stdin)
root = ET.fromstring(doc["xml"])
ET.SubElement(root, "description").text = "arrived on " + doc["node"]
print(ET.tostring(root, encoding="unicode"))
""")


def running_xml(node):
    return etree.fromstring(c3.node_run(node, "virsh", "-c", "qemu:///system", "dumpxml",
                                        VM).stdout.encode())


def running_mac(node):
    return running_xml(node).find("devices/interface/mac").get("address")


def test_preboot_runs_on_a_live_migrations_target_and_disallocate_on_its_source():
    source = c3.resources()[VM]
    target = [node for node in c3.nodes() if node != source][0]
    boot = c3.boot_count(VM)
    with hooks.installed({("preboot", "10-describe"): DESCRIBE,
                          ("preboot", "20-record"): hooks.RECORDER}, root=node_root(target)), \
            hooks.installed({("disallocate", "10-record"): hooks.RECORDER},
                            root=node_root(source)):
        result = c3.module("node1", "gridvirt.kvm.cluster_vm",
                           {"name": VM, "command": "migrate", "node": target})
        assert result["changed"] and result["migrated_live"] and result["node"] == target, result
        preboot, = hooks.records("preboot")
        assert (preboot["action"], preboot["node"], preboot["kind"]) == (
            "migrate", target, "cluster")
        # libvirt's hook reads them from the VM's image with the node's Ceph client.
        assert (preboot["metadata"], preboot["addresses"]) == ({"rack": "r7"}, ADDRESSES)
        assert running_xml(target).findtext("description") == "arrived on " + target
        assert running_mac(target) == ALLOCATED_MAC
        left, = hooks.records("disallocate")
        assert (left["action"], left["node"]) == ("migrate", source)
    assert c3.boot_count(VM) == boot  # the same boot: it was not restarted
    c3.wait(lambda: (c3.last_tick(target, VM) or (0, 0))[1] == boot, 60,
            "%s ticking on %s" % (VM, target))


def test_a_failing_preboot_on_the_target_refuses_the_migration():
    source = c3.resources()[VM]
    target = [node for node in c3.nodes() if node != source][0]
    fail = hooks.script("""json.load(sys.stdin)
sys.stderr.write("no room on this rack\\n")
sys.exit(1)
""")
    with hooks.installed({("preboot", "10-fail"): fail}, root=node_root(target)):
        # libvirt itself, as the agent's migrate_to calls it: the target's hook cancels it.
        migrate = c3.node_run(source, "virsh", "-c", "qemu:///system", "migrate", "--live",
                              VM, "qemu+tcp://%s/system" % target, check=False)
        assert migrate.returncode != 0 and "no room on this rack" in migrate.stderr, migrate
    assert c3.resources()[VM] == source and running_xml(source) is not None


def test_preboot_runs_on_the_survivor_of_a_power_cut():
    where = c3.resources()[VM]
    survivors = [node for node in c3.nodes() if node != where]
    with contextlib.ExitStack() as stack:
        for node in c3.nodes():
            stack.enter_context(hooks.installed({("preboot", "10-record"): hooks.RECORDER},
                                                root=node_root(node)))
        boot = c3.boot_count(VM)
        since = time.time()
        c3.power_off(where)
        seen = c3.observe_failover(VM, where, boot, since)
        assert seen["node"] in survivors and c3.boot_count(VM) == boot + 1, seen
        # The survivors start the dead node's other VMs too: only this VM's starts count.
        preboot = [doc for doc in hooks.records("preboot") if doc["vm"] == VM]
        # Its last run never stopped: a failover, which boots the NIC allocate gave it.
        assert [(doc["node"], doc["action"], doc["kind"]) for doc in preboot] == [
            (seen["node"], "failover", "cluster")]
        assert "<name>%s</name>" % VM in preboot[0]["xml"]
        assert running_mac(seen["node"]) == ALLOCATED_MAC
