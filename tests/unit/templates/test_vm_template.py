"""templates/vm/domain.xml.j2: each knob renders the expected XML (rendered by Ansible's own
template module) and the result passes libvirt's schema (virt-xml-validate)."""
import json
import os
import subprocess

import pytest
from lxml import etree
import unit_paths

REPO = unit_paths.REPO
TEMPLATE = os.path.join(REPO, "templates", "vm", "domain.xml.j2")


def render(tmp_path, **vm):
    """The template rendered by ansible.builtin.template for a VM with these variables."""
    vm.setdefault("inventory_hostname", "vm1")
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"vm": vm}))
    out = tmp_path / "domain.xml"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        ["ansible", "localhost", "-c", "local", "-m", "ansible.builtin.template",
         "-a", "src=%s dest=%s" % (TEMPLATE, out), "-e", "@%s" % extra],
        cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    valid = subprocess.run(["virt-xml-validate", str(out), "domain"], capture_output=True,
                           text=True, check=False)
    assert valid.returncode == 0, valid.stdout + valid.stderr + text
    return etree.fromstring(text.encode())


def attrs(root, xpath, name):
    return [el.get(name) for el in root.xpath(xpath)]


def test_defaults_are_a_plain_bios_vm(tmp_path):
    root = render(tmp_path)
    assert root.findtext("name") == "vm1" and root.get("type") == "kvm"
    assert root.find("uuid") is None  # derived from the name by the modules
    assert root.findtext("vcpu") == "1" and root.findtext("memory") == "2048"
    assert root.find("os").get("firmware") is None
    assert attrs(root, "os/boot", "dev") == ["hd"]
    assert root.find("cputune") is None and root.find("devices/disk") is None
    assert attrs(root, "devices/memballoon", "model") == ["none"]


def test_rt_isolated_vm_like_seapath(tmp_path):
    root = render(tmp_path, cpuset=[4, 5, 6], vm_features=["rt", "isolated"],
                  rt_priority=20, emulatorpin="2-3", machine_partitions=True, memory=1024)
    assert root.findtext("vcpu") == "3"
    assert root.findtext("resource/partition") == "/machine/rt"
    assert [(p.get("vcpu"), p.get("cpuset")) for p in root.findall("cputune/vcpupin")] == \
        [("0", "4"), ("1", "5"), ("2", "6")]
    assert attrs(root, "cputune/emulatorpin", "cpuset") == ["2-3"]
    sched = root.find("cputune/vcpusched")
    assert (sched.get("vcpus"), sched.get("scheduler"), sched.get("priority")) == \
        ("0-2", "fifo", "20")
    cpu = root.find("cpu")
    assert cpu.get("mode") == "host-passthrough"
    assert cpu.find("topology").get("cores") == "3"
    assert root.find("features/pmu").get("state") == "off"


def test_nort_partition_and_explicit_pinning_map(tmp_path):
    root = render(tmp_path, nb_cpu=2, machine_partitions=True,
                  cpu_pinning={"0": 7, "1": 9})
    assert root.findtext("resource/partition") == "/machine/nort"
    assert [(p.get("vcpu"), p.get("cpuset")) for p in root.findall("cputune/vcpupin")] == \
        [("0", "7"), ("1", "9")]


def test_pin_all_maps_vcpu_i_to_pcpu_i(tmp_path):
    root = render(tmp_path, nb_cpu=3, cpu_pinning="pin_all")
    assert [(p.get("vcpu"), p.get("cpuset")) for p in root.findall("cputune/vcpupin")] == \
        [("0", "0"), ("1", "1"), ("2", "2")]


@pytest.mark.parametrize("mode,expected", [
    ("host-model", {"mode": "host-model"}),
    ("host-passthrough", {"mode": "host-passthrough"}),
])
def test_cpu_modes(tmp_path, mode, expected):
    root = render(tmp_path, cpu_mode=mode)
    assert dict(root.find("cpu").attrib) == expected


