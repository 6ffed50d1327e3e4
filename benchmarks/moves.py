"""Figures of standalone_vm's moves between two nodes of the three-node lab (run by
benchmarks/ha.py while the three nodes are up).

  * offline move of a running VM whose data disk holds MOVE_DATA_MIB of random bytes, node2
    to node3: the whole module task, and the seconds the guest was stopped, against a plain
    copy of the same volumes between the same two libvirtd (`virsh vol-download --sparse` to a
    file, then `vol-upload --sparse`);
  * live move of the same VM back: the whole task, libvirt's figure of the pause, and the
    pause seen by the guest (the longest gap between its one-per-second ticks, less 1 s).
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


def remove():
    for node in (SRC, DST):
        vm_module(node, {"state": "absent"})


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
    time.sleep(3)
    live_task, live = move(DST, SRC, True)
    time.sleep(3)
    watcher.stopped.set()
    watcher.join()
    return {"offline task": offline_task, "offline stopped": offline["stopped_seconds"],
            "plain copy": copy, "bytes": offline["bytes_copied"], "live task": live_task,
            "live paused (libvirt)": live["paused_seconds"],
            "live pause (ticks)": max(watcher.longest_gap() - 1.0, 0.0)}


def move_figures():
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        data_path = os.path.join(tmp, "data.raw")
        with open(data_path, "wb") as handle:
            for _mib in range(DATA_MIB):
                handle.write(os.urandom(1 << 20))
        runs = [one_round(data_path, tmp) for _run in range(RUNS)]
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
            "", "Offline move task / plain copy: %.2fx; %d MB of data sent."
            % (med["offline task"] / med["plain copy"], med["bytes"] / 1e6)]
