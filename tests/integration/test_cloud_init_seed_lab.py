"""gridvirt.kvm.cloud_init_seed on the lab host: the seed image it writes is one cloud-init
itself reads (its NoCloud data source, its network renderers: the guest gets the allocated
address, gateway and DNS on the NIC with the allocated MAC); reruns, check mode and removal
tell the truth; with store=rados the seed lives in the pool and the resource agent writes it
to the node that starts the VM, before the VM starts."""
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
RADOS = ["rados", "--id", "libvirt", "-p", "rbd"]
RBD = ["rbd", "--id", "libvirt", "-p", "rbd"]
KEYRING = "/etc/ceph/ceph.client.libvirt.keyring"
AGENT = os.path.join(lab.REPO, "roles", "hypervisor", "files", "ocf", "VirtualDomain")
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


def rados(*args, **kwargs):
    return subprocess.run(RADOS + list(args), capture_output=True, check=False, **kwargs)


def object_exists(vm):
    return rados("stat", "gridvirt_seed." + vm).returncode == 0


def object_bytes(vm):
    proc = rados("get", "gridvirt_seed." + vm, "-")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def remove_test_objects():
    for vm in (PREFIX + "2", PREFIX + "3", PREFIX + "4", PREFIX + "6"):
        rados("rm", "gridvirt_seed." + vm)
        subprocess.run(RBD + ["rm", "system_" + vm], capture_output=True, check=False)


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
    assert not os.path.exists(seed_path(vm)) and not object_exists(vm)


def test_store_rados_puts_the_seed_in_the_pool_not_on_the_host():
    vm = PREFIX + "3"
    assert ok(vm, check=True, store="rados")["changed"] and not object_exists(vm)
    first = ok(vm, store="rados")
    assert first["changed"] and object_exists(vm) and not os.path.exists(seed_path(vm))
    with tempfile.TemporaryDirectory() as directory:
        image = os.path.join(directory, "seed.img")
        with open(image, "wb") as handle:
            handle.write(object_bytes(vm))
        assert filesystem(image)["LABEL"] == "CIDATA"
        assert cloud_init_reads(image)["instance_id"] == first["instance_id"]
    assert rados("getxattr", "gridvirt_seed." + vm, "path").stdout.decode() == seed_path(vm)
    assert not ok(vm, store="rados")["changed"]
    assert ok(vm, store="rados", state="absent")["changed"] and not object_exists(vm)
    assert not ok(vm, store="rados", state="absent")["changed"]


def seeded_domain_xml(vm, seed_file):
    """The lab guest's XML with the seed attached as the template attaches it (None: none)."""
    root = etree.fromstring(lab.guest_xml(vm))
    etree.SubElement(root, "name").text = vm
    root.insert(0, root[-1])
    if seed_file is None:
        return etree.tostring(root, encoding="unicode", pretty_print=True)
    disk = etree.SubElement(root.find("devices"), "disk", type="file", device="cdrom")
    etree.SubElement(disk, "driver", name="qemu", type="raw")
    etree.SubElement(disk, "source", file=seed_file)
    etree.SubElement(disk, "target", dev="sdx", bus="sata")
    etree.SubElement(disk, "readonly")
    # One element a line: the heartbeat agent finds the domain name with a line-wise grep.
    return etree.tostring(root, encoding="unicode", pretty_print=True)


def agent(action, vm, config, **parameters):
    """The resource agent as Pacemaker runs it: the action, the resource's parameters as
    OCF_RESKEY_* variables."""
    env = dict(os.environ, OCF_ROOT="/usr/lib/ocf", OCF_RESOURCE_INSTANCE=vm,
               OCF_RESKEY_config=config, OCF_RESKEY_hypervisor=lab.URI,
               OCF_RESKEY_rbd_pool="rbd", OCF_RESKEY_ceph_user="libvirt",
               OCF_RESKEY_ceph_keyring=KEYRING, OCF_RESKEY_CRM_meta_timeout="60000")
    env.update(("OCF_RESKEY_" + key, value) for key, value in parameters.items())
    return subprocess.run(["sh", AGENT, action], env=env, capture_output=True, text=True,
                          check=False, timeout=120)


def store_definition(vm, xml):
    """What cluster_vm leaves in the pool for the agent: system_<vm> with its `xml` metadata."""
    subprocess.run(RBD + ["create", "--size", "1M", "system_" + vm], check=True)
    subprocess.run(RBD + ["image-meta", "set", "system_" + vm, "xml", xml], check=True,
                   capture_output=True)


def test_the_agent_writes_the_seed_to_the_starting_node_before_the_vm_starts():
    vm = PREFIX + "4"
    path = seed_path(vm)
    ok(vm, store="rados")
    store_definition(vm, seeded_domain_xml(vm, path))
    assert not os.path.exists(path)
    with tempfile.TemporaryDirectory() as directory:
        config = os.path.join(directory, vm + ".xml")
        started = agent("start", vm, config)
        try:
            # libvirt refuses to start a domain whose CD-ROM file is missing: it started, so
            # the seed was there first.
            assert started.returncode == 0, started.stderr
            assert lab.domain_state(vm) == lab.libvirt.VIR_DOMAIN_RUNNING
            cdrom = lab.domain_xml(vm, inactive=False).find("devices/disk[@device='cdrom']/source")
            assert cdrom.get("file") == path
            with open(path, "rb") as handle:
                assert handle.read() == object_bytes(vm)
        finally:
            # The guest has no OS to answer ACPI: power it off rather than wait out the timeout.
            stopped = agent("stop", vm, config, force_stop="true")
        assert stopped.returncode == 0, stopped.stderr


def test_the_agent_writes_no_seed_the_domain_does_not_use_and_still_starts_it():
    vm = PREFIX + "6"
    ok(vm, store="rados")
    store_definition(vm, seeded_domain_xml(vm, None))
    with tempfile.TemporaryDirectory() as directory:
        config = os.path.join(directory, vm + ".xml")
        started = agent("start", vm, config)
        try:
            assert started.returncode == 0, started.stderr
            assert lab.domain_state(vm) == lab.libvirt.VIR_DOMAIN_RUNNING
            assert not os.path.exists(seed_path(vm))
        finally:
            stopped = agent("stop", vm, config, force_stop="true")
        assert stopped.returncode == 0, stopped.stderr
