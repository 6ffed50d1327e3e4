"""The RBD store layer against the lab's real Ceph, under the hypervisor's own Python (the
Debian rados/rbd bindings exist for it only): `make hypervisor-tests`."""
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils import rbd_names
from ansible_collections.gridvirt.kvm.plugins.module_utils import rbd_store
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUEST_RAW = os.path.join(REPO, ".lab", "images", "guest.raw")
GUEST_QCOW2 = os.path.join(REPO, ".lab", "images", "guest.qcow2")
VM = "hvtest1"


def run(args, data=None):
    proc = subprocess.run(args, input=data, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def new_store(pool="rbd"):
    return rbd_store.RbdStore("/etc/ceph/ceph.conf", "libvirt",
                              "/etc/ceph/ceph.client.libvirt.keyring", pool, run)


def rbd_cli(*args):
    out = subprocess.run(["rbd", "--id", "libvirt", "--format", "json"] + list(args),
                         capture_output=True, text=True, check=True).stdout
    return out


def cleanup(store):
    for vm in [v for v in store.vm_names() if v.startswith("hvtest")]:
        for snap, _created in store.snapshots.group_snapshots(vm):
            store.snapshots.remove_group_snapshot(vm, snap)
        for image in store.images_of(vm):
            store.remove_from_group(vm, image)
        store.remove_group(vm)
    for image in sorted(store.image_names(), reverse=True):
        if "hvtest" in image:
            store.remove_image(image)


@pytest.fixture()
def store():
    s = new_store()
    cleanup(s)
    yield s
    cleanup(s)
    s.close()


def read_sector(store, image, sector):
    """One 512-byte sector of an RBD image, read through qemu's rbd driver."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "sector")
        # qemu-img dd counts `count` from the start of the input, skipped blocks included.
        rc, _o, err = run(["qemu-img", "dd", "-f", "raw", "-O", "raw", "bs=512",
                           "count=%d" % (sector + 1),
                           "skip=%d" % sector, "if=" + store.qemu_target(image), "of=" + out])
        assert rc == 0, err
        with open(out, "rb") as handle:
            return handle.read()


def read_counter(store, image):
    """The test guest's boot counter (first sector of partition 2, at 17 MiB)."""
    return read_sector(store, image, 17 * 2048).decode().split("\n")[1]


def test_import_group_metadata_and_monitors(store):
    size = int(subprocess.run(["qemu-img", "info", "--output=json", GUEST_QCOW2],
                              capture_output=True, text=True, check=True).stdout
               .split('"virtual-size": ')[1].split(",")[0])
    store.create_group(VM)
    store.import_image(rbd_names.system_image(VM), GUEST_QCOW2, "qcow2", size)
    store.create_image(rbd_names.data_image(VM, 1), 8 * 1024 * 1024)
    store.add_to_group(VM, rbd_names.system_image(VM))
    store.add_to_group(VM, rbd_names.data_image(VM, 1))
    assert store.vm_exists(VM) and VM in store.vm_names()
    assert store.images_of(VM) == ["system_hvtest1", "data_hvtest1_1"]
    assert json.loads(rbd_cli("info", "rbd/system_hvtest1"))["size"] == size
    assert read_counter(store, "system_hvtest1") == "0"
    # The import is a real copy of the image's bytes (compare with the raw twin).
    rc, _out, err = run(["qemu-img", "compare", "-f", "raw", "-F", "raw", GUEST_RAW,
                         store.qemu_target("system_hvtest1")])
    assert rc == 0, err
    store.set_metadata("system_hvtest1", {"xml": "<domain/>", "_base_xml": "<domain/>"})
    assert store.metadata("system_hvtest1") == {"xml": "<domain/>", "_base_xml": "<domain/>"}
    store.remove_metadata("system_hvtest1", ["_base_xml", "absent"])
    assert store.metadata("system_hvtest1") == {"xml": "<domain/>"}
    assert ("127.0.0.1", "6789") in store.monitors()


def test_failed_import_leaves_no_image(store, tmp_path):
    missing = str(tmp_path / "nothere.qcow2")
    with pytest.raises(VmError) as err:
        store.import_image("hvtest_bad", missing, "qcow2", 1024 * 1024)
    assert "Importing" in err.value.msg
    assert not store.image_exists("hvtest_bad")


def test_group_snapshot_rollback_and_timestamps(store):
    store.create_group(VM)
    store.create_image("system_hvtest1", os.path.getsize(GUEST_RAW))
    store.add_to_group(VM, "system_hvtest1")
    before = time.time()
    store.snapshots.create_group_snapshot(VM, "s1")
    snaps = store.snapshots.group_snapshots(VM)
    assert [s[0] for s in snaps] == ["s1"]
    assert abs(snaps[0][1] - before) < 120
    rc, _o, err = run(["qemu-img", "convert", "-n", "-O", "raw", GUEST_RAW,
                       store.qemu_target("system_hvtest1")])
    assert rc == 0, err
    assert read_counter_safe(store) == "written"
    store.snapshots.rollback_group_snapshot(VM, "s1")
    assert read_counter_safe(store) == "zero"
    store.snapshots.remove_group_snapshot(VM, "s1")
    assert store.snapshots.group_snapshots(VM) == []


def read_counter_safe(store):
    return "zero" if not read_sector(store, "system_hvtest1", 0).strip(b"\0") else "written"


def test_layered_clone_is_copy_on_write(store):
    store.create_image("system_hvtest1", 4 * 1024 * 1024)
    store.snapshots.snapshot_image("system_hvtest1", "gv-clone-base")
    store.snapshots.clone_image("system_hvtest1", "gv-clone-base", "system_hvtest2")
    info = rbd_cli("info", "rbd/system_hvtest2")
    assert '"parent"' in info and "system_hvtest1" in info
    store.remove_image("system_hvtest2")
    rc, _o, _e = run(["rbd", "--id", "libvirt", "snap", "unprotect",
                      "rbd/system_hvtest1@gv-clone-base"])
    assert rc == 0
    rc, _o, _e = run(["rbd", "--id", "libvirt", "snap", "rm", "rbd/system_hvtest1@gv-clone-base"])
    assert rc == 0


def test_trash_keeps_the_image_until_purged(store):
    store.create_image("data_hvtest1_9", 4 * 1024 * 1024)
    store.trash_image("data_hvtest1_9", 3600)
    assert not store.image_exists("data_hvtest1_9")
    trashed = dict((e["name"], e["id"]) for e in json.loads(rbd_cli("trash", "ls", "rbd")))
    assert "data_hvtest1_9" in trashed
    assert run(["rbd", "--id", "libvirt", "trash", "rm", "--force",
                "rbd/%s" % trashed["data_hvtest1_9"]])[0] == 0
    assert "data_hvtest1_9" not in [e["name"] for e in json.loads(rbd_cli("trash", "ls", "rbd"))]


def test_unknown_pool_is_a_sentence():
    with pytest.raises(VmError) as err:
        new_store("nosuchpool").vm_names()
    assert err.value.msg == "The Ceph pool nosuchpool does not exist."


def test_lease_excludes_a_second_holder_and_is_renewed(store):
    other = new_store()
    try:
        with store.lease(VM, wait_seconds=1, lease_seconds=3):
            with pytest.raises(VmError) as err:
                with other.lease(VM, wait_seconds=1, lease_seconds=3):
                    pass
            assert "is busy" in err.value.msg
            time.sleep(4.5)  # past one lease: only renewal keeps it ours
            with pytest.raises(VmError):
                with other.lease(VM, wait_seconds=0, lease_seconds=3):
                    pass
        with other.lease(VM, wait_seconds=1, lease_seconds=3):
            pass
    finally:
        other.close()


HOLDER = """
import sys, time
from ansible_collections.gridvirt.kvm.plugins.module_utils import rbd_store
store = rbd_store.RbdStore("/etc/ceph/ceph.conf", "libvirt",
                           "/etc/ceph/ceph.client.libvirt.keyring", "rbd", None)
with store.lease(sys.argv[1], wait_seconds=5, lease_seconds=60):
    print("held", flush=True)
    time.sleep(600)
"""


def holder_process():
    """Another process of this node holding VM's lease (60 s) until it is killed."""
    proc = subprocess.Popen(["/usr/bin/python3", "-c", HOLDER, VM], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=":".join(sys.path)))
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_the_lease_of_a_killed_process_of_this_node_is_broken_at_once(store):
    holder = holder_process()
    try:
        with pytest.raises(VmError) as err:  # alive: its lease holds
            with store.lease(VM, wait_seconds=1, lease_seconds=60):
                pass
        assert "is busy" in err.value.msg
    finally:
        holder.kill()
        holder.wait()
    # Killed: a run on its node takes the lock well within the 60 s the lease had left.
    with store.lease(VM, wait_seconds=5, lease_seconds=60):
        assert lock_objects(store) == [rbd_names.lock_object(VM)]
    assert lock_objects(store) == []


