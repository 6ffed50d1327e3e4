"""standalone_vm command=move between two nodes of the three-node lab, each with its own
libvirtd (qemu+tcp over the lab network): the VM arrives whole (the boot counter its disk
keeps goes on, same UUID, MACs, metadata, autostart and snapshots), nothing of it stays
behind, and a move that fails or is killed leaves the VM where it was, running, with nothing
of it at the destination."""
import json
import os
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import pytest

import cluster3 as c3
import lab
import site_hooks_lab as hooks

VM = "mv-a"
SRC, DST = "node2", "node3"


def uri(node):
    return "qemu+tcp://%s/system" % node


def virsh(node, *args, check=True):
    return c3.node_run(node, "virsh", "-c", "qemu:///system", *args, check=check).stdout


def domains(node):
    return virsh(node, "list", "--all", "--name").split()


def running(node):
    return virsh(node, "list", "--name").split()


def volumes(node, prefix=VM):
    out = virsh(node, "vol-list", "default", check=False)
    return sorted(line.split()[0] for line in out.splitlines()[2:]
                  if line.strip() and line.split()[0].startswith(prefix + "."))


def remove_everywhere():
    for node in (SRC, DST):
        result = c3.module(node, "gridvirt.kvm.standalone_vm", {"name": VM, "state": "absent"})
        assert not result.get("failed"), result
        for vol in volumes(node):
            virsh(node, "vol-delete", "--pool", "default", vol)
        # The boot markers of an earlier VM of that name would be taken for this one's.
        c3.node_run(node, "rm", "-f", "/var/log/libvirt/qemu/%s-serial.log" % VM)


def create_on_src(additional_disks):
    """mv-a running on node2 with a system disk, ``additional_disks`` and a snapshot,
    booted; -> standalone_vm's result."""
    remove_everywhere()
    result = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
        "name": VM, "state": "running", "xml": lab.guest_xml(VM),
        "system_image": lab.GUEST_IMAGE, "additional_disks": additional_disks,
        "autostart": True, "metadata": {"role": "mover"}})
    assert result.get("changed"), result
    c3.wait(lambda: c3.boots_on(SRC, VM), 180, "%s boot marker on %s" % (VM, SRC))
    snap = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
        "name": VM, "command": "create_snapshot", "snapshot_name": "before-move"})
    assert snap.get("changed"), snap
    return result


@pytest.fixture(scope="module")
def vm_on_src():
    """Shared by the refusals (which change nothing), then moved by the offline move test."""
    yield create_on_src(["16M"])
    remove_everywhere()


@pytest.fixture
def big_vm_on_src(tmp_path):
    """With a data disk of 192 MiB of random bytes: its copy lasts long enough to be cut."""
    data = tmp_path / "data.raw"
    with open(data, "wb") as handle:
        for _chunk in range(192):
            handle.write(os.urandom(1 << 20))
    os.chmod(tmp_path, 0o755)
    yield create_on_src([str(data)])
    remove_everywhere()


def move(node=SRC, to=DST, check=False):
    return c3.module(node, "gridvirt.kvm.standalone_vm", {
        "name": VM, "command": "move", "destination_uri": uri(to)}, check=check)


def state_of(node):
    return (domains(node), running(node), volumes(node))


def test_move_refused_before_the_vm_stops_when_the_destination_is_too_small(vm_on_src):
    """A destination pool without room for the disks: refused with a sentence while the VM
    still runs here; nothing made there."""
    pool_dir = "/var/lib/gridvirt-small-pool"
    c3.node_run(DST, "mkdir", "-p", pool_dir)
    c3.node_run(DST, "mount", "-t", "tmpfs", "-o", "size=1M,mode=0700", "tmpfs", pool_dir)
    virsh(DST, "pool-create-as", "small", "dir", "--target", pool_dir)
    try:
        result = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
            "name": VM, "command": "move", "destination_uri": uri(DST),
            "destination_pool": "small"})
        assert result.get("failed") and "free" in result["msg"], result
        assert VM in running(SRC) and VM not in domains(DST)
        assert virsh(DST, "vol-list", "small").count(VM) == 0
    finally:
        virsh(DST, "pool-destroy", "small", check=False)
        c3.node_run(DST, "umount", pool_dir, check=False)


