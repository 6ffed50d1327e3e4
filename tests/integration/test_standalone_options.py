"""standalone_vm options beyond the basic life: SCSI disks, disks added later, autostart,
edits made behind Ansible's back, and SEAPATH-style create/stop/status verbs."""
import os

import libvirt

import lab

PREFIX = "ito"
VM = PREFIX + "vm1"


def args(**extra):
    base = {"name": VM, "state": "present", "xml": lab.guest_xml(VM),
            "system_image": lab.GUEST_IMAGE, "disk_bus": "scsi"}
    base.update(extra)
    return base


clean_lab = lab.cleanup_fixture(PREFIX)


def test_present_defines_without_starting():
    result = lab.run_module(args())
    assert result["changed"] is True and result["status"] == "Stopped"
    assert [d["target"] for d in result["disks"]] == ["sda"]
    assert lab.run_module(args())["changed"] is False


def test_additional_disk_added_later_is_created_and_attached():
    before = lab.fingerprint()
    check = lab.run_module(args(additional_disks=["32M"]), check=True)
    assert check["changed"] is True and lab.fingerprint() == before
    result = lab.run_module(args(additional_disks=["32M"]))
    assert result["changed"] is True
    assert [d["target"] for d in result["disks"]] == ["sda", "sdb"]
    assert os.path.isfile(os.path.join(lab.POOL_DIR, VM + ".disk1.qcow2"))
    assert lab.run_module(args(additional_disks=["32M"]))["changed"] is False
    # A shorter list never removes a disk; it warns.
    shorter = lab.run_module(args(additional_disks=[]))
    assert shorter["changed"] is False and len(shorter["disks"]) == 2
    assert "disks are never removed" in shorter["_stderr"]


def test_autostart_is_idempotent_and_check_mode_safe():
    before = lab.fingerprint()
    assert lab.run_module(args(additional_disks=["32M"], autostart=True),
                          check=True)["changed"] is True
    assert lab.fingerprint() == before
    result = lab.run_module(args(additional_disks=["32M"], autostart=True))
    assert result["changed"] is True and result["autostart"] is True
    assert lab.run_module(args(additional_disks=["32M"], autostart=True))["changed"] is False


def test_scsi_guest_boots_with_both_disks():
    console = lab.Console(VM)
    result = lab.run_module({"name": VM, "command": "create", "xml": lab.guest_xml(VM),
                             "system_image": lab.GUEST_IMAGE})
    assert result["changed"] is True and result["status"] == "Started"
    assert result["changes"] == ["started VM %s" % VM]
    boot = console.wait_boot()
    assert boot["disks"] == ["sda", "sdb"] and boot["boot"] == 1


def test_edit_behind_our_back_is_noticed_and_corrected():
    conn = lab.conn()
    try:
        dom = conn.lookupByName(VM)
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).replace(
            "<vcpu placement='static'>1</vcpu>", "<vcpu placement='static'>2</vcpu>")
        assert "<vcpu placement='static'>2</vcpu>" in xml
        conn.defineXML(xml)
    finally:
        conn.close()
    result = lab.run_module(args(additional_disks=["32M"], autostart=True, state="running"),
                            diff=True)
    assert result["changed"] is True
    assert result["changes"] == ["redefined VM %s (edited outside Ansible)" % VM]
    assert lab.domain_xml(VM).findtext("vcpu") == "1"
    again = lab.run_module(args(additional_disks=["32M"], autostart=True, state="running"))
    assert again["changed"] is False


def test_seapath_stop_and_status_verbs():
    result = lab.run_module({"guest": VM, "command": "stop", "force": True})
    assert result["changed"] is True and result["stop"] == "forced"
    assert lab.run_module({"name": VM, "command": "stop"})["changed"] is False
    status = lab.run_module({"name": VM, "command": "status"})
    assert status["status"] == "Stopped" and status["changed"] is False
    missing = lab.run_module({"name": PREFIX + "none", "command": "status"})
    assert missing["status"] == "Undefined" and missing["changed"] is False
    listed = lab.run_module({"command": "list_vms"})
    assert VM in listed["list_vms"]
    assert {"name": VM, "status": "Stopped"}.items() <= [
        vm for vm in listed["vms"] if vm["name"] == VM][0].items()
