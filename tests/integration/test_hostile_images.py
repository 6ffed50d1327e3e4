"""Images that would read the hypervisor's own files (a backing file, an external data file,
a vmdk extent, a raw image that looks like a qcow2 with a backing file): both modules refuse
them with one sentence before changing anything, in check mode too, and the host file's
content is nowhere in the pool or in RBD. Disks written into the pool are root-only."""
import os
import shutil
import stat
import subprocess
import uuid

import libvirt
import pytest

import cluster_lab as cl
import lab

STANDALONE_VM, CLUSTER_VM = "hi1", "hi2"
STANDALONE_EXISTING, CLUSTER_EXISTING = "hi3", "hi4"
PRIVATE_VM = "hi5"
VMS = (STANDALONE_VM, CLUSTER_VM, STANDALONE_EXISTING, CLUSTER_EXISTING, PRIVATE_VM)
SELF_CONTAINED = "give a self-contained image (qemu-img convert it first)."
VMDK_DESCRIPTOR = """# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW 2048 FLAT "%s" 0

ddb.virtualHWVersion = "4"
ddb.adapterType = "ide"
"""
MARKER = ("hi-host-secret-%s" % uuid.uuid4().hex).encode()
# Images and a data file that stand for the hypervisor's own files, outside the pool.
WORK = "/var/tmp/hi-hostile"


def qemu_img(*args):
    subprocess.run(["qemu-img"] + list(args), check=True, capture_output=True)


def secret_file(path):
    """1 MiB of a file only the hypervisor should read, the marker at every KiB."""
    with open(path, "wb") as handle:
        handle.write((MARKER.ljust(1024, b".")) * 1024)
    return path


HOST_FILE = os.path.join(WORK, "host-secret.raw")
DATA_FILE = os.path.join(WORK, "data-file.raw")
BACKED = os.path.join(WORK, "backed.qcow2")
WITH_DATA_FILE = os.path.join(WORK, "data-file.qcow2")
VMDK = os.path.join(WORK, "flat.vmdk")
LOOKS_LIKE_QCOW2 = os.path.join(WORK, "looks-like-qcow2.raw")
# case: (image, the sentence that refuses it)
IMAGES = {
    "backing file": (BACKED, "Disk image %s has a backing file (%s): %s"
                     % (BACKED, HOST_FILE, SELF_CONTAINED)),
    "data file": (WITH_DATA_FILE, "Disk image %s has an external data file (%s): %s"
                  % (WITH_DATA_FILE, DATA_FILE, SELF_CONTAINED)),
    "vmdk": (VMDK, "Disk image %s is in vmdk format: give a qcow2 or raw image." % VMDK),
    "raw with a qcow2 header": (LOOKS_LIKE_QCOW2, "Disk image %s has a backing file (%s): %s"
                                % (LOOKS_LIKE_QCOW2, HOST_FILE, SELF_CONTAINED)),
}
CASES = sorted(IMAGES)


def make_images():
    os.makedirs(WORK, exist_ok=True)
    secret_file(HOST_FILE)
    qemu_img("create", "-q", "-f", "qcow2", "-b", HOST_FILE, "-F", "raw", BACKED, "1M")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "data_file=%s,data_file_raw=on" % DATA_FILE,
             WITH_DATA_FILE, "1M")
    secret_file(DATA_FILE)  # after the create, which empties the data file
    with open(VMDK, "w") as handle:
        handle.write(VMDK_DESCRIPTOR % HOST_FILE)
    with open(LOOKS_LIKE_QCOW2, "wb") as handle:
        with open(BACKED, "rb") as header:
            handle.write(header.read())  # the first bytes: a qcow2 header naming HOST_FILE
        handle.truncate(4 * 1024 * 1024)


def remove_all():
    for vm in VMS:
        cl.remove_all(vm)


@pytest.fixture(scope="module", autouse=True)
def clean_lab():
    remove_all()
    make_images()
    yield
    remove_all()
    shutil.rmtree(WORK)


def ours(name):
    return any(vm in name for vm in VMS)


def only_ours(mapping):
    return dict((k, v) for k, v in mapping.items() if ours(k))


def read_lab_fingerprint(attempts=5):
    for attempt in range(attempts):
        try:
            return lab.fingerprint()
        except libvirt.libvirtError:
            if attempt == attempts - 1:
                raise
    return None


def standalone_fingerprint():
    """lab.fingerprint cut down to this file's VMs (other tests change the shared lab while
    these run), read again when another test's VM vanished while it was read."""
    state = read_lab_fingerprint()
    for part in ("domains", "files"):
        state[part] = only_ours(state[part])
    if state.get("locks"):
        state["locks"] = (state["locks"][0], only_ours(state["locks"][1]))
    return state


