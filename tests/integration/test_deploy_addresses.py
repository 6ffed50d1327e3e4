"""The deploy roles with the address registry (issue 15), on the lab: the inventory's pools
converged, each NIC with address_pool given the registry's MAC (its IP kept for DHCP, DNS and
cloud-init), fixed MACs recorded, a rerun unchanged, removal releasing, a redeploy getting the
same address back; standalone VMs with the SQLite registry, cluster VMs with the RADOS one."""
import json
import os
import re
import subprocess

import pytest
from lxml import etree

import cluster_lab as cl
import deploy_lab
import lab
from address_lab import Registry

PREFIX = "iad"
BRIDGE = "gvaddrt0"
VM_VARS = {"vm_disk": lab.GUEST_IMAGE, "domain_type": "qemu", "memory": 128,
           "serial_log": lab.SERIAL_LOG % "{{ inventory_hostname }}", "hypervisor": lab.HOST}
POOLS = {"lab": {"cidr": "10.77.0.0/24", "gateway": "10.77.0.1", "dns_servers": ["10.77.0.1"],
                 "domain": "lab.example"}}
POOL_NIC = {"name": BRIDGE, "address_pool": "lab"}
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdyaWR2aXJ0LWxhYi10ZXN0LWtleS0wMDAwMDAw test@lab"
SEED = "/var/lib/libvirt/images/%s-seed.img"
FIXED_NIC = {"name": BRIDGE, "mac_address": "52:54:00:77:00:02", "address_pool": "lab",
             "ip": "10.77.0.2"}

clean = cl.cleanup_fixture(PREFIX)


@pytest.fixture(scope="module")
def bridge():
    """A bridge for the guests' NICs, with no address: nothing leaves it."""
    subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], capture_output=True,
                   check=False)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
    yield BRIDGE
    subprocess.run(["ip", "link", "del", BRIDGE], check=False)


def deploy(kind, vms, registry, *extra_args):
    """ansible-playbook deploy_vms_<kind>.yaml over ``vms`` {name: vars} -> its output."""
    hosts = dict((vm, dict(VM_VARS, **extra)) for vm, extra in vms.items())
    return deploy_lab.deploy(kind, hosts, *extra_args, inventory_vars={
        "address_pools": POOLS, "address_registry": registry.option})


def changed_counts(output):
    return [int(n) for n in re.findall(r"^\S+\s+:\s+ok=\d+\s+changed=(\d+)", output, re.M)]


def registry_addresses(registry):
    info = registry.info()
    assert not info["failed"], info
    return dict(((a["vm"], a["nic"]), a) for a in info["addresses"])


def nic_macs(root):
    return [m.get("address") for m in root.findall("devices/interface/mac")]


def cluster_xml(vm):
    return etree.fromstring(cl.image_meta("system_" + vm)["xml"].encode())


def seed_document(path, name):
    """One document of a NoCloud seed image, read back with mtools (no mount)."""
    return subprocess.run(["mcopy", "-n", "-i", path, "::" + name, "-"], capture_output=True,
                          text=True, check=True).stdout


def cdrom_sources(root):
    return [d.find("source").get("file") for d in root.findall("devices/disk[@device='cdrom']")]


def rbd_seed_exists(vm):
    return "seed_" + vm in cl.images()


def running_cdroms(vm):
    """The CD-ROMs of the VM as QEMU runs it: [(source element, capacity libvirt reads)]."""
    connection = lab.conn()
    try:
        domain = connection.lookupByName(vm)
        root = etree.fromstring(domain.XMLDesc(0).encode())
        return [(disk.find("source"), domain.blockInfo(disk.find("target").get("dev"))[0])
                for disk in root.findall("devices/disk[@device='cdrom']")]
    finally:
        connection.close()


