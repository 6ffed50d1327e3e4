"""cluster_vm command=import on the three-node lab: a standalone VM of node3's own libvirt
(reached over qemu+tcp) becomes a cluster VM, boots from RBD, and after a power cut of the
node it runs on comes back on a survivor, booting from its RBD disk again."""
import time

import pytest

import cluster3 as c3
import lab

VM = "imp-edge"
SRC = "node3"


def remove():
    c3.module(SRC, "gridvirt.kvm.standalone_vm", {"name": VM, "state": "absent"})
    result = c3.module("node1", "gridvirt.kvm.cluster_vm",
                       {"name": VM, "state": "absent", "purge": True})
    assert not result.get("failed"), result
    for node in c3.nodes():
        c3.node_run(node, "rm", "-f", "/var/log/libvirt/qemu/%s-serial.log" % VM)


@pytest.fixture
def standalone_on_node3():
    remove()
    result = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
        "name": VM, "state": "running", "xml": lab.guest_xml(VM),
        "system_image": lab.GUEST_IMAGE})
    assert result.get("changed"), result
    c3.wait(lambda: c3.boots_on(SRC, VM) == [1], 180, "%s boot 1 on %s" % (VM, SRC))
    yield result
    c3.every_node_online()
    remove()


def test_imported_vm_fails_over_from_its_rbd_disk(standalone_on_node3):
    result = c3.module("node1", "gridvirt.kvm.cluster_vm", {
        "name": VM, "command": "import", "src_uri": "qemu+tcp://%s/system" % SRC})
    assert result.get("changed") and result["status"] == "Started", result
    assert result["uuid"] == standalone_on_node3["uuid"]
    node = result["node"]
    c3.wait(lambda: c3.boots_on(node, VM) and c3.boot_count(VM) == 2, 180,
            "%s boot 2 on %s" % (VM, node))
    assert not result.get("warnings"), result["warnings"]
    # Nothing of the standalone VM is left on its host: no definition, no volume.
    listed = c3.module(SRC, "gridvirt.kvm.standalone_vm", {"command": "list_vms"})
    assert VM not in [vm["name"] for vm in listed["vms"] if vm["persistent"]]
    volumes = c3.node_run(SRC, "virsh", "-c", "qemu:///system", "vol-list", "default").stdout
    assert VM + "." not in volumes, volumes
    since = time.time()
    c3.power_off(node)
    seen = c3.observe_failover(VM, node, 2, since)
    assert seen["node"] != node and c3.boot_count(VM) == 3, seen
