"""The three-node lab as a user's cluster: the deploy playbooks, live migration, node
maintenance, and failover through fencing (power cut and network partition), with the
placement rules holding through it all. Guests boot from RBD and print a boot counter kept on
their disk and one tick per second on their serial console, logged on the node running them.

The VMs come from inventories/lab3: ha-plc prefers node1, ha-hmi is strongly colocated with
it, ha-gw is anti-colocated with it (and live-migrates with a 500 ms downtime and its
cloud-init seed in RBD), ha-rtu is
pinned to node3. Tests run in file order; each leaves every node on and online.
"""
import json
import time

import pytest
from lxml import etree

import cluster3 as c3

VMS = ("ha-plc", "ha-hmi", "ha-gw", "ha-rtu")


def settled(vms=VMS):
    """Every VM Started, ha-rtu on node3 and ha-plc's companions where they belong."""
    where = c3.resources()
    if not all(where.get(vm) for vm in vms):
        return None
    ok = (where["ha-rtu"] == "node3" and where["ha-hmi"] == where["ha-plc"]
          and where["ha-gw"] != where["ha-plc"])
    return where if ok else None


@pytest.fixture(scope="module", autouse=True)
def deployed():
    for node in c3.nodes():
        assert c3.alive(node), "%s is off: start the lab with make lab-up NODES=3" % node
    rc, out = c3.playbook("deploy_vms_cluster.yaml")
    assert rc == 0, out[-3000:]
    # A three-node lab kept from an earlier run starts its VMs at lab-up, on the definitions
    # they had then: those the deploy changed run the inventory's only after a restart.
    for vm in VMS:
        status = c3.module("node1", "gridvirt.kvm.cluster_vm", {"name": vm, "command": "status"})
        if status["restart_required"]:
            for command in ("stop", "start"):
                done = c3.module("node1", "gridvirt.kvm.cluster_vm", {"name": vm, "command": command})
                assert not done["failed"], done
    c3.wait(settled, 300, "every lab3 VM Started where its placement says")


@pytest.fixture(autouse=True)
def every_node_on():
    yield
    for node in c3.nodes():
        if not c3.alive(node):
            c3.power_on(node)
    # A test that failed half-way must not leave a node in standby for the next ones.
    for node, state in c3.node_states().items():
        if state.get("standby") == "true":
            c3.node_run(node, "crm_attribute", "--type", "nodes", "--node", node,
                        "--name", "standby", "--delete")
    for node in c3.nodes():
        c3.wait(lambda n=node: c3.online(n), 300, "%s online" % node)
    c3.wait(settled, 300, "the VMs back in place")


def test_deploy_playbooks_converge_the_three_node_cluster():
    rc, out = c3.playbook("deploy_vms_cluster.yaml")
    assert rc == 0, out[-3000:]
    counts = c3.recap(out)
    assert all(counts[vm]["changed"] == 0 for vm in VMS), counts
    where = settled()
    assert where, c3.resources()
    images = c3.node_run("node2", "rbd", "ls", "--format", "json", "--id", "libvirt").stdout
    for vm in VMS:
        assert "system_%s" % vm in images
        # Booted from RBD, and alive where Pacemaker says it runs (it may have come there
        # live); a guest the first deploy has just started may still be booting (TCG).
        c3.wait(lambda v=vm: c3.boot_count(v) >= 1, 180, "%s boot marker" % vm)
        c3.wait(lambda v=vm: c3.last_tick(where[v], v), 60, "%s ticking on %s" % (vm, where[vm]))


def test_standalone_deploy_on_a_cluster_node():
    """deploy_vms_standalone.yaml puts edge-web in node2's own libvirt pool, outside
    Pacemaker; its rerun changes nothing."""
    for _run in range(2):
        rc, out = c3.playbook("deploy_vms_standalone.yaml")
        assert rc == 0, out[-3000:]
    assert c3.recap(out)["edge-web"]["changed"] == 0, c3.recap(out)
    running = c3.node_run("node2", "virsh", "-c", "qemu:///system", "list", "--name").stdout.split()
    assert "edge-web" in running
    assert "edge-web" not in c3.resources()
    c3.wait(lambda: c3.boots_on("node2", "edge-web"), 120, "edge-web boot marker on node2")
    volumes = c3.node_run("node2", "virsh", "-c", "qemu:///system", "vol-list", "default").stdout
    assert "edge-web.disk0.qcow2" in volumes


def own_constraints(vm):
    return sorted(e.get("id") for e in c3.cib_constraints() if e.get("rsc") == vm)


