"""gridvirt.kvm.cloud_init_seed on the lab host: the seed image it writes is one cloud-init
itself reads (its NoCloud data source, its network renderers: the guest gets the allocated
address, gateway and DNS on the NIC with the allocated MAC); reruns, check mode and removal
tell the truth; with store=rbd the seed lives in an RBD image (cluster VMs attach it over
RBD: test_deploy_addresses boots one); a clone never carries its source's seed."""
import configparser
import json
import os
import shutil
import subprocess
import tempfile

import pytest
from lxml import etree

import lab

MODULE = "gridvirt.kvm.cloud_init_seed"
PREFIX = "ciseed"
RBD = ["rbd", "--id", "libvirt", "-p", "rbd"]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMn1R0ZQv8pJ0Fh0cZ4xgJmW8wXQw3b6dE2nYt3kK2rQ ops@site"
DOCUMENTS = ("meta-data", "network-config", "user-data")


def seed_path(vm):
    return os.path.join(lab.POOL_DIR, "%s-seed.img" % vm)


def addresses(vm, ip="192.0.2.10"):
    """What the address registry returns for a VM with a static NIC and a DHCP one."""
    return [
        {"vm": vm, "nic": 0, "pool": "lan", "mac": "02:67:76:0a:00:01", "ip": ip,
         "prefix": 24, "gateway": "192.0.2.1", "dns_servers": ["192.0.2.53"],
         "domain": "example.org", "fqdn": "%s.example.org" % vm, "fixed": False},
        {"vm": vm, "nic": 1, "pool": "storage", "mac": "02:67:76:0a:00:02", "ip": None,
         "prefix": None, "gateway": None, "dns_servers": [], "domain": None, "fqdn": vm,
         "fixed": True},
    ]


def seed(name, check=False, **extra):
    """The module on the lab host for VM ``name``; ``extra`` options override the defaults."""
    args = {"vm": name, "addresses": addresses(name), "ssh_authorized_keys": [KEY]}
    args.update(extra)
    return lab.run_module(args, module=MODULE, check=check)


def ok(name, **kwargs):
    result = seed(name, **kwargs)
    assert not result["failed"], result.get("msg") or result["_stdout"][-3000:]
    return result


def rbd(*args):
    return subprocess.run(RBD + list(args), capture_output=True, check=False)


def image_exists(vm):
    return rbd("info", "seed_" + vm).returncode == 0


def image_bytes(vm):
    proc = rbd("export", "seed_" + vm, "-")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def remove_test_objects():
    for vm in (PREFIX + "2", PREFIX + "3", PREFIX + "5"):
        rbd("rm", "seed_" + vm)


@pytest.fixture(scope="module", autouse=True)
def clean_lab():
    remove_test_objects()
    lab.remove_everything(PREFIX)
    yield
    remove_test_objects()
    lab.remove_everything(PREFIX)


# ---- reading a seed image the way a guest's tools do ---------------------------------------

