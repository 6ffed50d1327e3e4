"""What --check and --diff of the deploy playbooks say, against what a real run then does:
- --check of a fresh deploy (no VM exists, no image staged) reports every VM as changed,
  fails nowhere, and changes nothing: RBD, CIB, libvirt, the pool and the upload folder are
  as before (the upload folder does not even exist afterwards when it did not before);
- after the real deploy, --check reports changed=0 for every VM;
- --check --diff of an inventory change (the memory of one VM) reports changed for that VM
  only, with the XML diff of that VM only, and changes nothing; the real run then applies it;
- a rerun of the real deploy reports changed=0;
- --check of node_maintenance.yaml on a converged lab reports changed=0 (prepare_hypervisors'
  --check is test_playbooks_status_and_prepare's)."""
import json
import os
import re
import subprocess
import tempfile

import pytest

import cluster_lab as cl
import deploy_lab
import lab

PREFIX = "ick"
VMS = [PREFIX + "1", PREFIX + "2"]
UPLOAD = "/var/lib/gridvirt/ick-upload"

clean_cluster = cl.cleanup_fixture(PREFIX)
clean_standalone = lab.cleanup_fixture(PREFIX)


def deploy(kind, memory_of, *extra_args):
    """ansible-playbook deploy_vms_<kind>.yaml for VMS, ``memory_of``: {vm: MiB}."""
    vms = dict((vm, {"vm_disk": lab.GUEST_IMAGE, "domain_type": "qemu", "hypervisor": lab.HOST,
                     "memory": memory_of[vm], "qcow2tmpuploadfolder": UPLOAD,
                     "serial_log": lab.SERIAL_LOG % "{{ inventory_hostname }}"}) for vm in VMS)
    return deploy_lab.deploy(kind, vms, *extra_args)


changed_per_host = deploy_lab.changed_per_host


def state(kind):
    return (cl.fingerprint() if kind == "cluster" else lab.fingerprint(),
            os.path.lexists(UPLOAD))


@pytest.fixture
def no_upload_folder():
    subprocess.run(["rm", "-rf", UPLOAD], check=True)
    yield
    subprocess.run(["rm", "-rf", UPLOAD], check=True)


@pytest.fixture
def removed_after(request):
    """The VMs of this kind removed as soon as its test ends: both kinds use the same names
    on the one libvirtd, and the standalone cleanup would destroy a running cluster VM's
    domain, which Pacemaker then starts again under the cleanup's eyes."""
    yield
    if request.node.callspec.params["kind"] == "cluster":
        cl.remove_all(PREFIX)
    else:
        lab.remove_everything(PREFIX)


@pytest.mark.parametrize("kind", ["cluster", "standalone"])
def test_check_and_diff_tell_what_the_run_does(clean_cluster, clean_standalone,
                                               no_upload_folder, removed_after, kind):
    memory = dict((vm, 128) for vm in VMS)
    before = state(kind)
    fresh = deploy(kind, memory, "--check")
    assert all(changed_per_host(fresh)[vm] > 0 for vm in VMS), fresh[-3000:]
    assert state(kind) == before, "--check of a fresh deploy changed something"

    deploy(kind, memory)
    converged = state(kind)
    again = deploy(kind, memory, "--check")
    assert all(changed_per_host(again)[vm] == 0 for vm in VMS), again[-3000:]

    memory[VMS[1]] = 160
    diff = deploy(kind, memory, "--check", "--diff")
    changed = changed_per_host(diff)
    assert changed[VMS[0]] == 0 and changed[VMS[1]] > 0, diff[-3000:]
    old, new = (r'^%s.*<memory unit="(KiB|MiB)">(%d|%d)</memory>' % (sign, mib * 1024, mib)
                for sign, mib in (("-", 128), (r"\+", 160)))
    assert re.search(old, diff, re.M) and re.search(new, diff, re.M), diff[-3000:]
    assert "<name>%s</name>" % VMS[0] not in diff, "the diff shows the unchanged VM"
    assert state(kind) == converged, "--check --diff changed something"

    applied = deploy(kind, memory)
    assert changed_per_host(applied)[VMS[1]] > 0 and changed_per_host(applied)[VMS[0]] == 0
    rerun = deploy(kind, memory)
    assert all(n == 0 for n in changed_per_host(rerun).values()), rerun[-3000:]


def test_node_maintenance_check_of_an_online_node_changes_nothing():
    """--check of node_maintenance.yaml asking for the state the node is in: changed=0."""
    inventory = {"all": {"children": {"hypervisors": {"hosts": {lab.HOST: deploy_lab.LOCAL}}}}}
    before = cl.fingerprint()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hosts.yml")
        with open(path, "w") as handle:
            json.dump(inventory, handle)
        env = dict(lab.ansible_env(), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
        proc = subprocess.run(
            ["ansible-playbook", "-i", path, os.path.join(lab.REPO, "playbooks",
                                                          "node_maintenance.yaml"),
             "-e", "maintenance_node=%s" % lab.node_name(), "-e", "maintenance_state=online",
             "--check"], cwd=lab.REPO, env=env, capture_output=True, text=True, timeout=600,
            check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert set(changed_per_host(output).values()) == {0}, output[-3000:]
    assert cl.fingerprint() == before