def test_standalone_vms_get_their_nics_addresses(clean, bridge, tmp_path):
    registry = Registry("sqlite", tmp_path)
    vms = {PREFIX + "s1": {"bridges": [POOL_NIC], "cloud_init": True,
                           "ssh_authorized_keys": [SSH_KEY]},
           PREFIX + "s2": {"bridges": [POOL_NIC, FIXED_NIC]}}
    console = lab.Console(PREFIX + "s1")
    deploy("standalone", vms, registry)
    addresses = registry_addresses(registry)
    s1, s2 = (addresses[(vm, 0)] for vm in sorted(vms))
    assert s1["ip"] != s2["ip"] and s1["mac"] != s2["mac"]
    assert s1["ip"].startswith("10.77.0.") and s1["fqdn"] == PREFIX + "s1.lab.example"
    fixed = addresses[(PREFIX + "s2", 1)]
    assert fixed["fixed"] and fixed["ip"] == "10.77.0.2" and fixed["mac"] == "52:54:00:77:00:02"
    assert nic_macs(lab.domain_xml(PREFIX + "s1")) == [s1["mac"]]
    assert nic_macs(lab.domain_xml(PREFIX + "s2")) == [s2["mac"], fixed["mac"]]
    # The guest really runs with that NIC, and its cloud-init seed attached: the seed's
    # network-config gives the NIC (by MAC) the registry's address.
    assert console.wait_boot()["name"] == PREFIX + "s1"
    seed = SEED % (PREFIX + "s1")
    assert cdrom_sources(lab.domain_xml(PREFIX + "s1")) == [seed]
    network = json.loads(seed_document(seed, "network-config"))
    nic = list(network["ethernets"].values())[0]
    assert nic["match"]["macaddress"] == s1["mac"]
    assert nic["addresses"] == ["%s/24" % s1["ip"]]
    assert SSH_KEY in seed_document(seed, "user-data")

    before = registry.fingerprint()
    rerun = deploy("standalone", vms, registry)
    assert set(changed_counts(rerun)) == {0}, rerun[-3000:]
    assert registry.fingerprint() == before

    # Removed: released; deployed again: the same MAC and IP.
    deploy("standalone", dict(vms, **{PREFIX + "s2": dict(vms[PREFIX + "s2"], vm_state="absent")}),
           registry)
    assert PREFIX + "s2" not in lab.domain_names()
    assert not [k for k in registry_addresses(registry) if k[0] == PREFIX + "s2"]
    deploy("standalone", vms, registry)
    again = registry_addresses(registry)
    assert again[(PREFIX + "s2", 0)] == s2 and again[(PREFIX + "s2", 1)] == fixed
    assert nic_macs(lab.domain_xml(PREFIX + "s2")) == [s2["mac"], fixed["mac"]]


