"""The address registry's modules on both backends (SQLite file, RADOS object on the lab's
Ceph): stable and unique addresses, release and reuse, fixed addresses, full pools, bad input
that changes nothing, 20 allocations at once, orphans."""
import ipaddress
import json
import os
import subprocess

from lxml import etree

from address_lab import Registry
from address_lab import registry  # noqa: F401 pylint: disable=unused-import
from lab import REPO, ansible_env, conn, guest_xml

LAB_POOL = dict(name="lab", cidr="10.20.0.0/24", ranges=["10.20.0.100-10.20.0.199"],
                gateway="10.20.0.1", dns_servers=["10.20.0.1"], domain="lab.example")


def ok(result):
    assert not result["failed"], result.get("msg", result)
    return result


def refused(registry, result, *words):
    """The task failed with a sentence naming ``words``."""
    assert result["failed"], result
    for word in words:
        assert word in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"]


def test_pool_created_once_and_check_mode_writes_nothing(registry):
    before = registry.fingerprint()
    predicted = registry.pool(check=True, **LAB_POOL)
    assert predicted["changed"] and registry.fingerprint() == before
    created = ok(registry.pool(**LAB_POOL))
    assert created["changed"]
    assert created["pool"]["size"] == 100 and created["pool"]["free"] == 100
    assert not ok(registry.pool(**LAB_POOL))["changed"]
    changed = dict(LAB_POOL, dns_servers=["10.20.0.2"])
    before = registry.fingerprint()
    assert registry.pool(check=True, **changed)["changed"]
    assert registry.fingerprint() == before
    assert ok(registry.pool(**changed))["changed"]


def test_address_is_stable_and_rerun_is_unchanged(registry):
    ok(registry.pool(**LAB_POOL))
    before = registry.fingerprint()
    predicted = registry.address(check=True, vm="gv-a", pool="lab")
    assert predicted["changed"] and registry.fingerprint() == before
    first = ok(registry.address(vm="gv-a", pool="lab"))
    assert first["changed"]
    address = first["address"]
    assert ipaddress.ip_address(address["ip"]) in ipaddress.ip_network("10.20.0.0/24")
    assert 100 <= int(address["ip"].split(".")[-1]) <= 199
    assert address["mac"].startswith("02:67:76:")
    assert address["fqdn"] == "gv-a.lab.example" and address["prefix"] == 24
    assert address["gateway"] == "10.20.0.1" and address["dns_servers"] == ["10.20.0.1"]
    again = ok(registry.address(vm="gv-a", pool="lab"))
    assert not again["changed"] and again["address"] == address
    # Removed and deployed again: the same address comes back.
    released = ok(registry.address(vm="gv-a", state="absent"))
    assert released["changed"] and released["released"][0]["ip"] == address["ip"]
    assert not ok(registry.address(vm="gv-a", state="absent"))["changed"]
    assert ok(registry.address(vm="gv-a", pool="lab"))["address"] == address


def test_addresses_unique_and_full_pool_is_a_sentence(registry):
    ok(registry.pool(name="tiny", cidr="10.30.0.0/29", ranges=["10.30.0.2-10.30.0.5"],
                     release_hold=0))
    got = [ok(registry.address(vm="gv-u%d" % i, pool="tiny"))["address"] for i in range(4)]
    assert len(set(a["ip"] for a in got)) == 4 and len(set(a["mac"] for a in got)) == 4
    mac_only = ok(registry.address(vm="gv-u0", nic=1))["address"]
    assert mac_only["ip"] is None and mac_only["mac"] not in [a["mac"] for a in got]
    before = registry.fingerprint()
    refused(registry, registry.address(vm="gv-u4", pool="tiny"), "Pool tiny is full",
            "all 4 addresses")
    assert registry.fingerprint() == before
    # A freed address is reused afterwards.
    ok(registry.address(vm="gv-u1", nic=0, state="absent"))
    assert ok(registry.address(vm="gv-u4", pool="tiny"))["address"]["ip"] == got[1]["ip"]
    info = ok(registry.info(pool="tiny"))
    assert info["pools"][0]["used"] == 4 and info["pools"][0]["free"] == 0
    assert sorted(a["vm"] for a in info["addresses"] if a["ip"]) == [
        "gv-u0", "gv-u2", "gv-u3", "gv-u4"]


def test_released_address_is_held_until_nothing_else_is_free(registry):
    ok(registry.pool(name="pair", cidr="10.31.0.0/29", ranges=["10.31.0.2-10.31.0.3"]))
    first = ok(registry.address(vm="gv-h1", pool="pair"))["address"]
    ok(registry.address(vm="gv-h1", state="absent"))
    # Another VM does not get the released address while another one is free ...
    second = ok(registry.address(vm="gv-h2", pool="pair"))["address"]
    assert second["ip"] != first["ip"] and second["mac"] != first["mac"]
    # ... but does once the pool is otherwise full.
    third = ok(registry.address(vm="gv-h3", pool="pair"))["address"]
    assert third["ip"] == first["ip"]
    refused(registry, registry.address(vm="gv-h1", pool="pair"), "Pool pair is full")