def test_cpu_mode_with_inner_xml(tmp_path):
    root = render(tmp_path, cpu_mode="mode:<model fallback='allow'>Skylake-Client</model>")
    assert root.findtext("cpu/model") == "Skylake-Client"
    assert root.find("cpu").get("mode") is None


def test_rocks_cpu_mode_colon_form_renders_what_libvirt_accepts(tmp_path):
    """Rocks' own example: the match before the colon, libvirt's mode="custom"."""
    root = render(tmp_path, cpu_mode="exact: <model fallback='allow'>core2duo</model>"
                                     "<vendor>Intel</vendor><topology sockets='1' cores='2' threads='1'/>")
    cpu = root.find("cpu")
    assert dict(cpu.attrib) == {"mode": "custom", "match": "exact"}
    assert [child.tag for child in cpu] == ["model", "vendor", "topology"]
    assert cpu.find("model").get("fallback") == "allow" and cpu.findtext("model") == "core2duo"
    root = render(tmp_path, cpu_mode="host-model:<feature policy='disable' name='vmx'/>")
    assert root.find("cpu").get("mode") == "host-model"


def test_kvm_cpu_pinning_pin_all_and_cputune_xml(tmp_path):
    root = render(tmp_path, nb_cpu=2, kvm_cpu_pinning="pin_all")
    assert [(p.get("vcpu"), p.get("cpuset")) for p in root.findall("cputune/vcpupin")] == \
        [("0", "0"), ("1", "1")]
    root = render(tmp_path, nb_cpu=2, kvm_cpu_pinning="<cputune><vcpupin vcpu='0' cpuset='1'/>"
                                                      "<emulatorpin cpuset='0'/></cputune>")
    assert [child.tag for child in root.find("cputune")] == ["vcpupin", "emulatorpin"]
    # cpu_pinning, the collection's name, wins over the Rocks name.
    root = render(tmp_path, nb_cpu=2, cpu_pinning={"0": "1"}, kvm_cpu_pinning="pin_all")
    assert [(p.get("vcpu"), p.get("cpuset")) for p in root.findall("cputune/vcpupin")] == [("0", "1")]


def test_kvm_devices_come_in_numeric_order(tmp_path):
    root = render(tmp_path, kvm_device_10="<input type='keyboard' bus='usb'/>",
                  kvm_device_2="<input type='tablet' bus='usb'/>",
                  kvm_device_1="<input type='mouse' bus='usb'/>")
    assert attrs(root, "devices/input[@bus='usb']", "type") == ["mouse", "tablet", "keyboard"]


def render_fails(tmp_path, **vm):
    """The template rendered for bad values -> the error output (ansible fails, no file)."""
    vm.setdefault("inventory_hostname", "vm1")
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"vm": vm}))
    out = tmp_path / "bad.xml"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        ["ansible", "localhost", "-c", "local", "-m", "ansible.builtin.template",
         "-a", "src=%s dest=%s" % (TEMPLATE, out), "-e", "@%s" % extra],
        cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and not out.exists()
    return " ".join((proc.stdout + proc.stderr).split())


@pytest.mark.parametrize("vm, sentence", [
    ({"cpu_mode": "exact: <model>x</model></cpu><devices><disk/></devices><cpu>"},
     "The XML of cpu_mode 'exact' is not well-formed XML"),
    ({"cpu_mode": "exact: <disk type='file'/>"},
     "The XML of cpu_mode 'exact' may hold only <model>"),
    ({"cpu_mode": "fast: <model>x</model>"},
     "cpu_mode 'fast': before the ':' give a libvirt CPU mode"),
    ({"kvm_cpu_pinning": "<cputune/><devices/>"},
     "kvm_cpu_pinning must be pin_all or one <cputune> element, not <cputune>, <devices>"),
    ({"kvm_cpu_pinning": "<cputune><disk/></cputune>"},
     "The <cputune> of kvm_cpu_pinning may hold only <vcpupin>"),
])
def test_hostile_xml_attributes_are_refused_with_a_sentence(tmp_path, vm, sentence):
    assert sentence in render_fails(tmp_path, **vm)


