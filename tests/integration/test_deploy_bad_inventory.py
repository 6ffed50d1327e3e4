"""A wrong inventory fails the deploy playbooks before any VM is touched, with a message that
names the VM host and the variable. Each case is one good VM and one bad one: the good VM
must not be created either (any_errors_fatal over the checks), and the cluster's RBD, CIB and
libvirt, and the standalone hypervisor, are exactly as before."""
import json
import os
import subprocess
import tempfile

import pytest

import cluster_lab as cl
import lab

PREFIX = "ibi"
GOOD, BAD = PREFIX + "good", PREFIX + "bad"

clean = cl.cleanup_fixture(PREFIX)
clean_standalone = lab.cleanup_fixture(PREFIX)

GUEST = {"vm_disk": lab.GUEST_IMAGE, "domain_type": "qemu", "memory": 128}
MAC = "52:54:00:0b:ad:01"

# (case, bad VM's variables, words the error must contain besides the VM's name)
CASES = [
    ("missing image", {"vm_disk": "/nonexistent/guest.qcow2"},
     ["vm_disk", "/nonexistent/guest.qcow2", "does not exist"]),
    ("unknown template", {"vm_template": "/nonexistent/vm.xml.j2"},
     ["vm_template", "/nonexistent/vm.xml.j2", "does not exist"]),
    ("cpuset outside the host", {"cpuset": [0, 4096], "vm_features": ["isolated"]},
     ["cpuset", "4096"]),
    ("emulatorpin outside the host", {"emulatorpin": "2048"}, ["emulatorpin", "2048"]),
    ("SEAPATH's cpuset string outside the host", {"cpuset": "0,4096", "vm_features": ["rt"]},
     ["cpuset", "4096"]),
    ("disk mapping with image and size",
     {"additional_disks": [{"image": "/var/lib/x.qcow2", "size": "1G"}]},
     ["additional_disk", "exactly one of image and size"]),
    ("memory not a number", {"memory": "lots"}, ["memory", "int"]),
    ("memory not positive", {"memory": -128}, ["memory", "positive"]),
    ("rt_priority out of range", {"rt_priority": 200}, ["rt_priority", "99"]),
    ("unknown vm feature", {"vm_features": ["turbo"]}, ["vm_features", "turbo"]),
    ("unknown vm_state", {"vm_state": "paused"}, ["vm_state", "paused"]),
    ("raw device not XML", {"kvm_device_1": "<interface type='user'>"},
     ["not a valid libvirt domain"]),
]
CLUSTER_CASES = [
    ("pinned_host not a node", {"pinned_host": "no-such-node"},
     ["pinned_host", "no-such-node", "not a node"]),
    ("colocated with an unknown VM", {"colocated_vms": ["ghost"]}, ["colocated_vms", "ghost"]),
    ("additional disk size not a size", {"additional_disk": "10G:20G"},
     ["additional_disk", "10G:20G", "not sizes"]),
    ("additional disk image missing on the controller",
     {"additional_disk": ["/nonexistent/data.qcow2"]},
     ["additional_disk", "/nonexistent/data.qcow2", "do not exist on the controller"]),
]


def run_deploy(kind, bad_vars, good_vars=None):
    group = "VMs" if kind == "cluster" else "standalone_VMs"
    vm_vars = dict(GUEST, hypervisor=lab.HOST)
    inventory = {"all": {"children": {
        "hypervisors": {"hosts": {lab.HOST: {"ansible_connection": "local",
                                             "ansible_python_interpreter": "/usr/bin/python3"}}},
        group: {"hosts": {GOOD: dict(vm_vars, **(good_vars or {})),
                          BAD: dict(vm_vars, **bad_vars)}}}}}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hosts.yml")
        with open(path, "w") as f:
            json.dump(inventory, f)
        playbook = os.path.join(lab.REPO, "playbooks", "deploy_vms_%s.yaml" % kind)
        env = dict(lab.ansible_env(), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
        return subprocess.run(["ansible-playbook", "-i", path, playbook], cwd=lab.REPO,
                              env=env, capture_output=True, text=True, timeout=600,
                              check=False)


def both_fingerprints():
    return cl.fingerprint(), lab.fingerprint()


def assert_refused(kind, bad_vars, words, good_vars=None):
    before = both_fingerprints()
    proc = run_deploy(kind, bad_vars, good_vars)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    failures = [line for line in output.splitlines() if line.startswith(("fatal:", "[ERROR]"))]
    assert failures, output[-3000:]
    text = "\n".join(failures)
    assert BAD in text, text
    for word in words:
        assert word in text, (word, text)
    assert "Traceback" not in output
    assert both_fingerprints() == before, "the failed deploy changed something"


@pytest.mark.parametrize("case,bad_vars,words", CASES + CLUSTER_CASES,
                         ids=[c[0] for c in CASES + CLUSTER_CASES])
def test_cluster_deploy_refuses_bad_inventory(clean, case, bad_vars, words):
    assert_refused("cluster", bad_vars, words)


@pytest.mark.parametrize("case,bad_vars,words", CASES, ids=[c[0] for c in CASES])
def test_standalone_deploy_refuses_bad_inventory(clean_standalone, case, bad_vars, words):
    assert_refused("standalone", bad_vars, words)


@pytest.mark.parametrize("kind", ["cluster", "standalone"])
def test_duplicate_mac_names_both_vms(clean, clean_standalone, kind):
    bridges = [{"name": "br-none", "mac_address": MAC.upper()}]
    assert_refused(kind, {"bridges": [{"name": "br-none", "mac_address": MAC}]},
                   ["duplicate MAC", MAC, GOOD], good_vars={"bridges": bridges})


def test_standalone_unknown_hypervisor(clean_standalone):
    assert_refused("standalone", {"hypervisor": "no-such-host"},
                   ["hypervisor", "no-such-host", "not a host of the inventory"])