def test_fixed_addresses_are_reserved(registry):
    ok(registry.pool(**LAB_POOL))
    fixed = ok(registry.address(vm="gv-f1", pool="lab", ip="10.20.0.10",
                                mac="52:54:00:AA:BB:01"))["address"]
    assert fixed["ip"] == "10.20.0.10" and fixed["mac"] == "52:54:00:aa:bb:01" and fixed["fixed"]
    assert not ok(registry.address(vm="gv-f1", pool="lab", ip="10.20.0.10",
                                   mac="52:54:00:aa:bb:01"))["changed"]
    before = registry.fingerprint()
    refused(registry, registry.address(vm="gv-f2", pool="lab", ip="10.20.0.10"),
            "10.20.0.10", "NIC 0 of VM gv-f1")
    refused(registry, registry.address(vm="gv-f2", mac="52:54:00:aa:bb:01"),
            "52:54:00:aa:bb:01", "NIC 0 of VM gv-f1")
    assert registry.fingerprint() == before
    # A pool change leaving the fixed address outside the network is refused, naming it.
    refused(registry, registry.pool(**dict(LAB_POOL, cidr="10.21.0.0/24", gateway=None,
                                           dns_servers=[], ranges=None)),
            "NIC 0 of VM gv-f1 (10.20.0.10)")
    refused(registry, registry.pool(name="lab", state="absent"), "NIC 0 of VM gv-f1")
    assert registry.fingerprint() == before


BAD_ADDRESS_INPUTS = [
    (dict(vm="gv-b", pool="lab", ip="10.99.0.5"), ["10.99.0.5", "outside pool lab"]),
    (dict(vm="gv-b", pool="lab", ip="10.20.0.255"), ["broadcast"]),
    (dict(vm="gv-b", pool="lab", ip="10.20.0.1"), ["gateway"]),
    (dict(vm="gv-b", pool="lab", ip="not-an-ip"), ["not an IP address"]),
    (dict(vm="gv-b", mac="01:00:5e:00:00:01"), ["multicast"]),
    (dict(vm="gv-b", mac="52:54:00:zz:00:01"), ["not a MAC address"]),
    (dict(vm="gv-b", pool="nosuch"), ["pool nosuch does not exist"]),
    (dict(vm="gv-b\nx", pool="lab"), ["Invalid VM name"]),
    (dict(vm="gv-b", pool="lab\n"), ["pool name"]),
    (dict(vm="gv-b", nic=99, pool="lab"), ["0 to 63"]),
    # The deploy roles' allocation of what their plan read, when another run got there first.
    (dict(nics=[{"vm": "gv-b", "pool": "lab"}], expect=[{"vm": "gv-b", "mac": "x"}]),
     ["changed since these addresses were read", "nothing was allocated"]),
]

BAD_POOL_INPUTS = [
    (dict(name="over", cidr="10.20.0.128/25"), ["overlap pool lab"]),
    (dict(name="bad", cidr="10.40.0.1/24"), ["CIDR"]),
    (dict(name="bad", cidr="10.40.0.0/24", ranges=["10.41.0.1-10.41.0.9"]), ["outside pool"]),
    (dict(name="bad", cidr="10.40.0.0/24", gateway="10.40.0.255"), ["broadcast"]),
    (dict(name="bad", cidr="10.40.0.0/24", mac_prefix="03:00:00"), ["multicast"]),
    (dict(name="bad", cidr="10.40.0.0/24", domain="a b"), ["domain"]),
    (dict(name="bad;x", cidr="10.40.0.0/24"), ["pool name"]),
]


def test_bad_input_is_a_sentence_and_changes_nothing(registry):
    ok(registry.pool(**LAB_POOL))
    ok(registry.address(vm="gv-keep", pool="lab"))
    before = registry.fingerprint()
    for module, cases in (("address", BAD_ADDRESS_INPUTS), ("address_pool", BAD_POOL_INPUTS)):
        results = registry.run_many(module, [args for args, _words in cases])
        for result, (_args, words) in zip(results, cases):
            refused(registry, result, *words)
    assert registry.fingerprint() == before


