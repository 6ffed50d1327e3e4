"""The inventory plugin gridvirt.kvm.vms as operators run it, `ansible-inventory -i
fleet.gridvirt.yml --list`, on the lab's hypervisor (a cluster node and a standalone host at
once): a running cluster VM and a stopped standalone VM with their kind, status, node, UUID,
MACs, metadata, groups and the address the registry gave; a hypervisor that does not answer;
one host listed under two names (duplicates, and strict); the inventory cache; the timeout."""
import json
import os
import re
import socket
import subprocess

import pytest

import cluster_lab as cl
import lab

PREFIX = "iinv"
CLUSTER_VM, STANDALONE_VM, CACHED_VM = PREFIX + "cl1", PREFIX + "sa1", PREFIX + "sa2"
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}

clean = cl.cleanup_fixture(PREFIX)


class Listing(object):
    """One ansible-inventory run: exit code, host variables, groups, what it said."""

    def __init__(self, proc):
        self.code = proc.returncode
        self.said = " ".join(proc.stderr.split())  # warnings may wrap
        listed = lab.without_unsafe_markers(json.loads(proc.stdout)) if proc.returncode == 0 else {}
        self.hostvars = listed.get("_meta", {}).get("hostvars", {})
        self.groups = dict((name, set(group.get("hosts", []))) for name, group in listed.items()
                           if name != "_meta")

    def groups_of(self, host):
        return set(name for name, hosts in self.groups.items() if host in hosts)


def closed_port():
    """A loopback port nothing listens on (the kernel's pick of a free one, freed again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def list_inventory(directory, config, *options, env_extra=None):
    """ansible-inventory --list on ``config`` written to <directory>/fleet.gridvirt.yml; the
    plugin's private files go to <directory>/tmp (checked removed afterwards)."""
    path = os.path.join(str(directory), "fleet.gridvirt.yml")
    with open(path, "w") as handle:
        json.dump(dict({"plugin": "gridvirt.kvm.vms"}, **config), handle)  # JSON is YAML
    private = os.path.join(str(directory), "tmp")
    os.makedirs(private, exist_ok=True)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab.REPO, "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", TMPDIR=private)
    env.update(env_extra or {})
    proc = subprocess.run(["ansible-inventory", "-i", path, "--list"] + list(options),
                          cwd=lab.REPO, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    # (Only the plugin's own: ansible-playbook stopped past a timeout may leave its
    # multiprocessing directory, pymp-*, behind.)
    left = [name for name in os.listdir(private) if name.startswith("gridvirt-inventory-")]
    assert left == [], "the listing left its private files behind: %s" % left
    return Listing(proc)


def fleet_config(**extra):
    config = {"clusters": [{"name": "lab", "nodes": [lab.HOST]}], "standalone_hosts": [lab.HOST],
              "hypervisor_vars": LOCAL}
    config.update(extra)
    return config


def macs(root):
    return [mac.get("address") for mac in root.findall("devices/interface/mac")]


@pytest.fixture(scope="module")
def fleet(clean, tmp_path_factory):
    """A running cluster VM, a stopped standalone VM with an address in a SQLite registry."""
    directory = tmp_path_factory.mktemp("inventory")
    cl.ok(cl.vm_args(CLUSTER_VM, additional_disks=[], metadata={"role": "db"}))
    created = lab.run_module({"name": STANDALONE_VM, "state": "present",
                              "xml": lab.guest_xml(STANDALONE_VM, nics=2),
                              "system_image": lab.GUEST_IMAGE, "metadata": {"role": "web"}})
    assert not created["failed"], created.get("msg")
    registry = {"path": str(directory / "addresses.db")}
    pool = lab.run_module({"name": PREFIX, "cidr": "10.78.0.0/24", "registry": registry},
                          module="gridvirt.kvm.address_pool")
    assert not pool["failed"], pool.get("msg")
    # NIC 0 a MAC only, NIC 1 an IP: ansible_host is the lowest-numbered NIC's IP.
    given = lab.run_module({"nics": [{"vm": STANDALONE_VM, "nic": 0},
                                     {"vm": STANDALONE_VM, "nic": 1, "pool": PREFIX}],
                            "registry": registry}, module="gridvirt.kvm.address")
    assert not given["failed"], given.get("msg")
    ip = [a["ip"] for a in given["addresses"] if a["nic"] == 1][0]
    return {"directory": directory, "registry": registry, "ip": ip}


def node_group(node):
    return "gridvirt_node_" + re.sub(r"\W", "_", node)


def test_both_kinds_with_their_state_groups_and_address_and_a_host_that_does_not_answer(fleet):
    ghost = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1",
             "ansible_port": closed_port()}
    listing = list_inventory(fleet["directory"], fleet_config(
        standalone_hosts=[lab.HOST, "ghost"], host_vars={"ghost": ghost},
        address_registry={"host": lab.HOST, "registry": fleet["registry"]}))
    assert listing.code == 0, listing.said
    node = lab.node_name()
    clustered = listing.hostvars[CLUSTER_VM]
    assert (clustered["gridvirt_kind"], clustered["gridvirt_status"],
            clustered["gridvirt_node"], clustered["gridvirt_cluster"]) == (
                "cluster", "Started", node, "lab")
    running = lab.domain_xml(CLUSTER_VM, inactive=False)
    assert clustered["gridvirt_uuid"] == running.findtext("uuid")
    assert clustered["gridvirt_macs"] == macs(running)
    assert clustered["gridvirt_metadata"] == {"role": "db"}
    assert "ansible_host" not in clustered and "gridvirt_hypervisor" not in clustered
    assert {"gridvirt_kind_cluster", "gridvirt_status_started", "gridvirt_cluster_lab",
            node_group(node)} <= listing.groups_of(CLUSTER_VM)

    standalone = listing.hostvars[STANDALONE_VM]
    assert (standalone["gridvirt_kind"], standalone["gridvirt_status"],
            standalone["gridvirt_node"], standalone["gridvirt_hypervisor"]) == (
                "standalone", "Stopped", node, lab.HOST)
    defined = lab.domain_xml(STANDALONE_VM)
    assert standalone["gridvirt_uuid"] == defined.findtext("uuid")
    assert standalone["gridvirt_macs"] == macs(defined) and len(macs(defined)) == 2
    assert standalone["gridvirt_metadata"] == {"role": "web"}
    assert standalone["ansible_host"] == fleet["ip"]
    assert [a["nic"] for a in standalone["gridvirt_addresses"]] == [0, 1]
    assert {"gridvirt_kind_standalone", "gridvirt_status_stopped",
            node_group(node)} <= listing.groups_of(STANDALONE_VM)
    assert "gridvirt_cluster_lab" not in listing.groups_of(STANDALONE_VM)
    # The host that does not answer is named with its reason; the others are listed.
    assert ("gridvirt.kvm.vms: hypervisor ghost did not list its VMs (unreachable: "
            in listing.said), listing.said
    assert "Connection refused" in listing.said


