"""Cluster orchestration core on the lab's Ceph + Pacemaker + libvirt, with a guest that
really boots from RBD: create, idempotent rerun, check mode, stop/start, list, remove to the
trash, and failures that leave nothing behind."""
import subprocess

import pytest

import lab
from ansible_collections.gridvirt.kvm.plugins.module_utils import cluster as cl
from ansible_collections.gridvirt.kvm.plugins.module_utils.errors import VmError

VM = "hvcl1"
NEW = "hvcl2"
THIRD = "hvcl3"
SECRET = "5b1a8d2e-3c4f-4e6a-9b7d-1f0e2c3a4b5d"


def run(args, data=None, binary_data=False):
    proc = subprocess.run(args, input=data, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def request(check=False, **params):
    base = {"ceph_conf": "/etc/ceph/ceph.conf", "ceph_user": "libvirt",
            "keyring": "/etc/ceph/ceph.client.libvirt.keyring", "pool": "rbd",
            "namespace": None, "secret_uuid": SECRET}
    base.update(params)
    return cl.ClusterVm(base, check, run, lambda msg: None)


def vm_params(name=VM, **extra):
    params = {"xml": lab.guest_xml(name), "system_image": lab.GUEST_IMAGE,
              "additional_disks": ["16M"], "preferred_host": lab.node_name()}
    params.update(extra)
    return params


def fingerprint():
    """What a cluster call could change: RBD images and groups, the CIB's resources and
    constraints, the trash."""
    rbd = ["rbd", "--id", "libvirt", "--format", "json"]
    images = subprocess.run(rbd + ["ls"], capture_output=True, text=True, check=True).stdout
    groups = subprocess.run(rbd + ["group", "ls"], capture_output=True, text=True,
                            check=True).stdout
    trash = subprocess.run(rbd + ["trash", "ls"], capture_output=True, text=True,
                           check=True).stdout
    cib = subprocess.run(["cibadmin", "--query", "--scope", "configuration"],
                         capture_output=True, text=True, check=True).stdout
    return images, groups, trash, cib


def purge_test_vms():
    vm = request()
    try:
        for name in (VM, NEW, THIRD):
            vm.remove(name, purge=True)
        vm.store.purge_trash([n for n, _i in vm.store.trash_list() if "hvcl" in n])
    finally:
        vm.close()
    lab.remove_everything("hvcl")


@pytest.fixture(scope="module", autouse=True)
def clean():
    purge_test_vms()
    yield
    purge_test_vms()


def call(method, *args, check=False, **params):
    vm = request(check=check, **params)
    try:
        changed = getattr(vm, method)(*args) if args else getattr(vm, method)()
        return changed, vm
    finally:
        vm.close()


def test_create_boots_from_rbd_on_the_preferred_node():
    console = lab.Console(VM)
    changed, _vm = call("create", VM, **vm_params())
    assert changed is True
    status, node = request().status_of(VM)
    assert (status, node) == ("Started", lab.node_name())
    boot = console.wait_boot()
    assert boot["name"] == VM and boot["boot"] == 1 and boot["disks"] == ["vda", "vdb"]
    disks = lab.domain_xml(VM, inactive=False).findall("devices/disk/source")
    assert [d.get("name") for d in disks] == ["rbd/system_hvcl1", "rbd/data_hvcl1_1"]
    cib = fingerprint()[3]
    assert 'id="location-hvcl1-prefer-%s"' % lab.node_name() in cib


def test_create_again_changes_nothing():
    before = fingerprint()
    changed, vm = call("create", VM, **vm_params())
    assert changed is False and vm.changes == []
    assert fingerprint() == before


def test_check_mode_create_changes_nothing():
    before = fingerprint()
    changed, _vm = call("create", NEW, check=True, **vm_params(NEW))
    assert changed is True
    assert fingerprint() == before


def test_stop_and_start_through_pacemaker():
    console = lab.Console(VM)
    assert call("set_power", VM, "Stopped")[0] is True
    assert request().status_of(VM)[0] == "Stopped"
    assert "power button" in console.text()
    assert call("set_power", VM, "Stopped")[0] is False
    before = fingerprint()
    assert call("set_power", VM, "Started", check=True)[0] is True
    assert fingerprint() == before
    console.mark()
    assert call("set_power", VM, "Started")[0] is True
    assert console.wait_boot()["boot"] == 2


def test_list_vms_reads_everything_once():
    _changed, vm = call("list_vms")
    entry = [v for v in vm.result["vms"] if v["name"] == VM][0]
    assert entry == {"name": VM, "status": "Started", "node": lab.node_name()}
    assert VM in vm.result["list_vms"]


def test_disable_enable_keeps_placement():
    assert call("disable", VM)[0] is True
    assert request().status_of(VM) == ("Disabled", None)
    images, _groups, _trash, cib = fingerprint()
    assert 'id="hvcl1"' not in cib and "location-hvcl1" not in cib and "system_hvcl1" in images
    assert call("disable", VM)[0] is False
    console = lab.Console(VM)
    assert call("enable", VM)[0] is True
    assert request().status_of(VM) == ("Started", lab.node_name())
    assert 'id="location-hvcl1-prefer-%s"' % lab.node_name() in fingerprint()[3]
    assert console.wait_boot()["boot"] == 3
    assert call("enable", VM)[0] is False


def test_group_snapshot_rollback_restores_disks_state_and_constraints():
    changed, vm = call("create_snapshot", VM, "s1")
    assert changed is True and vm.result["list_snapshot"] == ["s1"]
    assert call("create_snapshot", VM, "s1")[0] is False
    before = fingerprint()
    assert call("create_snapshot", VM, "s2", check=True)[0] is True
    assert fingerprint() == before
    console = lab.Console(VM)
    call("set_power", VM, "Stopped")
    call("set_power", VM, "Started")
    assert console.wait_boot()["boot"] == 4
    console.mark()
    with pytest.raises(VmError) as err:
        call("rollback_snapshot", VM, "nosuch")
    assert err.value.msg == "VM hvcl1 has no snapshot nosuch."
    assert call("rollback_snapshot", VM, "s1")[0] is True
    # The snapshot holds the disk of boot 3: this boot is 4 again, not 5.
    assert console.wait_boot()["boot"] == 4
    assert request().status_of(VM) == ("Started", lab.node_name())
    assert 'id="location-hvcl1-prefer-%s"' % lab.node_name() in fingerprint()[3]


def test_purge_and_remove_snapshots():
    call("create_snapshot", VM, "s2")
    call("create_snapshot", VM, "s3")
    changed, vm = call("purge_image", VM, purge_number=1)
    assert changed is True and vm.result["purged"] == ["s1"]
    assert vm.result["list_snapshot"] == ["s2", "s3"]
    changed, vm = call("purge_image", VM, purge_keep=1)
    assert vm.result["purged"] == ["s2"]
    assert call("remove_snapshot", VM, "s3")[0] is True
    assert call("remove_snapshot", VM, "s3")[0] is False


def test_metadata_commands():
    assert call("set_metadata", VM, {"site": "lab"})[0] is True
    assert call("set_metadata", VM, {"site": "lab"})[0] is False
    _c, vm = call("get_metadata", VM, "site")
    assert vm.result["metadata_value"] == "lab"
    _c, vm = call("list_metadata", VM)
    assert {"xml", "_base_xml", "vm_name", "_disk_bus", "_preferred_host", "site"} <= set(
        vm.result["list_metadata"])
    for bad in ({"_x": "1"}, {"xml": "1"}, {"vm_name": "x"}):
        with pytest.raises(VmError):
            call("set_metadata", VM, bad)


def test_colocation_intent_survives_disable_enable():
    assert call("create", NEW, **vm_params(NEW, additional_disks=[]))[0] is True
    assert call("define_colocation", VM, [NEW], True)[0] is True
    cib = fingerprint()[3]
    assert 'id="colocation-hvcl1-hvcl2-strong"' in cib and 'score="INFINITY"' in cib
    _c, vm = call("get_metadata", VM, "_colocated_vms")
    assert vm.result["metadata_value"] == '{"hvcl2": "strong"}'
    assert call("define_colocation", VM, [NEW], True)[0] is False
    before = fingerprint()
    assert call("define_colocation", VM, [NEW], False, check=True)[0] is True
    assert fingerprint() == before
    call("disable", VM)
    assert "colocation-hvcl1" not in fingerprint()[3]
    call("enable", VM)
    assert 'id="colocation-hvcl1-hvcl2-strong"' in fingerprint()[3]
    assert call("define_colocation", VM, [NEW], False)[0] is True
    cib = fingerprint()[3]
    assert "colocation-hvcl1-hvcl2-strong" not in cib
    assert 'id="colocation-hvcl1-hvcl2-weak"' in cib
    for others, message in (([VM], "with itself"), (["hvclnone"], "does not exist"),
                            ([], "at least one VM")):
        with pytest.raises(VmError) as err:
            call("define_colocation", VM, others, True)
        assert message in err.value.msg


def test_unknown_host_fails_before_any_change():
    before = fingerprint()
    with pytest.raises(VmError) as err:
        call("create", THIRD, **vm_params(THIRD, preferred_host="nosuchnode"))
    assert "preferred_host nosuchnode is not a node of the cluster" in err.value.msg
    assert fingerprint() == before


def test_failed_create_removes_what_it_created():
    before = fingerprint()
    bad = lab.guest_xml(THIRD).replace("<vcpu>1</vcpu>", "<vcpu>1</vcpu><bogus/>")
    with pytest.raises(VmError) as err:
        call("create", THIRD, **vm_params(THIRD, xml=bad))
    assert "does not pass libvirt's schema" in err.value.msg
    assert fingerprint() == before


def test_remove_moves_disks_to_the_trash_and_is_idempotent():
    changed, _vm = call("remove", VM)
    assert changed is True
    assert request().status_of(VM) == ("Undefined", None)
    images, groups, trash, cib = fingerprint()
    assert "hvcl1" not in images and "hvcl1" not in groups and 'id="hvcl1"' not in cib
    assert "location-hvcl1" not in cib
    assert "system_hvcl1" in trash and "data_hvcl1_1" in trash
    assert call("remove", VM)[0] is False
