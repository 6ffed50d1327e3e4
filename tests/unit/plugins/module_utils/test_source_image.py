"""Which disk images the modules import (qemu-img info JSON -> refusal sentence), how qemu-img
is called on them, and the values that would change the meaning of qemu's rbd: image name."""
import json
import os
import stat

import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils import libvirt_host
from ansible_collections.gridvirt.kvm.plugins.module_utils import rbd_store
from ansible_collections.gridvirt.kvm.plugins.module_utils import source_image
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

# qemu-img 7.2 info --output=json, trimmed to what the decision reads.
QCOW2 = {"format": "qcow2", "virtual-size": 1048576, "cluster-size": 65536,
         "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "corrupt": False}},
         "dirty-flag": False}
RAW = {"format": "raw", "virtual-size": 41943040, "actual-size": 41947136}
BACKED = dict(QCOW2, **{"backing-filename-format": "raw",
                        "backing-filename": "/etc/shadow",
                        "full-backing-filename": "/etc/shadow"})
RELATIVE_BACKING = dict(QCOW2, **{"backing-filename": "base.qcow2",
                                  "full-backing-filename": "/images/base.qcow2"})
DATA_FILE = dict(QCOW2, **{"format-specific": {"type": "qcow2", "data": {
    "compat": "1.1", "data-file": "/dev/sda", "data-file-raw": True, "corrupt": False}}})
VMDK = {"format": "vmdk", "virtual-size": 1048576, "format-specific": {
    "type": "vmdk", "data": {"create-type": "monolithicFlat", "extents": [
        {"filename": "/etc/shadow", "format": "FLAT", "virtual-size": 1048576}]}}}
SELF_CONTAINED = "give a self-contained image (qemu-img convert it first)."


@pytest.mark.parametrize("details,expected", [
    (BACKED, "Disk image /x.img has a backing file (/etc/shadow): " + SELF_CONTAINED),
    (RELATIVE_BACKING, "Disk image /x.img has a backing file (base.qcow2): " + SELF_CONTAINED),
    (DATA_FILE, "Disk image /x.img has an external data file (/dev/sda): " + SELF_CONTAINED),
    (VMDK, "Disk image /x.img is in vmdk format: give a qcow2 or raw image."),
    (dict(RAW, format="luks"), "Disk image /x.img is in luks format: give a qcow2 or raw image."),
    ({"virtual-size": 1}, "Disk image /x.img is in None format: give a qcow2 or raw image."),
    (dict(QCOW2, **{"virtual-size": None}),
     "Disk image /x.img has no virtual size that qemu-img can read."),
], ids=["backing file", "relative backing file", "data file", "vmdk", "luks", "no format",
        "no size"])
def test_hostile_images_are_refused_with_a_sentence(details, expected):
    assert source_image.refusal("/x.img", details) == expected


@pytest.mark.parametrize("details", [QCOW2, RAW], ids=["qcow2", "raw"])
def test_self_contained_images_are_accepted(details):
    assert source_image.refusal("/x.img", details) is None


class Runner(object):
    """A ``run`` that answers qemu-img info with one description and records every call."""

    def __init__(self, details, rc=0, err=""):
        self.out = json.dumps(details) if isinstance(details, dict) else details
        self.rc, self.err = rc, err
        self.calls = []

    def __call__(self, args, **_kwargs):
        self.calls.append(args)
        return self.rc, self.out, self.err


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(b"\0" * 512)
    return str(path)


def test_importable_probes_the_format_then_refuses_what_it_found(image):
    run = Runner(BACKED)
    with pytest.raises(VmError) as err:
        source_image.importable(run, image)
    assert err.value.msg == "Disk image %s has a backing file (/etc/shadow): %s" % (
        image, SELF_CONTAINED)
    assert run.calls == [["qemu-img", "info", "--output=json", image]]


def test_importable_returns_format_and_size(image):
    assert source_image.importable(Runner(RAW), image) == ("raw", 41943040)


@pytest.mark.parametrize("runner,message", [
    (Runner("not json"), "qemu-img info gave no JSON."),
    (Runner("", rc=1, err="Could not open: Permission denied\n"),
     "Could not open: Permission denied."),
], ids=["no json", "qemu-img fails"])
def test_unreadable_descriptions_are_sentences(image, runner, message):
    with pytest.raises(VmError) as err:
        source_image.importable(runner, image)
    assert err.value.msg == "Cannot read disk image %s: %s" % (image, message)


