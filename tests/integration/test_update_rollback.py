"""playbooks/update_vm_with_rollback.yaml on a cluster VM booted from RBD: an update that
fails is undone (the guest's boot counter, kept on its disk, comes back to the snapshot's),
an update that succeeds is kept, the snapshot lives only for the run, and a rerun of an
idempotent update reports changed=0."""
import json
import os
import re
import subprocess
import tempfile

import pytest

import cluster_lab as cl
import lab

PREFIX = "iur"
VM = PREFIX + "vm"

clean = cl.cleanup_fixture(PREFIX)

# Restarts the guest (its boot counter goes up on its disk), then fails.
FAILING_UPDATE = [
    {"name": "Restart the VM into its new version", "gridvirt.kvm.cluster_vm": {
        "name": "{{ inventory_hostname }}", "command": "stop"}, "delegate_to": lab.HOST},
    {"name": "Start it", "gridvirt.kvm.cluster_vm": {
        "name": "{{ inventory_hostname }}", "command": "start"}, "delegate_to": lab.HOST},
    {"name": "Check the new version", "ansible.builtin.fail": {"msg": "health check failed"}},
]


def succeeding_update(marker):
    return [{"name": "Write the new configuration", "ansible.builtin.copy": {
        "content": "version 2\n", "dest": marker, "mode": "0644"}, "delegate_to": lab.HOST}]


@pytest.fixture(scope="module")
def vm():
    console = lab.Console(VM)
    cl.ok(cl.vm_args(VM))
    return console


def run_update(tasks, check=False, check_connection=False):
    inventory = {"all": {"children": {
        "hypervisors": {"hosts": {lab.HOST: {"ansible_connection": "local",
                                             "ansible_python_interpreter": "/usr/bin/python3"}}},
        "VMs": {"hosts": {VM: {}}}}}}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, content in (("hosts.yml", inventory), ("update.yml", tasks)):
            paths[name] = os.path.join(tmp, name)
            with open(paths[name], "w") as f:
                json.dump(content, f)
        args = ["ansible-playbook", "-i", paths["hosts.yml"],
                os.path.join(lab.REPO, "playbooks", "update_vm_with_rollback.yaml"),
                "-e", "update_vms=" + VM, "-e", "update_tasks=" + paths["update.yml"],
                # The lab's guest has no way in: the update tasks act from its node, and
                # its connection is checked only where the test wants it unreachable.
                "-e", "update_check_connection=%s" % check_connection,
                "-e", "update_connection_timeout=5"]
        env = dict(lab.ansible_env(), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
        proc = subprocess.run(args + (["--check"] if check else []), cwd=lab.REPO, env=env,
                              capture_output=True, text=True, timeout=900, check=False)
    recap = re.search(r"^%s\s*:\s*(.*)$" % VM, proc.stdout, re.M)
    counts = dict(item.split("=") for item in recap.group(1).split()) if recap else {}
    return proc, counts


def snapshots():
    return cl.ok({"name": VM, "command": "list_snapshots"})["list_snapshot"]


def test_failed_update_is_rolled_back(vm):
    first = vm.wait_boot()
    vm.mark()
    proc, counts = run_update(FAILING_UPDATE)
    assert proc.returncode != 0 and counts["failed"] == "1", proc.stdout[-3000:]
    assert "health check failed" in proc.stdout and "rolled back to snapshot pre-update" in proc.stdout
    # The update's boot (counter +1 on disk), then the rolled-back disk boots with the same
    # counter again: without the rollback it would be +2.
    updated = vm.wait_boot()
    restored = vm.wait_boot()
    assert updated["boot"] == first["boot"] + 1
    assert restored["boot"] == first["boot"] + 1
    assert cl.status(VM)[0] == "Started"
    assert snapshots() == []


def test_unreachable_vm_after_update_is_rolled_back(vm, tmp_path):
    """The update tasks succeed, but the VM does not answer afterwards (here: it has no
    connection at all): it is rolled back, not dropped from the play."""
    vm.mark()
    marker = str(tmp_path / "config")
    proc, counts = run_update(succeeding_update(marker), check_connection=True)
    assert proc.returncode != 0 and counts["failed"] == "1", proc.stdout[-3000:]
    assert 'failed at "Check that the VM still answers"' in proc.stdout
    assert "rolled back to snapshot pre-update-" in proc.stdout
    before = vm.wait_boot()  # the rollback's restart
    assert cl.status(VM)[0] == "Started" and snapshots() == []
    assert before["name"] == VM


def test_successful_update_is_kept_and_reruns_unchanged(vm, tmp_path):
    marker = str(tmp_path / "config")
    proc, counts = run_update(succeeding_update(marker))
    assert proc.returncode == 0 and counts["changed"] == "1", proc.stdout[-3000:]
    with open(marker) as f:
        assert f.read() == "version 2\n"
    assert snapshots() == []
    proc, counts = run_update(succeeding_update(marker))
    assert proc.returncode == 0 and counts["changed"] == "0", proc.stdout[-3000:]


def test_check_mode_changes_nothing(vm, tmp_path):
    before = cl.fingerprint()
    marker = str(tmp_path / "never")
    proc, counts = run_update(succeeding_update(marker), check=True)
    assert proc.returncode == 0 and counts["changed"] == "1", proc.stdout[-3000:]
    assert not os.path.exists(marker)
    assert cl.fingerprint() == before
