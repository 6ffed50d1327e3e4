"""Deploy figures: deploy_vms_cluster.yaml for 6 VMs with deploy_parallelism 1 and 3 (all
removed before each run), then its no-op rerun against a play doing only `ping` per VM."""
import json
import os
import re
import subprocess
import tempfile
import time

import lab  # tests/integration's lab helpers (on sys.path through run.py)

DEPLOY_VMS = int(os.environ.get("BENCH_DEPLOY_VMS", "6"))
NAMES = ["bench-d%d" % i for i in range(1, DEPLOY_VMS + 1)]


def inventory(path):
    vm = {"vm_disk": lab.GUEST_IMAGE, "domain_type": "qemu", "memory": 128,
          "serial_log": "/var/log/libvirt/qemu/{{ inventory_hostname }}-serial.log"}
    data = {"all": {"children": {
        "hypervisors": {"hosts": {lab.HOST: {"ansible_connection": "local",
                                             "ansible_python_interpreter": "/usr/bin/python3"}}},
        "VMs": {"hosts": dict((name, vm) for name in NAMES)}}}}
    with open(path, "w") as handle:
        json.dump(data, handle)


def run(args, inventory_path):
    """-> (seconds, recap {host: {ok, changed, ...}}) of one ansible-playbook run."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab.REPO, "ansible.cfg"), ANSIBLE_FORKS="10")
    start = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", inventory_path] + args, cwd=lab.REPO,
                          env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("deploy benchmark failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr))
    recap = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", proc.stdout, re.M):
        recap[host] = dict(item.split("=") for item in counts.split())
    return elapsed, recap


def remove_vms(inventory_path):
    """Powered off (force) and purged, all at once: with 6 TCG guests on 2 cores Pacemaker
    throttles its actions, and cluster_vm waits while the controller is busy."""
    play = [{"hosts": "VMs", "gather_facts": False, "tasks": [
        {"gridvirt.kvm.cluster_vm": {"name": "{{ inventory_hostname }}", "state": "absent",
                                     "purge": True, "force": True}, "delegate_to": lab.HOST}]}]
    run_play(play, inventory_path)


def run_play(play, inventory_path):
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        json.dump(play, handle)
    try:
        return run([handle.name], inventory_path)
    finally:
        os.unlink(handle.name)


def deploy_figures():
    playbook = os.path.join(lab.REPO, "playbooks", "deploy_vms_cluster.yaml")
    figures = {"vms": DEPLOY_VMS}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hosts.yml")
        inventory(path)
        for parallelism in (1, 3):
            remove_vms(path)
            seconds, recap = run([playbook, "-e", "deploy_parallelism=%d" % parallelism], path)
            figures["parallelism %d" % parallelism] = seconds
        rerun, recap = run([playbook], path)
        figures["rerun"] = rerun
        figures["rerun_changed"] = sum(int(c["changed"]) for c in recap.values())
        ping = [{"hosts": "VMs", "gather_facts": False, "tasks": [
            {"ansible.builtin.ping": {}, "delegate_to": lab.HOST}]}]
        figures["ping"] = run_play(ping, path)[0]
        remove_vms(path)
    return figures


def report_deploy(figures):
    deploy = figures.get("deploy")
    if not deploy:
        return []
    one, three = deploy["parallelism 1"], deploy["parallelism 3"]
    return ["", "## deploy_vms_cluster.yaml, %d VMs (one run each, whole play)" % deploy["vms"],
            "", "| run | seconds |", "|---|---|",
            "| deploy, deploy_parallelism 1 | %.1f |" % one,
            "| deploy, deploy_parallelism 3 | %.1f |" % three,
            "| no-op rerun | %.1f |" % deploy["rerun"],
            "| ping per VM (same hosts, same node) | %.1f |" % deploy["ping"],
            "", "Parallelism 3 vs 1: %.2fx the time (%.2fx faster). No-op rerun vs ping: %.2fx; "
            "the rerun reported changed=%d."
            % (three / one, one / three, deploy["rerun"] / deploy["ping"],
               deploy["rerun_changed"])]