def test_destination_libvirtd_down_leaves_the_vm_running_here(vm_on_src):
    """libvirtd of the destination does not answer: refused before the VM stops."""
    with open(os.path.join(c3.LAB_DIR, "nodes", DST, "run", "libvirtd.pid")) as handle:
        pid = int(handle.read())
    os.kill(pid, signal.SIGSTOP)
    try:
        result = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
            "name": VM, "command": "move", "destination_uri": uri(DST),
            "connect_timeout": 5})
    finally:
        os.kill(pid, signal.SIGCONT)
    assert result.get("failed") and DST in result["msg"], result
    assert VM in running(SRC) and VM not in domains(DST) and volumes(DST) == []


def test_live_move_of_a_vm_with_snapshots_is_refused(vm_on_src):
    result = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
        "name": VM, "command": "move", "destination_uri": uri(DST), "live": True})
    assert result.get("failed") and "before-move" in result["msg"], result
    assert "offline" in result["msg"]
    assert VM in running(SRC) and VM not in domains(DST) and volumes(DST) == []


def test_offline_move_takes_the_whole_vm_and_leaves_nothing(vm_on_src):
    before = {SRC: state_of(SRC), DST: state_of(DST)}
    boots_before = c3.boot_count(VM)

    predicted = move(check=True)
    assert predicted["changed"] and not predicted.get("failed"), predicted
    assert {SRC: state_of(SRC), DST: state_of(DST)} == before, "--check changed something"

    moved = move()
    assert moved["changed"] and not moved.get("failed"), moved
    assert moved["destination"] == DST and moved["node"] == DST
    assert moved["bytes_copied"] > 0 and moved["stopped_seconds"] > 0
    assert VM not in domains(SRC) and volumes(SRC) == []
    assert VM in running(DST)
    assert volumes(DST) == ["%s.disk0.qcow2" % VM, "%s.disk1.qcow2" % VM]
    # Its disk came along: the counter it keeps there goes on.
    c3.wait(lambda: c3.boots_on(DST, VM) == [boots_before + 1], 180,
            "%s boot %d on %s" % (VM, boots_before + 1, DST))

    status = c3.module(DST, "gridvirt.kvm.standalone_vm", {"name": VM, "command": "status"})
    assert status["uuid"] == vm_on_src["uuid"] and status["macs"] == vm_on_src["macs"]
    assert status["metadata"] == {"role": "mover"} and status["autostart"] is True
    assert status["restart_required"] is False
    snaps = c3.module(DST, "gridvirt.kvm.standalone_vm", {"name": VM,
                                                          "command": "list_snapshots"})
    assert snaps["list_snapshot"] == ["before-move"]

    again = move()
    assert not again.get("failed") and again["changed"] is False, again
    assert again["node"] == DST