def test_secure_boot_efi_and_hugepages(tmp_path):
    root = render(tmp_path, vm_features=["secure-boot", "dpdk"])
    assert root.find("os").get("firmware") == "efi"
    assert root.find("os/type").get("machine") == "q35"
    assert attrs(root, "os/firmware/feature", "enabled") == ["yes"]
    assert root.find("features/smm").get("state") == "on"
    assert root.find("memoryBacking/hugepages") is not None


def test_plain_efi(tmp_path):
    root = render(tmp_path, firmware="efi")
    assert attrs(root, "os/firmware/feature", "enabled") == ["no"]
    assert root.find("features/smm") is None


def test_networks_of_every_kind(tmp_path):
    root = render(tmp_path, bridges=[
        {"name": "br0", "mac_address": "52:54:00:aa:00:01", "vlan_id": 100},
        {"name": "ovsbr", "type": "openvswitch"}],
        ovs=[{"ovs_port": "tap-vm1", "mac_address": "52:54:00:aa:00:02"}],
        direct_interfaces=[{"source": "eno2", "mode": "passthrough"}],
        sriov=["sriov-pool"],
        pci_passthrough=[{"domain": "0x0000", "bus": "0x03", "slot": "0x00",
                          "function": "0x1"}])
    nics = root.findall("devices/interface")
    assert [n.get("type") for n in nics] == ["bridge", "bridge", "ethernet", "direct",
                                             "network"]
    assert nics[0].find("mac").get("address") == "52:54:00:aa:00:01"
    assert nics[0].find("vlan/tag").get("id") == "100"
    assert nics[1].find("virtualport").get("type") == "openvswitch"
    assert nics[1].find("mac") is None  # the modules give it a stable MAC
    assert nics[2].find("target").get("dev") == "tap-vm1"
    assert nics[2].find("target").get("managed") == "no"
    assert nics[3].find("source").get("mode") == "passthrough"
    assert nics[4].find("source").get("network") == "sriov-pool"
    assert root.find("devices/hostdev/source/address").get("function") == "0x1"


def test_cdrom_first_then_disk_and_cloud_init_seed(tmp_path):
    root = render(tmp_path, cdrom="/var/lib/images/install.iso",
                  cloud_init_seed="/var/lib/images/vm1-seed.iso")
    assert attrs(root, "os/boot", "dev") == ["cdrom", "network", "hd"]
    assert attrs(root, "devices/disk", "device") == ["cdrom", "cdrom"]
    assert attrs(root, "devices/disk/source", "file") == [
        "/var/lib/images/install.iso", "/var/lib/images/vm1-seed.iso"]


def test_a_cluster_vms_seed_is_an_rbd_cdrom_naming_only_its_image(tmp_path):
    root = render(tmp_path, cloud_init_seed_rbd="rbd/seed_vm1")
    [disk] = root.findall("devices/disk")
    assert (disk.get("type"), disk.get("device")) == ("network", "cdrom")
    assert disk.find("source").attrib == {"protocol": "rbd", "name": "rbd/seed_vm1"}
    assert disk.find("readonly") is not None and disk.find("source/host") is None


def test_console_watchdog_balloon_and_raw_devices(tmp_path):
    root = render(tmp_path, vnc=True, watchdog=True, watchdog_action="poweroff",
                  vm_features=["memballoon"], serial_log="/var/log/vm1.log",
                  extra_devices=["<rng model='virtio'><backend model='random'>/dev/urandom"
                                 "</backend></rng>"],
                  kvm_device_0="<input type='tablet' bus='usb'/>")
    assert root.find("devices/graphics").get("type") == "vnc"
    assert root.find("devices/graphics").get("listen") == "127.0.0.1"
    assert root.find("devices/watchdog").get("action") == "poweroff"
    assert root.find("devices/memballoon").get("model") == "virtio"
    assert root.find("devices/serial/log").get("file") == "/var/log/vm1.log"
    assert root.find("devices/rng").get("model") == "virtio"
    assert root.find("devices/input").get("type") == "tablet"


