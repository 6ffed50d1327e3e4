"""Figures of standalone_vm's moves between two nodes of the three-node lab (run by
benchmarks/ha.py while the three nodes are up).

  * offline move of a running VM whose data disk holds MOVE_DATA_MIB of random bytes, node2
    to node3: the whole module task, and the seconds the guest was stopped, against a plain
    copy of the same volumes between the same two libvirtd (`virsh vol-download --sparse` to a
    file, then `vol-upload --sparse`);
  * live move of the same VM back: the whole task, libvirt's figure of the pause, and the
    pause seen by the guest (the longest gap between its one-per-second ticks, less 1 s);
  * cluster_vm command=import of a running standalone VM of node2 (same disks) by node1, the
    whole task until the cluster VM is Started, against `rbd import` of the same volume files
    on node2 (no conversion, no VM: the bare copy into RBD).
"""
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "multinode"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import cluster3 as c3  # noqa: E402  (the three-node tests' helpers)
import lab  # noqa: E402  (the test guest's XML and image)

VM = "bench-mv"
IMPORTED = "bench-imp"
SRC, DST = "node2", "node3"
DATA_MIB = int(os.environ.get("BENCH_MOVE_DATA_MIB", "256"))
RUNS = int(os.environ.get("BENCH_MOVES", "3"))


def virsh(node, *args):
    return c3.node_run(node, "virsh", "-c", "qemu:///system", *args, timeout=600).stdout


def vm_module(node, args):
    start = time.monotonic()
    result = c3.module(node, "gridvirt.kvm.standalone_vm", dict(args, name=VM))
    assert not result.get("failed"), result
    return time.monotonic() - start, result


def forget_serial_logs(vm):
    """Without its earlier boots' ticks, a wait for a tick waits for this boot's (a move
    started before the guest listens to the power button would wait for its stop_timeout)."""
    for node in c3.nodes():
        c3.node_run(node, "rm", "-f", "/var/log/libvirt/qemu/%s-serial.log" % vm)


def remove():
    for node in (SRC, DST):
        vm_module(node, {"state": "absent"})
    forget_serial_logs(VM)


def create(data_path):
    remove()
    vm_module(SRC, {"state": "running", "xml": lab.guest_xml(VM),
                    "system_image": lab.GUEST_IMAGE, "additional_disks": [data_path]})
    c3.wait(lambda: c3.last_tick(SRC, VM), 180, "%s ticking" % VM)


def move(source, target, live):
    return vm_module(source, {"command": "move", "live": live,
                              "destination_uri": "qemu+tcp://%s/system" % target})


def plain_copy(source, target, tmp):
    """The VM's volumes copied from source to target by virsh, through a local file."""
    volumes = [line.split()[0] for line in virsh(source, "vol-list", "default").splitlines()[2:]
               if line.strip() and line.split()[0].startswith(VM + ".")]
    start = time.monotonic()
    for vol in volumes:
        path = os.path.join(tmp, vol)
        virsh(source, "vol-download", "--pool", "default", "--sparse", vol, path)
        size = os.path.getsize(path)
        copy = "copy-" + vol
        virsh(target, "vol-create-as", "default", copy, str(size), "--format", "raw")
        virsh(target, "vol-upload", "--pool", "default", "--sparse", copy, path)
    seconds = time.monotonic() - start
    for vol in volumes:
        virsh(target, "vol-delete", "--pool", "default", "copy-" + vol)
        os.unlink(os.path.join(tmp, vol))
    return seconds


def one_round(data_path, tmp):
    create(data_path)
    offline_task, offline = move(SRC, DST, False)
    c3.wait(lambda: c3.last_tick(DST, VM), 180, "%s ticking on %s" % (VM, DST))
    copy = plain_copy(DST, SRC, tmp)
    watcher = c3.TickWatcher(VM, DST)
    watcher.start()
    c3.wait(lambda: len(watcher.arrivals) >= 2, 120, "%s ticking on %s" % (VM, DST))
    live_task, live = move(DST, SRC, True)
    after = len(watcher.arrivals)
    c3.wait(lambda: len(watcher.arrivals) >= after + 2, 120, "%s ticking on %s" % (VM, SRC))
    watcher.stopped.set()
    watcher.join()
    return {"offline task": offline_task, "offline stopped": offline["stopped_seconds"],
            "plain copy": copy, "bytes": offline["bytes_copied"], "live task": live_task,
            "live paused (libvirt)": live["paused_seconds"],
            "live pause (ticks)": max(watcher.longest_gap() - 1.0, 0.0)}


