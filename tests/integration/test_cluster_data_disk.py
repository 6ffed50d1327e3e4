"""cluster_vm's data_disk: an image imported as the first data disk (data_<vm>_1, before the
additional disks), its bytes really in RBD, seen by the guest, never re-imported."""
import os
import subprocess

import pytest

import cluster_lab as cl
import lab

PREFIX = "icd"
VM = PREFIX + "vm1"
MARKER = b"gridvirt data_disk test " + PREFIX.encode() + b"\n"

clean = cl.cleanup_fixture(PREFIX)


@pytest.fixture(scope="module")
def data_image(tmp_path_factory):
    """A 4 MiB qcow2 whose first bytes are MARKER."""
    work = tmp_path_factory.mktemp(PREFIX)
    raw = work / "data.raw"
    with open(raw, "wb") as handle:
        handle.write(MARKER)
        handle.truncate(4 * 1024 * 1024)
    qcow2 = str(work / "data.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), qcow2],
                   check=True)
    os.chmod(qcow2, 0o644)
    return qcow2


def rbd_head(image, size):
    """The first bytes of an RBD image, read from Ceph."""
    proc = subprocess.run(cl.RBD_CHANGE + ["export", image, "-"], capture_output=True,
                          check=True)
    return proc.stdout[:size]


def args(data_image, **extra):
    return cl.vm_args(VM, data_disk=data_image, additional_disks=["16M"], **extra)


def test_check_mode_imports_nothing(data_image):
    before = cl.fingerprint()
    result = cl.run_cluster(args(data_image), check=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"] is True
    assert cl.fingerprint() == before


def test_data_disk_is_the_first_data_disk_in_rbd_and_the_guest_sees_it(data_image):
    console = lab.Console(VM)
    result = cl.ok(args(data_image))
    assert result["changed"] and result["status"] == "Started"
    assert sorted(i for i in cl.images() if VM in i) == \
        ["data_%s_1" % VM, "data_%s_2" % VM, "system_" + VM]
    assert rbd_head("data_%s_1" % VM, len(MARKER)) == MARKER
    assert cl.image_info("data_%s_1" % VM)["size"] == 4 * 1024 * 1024
    assert cl.image_info("data_%s_2" % VM)["size"] == 16 * 1024 * 1024
    boot = console.wait_boot()
    assert boot["disks"] == ["vda", "vdb", "vdc"]


def test_rerun_does_not_reimport(data_image):
    before = cl.fingerprint()
    result = cl.ok(args(data_image))
    assert result["changed"] is False, result["changes"]
    assert cl.fingerprint() == before