def test_inventory_uuid_and_description_are_kept(tmp_path):
    root = render(tmp_path, uuid="0f5f3a4e-8a49-4d37-9e0e-0123456789ab",
                  description="RTU <north>")
    assert root.findtext("uuid") == "0f5f3a4e-8a49-4d37-9e0e-0123456789ab"
    assert root.findtext("description") == "RTU <north>"


def test_software_emulation_for_the_lab(tmp_path):
    assert render(tmp_path, domain_type="qemu").get("type") == "qemu"


def test_seapath_spelling_of_memballoon(tmp_path):
    root = render(tmp_path, vm_features=["membaloon"])
    assert root.find("devices/memballoon").get("model") == "virtio"


# ---- every inventory value is escaped -------------------------------------------------------
# Values that try to end their attribute (in either quote) or their element and add one.
HOSTILE = ["x'/><evil", 'x"/><evil/>', "x</name><evil/>&amp;&lt;"]
BENIGN = "x"


def pci_address(field):
    def knobs(value):
        address = {"domain": "0x0000", "bus": "0x03", "slot": "0x00", "function": "0x1"}
        address[field] = value
        return {"pci_passthrough": [address]}
    return knobs


# (field, the VM's variables with that value, the node the value lands in, its attribute or
# None for its text)
FIELDS = [
    ("name", lambda v: {"inventory_hostname": v}, "name", None),
    ("uuid", lambda v: {"uuid": v}, "uuid", None),
    ("description", lambda v: {"description": v}, "description", None),
    ("domain_type", lambda v: {"domain_type": v}, ".", "type"),
    ("machine", lambda v: {"machine": v}, "os/type", "machine"),
    ("cpu_mode", lambda v: {"cpu_mode": v}, "cpu", "mode"),
    ("rt cpu_mode", lambda v: {"cpu_mode": v, "vm_features": ["rt"]}, "cpu", "mode"),
    ("emulatorpin", lambda v: {"emulatorpin": v}, "cputune/emulatorpin", "cpuset"),
    ("rt_priority", lambda v: {"rt_priority": v, "vm_features": ["rt"]},
     "cputune/vcpusched", "priority"),
    ("cpu_pinning vcpu", lambda v: {"cpu_pinning": {v: "1"}}, "cputune/vcpupin", "vcpu"),
    ("cpu_pinning pcpu", lambda v: {"cpu_pinning": {"0": v}}, "cputune/vcpupin", "cpuset"),
    ("cdrom", lambda v: {"cdrom": v}, "devices/disk/source", "file"),
    ("cloud_init_seed", lambda v: {"cloud_init_seed": v}, "devices/disk/source", "file"),
    ("cloud_init_seed_rbd", lambda v: {"cloud_init_seed_rbd": v}, "devices/disk/source", "name"),
    ("bridge name", lambda v: {"bridges": [{"name": v}]}, "devices/interface/source",
     "bridge"),
    ("bridge mac_address", lambda v: {"bridges": [{"name": "br0", "mac_address": v}]},
     "devices/interface/mac", "address"),
    ("bridge vlan_id", lambda v: {"bridges": [{"name": "br0", "vlan_id": v}]},
     "devices/interface/vlan/tag", "id"),
    ("bridge vlan.vlan_tag", lambda v: {"bridges": [{"name": "br0", "vlan": {"vlan_tag": v}}]},
     "devices/interface/vlan/tag", "id"),
    ("ovs_port", lambda v: {"ovs": [{"ovs_port": v}]}, "devices/interface/target", "dev"),
    ("ovs mac_address", lambda v: {"ovs": [{"ovs_port": "p0", "mac_address": v}]},
     "devices/interface/mac", "address"),
    ("macvtap source", lambda v: {"direct_interfaces": [{"source": v}]},
     "devices/interface/source", "dev"),
    ("macvtap mode", lambda v: {"direct_interfaces": [{"source": "eno1", "mode": v}]},
     "devices/interface/source", "mode"),
    ("macvtap mac_address", lambda v: {"direct_interfaces": [{"source": "eno1",
                                                              "mac_address": v}]},
     "devices/interface/mac", "address"),
    ("sriov network", lambda v: {"sriov": [v]}, "devices/interface/source", "network"),
    ("sriov network mapping", lambda v: {"sriov": [{"network": v}]},
     "devices/interface/source", "network"),
    ("pci domain", pci_address("domain"), "devices/hostdev/source/address", "domain"),
    ("pci bus", pci_address("bus"), "devices/hostdev/source/address", "bus"),
    ("pci slot", pci_address("slot"), "devices/hostdev/source/address", "slot"),
    ("pci function", pci_address("function"), "devices/hostdev/source/address", "function"),
    ("serial_log", lambda v: {"serial_log": v}, "devices/serial/log", "file"),
    ("watchdog_action", lambda v: {"watchdog_action": v}, "devices/watchdog", "action"),
]


