"""standalone_vm against the lab's libvirtd: the life of a VM, with guests that really boot.

The steps run in file order and share the VMs they create (one module-scoped lab setup);
each step asserts what a user would notice: changed flags, the guest's serial console,
files in the pool, and the definition libvirt holds.
"""
import os

import libvirt
import pytest

import lab

PREFIX = "itl"
VM = PREFIX + "vm1"
CLONE = PREFIX + "lnk1"
FULL = PREFIX + "full1"
NEW = PREFIX + "new1"


def vm_args(name=VM, **extra):
    args = {"name": name, "state": "running", "xml": lab.guest_xml(name),
            "system_image": lab.GUEST_IMAGE, "additional_disks": ["64M"]}
    args.update(extra)
    return args


clean_lab = lab.cleanup_fixture(PREFIX)


@pytest.fixture(scope="module")
def console():
    return lab.Console(VM)


def test_create_boots_from_pool_volume(console):
    result = lab.run_module(vm_args())
    assert result["changed"] is True, result
    assert result["status"] == "Started"
    paths = [d["path"] for d in result["disks"]]
    assert paths == [os.path.join(lab.POOL_DIR, VM + ".disk0.qcow2"),
                     os.path.join(lab.POOL_DIR, VM + ".disk1.qcow2")]
    assert all(os.path.isfile(p) for p in paths)
    boot = console.wait_boot()
    assert boot["name"] == VM
    assert boot["uuid"] == result["uuid"]
    assert boot["boot"] == 1
    assert boot["disks"] == ["vda", "vdb"]


def test_rerun_reports_no_change():
    before = lab.fingerprint()
    result = lab.run_module(vm_args())
    assert result["changed"] is False, result["changes"]
    assert lab.fingerprint() == before


def test_uuid_and_macs_are_stable_across_definitions():
    first = lab.run_module({"name": VM, "command": "status"})
    xml = lab.domain_xml(VM)
    assert xml.findtext("uuid") == first["uuid"]
    assert [m.get("address") for m in xml.findall("devices/interface/mac")] == first["macs"]
    assert first["macs"][0].startswith("52:54:00:")


def test_check_mode_on_a_new_vm_changes_nothing():
    before = lab.fingerprint()
    result = lab.run_module(vm_args(NEW), check=True, diff=True)
    assert result["changed"] is True
    assert "created VM %s" % NEW in result["changes"]
    assert NEW not in lab.domain_names()
    assert not [f for f in lab.pool_files() if f.startswith(NEW)]
    assert lab.fingerprint() == before


def test_check_mode_predicts_memory_update_without_doing_it():
    before = lab.fingerprint()
    result = lab.run_module(vm_args(memory=256), check=True, diff=True)
    assert result["changed"] is True
    assert "+  <memory unit=\"KiB\">262144</memory>" in result["_stdout"]
    assert lab.fingerprint() == before


def test_memory_update_in_place_with_diff(console):
    result = lab.run_module(vm_args(memory=256), diff=True)
    assert result["changed"] is True
    assert result["restart_required"] is True
    assert "-  <memory unit=\"KiB\">131072</memory>" in result["_stdout"]
    assert "+  <memory unit=\"KiB\">262144</memory>" in result["_stdout"]
    assert lab.domain_xml(VM).findtext("memory") == "262144"
    assert lab.domain_xml(VM, inactive=False).findtext("memory") == "131072"
    disks = [d["path"] for d in result["disks"]]
    assert disks[0].endswith(VM + ".disk0.qcow2"), "the disk must not be re-imported"
    again = lab.run_module(vm_args(memory=256))
    assert again["changed"] is False, again["changes"]


