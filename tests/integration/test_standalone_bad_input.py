"""Bad input: each case fails with one clear sentence and changes nothing on the hypervisor."""
import os

import pytest

import lab

PREFIX = "itb"
VM = PREFIX + "vm1"
GOOD_XML = lab.guest_xml(VM)
NETWORK_XML = "<network><name>x</name></network>"
DISK_XML = GOOD_XML.replace(
    "<devices>", "<devices><disk type='file' device='disk'><source file='/tmp/x.qcow2'/>"
    "<target dev='vda' bus='virtio'/></disk>")
ENTITY_XML = ("<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
              "<domain type='qemu'><name>&x;</name></domain>")
# Loopback, a port nothing listens on: libvirt's connection is refused at once.
CLOSED_PORT_URI = "qemu+tcp://127.0.0.1:1/system"


def create(**extra):
    args = {"name": VM, "state": "present", "xml": GOOD_XML, "system_image": lab.GUEST_IMAGE}
    args.update(extra)
    return args


# (case id, module arguments, expected part of the message)
CASES = lab.control_character_cases(VM, create) + [
    ("empty name", create(name=""), "VM name must not be empty"),
    ("shell metacharacters", create(name="vm;rm -rf"), "Invalid VM name"),
    ("xml metacharacters", create(name="vm<a>"), "Invalid VM name"),
    ("name too long", create(name="v" * 64), "Invalid VM name"),
    ("name with a dot", create(name="vm.disk0"), "Invalid VM name"),
    ("malformed xml", create(xml="<domain><name>x</domain>"), "not well-formed XML"),
    ("not a domain", create(xml=NETWORK_XML), "must be a libvirt <domain> document"),
    ("xml with its own disk", create(xml=DISK_XML), "must not contain disk devices"),
    ("doctype with entity", create(xml=ENTITY_XML), "must not contain a DOCTYPE"),
    ("empty xml", create(xml="  "), "is empty"),
    ("missing image", create(system_image="/nonexistent/disk.qcow2"),
     "Disk image /nonexistent/disk.qcow2 does not exist on the hypervisor (or is not a file)."),
    ("image is a directory", create(system_image="/tmp"),
     "Disk image /tmp does not exist on the hypervisor (or is not a file)."),
    ("relative image path", create(system_image="disk.qcow2"), "must be an absolute path"),
    ("create without image", create(system_image=None), "give both xml and system_image"),
    ("unknown pool", create(pool="nosuchpool"),
     "The storage pool nosuchpool does not exist on this hypervisor."),
    ("bad pool name", create(pool="a/b"), "Invalid storage pool name"),
    ("negative disk size", create(additional_disks=["-1G"]), "Invalid additional disk size"),
    ("absurd disk size", create(additional_disks=["100000T"]), "larger than 64 TiB"),
    ("zero disk size", create(additional_disks=[0]), "greater than zero"),
    ("disk dict with both keys", create(additional_disks=[{"image": "/tmp/a", "size": "1G"}]),
     "exactly one of image or size"),
    ("memory too small", create(memory=1), "Invalid memory"),
    ("no vcpus", create(vcpus=0), "Invalid vcpus"),
    ("reserved metadata key", create(metadata={"xml": "x"}), "reserved"),
    ("metadata key with space", create(metadata={"a b": "x"}), "Invalid metadata key"),
    ("nested metadata value", create(metadata={"a": {"b": 1}}), "must be a string"),
    ("bad xml uuid", create(xml=GOOD_XML.replace("<vcpu>", "<uuid>zz</uuid><vcpu>")),
     "Invalid UUID"),
    ("state and command", {"name": VM, "state": "present", "command": "status"},
     "mutually exclusive"),
    ("neither state nor command", {"name": VM}, "one of the following is required"),
    ("purge number and date", {"name": VM, "command": "purge_image", "purge_number": 1,
                               "purge_date": {"posix": 1}}, "mutually exclusive"),
    ("bad purge date", {"name": VM, "command": "purge_image",
                        "purge_date": {"date": "21/11/2026"}}, "Invalid purge_date"),
    ("time without date", {"name": VM, "command": "purge_image",
                           "purge_date": {"time": "10:00", "posix": 5}}, "only used together"),
    ("clone without source", {"name": VM, "command": "clone"}, "src_name is required"),
    ("clone of a missing VM", {"name": VM, "command": "clone", "src_name": "itbnothere"},
     "Cannot clone VM itbnothere: it does not exist."),
    ("bad snapshot name", {"name": VM, "command": "create_snapshot", "snapshot_name": "a b"},
     "Invalid snapshot name"),
    ("start a missing VM", {"name": VM, "command": "start"},
     "Cannot start VM %s: it does not exist." % VM),
    ("get_metadata without key", {"name": VM, "command": "get_metadata"},
     "metadata_name is required"),
    ("negative stop timeout", create(stop_timeout=-1), "stop_timeout must be zero or more"),
    ("unreachable uri, read", {"name": VM, "command": "status", "uri": CLOSED_PORT_URI},
     "Cannot connect to libvirt at %s: " % CLOSED_PORT_URI),
    ("unreachable uri, change", create(uri=CLOSED_PORT_URI),
     "Cannot connect to libvirt at %s: " % CLOSED_PORT_URI),
    # Numbers Ansible's own int conversion would crash on ("cannot convert Infinity").
    ("stop timeout inf", create(stop_timeout="inf"),
     "stop_timeout must be zero or more and at most 86400 (a whole number), not 'inf'."),
    ("stop timeout 1e400", create(stop_timeout=1e400),
     "stop_timeout must be zero or more and at most 86400 (a whole number), not inf."),
    ("stop timeout of more than a day", create(stop_timeout=86401),
     "stop_timeout must be zero or more and at most 86400 (a whole number), not 86401."),
    ("memory inf", create(memory=float("inf")),
     "memory must be a whole number, not inf."),
    ("vcpus nan", create(vcpus="nan"),
     "vcpus must be a whole number, not 'nan'."),
    ("connect timeout inf", create(connect_timeout="inf"),
     "connect_timeout must be at least 1 and at most 600 (a whole number), not 'inf'."),
    ("purge posix inf", {"name": VM, "command": "purge_image", "purge_date": {"posix": 1e400}},
     "purge_date.posix must be a whole number, not inf."),
    ("move without destination", {"name": VM, "command": "move"},
     "destination_uri is required when command is move."),
    ("move to this host", {"name": VM, "command": "move", "destination_uri": "qemu:///system"},
     "is not a libvirt URI of another host's QEMU driver"),
    ("move uri with a newline", {"name": VM, "command": "move",
                                 "destination_uri": "qemu+ssh://hv2/system\n"},
     "is not a libvirt URI of another host's QEMU driver"),
    ("move uri picking the remote command",
     {"name": VM, "command": "move", "destination_uri": "qemu+ssh://hv2/system?netcat=/tmp/x"},
     "parameter netcat is not accepted"),
    ("live move with nostart", {"name": VM, "command": "move", "live": True, "nostart": True,
                                "destination_uri": CLOSED_PORT_URI},
     "nostart applies to an offline move: a live move keeps VM %s running." % VM),
    ("move to a bad pool name", {"name": VM, "command": "move", "destination_pool": "a/b",
                                 "destination_uri": CLOSED_PORT_URI}, "Invalid storage pool name"),
    ("move to an unreachable host", {"name": VM, "command": "move",
                                     "destination_uri": CLOSED_PORT_URI},
     "Cannot connect to libvirt at %s: " % CLOSED_PORT_URI),
]