def test_twenty_allocations_at_once_get_twenty_addresses(registry, tmp_path):
    """20 separate processes (ansible's forks) allocate at the same moment."""
    ok(registry.pool(**LAB_POOL))
    hosts = dict(("gv-c%02d" % i, {"ansible_connection": "local",
                                   "ansible_python_interpreter": "/usr/bin/python3"})
                 for i in range(20))
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    playbook = tmp_path / "allocate.yml"
    playbook.write_text(json.dumps([{
        "hosts": "all", "gather_facts": False, "strategy": "free",
        "tasks": [{"gridvirt.kvm.address": {"vm": "{{ inventory_hostname }}", "pool": "lab",
                                            "registry": registry.option}}]}]))
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), "--forks", "20",
                           str(playbook)], cwd=REPO, env=ansible_env(), capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    addresses = ok(registry.info(pool="lab"))["addresses"]
    assert sorted(a["vm"] for a in addresses) == sorted(hosts)
    assert len(set(a["ip"] for a in addresses)) == 20
    assert len(set(a["mac"] for a in addresses)) == 20


def test_orphans_are_allocations_whose_vm_is_gone(registry):
    ok(registry.address(vm="gv-orphan"))
    ok(registry.address(vm="gv-present"))
    c = conn()
    root = etree.fromstring(guest_xml("gv-present"))
    etree.SubElement(root, "name").text = "gv-present"
    dom = c.defineXML(etree.tostring(root, encoding="unicode"))
    try:
        info = ok(registry.info(orphans=True, cluster={}, hypervisors=["qemu:///system"]))
        assert [a["vm"] for a in info["orphans"]] == ["gv-orphan"]
        assert sorted(a["vm"] for a in info["addresses"]) == ["gv-orphan", "gv-present"]
        down = registry.info(orphans=True, hypervisors=["qemu+tcp://127.0.0.1:1/system"])
        refused(registry, down, "127.0.0.1:1")
    finally:
        dom.undefine()
        c.close()


def test_registry_file_is_private(tmp_path):
    registry = Registry("sqlite", tmp_path)
    ok(registry.address(vm="gv-p"))
    assert oct(os.stat(registry.path).st_mode & 0o777) == oct(0o600)
    os.chmod(registry.path, 0o644)
    ok(registry.address(vm="gv-p"))
    assert oct(os.stat(registry.path).st_mode & 0o777) == oct(0o600)


IMPORT_NETWORK = """<network><name>gv-import</name><bridge name="gvimp0"/>
<ip address="10.79.0.1" netmask="255.255.255.0"><dhcp>
<host mac="52:54:00:79:00:01" ip="10.79.0.50"/></dhcp></ip></network>"""


def define_guest(c, name, macs):
    root = etree.fromstring(guest_xml(name, nics=0))
    etree.SubElement(root, "name").text = name
    devices = root.find("devices")
    for mac in macs:
        nic = etree.SubElement(devices, "interface", type="user")
        etree.SubElement(nic, "mac", address=mac)
    return c.defineXML(etree.tostring(root, encoding="unicode"))


def test_import_records_what_existing_vms_use(registry):
    """MACs of existing VMs become fixed addresses (with the IP a libvirt network reserves,
    in the pool holding it); a MAC used twice is refused and nothing is recorded. The
    network is defined, never started: it reserves, it serves nothing."""
    ok(registry.pool(name="imp", cidr="10.79.0.0/24", gateway="10.79.0.1"))
    c = conn()
    network = c.networkDefineXML(IMPORT_NETWORK)
    doms = [define_guest(c, "gv-imp1", ["52:54:00:79:00:01", "52:54:00:79:00:02"])]
    try:
        imported = ok(registry.run("address_import", hypervisors=["qemu:///system"]))
        assert imported["changed"]
        mine = dict(((a["vm"], a["nic"]), a) for a in imported["addresses"]
                    if a["vm"].startswith("gv-imp"))
        assert mine[("gv-imp1", 0)]["ip"] == "10.79.0.50" and mine[("gv-imp1", 0)]["fixed"]
        assert mine[("gv-imp1", 1)]["mac"] == "52:54:00:79:00:02" and mine[("gv-imp1", 1)]["ip"] is None
        assert not ok(registry.run("address_import", hypervisors=["qemu:///system"]))["changed"]
        # The registry never hands the imported MAC to another NIC.
        refused(registry, registry.address(vm="gv-other", mac="52:54:00:79:00:02"),
                "NIC 1 of VM gv-imp1")
        # A second VM with one of those MACs: refused, naming both, nothing recorded.
        doms.append(define_guest(c, "gv-imp2", ["52:54:00:79:00:02"]))
        before = registry.fingerprint()
        refused(registry, registry.run("address_import", hypervisors=["qemu:///system"]),
                "52:54:00:79:00:02", "NIC 1 of VM gv-imp1", "NIC 0 of VM gv-imp2")
        assert registry.fingerprint() == before
    finally:
        for dom in doms:
            dom.undefine()
        network.undefine()
        c.close()