def test_cluster_vms_with_the_rados_registry_seeds_in_rbd_and_prune(clean, bridge, tmp_path):
    registry = Registry("rados", tmp_path)
    registry.wipe()
    try:
        vms = {PREFIX + "c1": {"bridges": [POOL_NIC], "cloud_init": True},
               PREFIX + "c2": {"bridges": [POOL_NIC]}}
        deploy("cluster", vms, registry)
        addresses = registry_addresses(registry)
        c1, c2 = addresses[(PREFIX + "c1", 0)], addresses[(PREFIX + "c2", 0)]
        assert c1["ip"] != c2["ip"] and c1["mac"] != c2["mac"]
        assert nic_macs(cluster_xml(PREFIX + "c1")) == [c1["mac"]]
        # Kept with the VM for the site hooks its resource agent runs.
        kept = json.loads(cl.image_meta("system_" + PREFIX + "c1")["_addresses"])
        assert [(a["nic"], a["ip"], a["mac"]) for a in kept] == [(0, c1["ip"], c1["mac"])]
        # A VM whose kept addresses are gone (deployed before they were kept, or the registry
        # changed since): the next run's plan sees it and the converge keeps them again.
        subprocess.run(["rbd", "image-meta", "remove", "rbd/system_%sc2" % PREFIX, "_addresses"],
                       check=True, capture_output=True)
        deploy("cluster", vms, registry)
        kept = json.loads(cl.image_meta("system_" + PREFIX + "c2")["_addresses"])
        assert [(a["nic"], a["ip"], a["mac"]) for a in kept] == [(0, c2["ip"], c2["mac"])]
        # Its seed is an RBD image that QEMU opened over RBD (no file on the node): the
        # CD-ROM's capacity is the seed's 1 MiB.
        assert rbd_seed_exists(PREFIX + "c1") and not rbd_seed_exists(PREFIX + "c2")
        assert cl.wait_status(PREFIX + "c1", "Started")
        [(source, capacity)] = running_cdroms(PREFIX + "c1")
        assert source.get("protocol") == "rbd" and source.get("name") == "rbd/seed_" + PREFIX + "c1"
        assert source.find("host") is not None and capacity == 1024 * 1024
        assert not os.path.exists(SEED % (PREFIX + "c1"))
        # --check of a new VM predicts, allocates nothing.
        before = registry.fingerprint()
        deploy("cluster", dict(vms, **{PREFIX + "c3": {"bridges": [POOL_NIC]}}), registry,
               "--check")
        assert registry.fingerprint() == before
        # c2 pruned: its address released, c1's kept.
        deploy("cluster", {PREFIX + "c1": vms[PREFIX + "c1"]}, registry,
               "-e", "prune_unlisted=true", "-e", "prune_unlisted_match=^%s" % PREFIX)
        assert PREFIX + "c2" not in cl.groups()
        left = registry_addresses(registry)
        assert (PREFIX + "c2", 0) not in left and left[(PREFIX + "c1", 0)] == c1
        # A clone never has its source's address: cluster_vm's clone drops the MACs, and the
        # clone, once in the inventory, gets addresses of its own from the registry.
        clone = PREFIX + "c1k"
        cl.ok({"name": clone, "command": "clone", "src_name": PREFIX + "c1"})
        assert c1["mac"] not in nic_macs(cluster_xml(clone))
        # Nor its seed, which holds the source's address.
        assert not cluster_xml(clone).findall("devices/disk[@device='cdrom']")
        deploy("cluster", {PREFIX + "c1": vms[PREFIX + "c1"], clone: {"bridges": [POOL_NIC]}},
               registry)
        own = registry_addresses(registry)[(clone, 0)]
        assert own["mac"] != c1["mac"] and own["ip"] != c1["ip"]
        assert nic_macs(cluster_xml(clone)) == [own["mac"]]
    finally:
        registry.wipe()


def test_registry_on_another_host_is_asked_before_the_render(clean, bridge, tmp_path):
    """The registry host is not the one that plans (here an alias of this machine): the role
    asks the registry in a call of its own, before rendering, with the same outcome."""
    registry = Registry("sqlite", tmp_path)
    vm = PREFIX + "r1"
    hosts = {vm: dict(VM_VARS, bridges=[POOL_NIC], vm_state="present")}
    inventory = {"all": {"vars": {"address_pools": POOLS, "address_registry": registry.option,
                                  "address_registry_host": "registry-host"},
                         "children": {"hypervisors": {"hosts": {lab.HOST: deploy_lab.LOCAL}},
                                      "registry": {"hosts": {"registry-host": deploy_lab.LOCAL}},
                                      "standalone_VMs": {"hosts": hosts}}}}
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(inventory))
    playbook = os.path.join(lab.REPO, "playbooks", "deploy_vms_standalone.yaml")
    env = dict(lab.ansible_env(), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    runs = [subprocess.run(["ansible-playbook", "-i", str(path), playbook], cwd=lab.REPO,
                           env=env, capture_output=True, text=True, timeout=900, check=False)
            for _run in range(2)]
    for proc in runs:
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    # Only the registry's tasks run there; the plan call did not read the registry.
    assert "-> registry-host]" in runs[0].stdout and "-> registry-host]" in runs[1].stdout
    address = registry_addresses(registry)[(vm, 0)]
    assert nic_macs(lab.domain_xml(vm)) == [address["mac"]]
    assert set(changed_counts(runs[1].stdout)) == {0}, runs[1].stdout[-3000:]


def test_plan_refuses_bad_addresses_with_a_sentence(tmp_path):
    registry = Registry("sqlite", tmp_path)
    result = lab.run_module({"kind": "standalone", "vms": [],
                             "addresses": {"registry": registry.option,
                                           "nics": [{"vm": "gv-x", "nic": "first"}]}},
                            module="gridvirt.kvm.deploy_plan")
    assert result["failed"] and "nic" in result["msg"] and "Traceback" not in result["msg"]
    assert registry.fingerprint() is None
