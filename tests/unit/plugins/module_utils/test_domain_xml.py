import pytest
from lxml import etree

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

BASE = """<domain type='qemu'>
  <name>whatever</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='user'><model type='virtio'/></interface>
    <interface type='user'><mac address='52:54:00:00:00:01'/></interface>
    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>
  </devices>
</domain>"""


def test_parse_refuses_doctype_and_entities():
    with pytest.raises(VmError) as err:
        dx.parse_domain("<!DOCTYPE d [<!ENTITY x 'y'>]><domain><name>&x;</name></domain>")
    assert "DOCTYPE" in err.value.msg or "not well-formed" in err.value.msg


def test_parse_refuses_other_documents_and_garbage():
    for text, message in (("<network/>", "<domain>"), ("<domain>", "not well-formed"),
                          ("", "empty")):
        with pytest.raises(VmError) as err:
            dx.parse_domain(text)
        assert message in err.value.msg


def test_owned_disks_are_refused_but_cdroms_allowed():
    root = dx.parse_domain(BASE)
    dx.reject_owned_disks(root)
    disk = etree.SubElement(root.find("devices"), "disk", type="file", device="disk")
    etree.SubElement(disk, "source", file="/x.qcow2")
    with pytest.raises(VmError) as err:
        dx.reject_owned_disks(root)
    assert "/x.qcow2" in err.value.msg


def test_identity_injection():
    root = dx.parse_domain(BASE)
    dx.set_identity(root, "vm1", "6f0e3a2c-1f1b-5d7e-9b4a-2c1d0e9f8a7b")
    assert root.findtext("name") == "vm1"
    assert root.findtext("uuid") == "6f0e3a2c-1f1b-5d7e-9b4a-2c1d0e9f8a7b"
    assert root.index(root.find("name")) == 0


def test_identity_conflicting_uuid_is_refused():
    root = dx.parse_domain(BASE.replace("<vcpu>", "<uuid>11111111-1111-1111-1111-111111111111</uuid><vcpu>"))
    with pytest.raises(VmError) as err:
        dx.set_identity(root, "vm1", "22222222-2222-2222-2222-222222222222")
    assert "remove <uuid>" in err.value.msg


def test_disks_macs_and_guest_name():
    root = dx.parse_domain(BASE)
    dx.add_file_disks(root, ["/p/a.qcow2", "/p/b.qcow2"], "virtio")
    dx.assign_macs(root, "vm1")
    dx.expose_name_to_guest(root, "vm1")
    devices = root.find("devices")
    assert devices[0].tag == "emulator" and devices[1].tag == "disk"
    assert dx.disk_paths(root) == ["/p/a.qcow2", "/p/b.qcow2"]
    assert [d["target"] for d in dx.disk_info(root)] == ["vda", "vdb"]
    macs = dx.macs(root)
    assert macs[1] == "52:54:00:00:00:01" and macs[0].startswith("52:54:00:")
    assert root.findtext("sysinfo/system/entry[@name='product']") == "vm1"
    assert root.find("os/smbios").get("mode") == "sysinfo"
    clone = dx.parse_domain(dx.to_string(root))
    dx.expose_name_to_guest(clone, "vm2", old_name="vm1")
    assert clone.findtext("sysinfo/system/entry[@name='product']") == "vm2"


def test_scsi_disks_get_a_controller_and_sd_names():
    root = dx.parse_domain(BASE)
    dx.add_file_disks(root, ["/p/a.qcow2"], "scsi")
    assert dx.disk_info(root)[0]["target"] == "sda"
    assert root.find("devices/controller[@model='virtio-scsi']") is not None


@pytest.mark.parametrize("index,name", [(0, "vda"), (25, "vdz"), (26, "vdaa"), (27, "vdab")])
def test_disk_target_names(index, name):
    assert dx.disk_target("virtio", index) == name


def test_units_normalized_so_equal_sizes_compare_equal():
    a = dx.parse_domain(BASE)
    b = dx.parse_domain(BASE.replace("<memory unit='MiB'>128</memory>",
                                     "<memory>131072</memory>"))
    dx.normalize_units(a)
    dx.normalize_units(b)
    assert dx.canonical(a) == dx.canonical(b)
    assert a.findtext("memory") == "131072"