def filesystem(path):
    """blkid's view of the image (what cloud-init uses to find LABEL=cidata)."""
    out = subprocess.run(["blkid", "-p", "-o", "export", path], capture_output=True, text=True,
                         check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def image_files(path):
    """The files at the image's root, from mdir's bare listing (-b: one path a line)."""
    out = subprocess.run(["mdir", "-b", "-i", path, "::"], capture_output=True, text=True,
                         check=True).stdout
    return sorted(line.strip().rsplit("/", 1)[-1] for line in out.splitlines() if line.strip())


def extract(image, directory):
    for name in DOCUMENTS:
        subprocess.run(["mcopy", "-n", "-i", image, "::" + name, os.path.join(directory, name)],
                       check=True)


def documents(image):
    with tempfile.TemporaryDirectory() as directory:
        extract(image, directory)
        texts = {}
        for name in DOCUMENTS:
            with open(os.path.join(directory, name)) as handle:
                texts[name] = handle.read()
        return texts


# cloud-init's own NoCloud data source, on the files of the seed (what it does after mounting
# the CIDATA device): its metadata, user-data and network config as it understands them.
NOCLOUD_READER = """
import json, sys, tempfile
from cloudinit import helpers
from cloudinit.sources.DataSourceNoCloud import DataSourceNoCloud
run = tempfile.mkdtemp()
ds = DataSourceNoCloud(sys_cfg={"datasource": {"NoCloud": {"fs_label": None}}}, distro=None,
                       paths=helpers.Paths({"cloud_dir": run, "run_dir": run}))
ds.seed_dirs = [sys.argv[1]]
assert ds._get_data(), "NoCloud found no seed in " + sys.argv[1]
from cloudinit import util
print(json.dumps({"instance_id": ds.get_instance_id(), "metadata": ds.metadata,
                  "network": ds.network_config,
                  "user_data": util.load_yaml(ds.userdata_raw)}))
"""


def require_cloud_init():
    # CI installs cloud-init (lab/install-packages.sh): missing, this test fails, not skips.
    assert shutil.which("cloud-init"), "cloud-init is not installed: run lab/install-packages.sh"


def cloud_init_reads(image):
    require_cloud_init()
    with tempfile.TemporaryDirectory() as directory:
        extract(image, directory)
        out = subprocess.run(["/usr/bin/python3", "-c", NOCLOUD_READER, directory],
                             capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def rendered(image, kind):
    """cloud-init's renderer of ``kind`` (eni, networkd) on the seed's network-config:
    {relative path: text} of the files it writes."""
    require_cloud_init()
    with tempfile.TemporaryDirectory() as directory:
        extract(image, directory)
        out = os.path.join(directory, "out")
        subprocess.run(["cloud-init", "devel", "net-convert", "--network-data",
                        os.path.join(directory, "network-config"), "--kind", "yaml",
                        "--distro", "debian", "--directory", out, "--output-kind", kind],
                       capture_output=True, text=True, check=True)
        files = {}
        for root, _dirs, names in os.walk(out):
            for name in names:
                with open(os.path.join(root, name)) as handle:
                    files[os.path.relpath(os.path.join(root, name), out)] = handle.read()
        return files


def networkd_unit(text):
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str
    unit.read_string(text)
    return {section: dict(unit[section]) for section in unit.sections()}


def eni_stanza(text, interface):
    """The option lines of ``iface <interface> ...`` in an interfaces(5) file."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("iface "):
            inside = line.split()[1] == interface
            if inside:
                lines.append(line.strip())
        elif inside and line.startswith((" ", "\t")) and line.strip():
            lines.append(line.strip())
    return lines


# ---- the tests -----------------------------------------------------------------------------

def test_the_seed_is_a_cidata_image_cloud_init_reads_as_allocated():
    vm = PREFIX + "1"
    result = ok(vm)
    path = seed_path(vm)
    assert result["changed"] and result["path"] == path
    assert filesystem(path)["LABEL"] == "CIDATA" and filesystem(path)["TYPE"] == "vfat"
    assert image_files(path) == sorted(DOCUMENTS)
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    seen = cloud_init_reads(path)
    assert seen["instance_id"] == result["instance_id"]
    assert seen["metadata"]["local-hostname"] == vm
    assert seen["network"] == result["network_config"]
    assert seen["user_data"] == {"hostname": vm, "fqdn": vm + ".example.org",
                                 "ssh_authorized_keys": [KEY]}


def test_cloud_inits_renderers_give_the_nic_with_the_allocated_mac_its_address():
    vm = PREFIX + "1"
    ok(vm)
    networkd = rendered(seed_path(vm), "networkd")
    static = networkd_unit(networkd["etc/systemd/network/10-cloud-init-eth0.network"])
    assert static["Match"] == {"MACAddress": "02:67:76:0a:00:01", "Name": "eth0"}
    assert static["Address"] == {"Address": "192.0.2.10/24"}
    assert static["Route"] == {"Gateway": "192.0.2.1"}
    assert static["Network"]["DNS"] == "192.0.2.53"
    assert static["Network"]["Domains"] == "example.org"
    dhcp = networkd_unit(networkd["etc/systemd/network/10-cloud-init-eth1.network"])
    assert dhcp["Match"]["MACAddress"] == "02:67:76:0a:00:02"
    assert dhcp["Network"]["DHCP"] == "ipv4"
    eni = rendered(seed_path(vm), "eni")
    assert ('SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="02:67:76:0a:00:01", '
            'NAME="eth0"') in eni["etc/udev/rules.d/70-persistent-net.rules"].splitlines()
    stanza = eni_stanza(eni["etc/network/interfaces.d/50-cloud-init"], "eth0")
    assert stanza[0] == "iface eth0 inet static"
    for line in ("address 192.0.2.10/24", "gateway 192.0.2.1", "dns-nameservers 192.0.2.53",
                 "dns-search example.org"):
        assert line in stanza
    assert eni_stanza(eni["etc/network/interfaces.d/50-cloud-init"], "eth1") == [
        "iface eth1 inet dhcp"]


def test_reruns_check_mode_and_removal_tell_the_truth():
    vm = PREFIX + "2"
    path = seed_path(vm)
    predicted = ok(vm, check=True)
    assert predicted["changed"] and not os.path.exists(path)
    first = ok(vm)
    written = documents(path)
    again = ok(vm)
    assert not again["changed"] and again["instance_id"] == first["instance_id"]
    # A new address: check mode predicts the change and leaves the seed as it was.
    moved = dict(addresses=addresses(vm, ip="192.0.2.77"))
    assert ok(vm, check=True, **moved)["changed"]
    assert documents(path) == written
    changed = ok(vm, **moved)
    assert changed["changed"] and changed["instance_id"] != first["instance_id"]
    assert cloud_init_reads(path)["instance_id"] == changed["instance_id"]
    assert changed["network_config"]["ethernets"]["eth0"]["addresses"] == ["192.0.2.77/24"]
    assert ok(vm, check=True, state="absent")["changed"] and os.path.exists(path)
    assert ok(vm, state="absent")["changed"] and not os.path.exists(path)
    assert not ok(vm, state="absent")["changed"]


@pytest.mark.parametrize("extra, sentence", [
    ({"hostname": "web server"}, "The hostname 'web server' is not a DNS name"),
    ({"ssh_authorized_keys": [KEY + "\nruncmd: [reboot]"]}, "is not one line of the OpenSSH form"),
    ({"addresses": [dict(addresses("x")[0], vm=PREFIX + "5", gateway="2001:db8::1")]},
     "is not an IPv4 address"),
    ({"vm": PREFIX + "5\n"}, "Invalid VM name"),
])
def test_bad_input_fails_with_a_sentence_and_writes_nothing(extra, sentence):
    vm = PREFIX + "5"
    result = seed(vm, **extra)
    assert result["failed"] and sentence in result["msg"]
    assert not os.path.exists(seed_path(vm)) and not image_exists(vm)


def test_store_rbd_puts_the_seed_in_an_rbd_image_not_on_the_host():
    vm = PREFIX + "3"
    assert seed(vm, check=True, store="rbd")["changed"] and not image_exists(vm)
    first = ok(vm, store="rbd")
    assert first["changed"] and first["image"] == "rbd/seed_" + vm
    assert image_exists(vm) and not os.path.exists(seed_path(vm))
    with tempfile.TemporaryDirectory() as directory:
        image = os.path.join(directory, "seed.img")
        with open(image, "wb") as handle:
            handle.write(image_bytes(vm))
        assert filesystem(image)["LABEL"] == "CIDATA"
        assert cloud_init_reads(image)["instance_id"] == first["instance_id"]
    assert not ok(vm, store="rbd")["changed"]
    # New keys: a new instance-id, written into the same image.
    again = ok(vm, store="rbd", ssh_authorized_keys=[])
    assert again["changed"] and again["instance_id"] != first["instance_id"]
    with tempfile.TemporaryDirectory() as directory:
        image = os.path.join(directory, "seed.img")
        with open(image, "wb") as handle:
            handle.write(image_bytes(vm))
        assert cloud_init_reads(image)["instance_id"] == again["instance_id"]
    assert ok(vm, store="rbd", state="absent")["changed"] and not image_exists(vm)
    assert not ok(vm, store="rbd", state="absent")["changed"]


def seeded_domain_xml(vm, seed_file):
    """The lab guest's XML with the seed attached as the template attaches it."""
    root = etree.fromstring(lab.guest_xml(vm))
    disk = etree.SubElement(root.find("devices"), "disk", type="file", device="cdrom")
    etree.SubElement(disk, "driver", name="qemu", type="raw")
    etree.SubElement(disk, "source", file=seed_file)
    etree.SubElement(disk, "target", dev="sdx", bus="sata")
    etree.SubElement(disk, "readonly")
    return etree.tostring(root, encoding="unicode")


def test_a_clone_never_carries_its_sources_seed():
    """The seed holds the source's addresses: a clone made by standalone_vm has no CD-ROM of
    it (it gets a seed of its own when deployed with cloud_init)."""
    vm, clone = PREFIX + "7", PREFIX + "7k"
    ok(vm)
    created = lab.run_module({"name": vm, "state": "present", "system_image": lab.GUEST_IMAGE,
                              "xml": seeded_domain_xml(vm, seed_path(vm))})
    assert not created["failed"], created.get("msg")
    sources = [d.find("source").get("file")
               for d in lab.domain_xml(vm).findall("devices/disk[@device='cdrom']")]
    assert sources == [seed_path(vm)]
    cloned = lab.run_module({"name": clone, "command": "clone", "src_name": vm})
    assert cloned["changed"] and not cloned["failed"], cloned.get("msg")
    assert not lab.domain_xml(clone).findall("devices/disk[@device='cdrom']")
