"""Where the deploy playbooks stage the images they copy, with SEAPATH's qcow2tmpuploadfolder
set to /tmp as SEAPATH inventories often do:
- /tmp keeps its mode 1777 and its owner;
- a symlink another user planted at the name the roles used to copy to (<folder>/<vm>.qcow2,
  <folder>/gridvirt-images/<vm>.qcow2 for the cluster) is neither followed nor replaced;
- the run's own staging directory is gone once the run ends, and the VM exists and boots;
- an upload folder that is a symlink, owned by another user, or writable by others without
  the sticky bit fails the play with a sentence before any VM is created, and the folder is
  left as it was."""
import os
import re
import shutil
import stat
import tempfile

import pytest

import cluster_lab as cl
import deploy_lab
import lab

PREFIX = "hs"
STANDALONE_VM, CLUSTER_VM = PREFIX + "1", PREFIX + "2"
REFUSED_STANDALONE, REFUSED_CLUSTER = PREFIX + "3", PREFIX + "4"
OTHER_USER = 65534  # nobody: the local user who plants things in /tmp

clean = cl.cleanup_fixture(PREFIX)

VM_VARS = {"vm_disk": lab.GUEST_IMAGE, "domain_type": "qemu", "memory": 128,
           "serial_log": lab.SERIAL_LOG % "{{ inventory_hostname }}"}
# The removal at the end of the run names each directory the run staged in.
STAGING_RE = re.compile(r"%s: (/\S+/gridvirt-images\.\w+)" % lab.HOST)


def deploy(kind, vm, upload_folder, fails=False, **extra):
    """ansible-playbook deploy_vms_<kind>.yaml for one VM -> its output; ``fails``: the run
    must fail."""
    vm_vars = dict(VM_VARS, hypervisor=lab.HOST, qcow2tmpuploadfolder=upload_folder, **extra)
    return deploy_lab.deploy(kind, {vm: vm_vars}, fails=fails)


def recap_changed(output):
    return [int(n) for n in re.findall(r"^\S+\s+:\s+ok=\d+\s+changed=(\d+)", output, re.M)]


def looks(path):
    """What a planted entry looks like, without following it (None: it is gone)."""
    if not os.path.lexists(path):
        return None
    st = os.lstat(path)
    return (st.st_ino, st.st_uid, stat.S_IMODE(st.st_mode), os.readlink(path)
            if stat.S_ISLNK(st.st_mode) else None)


def tmp_is_shared():
    st = os.lstat("/tmp")
    return stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o1777 and st.st_uid == 0


@pytest.fixture
def victim():
    """A file of the test's own, which a planted link points at."""
    handle, path = tempfile.mkstemp(prefix="hs-victim.", dir="/tmp")
    os.write(handle, b"the test's own file\n")
    os.close(handle)
    yield path
    os.unlink(path)


def plant_link(path, target):
    """A symlink at PATH owned by the other user, as that user would leave it."""
    os.symlink(target, path)
    os.lchown(path, OTHER_USER, OTHER_USER)
    return looks(path)


def remove_planted(path):
    """The link, or whatever a deploy left in its place."""
    if os.path.lexists(path):
        os.unlink(path)


@pytest.fixture
def old_standalone_name(victim):
    path = "/tmp/%s.qcow2" % STANDALONE_VM
    before = plant_link(path, victim)
    yield path, victim, before
    remove_planted(path)


@pytest.fixture
def old_cluster_name(victim):
    """The cluster role's old folder, made by the other user, with the link in it."""
    folder = "/tmp/gridvirt-images"
    made = not os.path.lexists(folder)
    if made:
        os.mkdir(folder, 0o755)
        os.chown(folder, OTHER_USER, OTHER_USER)
    path = os.path.join(folder, "%s.qcow2" % CLUSTER_VM)
    before = plant_link(path, victim)
    yield path, victim, before
    remove_planted(path)
    if made:
        shutil.rmtree(folder)


def assert_staged_privately_and_removed(output, victim, link, link_before):
    assert tmp_is_shared(), oct(os.lstat("/tmp").st_mode)
    assert looks(link) == link_before, "the planted link was replaced or changed"
    with open(victim, "rb") as handle:
        assert handle.read() == b"the test's own file\n", "the planted link was followed"
    staged = STAGING_RE.findall(output)
    assert staged and all(os.path.dirname(p) == "/tmp" for p in staged), output[-3000:]
    assert not [p for p in staged if os.path.lexists(p)], "the staging directory is left"


def test_standalone_stages_in_a_private_directory_of_tmp(clean, old_standalone_name):
    link, victim, link_before = old_standalone_name
    assert tmp_is_shared()
    console = lab.Console(STANDALONE_VM)
    out = deploy("standalone", STANDALONE_VM, "/tmp")
    assert_staged_privately_and_removed(out, victim, link, link_before)
    assert lab.domain_state(STANDALONE_VM) == 1  # VIR_DOMAIN_RUNNING
    assert console.wait_boot()["name"] == STANDALONE_VM

    out = deploy("standalone", STANDALONE_VM, "/tmp")
    assert recap_changed(out) and set(recap_changed(out)) == {0}, out[-3000:]
    assert tmp_is_shared() and looks(link) == link_before