def test_live_migration_keeps_the_guest_running():
    vm = "ha-gw"
    where = c3.resources()
    source = where[vm]
    target = [n for n in c3.nodes() if n not in (source, where["ha-plc"])][0]
    boot = c3.boot_count(vm)
    constraints = own_constraints(vm)
    watcher = c3.TickWatcher(vm, source)
    watcher.start()
    time.sleep(3)
    result = c3.module("node1", "gridvirt.kvm.cluster_vm",
                       {"name": vm, "command": "migrate", "node": target})
    time.sleep(3)
    watcher.stopped.set()
    watcher.join()
    assert not result["failed"] and result["changed"], result
    assert (result["previous_node"], result["node"], result["migrated_live"]) == (source, target, True)
    assert c3.resources()[vm] == target
    # Its cloud-init seed came along: QEMU on the target opened the same RBD image.
    running = etree.fromstring(c3.node_run(target, "virsh", "-c", "qemu:///system", "dumpxml",
                                           vm).stdout.encode())
    seed = running.find("devices/disk[@device='cdrom']/source[@protocol='rbd']")
    assert seed is not None and seed.get("name") == "rbd/seed_" + vm
    # The nodes' only link is the lab network, so that is where the migration stream went.
    addresses = json.loads(c3.node_run(source, "ip", "-j", "addr").stdout)
    assert sorted(a["ifname"] for a in addresses) == ["eth0", "lo"]
    assert [i["local"] for a in addresses if a["ifname"] == "eth0" for i in a["addr_info"]
            if i["family"] == "inet"] == ["10.99.0.%s" % source[len("node"):]]
    # The same boot: no new boot marker anywhere, and the ticks went on, one by one, from the
    # source's log into the target's.
    assert c3.boot_count(vm) == boot
    ticks = [a[1] for a in watcher.arrivals]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), ticks
    assert {a[3] for a in watcher.arrivals} == {source, target}
    assert all(a[2] == boot for a in watcher.arrivals)
    # The move constraint is gone; the VM's own constraints are as they were.
    assert own_constraints(vm) == constraints and not [c for c in constraints if c.startswith("cli-")]
    # Its migration settings reached VirtualDomain: transport and user in the URI, downtime.
    log = c3.node_run(source, "cat", "/var/log/pacemaker/pacemaker.log").stdout
    assert "qemu+tcp://root@%s/system" % target in log
    assert "migrate-setmaxdowntime %s 500" % vm in log
    op = c3.node_run(target, "cibadmin", "--query", "--xpath",
                     "//primitive[@id='%s']//op[@name='migrate_to']" % vm).stdout
    assert 'timeout="180' in op, op
    again = c3.module("node1", "gridvirt.kvm.cluster_vm",
                      {"name": vm, "command": "migrate", "node": target})
    assert not again["failed"] and not again["changed"], again


def test_migrate_refuses_what_placement_forbids():
    before = c3.resources()
    other = [n for n in c3.nodes() if n not in ("node3", before["ha-plc"])][0]
    pinned = c3.module("node1", "gridvirt.kvm.cluster_vm",
                       {"name": "ha-rtu", "command": "migrate", "node": other})
    assert pinned["failed"] and "pinned" in pinned["msg"], pinned
    preferred = c3.module("node1", "gridvirt.kvm.cluster_vm",
                          {"name": "ha-plc", "command": "migrate", "node": other})
    assert preferred["failed"] and "preferred_host" in preferred["msg"], preferred
    # --check predicts a move and makes none; a maintenance run under --check changes nothing.
    gw_target = [n for n in c3.nodes() if n not in (before["ha-gw"], before["ha-plc"])][0]
    predicted = c3.module("node1", "gridvirt.kvm.cluster_vm",
                          {"name": "ha-gw", "command": "migrate", "node": gw_target}, check=True)
    assert not predicted["failed"] and predicted["changed"], predicted
    rc, out = c3.playbook("node_maintenance.yaml", "--check", "-e", "maintenance_node=node1",
                          "-e", "maintenance_state=standby")
    assert rc == 0, out[-3000:]
    assert c3.node_states()["node1"]["standby"] == "false"
    assert c3.resources() == before
    assert not [e for e in c3.cib_constraints() if e.get("id", "").startswith("cli-")]


def test_node_maintenance_moves_the_vms_away_and_back():
    boots = dict((vm, c3.boot_count(vm)) for vm in VMS)
    rc, out = c3.playbook("node_maintenance.yaml", "-e", "maintenance_node=node1",
                          "-e", "maintenance_state=standby")
    assert rc == 0, out[-3000:]
    where = c3.resources()
    assert "node1" not in where.values(), where
    assert where["ha-hmi"] == where["ha-plc"] and where["ha-gw"] != where["ha-plc"], where
    assert "ha-plc: node1 -> %s (live)" % where["ha-plc"] in out, out[-3000:]
    rc, out = c3.playbook("node_maintenance.yaml", "-e", "maintenance_node=node1",
                          "-e", "maintenance_state=standby")
    assert rc == 0 and all(v["changed"] == 0 for v in c3.recap(out).values()), out[-3000:]
    # Back online through cluster_node itself: --check changes nothing, the rerun nothing.
    online = {"name": "node1", "state": "online"}
    predicted = c3.module("node2", "gridvirt.kvm.cluster_node", online, check=True)
    assert not predicted["failed"] and predicted["changed"], predicted
    assert c3.node_states()["node1"]["standby"] == "true"
    result = c3.module("node2", "gridvirt.kvm.cluster_node", online)
    assert not result["failed"] and result["changed"], result
    assert result["node"]["standby"] is False and c3.node_states()["node1"]["standby"] == "false"
    again = c3.module("node2", "gridvirt.kvm.cluster_node", online)
    assert not again["failed"] and again["changed"] is False, again
    # ha-plc prefers node1: it comes back, live, and ha-hmi with it.
    # One read per try: two could see the cluster settled, then moving again.
    c3.wait(lambda: (settled() or {}).get("ha-plc") == "node1", 300, "ha-plc back on node1")
    assert dict((vm, c3.boot_count(vm)) for vm in VMS) == boots