def cluster_fingerprint():
    """What a cluster_vm call on this file's VMs could change: their RBD images (id, size,
    snapshots, metadata), groups, trash entries, CIB elements and libvirt domains."""
    state = {"images": {}, "groups": {}, "trash": [t for t in cl.trash() if ours(t)],
             "domains": [d for d in lab.domain_names() if ours(d)],
             "cib": [cl.cib_xpath("//*[contains(@id, '%s') or contains(@rsc, '%s')]"
                                  % (vm, vm)) for vm in VMS]}
    for name in cl.images():
        if ours(name):
            info = cl.image_info(name)
            snaps = sorted((snap["name"], snap.get("protected"))
                           for snap in cl.rbd("snap", "ls", "--all", name))
            state["images"][name] = (info["id"], info["size"], snaps, cl.image_meta(name))
    for group in cl.groups():
        if ours(group):
            members = sorted(i["image"] for i in cl.rbd("group", "image", "list", group))
            snaps = sorted(s["snapshot"] for s in cl.rbd("group", "snap", "ls", group))
            state["groups"][group] = (members, snaps)
    return state


def contains_marker(read_chunks):
    tail = b""
    for chunk in read_chunks:
        if MARKER in tail + chunk:
            return True
        tail = chunk[-len(MARKER):]
    return False


def file_chunks(path):
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            if not chunk:
                return
            yield chunk


def pool_files_with_marker():
    """Every file of the pool directory that holds the marker (a file that another test
    removes while it is read held nothing of ours)."""
    found = []
    for name in lab.pool_files():
        path = os.path.join(lab.POOL_DIR, name)
        try:
            if os.path.isfile(path) and contains_marker(file_chunks(path)):
                found.append(name)
        except FileNotFoundError:
            continue
    return found


def rbd_images_with_marker():
    """Our VMs' images in RBD (any staging name too), read back with rbd export."""
    found = []
    for name in cl.images():
        if not ours(name):
            continue
        if contains_marker([cl.exported(name)]):
            found.append(name)
    return found


def assert_refused(result, expected):
    assert result.get("failed") is True, result
    assert result["msg"] == expected
    assert result.get("exception", lab.NO_TRACEBACK) == lab.NO_TRACEBACK, result["exception"]


def run_table(rows, fingerprint, markers, module):
    """rows {(…, check): arguments}, run in two batches (plain, check mode): (results by
    key, fingerprint before, fingerprint after, what holds the host file's marker after)."""
    before = fingerprint()
    results = {}
    for check in (False, True):
        keys = [key for key in rows if key[-1] is check]
        results.update(zip(keys, lab.run_batch([rows[key] for key in keys], module=module,
                                               check=check)))
    return results, before, fingerprint(), markers()


def assert_table_refused(table, key, expected):
    results, before, after, marked = table
    assert_refused(results[key], expected)
    assert after == before, "a refused request changed the lab"
    assert not marked, "the host file's content reached %s" % marked


def standalone_args(name, **extra):
    args = {"name": name, "state": "present", "xml": lab.guest_xml(name),
            "system_image": lab.GUEST_IMAGE}
    args.update(extra)
    return args


def cluster_args(name, **extra):
    args = {"name": name, "state": "present", "xml": lab.guest_xml(name),
            "system_image": lab.GUEST_IMAGE}
    args.update(extra)
    return args


def test_the_images_would_read_the_host_file():
    """The premise: qemu-img itself follows each of them to the host file."""
    copy = os.path.join(WORK, "copy.raw")
    for path, _message in IMAGES.values():
        fmt = "vmdk" if path == VMDK else "qcow2"
        qemu_img("convert", "-f", fmt, "-O", "raw", path, copy)
        assert contains_marker(file_chunks(copy)), path
        os.unlink(copy)


CHECKS = [False, True]
STANDALONE_PLACES = ["system_image", "additional disk", "additional disk dict"]


def standalone_new_args(path, place):
    if place == "system_image":
        return standalone_args(STANDALONE_VM, system_image=path)
    if place == "additional disk":
        return standalone_args(STANDALONE_VM, additional_disks=["16M", path])
    return standalone_args(STANDALONE_VM, additional_disks=[{"image": path}])


@pytest.fixture(scope="module")
def standalone_table():
    rows = dict(((case, place, check), standalone_new_args(IMAGES[case][0], place))
                for case in CASES for place in STANDALONE_PLACES for check in CHECKS)
    return run_table(rows, standalone_fingerprint, pool_files_with_marker,
                     "gridvirt.kvm.standalone_vm")


@pytest.mark.parametrize("check", CHECKS, ids=["run", "check mode"])
@pytest.mark.parametrize("place", STANDALONE_PLACES)
@pytest.mark.parametrize("case", CASES)
def test_standalone_refuses_a_hostile_image(standalone_table, case, place, check):
    assert_table_refused(standalone_table, (case, place, check), IMAGES[case][1])