clean_lab = lab.cleanup_fixture(PREFIX)


def test_the_table_is_large_enough():
    assert len(CASES) >= 15


table = lab.refusal_table(CASES, lab.fingerprint)


@pytest.mark.parametrize("case,expected", [(c[0], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_fails_cleanly_and_changes_nothing(table, case, expected):
    lab.assert_refused(table, case, expected)


@pytest.fixture(scope="module")
def existing_vm():
    result = lab.run_module(create(state="running"))
    assert result["changed"] is True
    lab.Console(VM).wait_boot()
    return result


def test_unknown_snapshot_on_an_existing_vm(existing_vm):
    before = lab.fingerprint()
    result = lab.run_module({"name": VM, "command": "rollback_snapshot",
                             "snapshot_name": "nosuch"})
    assert result["failed"] is True
    assert result["msg"] == "VM %s has no snapshot nosuch." % VM
    assert lab.fingerprint() == before


def test_unknown_metadata_key_on_an_existing_vm(existing_vm):
    result = lab.run_module({"name": VM, "command": "get_metadata", "metadata_name": "nope"})
    assert result["failed"] is True and "has no metadata key nope" in result["msg"]


def test_xml_rejected_by_libvirt_changes_nothing(existing_vm):
    before = lab.fingerprint()
    bad = GOOD_XML.replace("<vcpu>1</vcpu>", "<vcpu>1</vcpu><bogus/>")
    result = lab.run_module(create(name=PREFIX + "vm2", xml=bad))
    assert result["failed"] is True and "libvirt refused" in result["msg"], result["msg"]
    assert lab.fingerprint() == before, "a failed create must remove what it created"


def test_forced_reimport_that_fails_leaves_the_vm_running(existing_vm, tmp_path):
    """Fault: the new image is corrupt and the import fails mid-way; the old VM is untouched."""
    corrupt = tmp_path / "corrupt.qcow2"
    lab.corrupt_image(corrupt)
    before = lab.fingerprint()
    console = lab.Console(VM)
    result = lab.run_module(create(state="running", system_image=str(corrupt), force=True))
    assert result["failed"] is True and "Importing" in result["msg"], result["msg"]
    assert lab.fingerprint() == before
    assert "alive" in console.wait_for(r"alive tick=\d+").group(0)


def test_forced_reimport_swaps_the_disk(existing_vm):
    console = lab.Console(VM)
    old_disk = existing_vm["disks"][0]["path"]
    result = lab.run_module(create(state="running", force=True))
    assert result["changed"] is True
    new_disk = result["disks"][0]["path"]
    assert new_disk != old_disk and not os.path.exists(old_disk)
    assert console.wait_boot()["boot"] == 1  # a fresh copy of the image
