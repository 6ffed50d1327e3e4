"""The Rocks KVM roll's `cdrom` attribute through deploy_vms_standalone.yaml: with it the VM
boots the lab's CD-ROM image first (its guest says "boot medium=cdrom" on the serial console),
the boot order being CD-ROM, network, disk; without it the disk boots. A changed CD-ROM takes
effect at the next power-off and start, and until then the VM's status says
restart_required."""
import os

import deploy_lab
import lab

PREFIX = "irc"
VM = PREFIX + "1"
ISO = lab.GUEST_IMAGE[:-len(".qcow2")] + "-cdrom.iso"
VM_VARS = {"vm_disk": lab.GUEST_IMAGE, "domain_type": "qemu", "memory": 128,
           "hypervisor": lab.HOST, "serial_log": lab.SERIAL_LOG % VM}

clean = lab.cleanup_fixture(PREFIX)


def boot_order():
    return [boot.get("dev") for boot in lab.domain_xml(VM).findall("os/boot")]


def cdroms():
    return [disk.find("source").get("file")
            for disk in lab.domain_xml(VM).findall("devices/disk[@device='cdrom']")]


def status():
    result = lab.run_module({"name": VM, "command": "status"})
    assert not result["failed"], result
    return result


def test_the_cdrom_boots_first_and_leaves_at_the_next_power_cycle():
    assert os.path.exists(ISO), "the lab's CD-ROM image: make image"
    console = lab.Console(VM)
    deploy_lab.deploy("standalone", {VM: dict(VM_VARS, cdrom=ISO)})
    console.wait_for(r"gridvirt-guest: boot medium=cdrom")
    assert boot_order() == ["cdrom", "network", "hd"] and cdroms() == [ISO]
    again = deploy_lab.deploy("standalone", {VM: dict(VM_VARS, cdrom=ISO)})
    assert deploy_lab.changed_per_host(again)[VM] == 0
    # Without it: the stored definition boots the disk; the running guest keeps its CD-ROM
    # until it is powered off and started again, and its status says so.
    deploy_lab.deploy("standalone", {VM: VM_VARS})
    assert boot_order() == ["hd"] and cdroms() == []
    assert status()["restart_required"] is True
    console.mark()
    for state in ("stopped", "running"):
        result = lab.run_module({"name": VM, "state": state})
        assert not result["failed"] and result["changed"], result
    console.wait_for(r"gridvirt-guest: boot medium=disk")
    assert status()["restart_required"] is False