CLUSTER_PLACES = ["system_image", "data_disk"]


@pytest.fixture(scope="module")
def cluster_table():
    rows = dict(((case, place, check),
                 cluster_args(CLUSTER_VM, additional_disks=["16M"], **{place: IMAGES[case][0]}))
                for case in CASES for place in CLUSTER_PLACES for check in CHECKS)
    return run_table(rows, cluster_fingerprint, rbd_images_with_marker, cl.MODULE)


@pytest.mark.parametrize("check", CHECKS, ids=["run", "check mode"])
@pytest.mark.parametrize("place", CLUSTER_PLACES)
@pytest.mark.parametrize("case", CASES)
def test_cluster_refuses_a_hostile_image(cluster_table, case, place, check):
    assert_table_refused(cluster_table, (case, place, check), IMAGES[case][1])


@pytest.fixture(scope="module")
def standalone_existing():
    result = lab.run_module(standalone_args(STANDALONE_EXISTING))
    assert result["changed"] is True and not result["failed"], result.get("msg")
    return result


CHANGES = ["forced re-import", "added disk"]


def standalone_change_args(path, change):
    if change == "forced re-import":
        return standalone_args(STANDALONE_EXISTING, system_image=path, force=True)
    return standalone_args(STANDALONE_EXISTING, additional_disks=[path])


@pytest.fixture(scope="module")
def standalone_existing_table(standalone_existing):
    rows = dict(((case, change, check), standalone_change_args(IMAGES[case][0], change))
                for case in CASES for change in CHANGES for check in CHECKS)
    return run_table(rows, standalone_fingerprint, pool_files_with_marker,
                     "gridvirt.kvm.standalone_vm")


@pytest.mark.parametrize("check", CHECKS, ids=["run", "check mode"])
@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("case", CASES)
def test_standalone_refuses_a_hostile_image_for_an_existing_vm(standalone_existing_table, case,
                                                               change, check):
    assert_table_refused(standalone_existing_table, (case, change, check), IMAGES[case][1])


@pytest.fixture(scope="module")
def cluster_existing():
    return cl.ok(cluster_args(CLUSTER_EXISTING))


@pytest.fixture(scope="module")
def cluster_existing_table(cluster_existing):
    rows = dict(((case, place, check),
                 cluster_args(CLUSTER_EXISTING, force=True, **{place: IMAGES[case][0]}))
                for case in CASES for place in CLUSTER_PLACES for check in CHECKS)
    return run_table(rows, cluster_fingerprint, rbd_images_with_marker, cl.MODULE)


@pytest.mark.parametrize("check", CHECKS, ids=["run", "check mode"])
@pytest.mark.parametrize("place", CLUSTER_PLACES)
@pytest.mark.parametrize("case", CASES)
def test_cluster_refuses_a_hostile_image_for_a_forced_recreate(cluster_existing_table, case,
                                                               place, check):
    assert_table_refused(cluster_existing_table, (case, place, check), IMAGES[case][1])


def pool_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_disks_written_into_the_pool_are_root_only():
    """Imported (qcow2 and raw sources), created empty, and copied by a full clone: 0600,
    like libvirt's own volumes; no other local user reads a VM's disk."""
    result = lab.run_module(standalone_args(
        PRIVATE_VM, additional_disks=[lab.GUEST_RAW, "16M"]))
    assert not result["failed"], result.get("msg")
    paths = [disk["path"] for disk in result["disks"]]
    assert len(paths) == 3
    assert dict((p, pool_mode(p)) for p in paths) == dict((p, 0o600) for p in paths)
    clone = lab.run_module({"name": PRIVATE_VM + "c", "command": "clone",
                            "src_name": PRIVATE_VM, "full": True, "nostart": True})
    assert not clone["failed"], clone.get("msg")
    copies = [disk["path"] for disk in clone["disks"]]
    assert dict((p, pool_mode(p)) for p in copies) == dict((p, 0o600) for p in copies)


@pytest.mark.parametrize("option,value", [("ceph_user", "libvirt:conf=/var/tmp/hi-evil.conf"),
                                          ("ceph_conf", "/etc/ceph/ceph.conf:id=admin"),
                                          ("keyring", "/etc/ceph/k\\:x")])
def test_cluster_refuses_values_that_inject_rbd_options(option, value):
    """qemu-img's rbd: image name joins these with ':' and '=': refused before any I/O."""
    before = cluster_fingerprint()
    result = cl.run_cluster(cluster_args(CLUSTER_VM, **{option: value}))
    found = " or ".join("'%s'" % c for c in (":", "=", "\\") if c in value)
    assert_refused(result, "%s %r must not contain %s: qemu-img would read what follows as "
                   "options of its own." % (option, value, found))
    assert cluster_fingerprint() == before