def test_one_host_under_two_names_is_a_duplicate_and_fails_when_strict(fleet):
    config = fleet_config(standalone_hosts=[lab.HOST, "lab-hv1-again"])
    listing = list_inventory(fleet["directory"], config)
    assert listing.code == 0, listing.said
    assert ("two VMs are named %s, on standalone host %s and on standalone host lab-hv1-again; "
            "the one on standalone host %s is listed, the other not." % (
                STANDALONE_VM, lab.HOST, lab.HOST)) in listing.said, listing.said
    assert listing.hostvars[STANDALONE_VM]["gridvirt_hypervisor"] == lab.HOST
    assert listing.hostvars[CLUSTER_VM]["gridvirt_kind"] == "cluster"

    strict = list_inventory(fleet["directory"], dict(config, strict=True),
                            env_extra={"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "1"})
    assert strict.code != 0
    assert "two VMs are named %s" % STANDALONE_VM in strict.said, strict.said


def test_the_cache_keeps_the_listing_until_flushed(fleet):
    created = lab.run_module({"name": CACHED_VM, "state": "present",
                              "xml": lab.guest_xml(CACHED_VM), "system_image": lab.GUEST_IMAGE})
    assert not created["failed"], created.get("msg")
    config = fleet_config(cache=True, cache_plugin="ansible.builtin.jsonfile",
                          cache_connection=str(fleet["directory"] / "cache"))
    assert CACHED_VM in list_inventory(fleet["directory"], config).hostvars
    removed = lab.run_module({"name": CACHED_VM, "state": "absent"})
    assert not removed["failed"], removed.get("msg")
    assert CACHED_VM not in lab.domain_names()
    cached = list_inventory(fleet["directory"], config)
    assert CACHED_VM in cached.hostvars and STANDALONE_VM in cached.hostvars
    flushed = list_inventory(fleet["directory"], config, "--flush-cache")
    assert CACHED_VM not in flushed.hostvars and STANDALONE_VM in flushed.hostvars
    # The flushed listing is what the cache holds now.
    assert CACHED_VM not in list_inventory(fleet["directory"], config).hostvars


SLOW_PYTHON = """#!/usr/bin/python3
import sys, time
open(sys.argv[0] + ".started", "w").close()
time.sleep(120)
"""


def test_a_listing_past_its_timeout_is_stopped_with_everything_it_started(fleet):
    # A hypervisor whose module never ends (its "Python" sleeps): the run is stopped while
    # that module runs, and nothing of it is left running. Ansible's temporary directories
    # are the test's.
    slow = os.path.join(str(fleet["directory"]), "slow-python")
    with open(slow, "w") as handle:
        handle.write(SLOW_PYTHON)
    os.chmod(slow, 0o755)
    config = fleet_config(standalone_hosts=[lab.HOST, "slow"], timeout=10,
                          host_vars={"slow": {"ansible_python_interpreter": slow}})
    ansible_temp = os.path.join(str(fleet["directory"]), "ansible-temp")
    listing = list_inventory(fleet["directory"], config, env_extra={
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "1",
        "ANSIBLE_LOCAL_TEMP": ansible_temp + "/local",
        "ANSIBLE_REMOTE_TEMP": ansible_temp + "/remote"})
    assert listing.code != 0
    assert "Listing the VMs took longer than 10 seconds (option timeout) and was stopped." in (
        listing.said), listing.said
    # (The module sleeps 120 s: the sentence above says the run was stopped, not that it ended.)
    assert os.path.exists(slow + ".started"), "the run was stopped before the module ran"
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and slow in cmdline(pid)]
    assert left == [], "the stopped listing left processes running: %s" % left
    # Stopped as Ctrl-C stops it: ansible-playbook removed its own temporary files. (The
    # interrupted module's directory on the hypervisor stays, as after a Ctrl-C.)
    assert os.listdir(ansible_temp + "/local") == []


def cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""  # gone meanwhile
