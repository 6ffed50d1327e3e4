"""vm_info on the lab's hypervisor, which is a cluster node and a standalone host at once:
every VM of both kinds with its status, node, definition, snapshots and metadata; a VM whose
stored definition is broken is reported with its error while the others are listed; the
registry's addresses on request; bad input is refused before anything is read."""
import pytest

import cluster_lab as cl
import lab

PREFIX = "ivi"
STARTED, DISABLED, STANDALONE = PREFIX + "cl1", PREFIX + "cl2", PREFIX + "sa1"

clean = cl.cleanup_fixture(PREFIX)


def vm_info(check=False, **args):
    args.setdefault("uri", lab.URI)  # (ansible's -a '{}' would be raw parameters)
    result = lab.run_module(args, module="gridvirt.kvm.vm_info", check=check)
    assert not result["failed"], result.get("msg")
    assert not result["changed"]
    return result


def listed(result):
    return dict((vm["name"], vm) for vm in result["vms"] if vm["name"].startswith(PREFIX))


@pytest.fixture(scope="module", autouse=True)
def vms(clean):
    lab.remove_everything(PREFIX)
    cl.ok(cl.vm_args(STARTED, metadata={"role": "plc"}))
    cl.ok(cl.vm_args(DISABLED, state="disabled", additional_disks=[]))
    created = lab.run_module({"name": STANDALONE, "state": "present", "vcpus": 2,
                              "xml": lab.guest_xml(STANDALONE, memory_mib=144, nics=2),
                              "system_image": lab.GUEST_IMAGE, "metadata": {"role": "db"}})
    assert not created["failed"], created.get("msg")
    snap = lab.run_module({"name": STANDALONE, "command": "create_snapshot",
                           "snapshot_name": "before"})
    assert not snap["failed"], snap.get("msg")
    yield
    cl.remove_all(PREFIX)  # first: the standalone cleanup would destroy their domains
    lab.remove_everything(PREFIX)


def test_both_kinds_with_status_node_and_definition():
    result = vm_info()
    node = lab.node_name()
    assert result["cluster"] is True and result["host"] == node
    vms = listed(result)
    assert set(vms) == {STARTED, DISABLED, STANDALONE}
    started = vms[STARTED]
    assert (started["kind"], started["status"], started["node"]) == ("cluster", "Started", node)
    assert started["metadata"] == {"role": "plc"}
    assert started["uuid"] == lab.domain_xml(STARTED, inactive=False).findtext("uuid")
    assert [d["source"] for d in started["disks"]] == [
        "rbd/system_" + STARTED, "rbd/data_%s_1" % STARTED]
    assert (started["vcpus"], started["memory_mib"], started["snapshots"]) == (1, 128, 0)
    assert (vms[DISABLED]["status"], vms[DISABLED]["node"]) == ("Disabled", None)
    standalone = vms[STANDALONE]
    assert (standalone["kind"], standalone["status"], standalone["node"]) == (
        "standalone", "Stopped", node)
    assert (standalone["vcpus"], standalone["memory_mib"], standalone["snapshots"]) == (2, 144, 1)
    macs = [m.get("address") for m in lab.domain_xml(STANDALONE).findall("devices/interface/mac")]
    assert standalone["macs"] == macs and len(macs) == 2
    assert standalone["metadata"] == {"role": "db"}
    # Cluster VMs first, each kind by name; the started cluster VM's transient domain on
    # this node is not listed again as a standalone VM.
    kinds = [(vm["kind"], vm["name"]) for vm in result["vms"]]
    assert kinds == sorted(kinds, key=lambda k: (k[0] != "cluster", k[1]))
    assert [vm["name"] for vm in result["vms"]].count(STARTED) == 1


def test_one_vm_one_kind_and_check_mode():
    assert [vm["name"] for vm in vm_info(name=STANDALONE)["vms"]] == [STANDALONE]
    only = vm_info(name=STARTED, kinds=["cluster"], check=True)
    assert [vm["name"] for vm in only["vms"]] == [STARTED]
    assert vm_info(name=PREFIX + "none")["vms"] == []
    assert not [vm for vm in vm_info(kinds=["standalone"])["vms"] if vm["kind"] == "cluster"]


def test_a_broken_vm_is_reported_and_the_others_listed():
    before = cl.image_meta("system_" + DISABLED)["xml"]
    cl.rbd_change("image-meta", "set", "system_" + DISABLED, "xml", "<domain><name>")
    try:
        vms = listed(vm_info())
    finally:
        cl.rbd_change("image-meta", "set", "system_" + DISABLED, "xml", before)
    assert "error" in vms[DISABLED] and DISABLED in vms[DISABLED]["error"]
    assert vms[DISABLED]["status"] == "Disabled" and "uuid" not in vms[DISABLED]
    assert "error" not in vms[STARTED] and "error" not in vms[STANDALONE]


def test_addresses_from_the_registry(tmp_path):
    registry = {"path": str(tmp_path / "addresses.db")}
    pool = lab.run_module({"name": "ivi", "cidr": "10.77.0.0/24", "registry": registry},
                          module="gridvirt.kvm.address_pool")
    assert not pool["failed"], pool.get("msg")
    given = lab.run_module({"vm": STANDALONE, "nic": 0, "pool": "ivi", "registry": registry},
                           module="gridvirt.kvm.address")
    assert not given["failed"], given.get("msg")
    vms = listed(vm_info(registry=registry, registry_addresses=True))
    assert [a["ip"] for a in vms[STANDALONE]["addresses"]] == [given["address"]["ip"]]
    assert vms[STARTED]["addresses"] == []


def test_bad_input_is_refused_with_a_sentence():
    for args, words in (({"name": "bad\nname"}, "VM name"),
                        ({"kinds": ["clusters"]}, "kinds"),
                        ({"connect_timeout": "forever"}, "connect_timeout")):
        result = lab.run_module(args, module="gridvirt.kvm.vm_info")
        assert result["failed"] and words in result["msg"], result.get("msg")
        assert lab.NO_TRACEBACK not in result["_stdout"] and "Traceback" not in result["msg"]