def test_canonical_ignores_addresses_aliases_whitespace_and_our_metadata():
    plain = dx.parse_domain(BASE)
    noisy = dx.parse_domain(BASE.replace(
        "<model type='virtio'/>",
        "<model type='virtio'/><alias name='net0'/>"
        "<address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>"))
    dx.set_gv_metadata(noisy, dx.build_gv_metadata({"k": "v"}, "<domain/>", "abc"))
    assert dx.canonical(plain) == dx.canonical(noisy)
    assert dx.digest(plain) == dx.digest(noisy)
    changed = dx.parse_domain(BASE.replace("<vcpu>1</vcpu>", "<vcpu>2</vcpu>"))
    assert dx.canonical(changed) != dx.canonical(plain)


def test_metadata_round_trip():
    root = dx.parse_domain(BASE)
    dx.set_gv_metadata(root, dx.build_gv_metadata({"b": "2", "a": "<&>"}, "<domain/>", "d1"))
    reparsed = dx.parse_domain(dx.to_string(root))
    assert dx.read_gv_metadata(reparsed) == ({"a": "<&>", "b": "2"}, "<domain/>", "d1")
    dx.remove_gv_metadata(reparsed)
    assert reparsed.find("metadata") is None


def test_clone_rewrites_log_files_and_drops_macs():
    root = dx.parse_domain(BASE.replace(
        "</devices>", "<serial type='pty'><log file='/var/log/vm1-serial.log'/></serial></devices>"))
    dx.rename_log_files(root, "vm1", "vm2")
    dx.strip_macs(root)
    assert root.find("devices/serial/log").get("file") == "/var/log/vm2-serial.log"
    assert dx.macs(root) == []


CEPH = {"pool": "rbd", "user": "libvirt", "secret_uuid": "5b1a8d2e-3c4f-4e6a-9b7d-1f0e2c3a4b5d",
        "monitors": [("10.0.0.1", "6789")]}
SEEDED = """<domain type='qemu'><name>vm1</name><devices>
  <disk type='network' device='cdrom'><source protocol='rbd' name='rbd/seed_vm1'/>
    <target dev='sdy' bus='sata'/><readonly/></disk>
  <disk type='network' device='cdrom'><auth username='other'><secret type='ceph' usage='x'/></auth>
    <source protocol='rbd' name='other/iso'><host name='10.9.9.9'/></source>
    <target dev='sdz' bus='sata'/><readonly/></disk>
  <disk type='file' device='cdrom'><source file='/var/lib/libvirt/images/vm1-seed.img'/>
    <target dev='sdx' bus='sata'/></disk>
</devices></domain>"""


def test_rbd_cdroms_get_the_clusters_access_unless_they_name_their_own():
    root = dx.parse_domain(SEEDED)
    dx.complete_rbd_cdroms(root, CEPH)
    seed, other = root.findall("devices/disk[@type='network']")
    assert seed.find("auth/secret").get("uuid") == CEPH["secret_uuid"]
    assert [h.get("name") for h in seed.findall("source/host")] == ["10.0.0.1"]
    assert other.find("auth").get("username") == "other"
    assert [h.get("name") for h in other.findall("source/host")] == ["10.9.9.9"]
    # Idempotent: a second pass adds nothing.
    again = dx.to_string(root)
    dx.complete_rbd_cdroms(root, CEPH)
    assert dx.to_string(root) == again


def test_drop_cdroms_removes_exactly_the_named_images_and_files():
    root = dx.parse_domain(SEEDED)
    dx.drop_cdroms(root, ["/var/lib/libvirt/images/vm1-seed.img", "rbd/seed_vm1"])
    assert [d.find("source").get("name") for d in root.findall("devices/disk")] == ["other/iso"]