def test_apply_restart_applies_the_new_definition(console):
    console.mark()
    # A metadata-only change needs no restart, but the memory change of the previous step
    # is still pending: the guest runs with the memory it booted with.
    result = lab.run_module(vm_args(memory=256, metadata={"a": "1"}))
    assert result["changed"] is True
    assert result["changes"] == ["metadata of VM %s" % VM]
    assert result["restart_required"] is True
    result = lab.run_module(vm_args(memory=192, metadata={"a": "1"}, apply="restart"))
    assert result["restart_required"] is False
    assert any("restarted" in c for c in result["changes"])
    assert console.wait_boot()["boot"] == 2
    assert lab.domain_xml(VM, inactive=False).findtext("memory") == str(192 * 1024)
    again = lab.run_module(vm_args(memory=192, metadata={"a": "1"}, apply="restart"))
    assert again["changed"] is False and again["restart_required"] is False


def test_graceful_stop_then_rerun_is_unchanged(console):
    result = lab.run_module(vm_args(memory=192, metadata={"a": "1"}, state="stopped"))
    assert result["changed"] is True
    assert result["status"] == "Stopped"
    assert result["stop"] == "graceful"
    assert "power button" in console.text()
    assert lab.domain_state(VM) == libvirt.VIR_DOMAIN_SHUTOFF
    again = lab.run_module(vm_args(memory=192, metadata={"a": "1"}, state="stopped"))
    assert again["changed"] is False


def test_start_increments_the_boot_counter(console):
    console.mark()
    result = lab.run_module({"name": VM, "command": "start"})
    assert result["changed"] is True and result["status"] == "Started"
    assert console.wait_boot()["boot"] == 3


def test_snapshot_is_idempotent_and_check_mode_creates_none():
    result = lab.run_module({"name": VM, "command": "create_snapshot", "snapshot_name": "s1"})
    assert result["changed"] is True
    assert result["list_snapshot"] == ["s1"]
    again = lab.run_module({"name": VM, "command": "create_snapshot", "snapshot_name": "s1"})
    assert again["changed"] is False
    before = lab.fingerprint()
    check = lab.run_module({"name": VM, "command": "create_snapshot", "snapshot_name": "s2"},
                           check=True)
    assert check["changed"] is True
    assert lab.fingerprint() == before


def test_rollback_restores_every_disk_and_power_state(console):
    console.mark()
    lab.run_module({"name": VM, "state": "stopped"})
    lab.run_module({"name": VM, "state": "running"})
    assert console.wait_boot()["boot"] == 4
    console.mark()
    before = lab.fingerprint()
    check = lab.run_module({"name": VM, "command": "rollback_snapshot", "snapshot_name": "s1"},
                           check=True)
    assert check["changed"] is True and lab.fingerprint() == before
    result = lab.run_module({"name": VM, "command": "rollback_snapshot", "snapshot_name": "s1"})
    assert result["changed"] is True
    assert result["status"] == "Started"
    # The snapshot was taken at boot 3: the disk is back there, so this boot is 4 again.
    assert console.wait_boot()["boot"] == 4


def test_purge_by_number_keep_and_date():
    for snap in ("p1", "p2", "p3"):
        lab.run_module({"name": VM, "command": "create_snapshot", "snapshot_name": snap})
    result = lab.run_module({"name": VM, "command": "purge_image", "purge_number": 1})
    assert result["purged"] == ["s1"]
    assert result["list_snapshot"] == ["p1", "p2", "p3"]
    result = lab.run_module({"name": VM, "command": "purge_image", "purge_keep": 2})
    assert result["purged"] == ["p1"]
    result = lab.run_module({"name": VM, "command": "purge_image",
                             "purge_date": {"date": "2000-01-01", "time": "00:00"}})
    assert result["changed"] is False and result["purged"] == []
    result = lab.run_module({"name": VM, "command": "purge_image",
                             "purge_date": {"iso_8601": "2999-01-01T00:00:00+01:00"}},
                            check=True)
    assert result["changed"] is True and result["purged"] == ["p2", "p3"]
    assert lab.run_module({"name": VM, "command": "list_snapshots"})["list_snapshot"] == [
        "p2", "p3"]
    result = lab.run_module({"name": VM, "command": "purge_image"})
    assert result["purged"] == ["p2", "p3"] and result["list_snapshot"] == []


