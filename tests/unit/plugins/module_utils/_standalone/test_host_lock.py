"""plugins/module_utils/host_lock.py on real files: the lock directory is created private
(0700) and refused when another user could have prepared it; a lock file is never opened
through a symbolic link; two holders exclude each other; a killed holder releases its lock."""
import os
import signal
import stat
import subprocess
import sys
import threading

import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import host_lock
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.host_lock import VmLocks
import unit_paths

NOBODY = 65534
BUILD = os.path.join(unit_paths.REPO, ".build")


def locks(lock_dir, *names):
    return VmLocks(names or ["vm1"], 0, lock_dir=str(lock_dir))


def refusal(lock_dir, *names):
    with pytest.raises(VmError) as err:
        with locks(lock_dir, *names):
            pass
    return err.value.msg


def mode(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


def test_the_default_lock_directory_is_not_the_world_writable_run_lock():
    assert host_lock.LOCK_DIR == "/run/gridvirt-kvm/locks"


def test_missing_directories_are_created_private_and_lock_files_0600(tmp_path):
    lock_dir = tmp_path / "run" / "gridvirt-kvm" / "locks"
    with locks(lock_dir):
        assert os.listdir(str(lock_dir)) == ["standalone-vm1.lock"]
        assert mode(lock_dir / "standalone-vm1.lock") == 0o600
    for directory in (tmp_path / "run", tmp_path / "run" / "gridvirt-kvm", lock_dir):
        assert mode(directory) == 0o700 and os.lstat(str(directory)).st_uid == os.geteuid()


def test_an_existing_private_directory_is_used(tmp_path):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(mode=0o700)
    with locks(lock_dir, "vm1", "vm2"):
        assert sorted(os.listdir(str(lock_dir))) == ["standalone-vm1.lock", "standalone-vm2.lock"]


def test_a_directory_owned_by_another_user_is_refused(tmp_path):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(mode=0o700)
    os.chown(str(lock_dir), NOBODY, NOBODY)
    assert refusal(lock_dir) == (
        "The lock directory %s is owned by uid %d, not by uid %d that runs the module: remove "
        "it, the module creates it itself with mode 0700." % (lock_dir, NOBODY, os.geteuid()))
    assert os.listdir(str(lock_dir)) == []


@pytest.mark.parametrize("bits", [0o777, 0o770, 0o707, 0o1777, 0o750], ids=oct)
def test_a_directory_open_to_group_or_others_is_refused(tmp_path, bits):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    os.chmod(str(lock_dir), bits)
    assert refusal(lock_dir) == (
        "The lock directory %s has mode %04o, open to group or others: remove it, the module "
        "creates it itself with mode 0700." % (lock_dir, bits))
    assert os.listdir(str(lock_dir)) == []
    assert mode(lock_dir) == bits


def test_a_lock_directory_that_is_a_symlink_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    lock_dir = tmp_path / "locks"
    lock_dir.symlink_to(elsewhere)
    assert refusal(lock_dir) == (
        "The lock directory %s is a symbolic link: remove it, the module creates it itself "
        "with mode 0700." % lock_dir)
    assert os.listdir(str(elsewhere)) == []


def test_a_dangling_symlink_as_lock_directory_is_refused(tmp_path):
    target = tmp_path / "not-yet"
    lock_dir = tmp_path / "locks"
    lock_dir.symlink_to(target)
    assert "is a symbolic link" in refusal(lock_dir)
    assert not os.path.lexists(str(target))


def test_a_lock_directory_that_is_a_file_is_refused(tmp_path):
    lock_dir = tmp_path / "locks"
    lock_dir.write_text("x")
    assert refusal(lock_dir).startswith("The lock directory %s is not a directory" % lock_dir)


def test_a_symlink_planted_at_the_lock_file_is_not_followed(tmp_path):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.chmod(str(victim), 0o640)
    before = os.stat(str(victim))
    link = lock_dir / "standalone-vm1.lock"
    link.symlink_to(victim)
    assert refusal(lock_dir) == (
        "The lock file %s is a symbolic link: remove it, the module does not follow links "
        "there." % link)
    after = os.stat(str(victim))
    assert victim.read_text() == "precious"
    assert (after.st_mode, after.st_uid, after.st_size, after.st_mtime_ns) == \
        (before.st_mode, before.st_uid, before.st_size, before.st_mtime_ns)


def test_a_dangling_symlink_planted_at_the_lock_file_creates_nothing(tmp_path):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(mode=0o700)
    target = tmp_path / "created-through-the-link"
    (lock_dir / "standalone-vm2.lock").symlink_to(target)
    assert "is a symbolic link" in refusal(lock_dir, "vm1", "vm2")
    assert not os.path.lexists(str(target))


def test_a_refused_second_lock_releases_the_first(tmp_path):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(mode=0o700)
    (lock_dir / "standalone-vm2.lock").symlink_to(tmp_path / "x")
    refusal(lock_dir, "vm1", "vm2")
    with locks(lock_dir, "vm1"):
        pass


def test_two_holders_exclude_each_other(tmp_path):
    with locks(tmp_path / "locks", "vm1"):
        with pytest.raises(VmError) as err:
            with locks(tmp_path / "locks", "vm1"):
                pass
        assert err.value.msg == ("VM vm1 is busy: another run has been changing it for more "
                                 "than 0 seconds; try again when it has finished.")
        with locks(tmp_path / "locks", "vm2"):
            pass  # another VM is not locked
    with locks(tmp_path / "locks", "vm1"):
        pass


HOLDER = r'''
import sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.host_lock import VmLocks
with VmLocks(["vm1"], 0, lock_dir=sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.read()
'''


def test_a_killed_holder_releases_its_lock(tmp_path):
    lock_dir = str(tmp_path / "locks")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, BUILD, lock_dir],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        assert "VM vm1 is busy" in refusal(lock_dir)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdin.close()
        holder.stdout.close()
    assert holder.returncode == -signal.SIGKILL
    with locks(lock_dir):
        pass


def test_a_released_lock_leaves_no_file(tmp_path):
    lock_dir = tmp_path / "locks"
    with locks(lock_dir, "vm1", "vm2"):
        pass
    assert os.listdir(str(lock_dir)) == []
    with pytest.raises(RuntimeError):
        with locks(lock_dir):
            raise RuntimeError("the run failed")
    assert os.listdir(str(lock_dir)) == []


def test_a_run_waiting_on_a_removed_lock_file_takes_the_new_one(tmp_path):
    """The holder removes its file as it lets go; the run that was waiting on that file must
    not believe it holds the VM: it takes the lock of the file now at the path, so a third
    run cannot take it at the same time."""
    lock_dir = str(tmp_path / "locks")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, BUILD, lock_dir],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    waiting = VmLocks(["vm1"], 60, lock_dir=lock_dir)
    entered = threading.Event()

    def wait_for_the_lock():
        waiting.__enter__()
        entered.set()
    thread = threading.Thread(target=wait_for_the_lock)
    thread.start()
    holder.stdin.close()  # the holder releases
    holder.wait()
    holder.stdout.close()
    thread.join(60)
    assert entered.is_set()
    try:
        assert os.listdir(lock_dir) == ["standalone-vm1.lock"]
        assert "VM vm1 is busy" in refusal(lock_dir)
    finally:
        waiting.__exit__(None, None, None)
    assert os.listdir(lock_dir) == []
