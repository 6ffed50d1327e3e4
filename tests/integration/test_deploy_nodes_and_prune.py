"""deploy_vms_cluster.yaml's choice of node and prune_unlisted, on the lab's cluster:
- a node in maintenance is refused with the reason, and with no other node nothing is touched;
- an unreachable first node is skipped, the deploy goes through the next one and says so;
- a VM of the cluster missing from the inventory is kept and named; with prune_unlisted it
  is listed under --check (nothing removed) and removed by the real run (prune_unlisted_match
  keeps the pruning to this test's VMs, as it keeps a shared cluster's other VMs safe)."""
import json
import os
import re
import subprocess
import tempfile

import pytest

import cluster_lab as cl
import lab

PREFIX = "idn"
VM, EXTRA = PREFIX + "vm", PREFIX + "extra"

clean = cl.cleanup_fixture(PREFIX)

LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
# A node that cannot be reached: ssh to a closed port on loopback, fails at once.
UNREACHABLE = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9,
               "ansible_user": "nobody", "ansible_ssh_common_args": "-o ConnectTimeout=3"}
VM_VARS = {"vm_disk": lab.GUEST_IMAGE, "domain_type": "qemu", "memory": 128,
           "serial_log": "/var/log/libvirt/qemu/{{ inventory_hostname }}-serial.log"}


def deploy(nodes, vms, *extra_args):
    inventory = {"all": {"children": {"hypervisors": {"hosts": nodes},
                                      "VMs": {"hosts": dict((vm, VM_VARS) for vm in vms)}}}}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hosts.yml")
        with open(path, "w") as f:
            json.dump(inventory, f)
        env = dict(lab.ansible_env(), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
        proc = subprocess.run(["ansible-playbook", "-i", path,
                               os.path.join(lab.REPO, "playbooks", "deploy_vms_cluster.yaml")]
                              + list(extra_args), cwd=lab.REPO, env=env, capture_output=True,
                              text=True, timeout=900, check=False)
    return proc, proc.stdout + proc.stderr


def set_maintenance(on):
    subprocess.run(["crm_attribute", "--node", lab.node_name(), "--name", "maintenance",
                    "--update" if on else "--delete"] + (["true"] if on else []),
                   check=True, capture_output=True)


@pytest.fixture
def maintenance():
    set_maintenance(True)
    yield
    set_maintenance(False)


def test_node_in_maintenance_is_refused(clean, maintenance):
    before = cl.fingerprint()
    proc, out = deploy({lab.HOST: LOCAL}, [VM])
    assert proc.returncode != 0, out[-3000:]
    assert re.search(r"No node of the group hypervisors can deploy VMs: %s \(node %s\) is in "
                     r"maintenance" % (lab.HOST, re.escape(lab.node_name())), out), out[-3000:]
    assert cl.fingerprint() == before


def test_unreachable_node_is_skipped(clean):
    proc, out = deploy({"hv-down": UNREACHABLE, lab.HOST: LOCAL}, [VM])
    assert proc.returncode == 0, out[-3000:]
    assert "Not deploying through hv-down is unreachable: deploying through %s" % lab.HOST in out
    assert cl.status(VM)[0] == "Started"


def test_unlisted_vm_is_kept_unless_pruned(clean):
    cl.ok(cl.vm_args(EXTRA, state="present", preferred_host=None))
    proc, out = deploy({lab.HOST: LOCAL}, [VM])
    assert proc.returncode == 0, out[-3000:]
    assert "Not in the inventory, kept (prune_unlisted is off):" in out and EXTRA in out
    assert EXTRA in cl.groups()

    before = cl.fingerprint()
    proc, out = deploy({lab.HOST: LOCAL}, [VM], "-e", "prune_unlisted=true",
                       "-e", "prune_unlisted_match=^" + PREFIX, "--check")
    assert proc.returncode == 0, out[-3000:]
    assert re.search(r"Not in the inventory, would be removed \(prune_unlisted\): .*%s" % EXTRA,
                     out), out[-3000:]
    assert cl.fingerprint() == before

    proc, out = deploy({lab.HOST: LOCAL}, [VM], "-e", "prune_unlisted=true",
                       "-e", "prune_unlisted_match=^" + PREFIX)
    assert proc.returncode == 0, out[-3000:]
    assert re.search(r"Not in the inventory, removed \(prune_unlisted\): .*%s" % EXTRA, out)
    assert EXTRA not in cl.groups() and VM in cl.groups()
