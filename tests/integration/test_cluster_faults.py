"""cluster_vm under faults produced for real: a forced re-create whose import fails, a run
killed with SIGKILL in the middle of an import, two runs creating the same VM at once."""
import json
import os
import signal
import subprocess
import tempfile
import time

import cluster_lab as cl
import lab

PREFIX = "itf"
VM = PREFIX + "vm1"

clean = cl.cleanup_fixture(PREFIX)


def big_image(path, size="1G"):
    """The guest image grown to `size` and filled with data, so its import takes seconds."""
    subprocess.run(["qemu-img", "convert", "-O", "raw", lab.GUEST_RAW, str(path)], check=True)
    subprocess.run(["qemu-img", "resize", "-f", "raw", str(path), size], check=True,
                   capture_output=True)
    with open(str(path), "r+b") as handle:
        handle.seek(64 * 1024 * 1024)
        chunk = os.urandom(1024 * 1024)
        for _mib in range(512):
            handle.write(chunk)


def test_forced_recreate_whose_import_fails_leaves_the_vm_running(tmp_path):
    console = lab.Console(VM)
    cl.ok(cl.vm_args(VM))
    boot = console.wait_boot()
    corrupt = tmp_path / "corrupt.qcow2"
    lab.corrupt_image(corrupt)
    before = cl.fingerprint()
    console.mark()
    result = cl.run_cluster(cl.vm_args(VM, system_image=str(corrupt), force=True))
    assert result["failed"] and "Importing" in result["msg"], result.get("msg")
    assert cl.fingerprint() == before
    # Never stopped: the same boot keeps ticking, nothing was staged or left behind.
    tick = console.wait_for(r"alive tick=\d+ boot=(\d+)")
    assert int(tick.group(1)) == boot["boot"]
    assert "power button" not in console.text()
    assert cl.status(VM) == ("Started", lab.node_name())


def test_forced_recreate_swaps_the_disks_at_the_end():
    console = lab.Console(VM)
    cl.ok({"name": VM, "command": "create_snapshot", "snapshot_name": "old"})
    old_ids = dict((n, cl.image_info(n)["id"]) for n in ("system_" + VM, "data_%s_1" % VM))
    result = cl.ok(cl.vm_args(VM, force=True))
    assert result["changed"] and result["status"] == "Started"
    assert console.wait_boot()["boot"] == 1  # a fresh copy of the image
    new_ids = dict((n, cl.image_info(n)["id"]) for n in old_ids)
    assert not set(new_ids.values()) & set(old_ids.values())
    # The old images (and the snapshots of the old disks) went to the trash.
    assert {"_gvold_system_" + VM, "_gvold_data_%s_1" % VM} <= set(cl.trash())
    assert cl.ok({"name": VM, "command": "list_snapshots"})["list_snapshot"] == []
    assert not [i for i in cl.images() if i.startswith("_gv")]