def test_a_missing_image_is_refused_before_qemu_img_runs(tmp_path):
    run = Runner(QCOW2)
    with pytest.raises(VmError):
        source_image.importable(run, str(tmp_path / "missing.qcow2"))
    assert run.calls == []


def test_info_reads_in_the_given_format():
    run = Runner(QCOW2)
    source_image.info(run, "/p.qcow2", force_share=True, fmt="qcow2")
    assert run.calls == [["qemu-img", "info", "--output=json", "-U", "-f", "qcow2", "/p.qcow2"]]


class Pool(object):
    """The two calls the import makes on a libvirt pool."""

    def __init__(self, path):
        self.path = path

    def XMLDesc(self, _flags):  # noqa: N802 (libvirt's name)
        return "<pool type='dir'><name>p</name><target><path>%s</path></target></pool>" % self.path

    def refresh(self, _flags):
        pass


class QemuImg(Runner):
    """Answers info, and writes the target of convert as qemu-img does: it opens an existing
    file without changing its mode, else creates it 0644."""

    def __call__(self, args, **kwargs):
        if args[:2] == ["qemu-img", "convert"]:
            fd = os.open(args[-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b"QFI\xfb")
            os.close(fd)
        return super(QemuImg, self).__call__(args, **kwargs)


@pytest.fixture()
def hypervisor(tmp_path, monkeypatch):
    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    hv = libvirt_host.Hypervisor("test:///default", QemuImg(RAW))
    monkeypatch.setattr(hv.storage, "volume_by_path", lambda path: None)
    return hv, Pool(str(pool_dir)), pool_dir


def test_import_reads_in_the_checked_format_into_a_root_only_file(hypervisor, image):
    hv, pool, pool_dir = hypervisor
    path = hv.storage.import_image(pool, "vm.disk0.qcow2", image)
    assert path == str(pool_dir / "vm.disk0.qcow2")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    convert = hv._run.calls[-1]
    assert convert[:2] == ["qemu-img", "convert"]
    assert convert[convert.index("-f") + 1] == "raw"


def test_copy_reads_qcow2_and_writes_a_root_only_file(hypervisor, image):
    hv, pool, _pool_dir = hypervisor
    path = hv.storage.copy_image(pool, image, "clone.disk0.qcow2", force_share=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    convert = hv._run.calls[-1]
    assert convert[convert.index("-f") + 1] == "qcow2" and "-U" in convert


def test_a_link_planted_at_the_partial_name_is_not_followed(hypervisor, image, tmp_path):
    hv, pool, pool_dir = hypervisor
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(str(victim), str(pool_dir / "vm.disk0.qcow2.importing"))
    hv.storage.import_image(pool, "vm.disk0.qcow2", image)
    assert victim.read_text() == "keep"
    assert not os.path.islink(str(pool_dir / "vm.disk0.qcow2"))


def store(**values):
    args = dict(conf="/etc/ceph/ceph.conf", user="libvirt", keyring=None, pool="rbd", run=None)
    args.update(values)
    return rbd_store.RbdStore(**args)


def test_the_rbd_spec_of_plain_values():
    assert store(keyring="/etc/ceph/k").qemu_target("system_vm1") == (
        "rbd:rbd/system_vm1:id=libvirt:conf=/etc/ceph/ceph.conf:keyring=/etc/ceph/k")


@pytest.mark.parametrize("values,expected", [
    ({"user": "libvirt:conf=/tmp/evil.conf"},
     "ceph_user 'libvirt:conf=/tmp/evil.conf' must not contain ':' or '='"),
    ({"conf": "/etc/ceph/ceph.conf:mon_host=10.9.9.9"},
     "ceph_conf '/etc/ceph/ceph.conf:mon_host=10.9.9.9' must not contain ':' or '='"),
    ({"keyring": "/k:key=AQ=="}, "keyring '/k:key=AQ==' must not contain ':' or '='"),
    ({"user": "lib\\virt"}, "ceph_user 'lib\\\\virt' must not contain '\\'"),
    ({"pool": "rbd@snap"}, "pool 'rbd@snap' must not contain '@'"),
    ({"pool": "rbd/x"}, "pool 'rbd/x' must not contain '/'"),
], ids=["ceph_user", "ceph_conf", "keyring", "backslash", "pool", "pool-path"])
def test_values_that_inject_rbd_options_are_refused(values, expected):
    """Refused when the store is made, before it connects or runs anything."""
    with pytest.raises(VmError) as err:
        store(**values)
    assert err.value.msg == expected + ": qemu-img would read what follows as options of its own."
