"""The site hooks of a cluster VM on the three-node lab. cluster_vm runs the allocate hooks
of the node the task runs on: the node they choose is where that start happens, and no
constraint of it is left once the VM runs. Our resource agent runs the preboot hooks of the
node Pacemaker starts the VM on -- also when that is a survivor starting it after its node
lost power, with no Ansible running -- and the disallocate hooks where it stopped."""
import contextlib
import os
import time

import pytest

import cluster3 as c3
import lab
import site_hooks_lab as hooks

VM = "hk-alloc"
CHOOSE_NODE = hooks.script("""doc = json.load(sys.stdin)
print(json.dumps({"node": "%s"}))
""")


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
    for node in c3.nodes():
        if not c3.alive(node):
            c3.power_on(node)
    for node in c3.nodes():
        c3.wait(lambda n=node: c3.online(n), 300, "%s online" % node)
    remove()


def cli_constraints():
    return [e.get("id") for e in c3.cib_constraints() if e.get("id", "").startswith("cli-")]


def test_allocate_chooses_the_node_of_the_start():
    with hooks.installed({("allocate", "10-node"): CHOOSE_NODE % "node3",
                          ("allocate", "20-record"): hooks.RECORDER}, root=node_root("node1")):
        result = c3.module("node1", "gridvirt.kvm.cluster_vm", {
            "name": VM, "state": "running", "xml": lab.guest_xml(VM),
            "system_image": lab.GUEST_IMAGE})
        assert result.get("changed") and result["node"] == "node3", result
        allocate, = hooks.records("allocate")
        # The recorder runs after 10-node: its document has the node 10-node chose.
        assert (allocate["action"], allocate["kind"], allocate["node"]) == (
            "create", "cluster", "node3")
        c3.wait(lambda: c3.boots_on("node3", VM) == [1], 180, "%s boot 1 on node3" % VM)
        assert cli_constraints() == [] and c3.resources()[VM] == "node3"
    # A stop and a start on another choice.
    with hooks.installed({("allocate", "10-node"): CHOOSE_NODE % "node2",
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


def test_preboot_runs_on_the_survivor_of_a_power_cut():
    where = c3.resources()[VM]
    assert where == "node2"
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
        assert [(doc["node"], doc["action"], doc["kind"]) for doc in preboot] == [
            (seen["node"], "start", "cluster")]
        assert "<name>%s</name>" % VM in preboot[0]["xml"]

