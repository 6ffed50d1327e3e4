"""Standalone VMs across the host's shutdown and boot, as the hypervisor role configures them
(hypervisor_guests_on_shutdown: save, applied to the lab by make lab-up): the distribution's
libvirt-guests saves the running VMs at a clean shutdown, libvirtd's start resumes the
autostart ones where they were, and gridvirt's fallback boots afresh one whose saved state
does not restore. No systemd here: the test runs what the host's shutdown and boot run, the
same scripts, and stops and starts the lab's libvirtd by its PID as the host would.

A transient domain stands for a cluster VM (the resource agent runs them transient):
libvirt-guests never saves it."""
import os
import re
import signal
import subprocess
import time

import pytest
from lxml import etree

import lab

PREFIX = "igs"
AUTO, MANUAL, TRANSIENT = PREFIX + "auto", PREFIX + "manual", PREFIX + "cluster"
LIBVIRT_GUESTS = "/usr/lib/libvirt/libvirt-guests.sh"
FALLBACK = "/usr/libexec/gridvirt/guests-fallback"
RUN_DIR = os.path.join(os.environ.get("LAB_DIR", os.path.join(lab.REPO, ".lab")), "nodes",
                       "local", "run")
TICK_RE = r"alive tick=(\d+) boot=(\d+)"
AUTOSTARTED = "/run/libvirt/qemu/autostarted"

clean = lab.cleanup_fixture(PREFIX)


def run(*argv):
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, "%s: %s%s" % (" ".join(argv), proc.stdout, proc.stderr)
    return proc.stdout


def libvirtd_pid():
    with open(os.path.join(RUN_DIR, "libvirtd.pid")) as handle:
        return int(handle.read().strip())


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def stop_libvirtd(sig=signal.SIGTERM):
    pid = libvirtd_pid()
    os.kill(pid, sig)
    deadline = time.monotonic() + 60
    while not gone(pid):
        assert time.monotonic() < deadline, "libvirtd %d still runs" % pid
        time.sleep(0.1)


def boot_host():
    """What the host's boot runs: libvirtd (which starts the autostart VMs), libvirt-guests,
    then the fallback -> its output. libvirtd autostarts once per boot, which it records in
    /run (a tmpfs, empty at boot): that record goes first."""
    if os.path.exists(AUTOSTARTED):
        os.unlink(AUTOSTARTED)
    run(os.path.join(lab.REPO, "lab", "lab.sh"), "up", "libvirt")
    run(LIBVIRT_GUESTS, "start")
    return run(FALLBACK, lab.URI)


def managed_save(vm):
    c = lab.conn()
    try:
        return bool(c.lookupByName(vm).hasManagedSaveImage(0))
    finally:
        c.close()


def destroy(vm):
    c = lab.conn()
    try:
        c.lookupByName(vm).destroy()
    finally:
        c.close()


def running(vm):
    return lab.domain_state(vm) == lab.libvirt.VIR_DOMAIN_RUNNING


def last_tick(console):
    ticks = re.findall(TICK_RE, console.text())
    assert ticks, console.text()[-500:]
    return int(ticks[-1][0]), int(ticks[-1][1])


def qemu_pid(vm):
    with open("/run/libvirt/qemu/%s.pid" % vm) as handle:
        return int(handle.read().strip())


@pytest.fixture(scope="module")
def consoles():
    """AUTO (autostart) and MANUAL running as standalone VMs, TRANSIENT as a cluster VM runs."""
    consoles = {}
    for vm, autostart in ((AUTO, True), (MANUAL, False)):
        consoles[vm] = lab.Console(vm)
        result = lab.run_module({"name": vm, "state": "running", "autostart": autostart,
                                 "xml": lab.guest_xml(vm, nics=0),
                                 "system_image": lab.GUEST_IMAGE})
        assert not result["failed"], result
    # No disk: it need not boot, only run, as a transient domain.
    root = etree.fromstring(lab.guest_xml(TRANSIENT, nics=0))
    etree.SubElement(root, "name").text = TRANSIENT
    c = lab.conn()
    try:
        c.createXML(etree.tostring(root, encoding="unicode"), 0)
    finally:
        c.close()
    for console in consoles.values():
        console.wait_boot()
    return consoles


def test_a_clean_shutdown_saves_and_the_boot_resumes_the_autostart_vm(consoles):
    auto = consoles[AUTO]
    tick_before, boot = last_tick(auto)
    run(LIBVIRT_GUESTS, "stop")
    assert managed_save(AUTO) and managed_save(MANUAL)
    assert not running(AUTO) and not running(MANUAL)
    # The cluster VM is left to Pacemaker: neither saved nor stopped by libvirt-guests.
    assert running(TRANSIENT)
    destroy(TRANSIENT)
    stop_libvirtd()
    auto.mark()
    said = boot_host()
    assert "booting it afresh" not in said
    assert running(AUTO) and not managed_save(AUTO)
    # Resumed, not booted: the ticks go on from where they were, with the same boot count.
    auto.wait_for(r"alive tick=%d " % (tick_before + 2), timeout=60)
    assert "booted" not in auto.text()
    assert last_tick(auto)[1] == boot
    # Without autostart it stays off, its saved state kept for its next start.
    assert not running(MANUAL) and managed_save(MANUAL)


def test_a_hard_power_loss_boots_the_autostart_vm_again(consoles):
    auto = consoles[AUTO]
    _tick, boot = last_tick(auto)
    auto.mark()
    os.kill(qemu_pid(AUTO), signal.SIGKILL)
    stop_libvirtd(signal.SIGKILL)
    # A power loss empties /run: libvirtd finds no record of the VM running.
    for suffix in (".xml", ".pid"):
        path = "/run/libvirt/qemu/%s%s" % (AUTO, suffix)
        if os.path.exists(path):
            os.unlink(path)
    boot_host()
    marker = auto.wait_boot()
    assert marker["name"] == AUTO and marker["boot"] == boot + 1
    assert not running(MANUAL)


def test_a_saved_state_that_does_not_restore_falls_back_to_a_boot(consoles):
    auto = consoles[AUTO]
    auto.wait_for(r"alive tick=2 ")
    _tick, boot = last_tick(auto)
    run(LIBVIRT_GUESTS, "stop")
    assert managed_save(AUTO)
    save = "/var/lib/libvirt/qemu/save/%s.save" % AUTO
    # The header stays, the guest's memory behind it is gone: libvirt reads the file, QEMU
    # cannot load it.
    with open(save, "r+b") as handle:
        handle.truncate(64 * 1024)
    stop_libvirtd()
    auto.mark()
    # libvirtd could not restore it and left it off, its save kept: the fallback boots it.
    assert "%s could not be restored from its saved state: booting it afresh" % AUTO in boot_host()
    marker = auto.wait_boot()
    assert marker["boot"] == boot + 1
    assert running(AUTO) and not managed_save(AUTO)