def test_a_lock_recorded_by_another_node_waits_for_its_lease(store):
    obj = rbd_names.lock_object(VM)
    store.ioctx.lock_exclusive(obj, rbd_store.LOCK_NAME, "elsewhere", "", 3, 0)
    store.ioctx.write_full(obj, json.dumps({"node": "another-node", "boot": "b", "pid": 1,
                                            "start": 0}).encode())
    with pytest.raises(VmError):
        with store.lease(VM, wait_seconds=1, lease_seconds=30):
            pass
    assert lock_objects(store) == [obj]
    time.sleep(2)  # its lease (3 s) runs out
    with store.lease(VM, wait_seconds=5, lease_seconds=30):
        pass
    assert lock_objects(store) == []


def lock_objects(store):
    return sorted(o.key for o in store.ioctx.list_objects()
                  if o.key == rbd_names.lock_object(VM))


def test_a_released_lease_leaves_no_lock_object(store):
    with store.lease(VM, wait_seconds=1, lease_seconds=30):
        assert lock_objects(store) == [rbd_names.lock_object(VM)]
    assert lock_objects(store) == []
    with store.lease(VM, wait_seconds=1, lease_seconds=30):  # and it can be taken again
        pass
    assert lock_objects(store) == []


def test_a_lease_lost_to_another_run_is_not_removed_with_ours(store):
    """Our lease ran out and another run holds the lock now: our release leaves its lock."""
    lease = store.lease(VM, wait_seconds=1, lease_seconds=30).__enter__()
    obj = rbd_names.lock_object(VM)
    store.ioctx.unlock(obj, rbd_store.LOCK_NAME, lease.cookie)
    other = new_store()
    try:
        other.ioctx.lock_exclusive(obj, rbd_store.LOCK_NAME, "other-run", "test", 30, 0)
        lease.__exit__(None, None, None)
        assert lock_objects(store) == [obj]
        with pytest.raises(VmError):
            with store.lease(VM, wait_seconds=0, lease_seconds=30):
                pass
        other.ioctx.unlock(obj, rbd_store.LOCK_NAME, "other-run")
    finally:
        other.close()
    store.ioctx.remove_object(obj)


def test_an_image_a_killed_client_held_open_is_removed_once_its_watch_expires(store):
    """QEMU killed (a guest that would not shut down) leaves its watch on the image until the
    OSDs time it out: the removal waits for that instead of failing with "image is busy"."""
    store.create_image("data_hvtest1_7", 4 * 1024 * 1024)
    script = ("import rados, rbd, time\n"
              "c = rados.Rados(conffile='/etc/ceph/ceph.conf', rados_id='libvirt'); c.connect()\n"
              "io = c.open_ioctx('rbd'); img = rbd.Image(io, 'data_hvtest1_7')\n"
              "print('open', flush=True); time.sleep(600)\n")
    holder = subprocess.Popen(["/usr/bin/python3", "-c", script], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        holder.kill()
        holder.wait()
        assert json.loads(rbd_cli("status", "rbd/data_hvtest1_7"))["watchers"], \
            "the killed client's watch should still be there"
        store.remove_image("data_hvtest1_7")
        assert not store.image_exists("data_hvtest1_7")
    finally:
        if holder.poll() is None:
            holder.kill()