def render_many(directory, cases):
    """Render the template once per case (id -> the VM's variables) in one ansible run, the
    way roles/vm_definition does (lookup template, the VM's variables as `vm`) -> id -> text.
    Not schema-checked: hostile values need not be valid libvirt values, only inert."""
    out = directory / "rendered.json"
    playbook = directory / "render.json"
    playbook.write_text(json.dumps([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [
            {"ansible.builtin.set_fact": {"rendered": (
                "{{ rendered | default({}) | combine({item.key: lookup('ansible.builtin.template',"
                " template, template_vars={'vm': item.value})}) }}")},
             "loop": "{{ cases | dict2items }}"},
            {"ansible.builtin.copy": {"content": "{{ rendered | to_json }}", "dest": str(out)}},
        ]}]))
    extra = directory / "cases.json"
    extra.write_text(json.dumps({"cases": cases, "template": TEMPLATE}))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(["ansible-playbook", str(playbook), "-e", "@%s" % extra],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def rendered_fields(tmp_path_factory):
    """Every field with the benign and each hostile value, rendered in one ansible run."""
    cases = {}
    for index, field in enumerate(FIELDS):
        knobs = field[1]
        for number, value in enumerate([BENIGN] + HOSTILE):
            cases["%d-%d" % (index, number)] = dict({"inventory_hostname": "vm1"}, **knobs(value))
    return render_many(tmp_path_factory.mktemp("hostile"), cases)


def value_at(root, path, attribute):
    nodes = root.findall(path) if path != "." else [root]
    assert len(nodes) == 1, etree.tostring(root)
    return nodes[0].text if attribute is None else nodes[0].get(attribute)


@pytest.mark.parametrize("number", range(1, len(HOSTILE) + 1), ids=HOSTILE)
@pytest.mark.parametrize("index", range(len(FIELDS)), ids=[f[0] for f in FIELDS])
def test_a_hostile_inventory_value_stays_text(rendered_fields, index, number):
    path, attribute = FIELDS[index][2:]
    benign = etree.fromstring(rendered_fields["%d-0" % index].encode())
    root = etree.fromstring(rendered_fields["%d-%d" % (index, number)].encode())
    assert [el.tag for el in root.iter()] == [el.tag for el in benign.iter()]
    assert root.xpath("//evil") == []
    assert value_at(benign, path, attribute) == BENIGN
    assert value_at(root, path, attribute) == HOSTILE[number - 1]