def volume_paths(node, vm):
    lines = virsh(node, "vol-list", "default").splitlines()[2:]
    return [line.split()[1] for line in lines
            if line.strip() and line.split()[0].startswith(vm + ".")]


def remove_imported():
    c3.module(SRC, "gridvirt.kvm.standalone_vm", {"name": IMPORTED, "state": "absent"})
    result = c3.module("node1", "gridvirt.kvm.cluster_vm",
                       {"name": IMPORTED, "state": "absent", "purge": True})
    assert not result.get("failed"), result
    forget_serial_logs(IMPORTED)


def rbd_import(paths):
    start = time.monotonic()
    for index, path in enumerate(paths):
        c3.node_run(SRC, "rbd", "--id", "libvirt", "import", path,
                    "bench-plain-%d" % index, timeout=600)
    seconds = time.monotonic() - start
    for index in range(len(paths)):
        c3.node_run(SRC, "rbd", "--id", "libvirt", "rm", "--no-progress",
                    "bench-plain-%d" % index, timeout=600)
    return seconds


def import_round(data_path):
    remove_imported()
    result = c3.module(SRC, "gridvirt.kvm.standalone_vm", {
        "name": IMPORTED, "state": "running", "xml": lab.guest_xml(IMPORTED),
        "system_image": lab.GUEST_IMAGE, "additional_disks": [data_path]})
    assert result.get("changed"), result
    c3.wait(lambda: c3.last_tick(SRC, IMPORTED), 180, "%s ticking" % IMPORTED)
    plain = rbd_import(volume_paths(SRC, IMPORTED))
    start = time.monotonic()
    result = c3.module("node1", "gridvirt.kvm.cluster_vm", {
        "name": IMPORTED, "command": "import", "src_uri": "qemu+tcp://%s/system" % SRC})
    task = time.monotonic() - start
    assert result.get("changed") and result["status"] == "Started", result
    remove_imported()
    return {"import task": task, "rbd import": plain}


def move_figures():
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        data_path = os.path.join(tmp, "data.raw")
        with open(data_path, "wb") as handle:
            for _mib in range(DATA_MIB):
                handle.write(os.urandom(1 << 20))
        runs = [dict(one_round(data_path, tmp), **import_round(data_path))
                for _run in range(RUNS)]
    remove()
    return {"runs": runs, "median": dict((key, statistics.median(r[key] for r in runs))
                                         for key in runs[0])}


def report_moves(figures):
    moves = figures.get("ha", {}).get("moves")
    if not moves:
        return []
    med = moves["median"]
    return ["", "## standalone_vm moves between two nodes (median of %d; a running VM, "
            "%d MiB of random data on its data disk)" % (len(moves["runs"]), DATA_MIB), "",
            "| figure | seconds |", "|---|---|",
            "| offline move task (ansible included) | %.1f |" % med["offline task"],
            "| guest stopped by the offline move | %.1f |" % med["offline stopped"],
            "| plain copy of the same volumes (virsh vol-download + vol-upload) | %.1f |"
            % med["plain copy"],
            "| live move task (ansible included) | %.1f |" % med["live task"],
            "| guest paused by the live move (libvirt) | %.2f |" % med["live paused (libvirt)"],
            "| guest paused by the live move (its ticks) | %.2f |" % med["live pause (ticks)"],
            "| cluster_vm import task, until Started (ansible included) | %.1f |"
            % med["import task"],
            "| rbd import of the same volume files | %.1f |" % med["rbd import"],
            "", "Offline move task / plain copy: %.2fx; %d MB of data sent. Import task / "
            "rbd import: %.2fx." % (med["offline task"] / med["plain copy"], med["bytes"] / 1e6,
                                    med["import task"] / med["rbd import"])]