def test_cluster_stages_in_a_private_directory_of_tmp(clean, old_cluster_name):
    link, victim, link_before = old_cluster_name
    console = lab.Console(CLUSTER_VM)
    out = deploy("cluster", CLUSTER_VM, "/tmp")
    assert_staged_privately_and_removed(out, victim, link, link_before)
    assert "system_" + CLUSTER_VM in cl.images()
    assert cl.wait_status(CLUSTER_VM, "Started") == "Started"
    assert console.wait_boot()["name"] == CLUSTER_VM

    out = deploy("cluster", CLUSTER_VM, "/tmp")
    assert recap_changed(out) and set(recap_changed(out)) == {0}, out[-3000:]
    assert looks(link) == link_before


def test_cluster_imports_seapath_additional_disk_images(clean, tmp_path):
    """SEAPATH's inventory names additional_disk images on the controller: the role copies
    them into the run's private directory, the module imports them as the VM's next data
    disks (a size still makes an empty one); an image added to the list later is copied and
    imported alone; reruns change nothing."""
    vm = PREFIX + "5"
    images = []
    for index in range(2):
        path = tmp_path / ("additional_data%d.raw" % index)
        with open(path, "wb") as handle:
            handle.write(b"seapath-additional-disk-%d" % index + b"\0" * (4 << 20))
        images.append(str(path))

    def data(index):
        return cl.exported("data_%s_%d" % (vm, index))

    out = deploy("cluster", vm, "/tmp", vm_state="present",
                 additional_disk=[images[0], "16M"])
    assert data(1).startswith(b"seapath-additional-disk-0")
    assert cl.image_info("data_%s_2" % vm)["size"] == 16 << 20
    for staged in STAGING_RE.findall(out):
        assert not os.path.exists(staged), staged
    out = deploy("cluster", vm, "/tmp", vm_state="present",
                 additional_disk=[images[0], "16M", images[1]])
    assert data(3).startswith(b"seapath-additional-disk-1")
    out = deploy("cluster", vm, "/tmp", vm_state="present",
                 additional_disk=[images[0], "16M", images[1]])
    assert recap_changed(out) and set(recap_changed(out)) == {0}, out[-3000:]
    assert cl.ok({"name": vm, "command": "status"})["images"] == [
        "system_" + vm] + ["data_%s_%d" % (vm, i) for i in (1, 2, 3)]


@pytest.fixture
def linked_folder():
    """An upload folder that is a symlink to a directory."""
    real = tempfile.mkdtemp(prefix="hs-real.", dir="/tmp")
    link = real.replace("hs-real.", "hs-link.")
    os.symlink(real, link)
    yield link, real
    os.unlink(link)
    shutil.rmtree(real)


@pytest.fixture
def foreign_folder():
    """An upload folder owned by another user."""
    path = tempfile.mkdtemp(prefix="hs-foreign.", dir="/tmp")
    os.chown(path, OTHER_USER, OTHER_USER)
    yield path, path
    shutil.rmtree(path)


@pytest.fixture
def open_folder():
    """An upload folder every user may write into, without /tmp's sticky bit."""
    path = tempfile.mkdtemp(prefix="hs-open.", dir="/tmp")
    os.chmod(path, 0o777)
    yield path, path
    shutil.rmtree(path)


def nothing_of(vm):
    """Every trace a deploy of VM would leave, on libvirt, in the pool, RBD and the CIB."""
    return ([d for d in lab.domain_names() if d == vm]
            + [f for f in lab.pool_files() if f.startswith(vm + ".")]
            + [i for i in cl.images() if i.endswith("_" + vm) or ("_%s_" % vm) in i]
            + [g for g in cl.groups() if g == vm]
            + re.findall(r'id="%s"' % vm, cl.cib_configuration()))


@pytest.mark.parametrize("kind,vm", [("standalone", REFUSED_STANDALONE), ("cluster", REFUSED_CLUSTER)])
@pytest.mark.parametrize("case,folder_fixture,words", [
    ("symlink", "linked_folder", "is a symbolic link; name the real directory"),
    ("other owner", "foreign_folder", "is owned by nobody (uid 65534), not root"),
    ("writable by others", "open_folder", "is writable by other users without the sticky bit"),
])
def test_upload_folder_refused(clean, request, kind, vm, case, folder_fixture, words):
    folder, real = request.getfixturevalue(folder_fixture)
    real_before = looks(real)
    out = deploy(kind, vm, folder, fails=True)
    assert "%s: the upload folder (qcow2tmpuploadfolder) %s %s" % (lab.HOST, folder, words) in out, \
        (case, out[-3000:])
    assert "Traceback" not in out
    assert nothing_of(vm) == []
    assert looks(real) == real_before and os.listdir(real) == []