def module_processes():
    """PIDs of standalone_vm module processes (in any node: they share this PID space)."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                if b"AnsiballZ_standalone_vm" in handle.read():
                    found.append(int(pid))
        except (OSError, ValueError):
            continue
    return found


def test_a_move_killed_during_the_copy_is_undone_and_the_rerun_moves_it(big_vm_on_src):
    boots_before = c3.boot_count(VM)
    copying = os.path.join(c3.LAB_DIR, "nodes", DST, "root", "var", "lib", "libvirt",
                           "images", "%s.disk1.qcow2" % VM)
    killed = []

    def kill_during_the_copy():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if os.path.exists(copying) and os.path.getsize(copying) > (16 << 20):
                for pid in module_processes():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_during_the_copy)
    killer.start()
    result = move()
    killer.join()
    assert killed and result.get("failed"), result
    # Killed: the VM is still here, stopped, with its disks; there, only the record and
    # the copies the next run removes.
    assert VM in domains(SRC) and VM not in running(SRC)
    assert volumes(SRC) == ["%s.disk0.qcow2" % VM, "%s.disk1.qcow2" % VM]
    assert VM not in domains(DST) and "%s.moving" % VM in volumes(DST)

    moved = move()
    assert moved["changed"] and not moved.get("failed"), moved
    assert VM not in domains(SRC) and volumes(SRC) == []
    assert VM in running(DST)
    assert volumes(DST) == ["%s.disk0.qcow2" % VM, "%s.disk1.qcow2" % VM]
    c3.wait(lambda: c3.boots_on(DST, VM) == [boots_before + 1], 180,
            "%s boot %d on %s" % (VM, boots_before + 1, DST))


@pytest.fixture
def vm_running_without_snapshots():
    remove_everywhere()
    result = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
        "name": VM, "state": "running", "xml": lab.guest_xml(VM),
        "system_image": lab.GUEST_IMAGE, "additional_disks": ["16M"]})
    assert result.get("changed"), result
    c3.wait(lambda: c3.last_tick(SRC, VM), 180, "%s ticking on %s" % (VM, SRC))
    yield result
    remove_everywhere()


def test_live_move_keeps_the_guest_running(vm_running_without_snapshots):
    tick_before, boot = c3.last_tick(SRC, VM)
    moved = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
        "name": VM, "command": "move", "destination_uri": uri(DST), "live": True})
    assert moved["changed"] and not moved.get("failed"), moved
    assert moved["node"] == DST and moved["paused_seconds"] is not None
    assert moved["bytes_copied"] > 0
    assert VM not in domains(SRC) and volumes(SRC) == []
    assert VM in running(DST)
    assert volumes(DST) == ["%s.disk0.qcow2" % VM, "%s.disk1.qcow2" % VM]
    # The same boot ticks on there: the guest never stopped.
    c3.wait(lambda: (c3.last_tick(DST, VM) or (0, 0))[0] > tick_before, 60,
            "%s ticking on %s" % (VM, DST))
    assert c3.last_tick(DST, VM)[1] == boot and c3.boots_on(DST, VM) == []
    status = c3.module(DST, "gridvirt.kvm.standalone_vm", {"name": VM, "command": "status"})
    assert status["uuid"] == vm_running_without_snapshots["uuid"]
    assert status["restart_required"] is False
    again = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
        "name": VM, "command": "move", "destination_uri": uri(DST), "live": True})
    assert again["changed"] is False and not again.get("failed"), again


# ---- the deploy playbook moves a VM whose hypervisor changed --------------------------------

def deploy(tmp_path, hypervisor, *extra):
    """deploy_vms_standalone.yaml for mv-a on ``hypervisor``: (returncode, output)."""
    inventory = {"all": {"children": {
        "hypervisors": {"vars": {"ansible_connection": "lab_node",
                                 "ansible_python_interpreter": "/usr/bin/python3"},
                        "hosts": dict((node, {}) for node in c3.nodes())},
        "standalone_VMs": {"hosts": {VM: {
            "hypervisor": hypervisor, "vm_disk": lab.GUEST_IMAGE, "domain_type": "qemu",
            "memory": 128, "serial_log": lab.SERIAL_LOG % VM, "metadata": {"role": "mover"},
            "migration_transport": "tcp"}}}}}}
    path = tmp_path / "hosts.yml"
    path.write_text(json.dumps(inventory))
    proc = subprocess.run(["ansible-playbook", "-i", str(path),
                           os.path.join(c3.REPO, "playbooks", "deploy_vms_standalone.yaml")]
                          + list(extra), cwd=c3.REPO, env=c3.ansible_env(),
                          capture_output=True, text=True, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def clean():
    remove_everywhere()
    yield
    remove_everywhere()


def test_deploy_moves_a_vm_whose_hypervisor_changed(clean, tmp_path):
    rc, out = deploy(tmp_path, SRC)
    assert rc == 0, out[-3000:]
    c3.wait(lambda: c3.boots_on(SRC, VM), 180, "%s boot marker on %s" % (VM, SRC))
    uuid = c3.module(SRC, "gridvirt.kvm.standalone_vm", {"name": VM, "command": "status"})["uuid"]

    # The VM arrives stopped and the role starts it there: the destination's own allocate and
    # preboot hooks run for that boot.
    with hooks.installed({("allocate", "10-record"): hooks.RECORDER,
                          ("preboot", "10-record"): hooks.RECORDER},
                         root=os.path.join(c3.LAB_DIR, "nodes", DST, "root")):
        rc, out = deploy(tmp_path, DST)
        assert rc == 0, out[-3000:]
        assert [(doc["vm"], doc["node"], doc["action"]) for doc in hooks.records("allocate")] \
            == [(VM, DST, "start")]
        preboot, = hooks.records("preboot")
        assert (preboot["vm"], preboot["node"], preboot["kind"]) == (VM, DST, "standalone")
    assert c3.recap(out)[VM]["changed"] > 0
    assert VM not in domains(SRC) and volumes(SRC) == []
    assert VM in running(DST) and volumes(DST) == ["%s.disk0.qcow2" % VM]
    # Moved, not deployed anew: its disk (boot counter) and UUID came along.
    c3.wait(lambda: c3.boots_on(DST, VM) == [2], 180, "%s boot 2 on %s" % (VM, DST))
    status = c3.module(DST, "gridvirt.kvm.standalone_vm", {"name": VM, "command": "status"})
    assert status["uuid"] == uuid

    rc, out = deploy(tmp_path, DST)
    assert rc == 0, out[-3000:]
    assert c3.recap(out)[VM]["changed"] == 0, out[-3000:]


def test_deploy_refuses_a_vm_defined_on_two_hypervisors(clean, tmp_path):
    rc, out = deploy(tmp_path, SRC)
    assert rc == 0, out[-3000:]
    # The same VM planted on DST too (its definition, stopped).
    planted = tmp_path / "planted.xml"
    planted.write_text(virsh(SRC, "dumpxml", "--inactive", VM))
    virsh(DST, "define", str(planted))
    before = {SRC: state_of(SRC), DST: state_of(DST)}
    rc, out = deploy(tmp_path, DST)
    assert rc != 0
    assert "%s: it is defined on %s and %s" % (VM, SRC, DST) in out, out[-3000:]
    assert {SRC: state_of(SRC), DST: state_of(DST)} == before
    virsh(DST, "undefine", VM)


# ---- a linked clone moves with its data; its base stays for the others ----------------------

BASE = "mv-base"


@pytest.fixture
def linked_clone_on_src():
    """mv-a, a linked clone of mv-base (running on node2), itself running."""
    remove_everywhere()
    c3.module(SRC, "gridvirt.kvm.standalone_vm", {"name": BASE, "state": "absent"})
    base = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
        "name": BASE, "state": "running", "xml": lab.guest_xml(BASE),
        "system_image": lab.GUEST_IMAGE})
    assert base.get("changed"), base
    clone = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
        "name": VM, "command": "clone", "src_name": BASE})
    assert clone.get("changed"), clone
    c3.wait(lambda: c3.last_tick(SRC, VM), 180, "%s ticking on %s" % (VM, SRC))
    yield clone
    remove_everywhere()
    c3.module(SRC, "gridvirt.kvm.standalone_vm", {"name": BASE, "state": "absent"})


def backing_of(node, vol):
    xml = virsh(node, "vol-dumpxml", "--pool", "default", vol)
    return ET.fromstring(xml).findtext("backingStore/path") or ""


@pytest.mark.parametrize("live", [False, True], ids=["offline", "live"])
def test_a_linked_clone_arrives_whole_and_its_base_stays(linked_clone_on_src, live):
    base_file = backing_of(SRC, "%s.disk0.qcow2" % VM)
    base_overlay = c3.module(SRC, "gridvirt.kvm.standalone_vm",
                             {"name": BASE, "command": "status"})["disks"][0]["path"]
    assert base_file and virsh(SRC, "vol-dumpxml", base_overlay).count(base_file) == 1
    moved = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
        "name": VM, "command": "move", "destination_uri": uri(DST), "live": live})
    assert moved["changed"] and not moved.get("failed"), moved
    assert volumes(DST) == ["%s.disk0.qcow2" % VM]
    assert backing_of(DST, "%s.disk0.qcow2" % VM) == ""
    assert VM in running(DST) and VM not in domains(SRC) and volumes(SRC) == []
    # Its data came along: it ticks on there (live: the same boot; offline: a new one).
    c3.wait(lambda: c3.last_tick(DST, VM), 180, "%s ticking on %s" % (VM, DST))
    # The base and its other user are untouched; no flat copy is left here.
    assert BASE in running(SRC)
    assert virsh(SRC, "vol-dumpxml", base_overlay).count(base_file) == 1
    assert os.path.exists(os.path.join(c3.LAB_DIR, "nodes", SRC, "root") + base_file)
    assert ".flat" not in virsh(SRC, "vol-list", "default")