def start_module(args, tree):
    env = lab.ansible_env()
    env["ANSIBLE_CALLBACK_TREE_DIR"] = tree
    cmd = ["ansible", lab.HOST, "-m", cl.MODULE, "-a", json.dumps(args)]
    return subprocess.Popen(cmd, cwd=lab.REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def result_of(proc, tree):
    out, err = proc.communicate(timeout=900)
    with open(os.path.join(tree, lab.HOST)) as handle:
        result = json.load(handle)
    result.setdefault("failed", proc.returncode != 0)
    result["_out"] = out + err
    return result


def processes():
    """{pid: (parent pid, command line)} of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except (OSError, IndexError, ValueError):
            continue
        found[int(entry)] = (parent, cmdline)
    return found


def kill_module_tree(module_file):
    """SIGKILL the module process (found by its AnsiballZ file) and everything it started
    (qemu-img), all at once, the way a crash or an OOM kill would."""
    table = processes()
    doomed = set(pid for pid, (_parent, cmd) in table.items() if module_file in cmd)
    assert doomed, "the module process was not found"
    grew = True
    while grew:
        children = set(pid for pid, (parent, _cmd) in table.items() if parent in doomed)
        grew = not children <= doomed
        doomed |= children
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return [table[pid][1] for pid in doomed]


def wait_for_image(prefix, timeout=120, old=()):
    """The first image named prefix* that is not in old (what an earlier run left)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [i for i in cl.images() if i.startswith(prefix) and i not in old]
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("no image %s* appeared" % prefix)


def test_kill_mid_import_then_rerun_converges_without_orphans(tmp_path):
    name = PREFIX + "kill"
    image = tmp_path / "big.raw"
    big_image(image)
    args = cl.vm_args(name, system_image=str(image), additional_disks=[])
    assert not [i for i in cl.images() if name in i], "leftovers of an earlier run"
    with tempfile.TemporaryDirectory() as tree:
        proc = start_module(args, tree)
        wait_for_image("_gvnew_system_" + name)
        killed = kill_module_tree("AnsiballZ_cluster_vm.py")
        proc.wait()
    assert any(cmd.startswith("qemu-img convert") for cmd in killed), killed
    assert [i for i in cl.images() if i.startswith("_gvnew_")]
    assert name not in cl.groups()
    console = lab.Console(name)
    # The rerun breaks the lock of the killed run (a process of this node that is gone),
    # clears what it left, converges.
    result = cl.ok(args)
    assert result["changed"] and result["status"] == "Started", result
    assert any("interrupted run" in c for c in result["changes"])
    assert console.wait_boot()["boot"] == 1
    assert not [i for i in cl.images() if i.startswith("_gvnew_")]
    assert [i for i in cl.images() if name in i] == ["system_" + name]
    assert not cl.ok(args)["changed"]


def test_kill_mid_import_from_a_standalone_host_then_rerun_finishes_it(tmp_path):
    """A running standalone VM whose import into the cluster is killed while its disk
    streams into RBD: it stays defined here with its volume, nothing of it is in the CIB;
    the rerun imports it and starts it, since it ran before the killed run stopped it."""
    name = PREFIX + "imp"
    image = tmp_path / "big.raw"
    big_image(image)
    lab.remove_everything(name)
    created = lab.run_module({"name": name, "state": "running", "xml": lab.guest_xml(name),
                              "system_image": str(image)})
    assert created["changed"], created
    assert lab.Console(name).wait_boot()["uuid"] == created["uuid"]
    args = {"name": name, "command": "import", "src_uri": lab.URI,
            "preferred_host": lab.node_name()}
    try:
        with tempfile.TemporaryDirectory() as tree:
            proc = start_module(args, tree)
            wait_for_image("_gvimport_system_" + name)
            kill_module_tree("AnsiballZ_cluster_vm.py")
            proc.wait()
        source = lab.conn().lookupByName(name)
        assert source.isPersistent() and not source.isActive()
        assert [f for f in lab.pool_files() if f.startswith(name + ".")]
        assert not cl.cib_xpath("//primitive[@id='%s']" % name).strip()
        console = lab.Console(name)
        result = cl.ok(args)
        assert result["changed"] and result["status"] == "Started", result
        assert console.wait_boot()["uuid"] == created["uuid"]
        assert not [i for i in cl.images() if i.startswith("_gv")]
        assert not [f for f in lab.pool_files() if f.startswith(name + ".")]
        assert not cl.ok(args)["changed"]
    finally:
        cl.remove_all(name)
        lab.remove_everything(name)


def test_two_concurrent_creates_one_wins_nothing_corrupt():
    name = PREFIX + "race"
    args = cl.vm_args(name)
    with tempfile.TemporaryDirectory() as tree1, tempfile.TemporaryDirectory() as tree2:
        console = lab.Console(name)
        first, second = start_module(args, tree1), start_module(args, tree2)
        results = [result_of(first, tree1), result_of(second, tree2)]
    for result in results:
        assert not result["failed"], result.get("msg") or result["_out"][-2000:]
    assert sorted(r["changed"] for r in results) == [False, True]
    assert console.wait_boot()["boot"] == 1
    assert sorted(i for i in cl.images() if name in i) == ["data_%s_1" % name,
                                                           "system_" + name]
    assert cl.status(name) == ("Started", lab.node_name())
    assert cl.cib_xpath("//primitive[@id='%s']" % name).count("<primitive") == 1


def test_a_swap_cut_short_is_undone_and_the_old_vm_comes_back():
    """The state a run killed in the middle of a forced re-create's swap leaves: the old
    system image renamed aside (still in the group), the new one already under its name.
    Produced with the rbd tool, as the kill cannot be timed to that instant."""
    name = PREFIX + "swap"
    args = cl.vm_args(name, state="present", additional_disks=[])
    cl.ok(args)
    old_id = cl.image_info("system_" + name)["id"]
    cl.rbd_change("rename", "system_" + name, "_gvold_system_" + name)
    cl.rbd_change("create", "--size", "16M", "system_" + name)
    result = cl.ok(args)
    assert result["changed"] and any("interrupted run" in c for c in result["changes"])
    assert cl.image_info("system_" + name)["id"] == old_id
    assert not [i for i in cl.images() if i.startswith("_gv") and name in i]
    assert not cl.ok(args)["changed"]