def test_metadata_commands():
    result = lab.run_module({"name": VM, "command": "set_metadata",
                             "metadata": {"role": "web", "site": "lab"}})
    assert result["changed"] is True
    assert result["metadata"] == {"a": "1", "role": "web", "site": "lab"}
    assert lab.run_module({"name": VM, "command": "set_metadata",
                           "metadata": {"role": "web"}})["changed"] is False
    assert lab.run_module({"name": VM, "command": "list_metadata"})["list_metadata"] == [
        "a", "role", "site"]
    got = lab.run_module({"name": VM, "command": "get_metadata", "metadata_name": "site"})
    assert got["metadata_value"] == "lab" and got["changed"] is False


def test_linked_clone_boots_and_source_keeps_its_data(console):
    clone_console = lab.Console(CLONE)
    result = lab.run_module({"name": CLONE, "command": "clone", "src_name": VM,
                             "xml": lab.guest_xml(CLONE)})
    assert result["changed"] is True
    source = lab.run_module({"name": VM, "command": "status"})
    assert result["uuid"] != source["uuid"]
    assert result["macs"] and not set(result["macs"]) & set(source["macs"])
    clone_disk = result["disks"][0]["path"]
    base = lab.backing_file(clone_disk)
    assert base == os.path.join(lab.POOL_DIR, VM + ".disk0.qcow2")
    boot = clone_console.wait_boot()
    assert boot["name"] == CLONE and boot["boot"] == 5  # the source's disk said 4
    # The source keeps running on its own overlay; its counter goes on from its own value.
    console.mark()
    lab.run_module({"name": VM, "state": "stopped"})
    lab.run_module({"name": VM, "state": "running"})
    assert console.wait_boot()["boot"] == 5
    assert lab.run_module({"name": CLONE, "command": "clone", "src_name": VM})["changed"] is False
    rerun = lab.run_module(vm_args(memory=192, metadata={"a": "1", "role": "web",
                                                         "site": "lab"}))
    assert rerun["changed"] is False, rerun["changes"]


def test_full_clone_is_independent():
    full_console = lab.Console(FULL)
    result = lab.run_module({"name": FULL, "command": "clone", "src_name": VM, "full": True,
                             "xml": lab.guest_xml(FULL)})
    assert result["changed"] is True
    assert [lab.backing_file(d["path"]) for d in result["disks"]] == [None, None]
    boot = full_console.wait_boot()
    assert boot["name"] == FULL and boot["boot"] == 6


def test_remove_deletes_only_that_vm():
    others = [f for f in lab.pool_files() if not f.startswith(CLONE)]
    result = lab.run_module({"name": CLONE, "state": "absent"}, diff=True)
    assert result["changed"] is True
    assert CLONE not in lab.domain_names()
    assert not [f for f in lab.pool_files() if f.startswith(CLONE)]
    # The base the clone shared stays: the source still runs on top of it.
    assert lab.pool_files() == others
    assert lab.domain_state(VM) == libvirt.VIR_DOMAIN_RUNNING
    assert lab.domain_state(FULL) == libvirt.VIR_DOMAIN_RUNNING


def test_check_mode_absent_changes_nothing():
    before = lab.fingerprint()
    result = lab.run_module({"name": VM, "state": "absent"}, check=True)
    assert result["changed"] is True
    assert lab.fingerprint() == before


def test_remove_source_deletes_its_base_and_rerun_is_unchanged():
    result = lab.run_module({"name": VM, "command": "remove"})
    assert result["changed"] is True and result["status"] == "Undefined"
    assert not [f for f in lab.pool_files() if f.startswith(VM + ".")]
    assert lab.domain_state(FULL) == libvirt.VIR_DOMAIN_RUNNING
    again = lab.run_module({"name": VM, "state": "absent"})
    assert again["changed"] is False
    assert lab.run_module({"name": FULL, "state": "absent"})["changed"] is True
    assert not [f for f in lab.pool_files() if f.startswith(PREFIX)]