def test_rbd_disks_carry_monitors_and_secret():
    root = dx.parse_domain(BASE)
    ceph = {"pool": "rbd", "user": "libvirt",
            "secret_uuid": "5b1a8d2e-3c4f-4e6a-9b7d-1f0e2c3a4b5d",
            "monitors": [("10.0.0.1", "6789"), ("10.0.0.2", 6789)]}
    dx.add_rbd_disks(root, ["system_vm1", "data_vm1_1"], "virtio", ceph)
    disks = root.findall("devices/disk[@type='network']")
    names = [d.find("source").get("name") for d in disks]
    assert names == ["rbd/system_vm1", "rbd/data_vm1_1"]
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb"]
    first = disks[0]
    assert first.find("auth").get("username") == "libvirt"
    assert first.find("auth/secret").get("uuid") == ceph["secret_uuid"]
    assert [(h.get("name"), h.get("port")) for h in first.findall("source/host")] == [
        ("10.0.0.1", "6789"), ("10.0.0.2", "6789")]
    assert first.find("driver").get("type") == "raw"
    # They are disks the module owns: a user XML carrying them is refused.
    with pytest.raises(VmError):
        dx.reject_owned_disks(root)


def test_the_importing_mark_is_found_and_removed_alone():
    """libvirt stores setMetadata's element under its namespace, next to our record: the
    import finds it, and strips it (only it) from the definition the cluster VM gets."""
    root = dx.parse_domain(BASE, "test")
    dx.set_gv_metadata(root, dx.build_gv_metadata({"role": "edge"}, "<domain/>"))
    assert not dx.has_importing_mark(root)
    mark = etree.fromstring(dx.importing_mark())
    stored = etree.SubElement(root.find("metadata"), "{%s}importing" % dx.IMPORTING_NS,
                              attrib=dict(mark.attrib))
    assert stored.get("was-running") == "yes"
    assert dx.has_importing_mark(root)
    dx.remove_importing_mark(root)
    assert not dx.has_importing_mark(root)
    assert dx.read_gv_metadata(root)[0] == {"role": "edge"}


SUMMARISED = """<domain type='qemu'>
  <name>s</name><uuid>0f0e0d0c-0b0a-4908-8706-050403020100</uuid>
  <memory unit='GiB'>2</memory><vcpu placement='static'>4</vcpu>
  <devices>
    <disk type='network' device='disk'><source protocol='rbd' name='rbd/system_s'/>
      <target dev='vda' bus='virtio'/></disk>
    <disk type='volume' device='disk'><source pool='default' volume='s.disk1.qcow2'/>
      <target dev='vdb' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><source file='/srv/seed.iso'/><target dev='sda' bus='sata'/></disk>
    <disk type='file' device='cdrom'><target dev='sdb' bus='sata'/></disk>
    <interface type='network'><mac address='52:54:00:aa:bb:01'/></interface>
    <interface type='network'><mac address='52:54:00:aa:bb:02'/></interface>
  </devices>
</domain>"""


def test_device_summary_of_a_definition():
    summary = dx.device_summary(dx.parse_domain(SUMMARISED))
    assert summary == {
        "uuid": "0f0e0d0c-0b0a-4908-8706-050403020100", "vcpus": 4, "memory_mib": 2048,
        "disks": [{"target": "vda", "device": "disk", "source": "rbd/system_s"},
                  {"target": "vdb", "device": "disk", "source": "default/s.disk1.qcow2"},
                  {"target": "sda", "device": "cdrom", "source": "/srv/seed.iso"},
                  {"target": "sdb", "device": "cdrom", "source": None}],
        "macs": ["52:54:00:aa:bb:01", "52:54:00:aa:bb:02"]}


def test_memory_in_any_unit_and_absent_values():
    for memory, mib in (("<memory>262144</memory>", 256), ("<memory unit='M'>300</memory>", 300),
                        ("<memory unit='bytes'>1073741824</memory>", 1024), ("", None)):
        root = dx.parse_domain("<domain><name>m</name>%s</domain>" % memory)
        assert dx.memory_mib(root) == mib
        assert dx.vcpus(root) is None
    with pytest.raises(VmError) as err:
        dx.memory_mib(dx.parse_domain("<domain><memory unit='parsecs'>1</memory></domain>"))
    assert "<memory>" in err.value.msg