def test_failover_when_a_node_loses_power():
    """node1 runs ha-plc (preferred there) and ha-hmi (strongly colocated): it loses power.
    The survivors fence it, ha-plc boots elsewhere from the same RBD disk (its boot counter,
    read from that disk, goes up by one), ha-hmi follows it, ha-gw keeps away from it. When
    node1 is back, ha-plc fails back there, live."""
    assert c3.resources()["ha-plc"] == "node1"
    boot = c3.boot_count("ha-plc")
    since = time.time()
    c3.power_off("node1")
    seen = c3.observe_failover("ha-plc", "node1", boot, since)
    assert "detected" in seen and "fenced" in seen, seen
    assert seen["fenced"] <= seen["started"], seen
    assert c3.boot_count("ha-plc") == boot + 1
    states = c3.node_states()
    assert states["node1"]["online"] == "false", states["node1"]
    where = c3.wait(lambda: settled(("ha-plc", "ha-hmi", "ha-gw")), 240, "ha-hmi and ha-gw placed")
    assert where["ha-plc"] != "node1" and where["ha-hmi"] == where["ha-plc"]
    assert where["ha-gw"] not in (where["ha-plc"], "node1")
    events = [e for e in c3.fence_events("node1") if e.get("status") == "success"]
    assert events and events[-1]["action"] == "off", events
    # The fleet's inventory, node1 off: the cluster listed through the next node, node1 named.
    fleet, warned = c3.fleet_inventory()
    assert dict((vm, fleet[vm]["gridvirt_node"]) for vm in ("ha-plc", "ha-hmi", "ha-gw")) == \
        dict((vm, where[vm]) for vm in ("ha-plc", "ha-hmi", "ha-gw"))
    assert fleet["ha-plc"]["gridvirt_cluster"] == "lab3"
    assert "hypervisor node1 did not list its VMs" in " ".join(warned.split()), warned
    c3.power_on("node1")
    c3.wait(lambda: (settled() or {}).get("ha-plc") == "node1", 300, "ha-plc back on node1")
    assert c3.boot_count("ha-plc") == boot + 1


def test_pinned_vm_waits_for_its_node():
    """ha-rtu is pinned to node3: when node3 loses power it is not started anywhere else;
    when node3 is back, it boots there again."""
    boot = c3.boot_count("ha-rtu")
    since = time.time()
    c3.power_off("node3")
    c3.wait(lambda: c3.fenced_since("node3", since), 120, "node3 fenced")
    # Past the fencing the cluster has recomputed everything: ha-rtu stays stopped.
    time.sleep(15)
    assert c3.resources()["ha-rtu"] is None
    assert not c3.qemu_nodes("ha-rtu")
    assert c3.resources()["ha-gw"] not in ("node3", c3.resources()["ha-plc"])
    c3.power_on("node3")
    c3.wait(lambda: c3.resources()["ha-rtu"] == "node3", 300, "ha-rtu Started on node3")
    c3.wait(lambda: c3.boot_count("ha-rtu") == boot + 1, 120, "ha-rtu booted on node3")


def test_partition_fences_before_the_vm_starts_elsewhere():
    """ha-gw's node is cut from the network. It loses quorum, the two others fence it, and
    only then is ha-gw started on a survivor: at no moment does a QEMU of ha-gw exist on two
    nodes (all nodes' processes are checked every 0.2 s)."""
    victim = c3.resources()["ha-gw"]
    boot = c3.boot_count("ha-gw")
    since = time.time()
    c3.cut(victim)
    seen = c3.observe_failover("ha-gw", victim, boot, since)
    assert seen["fenced"] <= seen["started"], seen
    doubles = [s for s in seen["qemu_sets"] if len(s) > 1]
    assert not doubles, doubles
    assert c3.boot_count("ha-gw") == boot + 1
    assert not c3.alive(victim), "the cut-off node was not powered off by the cluster"
    where = c3.resources()
    assert where["ha-gw"] not in (victim, where["ha-plc"])
