"""Deploy figures, for deploy_vms_cluster.yaml and deploy_vms_standalone.yaml: a fresh deploy
of BENCH_DEPLOY_FRESH VMs, then, with 2, 10 and 30 VMs registered (BENCH_DEPLOY_SIZES; VMs
defined and stopped, vm_state: present, so that 30 TCG guests do not load the 2 cores), the
no-op rerun of a play over them against a play doing only `ping` per VM on the same host
with the same delegation (medians of BENCH_DEPLOY_REPEAT paired runs), and the rerun of a
10-VM play with 30 VMs registered, and the rerun of 10 VMs whose NICs take their addresses
from the address registry. With BENCH_BASELINE (another checkout with its .build
link), the fresh deploy and the 10-VM rerun are measured with that code too, in the same
run."""
import json
import os
import re
import statistics
import subprocess
import tempfile
import time

import lab  # tests/integration's lab helpers (on sys.path through run.py)

SIZES = [int(n) for n in os.environ.get("BENCH_DEPLOY_SIZES", "2,10,30").split(",")]
FRESH = int(os.environ.get("BENCH_DEPLOY_FRESH", "10"))
REPEAT = int(os.environ.get("BENCH_DEPLOY_REPEAT", "5"))
BASELINE = os.environ.get("BENCH_BASELINE")
KINDS = {"cluster": ("VMs", "bd-c"), "standalone": ("standalone_VMs", "bd-s")}


def inventory(path, kind, count, registry=None):
    """With ``registry`` (a path), each VM has a NIC whose MAC and IP come from the address
    registry (an SQLite file there): the rerun then also converges every VM's address."""
    group, prefix = KINDS[kind]
    vm = {"vm_disk": lab.GUEST_IMAGE, "domain_type": "qemu", "memory": 128,
          "vm_state": "present", "hypervisor": lab.HOST}
    addresses = {}
    if registry:
        # Defined, never started: the bridge need not exist.
        vm["bridges"] = [{"name": "gvbench0", "address_pool": "bench"}]
        addresses = {"address_pools": {"bench": {"cidr": "10.97.0.0/24", "gateway": "10.97.0.1",
                                                 "domain": "bench.example"}},
                     "address_registry": {"path": registry}}
    data = {"all": {"vars": addresses, "children": {
        "hypervisors": {"hosts": {lab.HOST: {"ansible_connection": "local",
                                             "ansible_python_interpreter": "/usr/bin/python3"}}},
        group: {"hosts": dict(("%s%d" % (prefix, i), vm) for i in range(count))}}}}
    with open(path, "w") as handle:
        json.dump(data, handle)


def run(args, inventory_path, tree=None):
    """-> (seconds, {host: changed}) of one ansible-playbook run, with the collection of
    checkout ``tree`` (else this one)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab.REPO, "ansible.cfg"),
               ANSIBLE_FORKS="10")
    if tree:
        env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(tree, ".build")
    start = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", inventory_path] + args, cwd=lab.REPO,
                          env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("deploy benchmark failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr))
    changed = dict((host, int(n)) for host, n in re.findall(
        r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", proc.stdout, re.M))
    return elapsed, changed


def run_play(play, inventory_path):
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        json.dump(play, handle)
    try:
        return run([handle.name], inventory_path)[0]
    finally:
        os.unlink(handle.name)


def playbook(kind, tree=None):
    return os.path.join(tree or lab.REPO, "playbooks", "deploy_vms_%s.yaml" % kind)


def remove_vms(kind, inventory_path):
    group = KINDS[kind][0]
    task = ({"gridvirt.kvm.cluster_vm": {"name": "{{ inventory_hostname }}", "state": "absent",
                                         "purge": True, "force": True}}
            if kind == "cluster" else
            {"gridvirt.kvm.standalone_vm": {"name": "{{ inventory_hostname }}",
                                            "state": "absent"}})
    run_play([{"hosts": group, "gather_facts": False,
               "tasks": [dict(task, delegate_to=lab.HOST)]}], inventory_path)


def ping_seconds(kind, inventory_path):
    return run_play([{"hosts": KINDS[kind][0], "gather_facts": False, "tasks": [
        {"ansible.builtin.ping": {}, "delegate_to": lab.HOST}]}], inventory_path)


def paired_reruns(kind, inventory_path, tree=None):
    """Medians of REPEAT (rerun, ping) pairs, and the changed count of the reruns."""
    reruns, pings, changed = [], [], 0
    for _attempt in range(REPEAT):
        seconds, counts = run([playbook(kind, tree)], inventory_path, tree)
        reruns.append(seconds)
        changed += sum(counts.values())
        pings.append(ping_seconds(kind, inventory_path))
    return {"rerun": statistics.median(reruns), "ping": statistics.median(pings),
            "changed": changed}


def fresh_deploy(kind, path, tree=None):
    remove_vms(kind, path)
    return run([playbook(kind, tree)], path, tree)[0]


def kind_figures(kind, tmp):
    """Fresh deploys (baseline code first), then the reruns with 2, 10 and 30 VMs registered
    (each size adds VMs to the previous ones), and the 10-VM rerun with 30 in the cluster."""
    figures = {"sizes": {}}
    paths = {}
    for count in sorted(set(SIZES + [FRESH])):
        paths[count] = os.path.join(tmp, "%s-%d.json" % (kind, count))
        inventory(paths[count], kind, count)
    largest = paths[max(paths)]
    if BASELINE:
        remove_vms(kind, largest)
        figures["fresh_baseline"] = run([playbook(kind, BASELINE)], paths[FRESH], BASELINE)[0]
        figures["baseline_rerun"] = paired_reruns(kind, paths[FRESH], BASELINE)
    remove_vms(kind, largest)
    figures["fresh"] = run([playbook(kind)], paths[FRESH])[0]
    remove_vms(kind, largest)
    for count in sorted(SIZES):
        run([playbook(kind)], paths[count])
        figures["sizes"][count] = paired_reruns(kind, paths[count])
    if FRESH < max(SIZES):
        figures["of_largest"] = paired_reruns(kind, paths[FRESH])
    remove_vms(kind, largest)
    with_addresses = os.path.join(tmp, "%s-addresses.json" % kind)
    inventory(with_addresses, kind, FRESH, registry=os.path.join(tmp, "addresses.db"))
    run([playbook(kind)], with_addresses)
    figures["addresses"] = paired_reruns(kind, with_addresses)
    remove_vms(kind, with_addresses)
    return figures


def deploy_figures():
    with tempfile.TemporaryDirectory() as tmp:
        return dict((kind, kind_figures(kind, tmp)) for kind in KINDS)


def report_deploy(figures):
    deploy = figures.get("deploy")
    if not deploy:
        return []
    lines = ["", "## Deploy playbooks: no-op rerun against a ping per VM (medians of %d paired "
             "runs, VMs defined and stopped)" % REPEAT, "",
             "| playbook | VMs | no-op rerun (s) | ping play (s) | rerun / ping | rerun per VM (s) "
             "| changed in reruns |", "|---|---|---|---|---|---|---|"]
    for kind, figs in sorted(deploy.items()):
        rows = [(str(count), pair) for count, pair in sorted(figs["sizes"].items(),
                                                             key=lambda item: int(item[0]))]
        if "of_largest" in figs:
            rows.append(("%d of %d registered" % (FRESH, max(int(c) for c in figs["sizes"])),
                         figs["of_largest"]))
        if "addresses" in figs:
            rows.append(("%d with registry addresses" % FRESH, figs["addresses"]))
        if "baseline_rerun" in figs:
            rows.append(("%d (baseline code)" % FRESH, figs["baseline_rerun"]))
        for label, pair in rows:
            count = int(label.split()[0])
            lines.append("| deploy_vms_%s.yaml | %s | %.2f | %.2f | %.2fx | %.3f | %d |" % (
                kind, label, pair["rerun"], pair["ping"], pair["rerun"] / pair["ping"],
                pair["rerun"] / count, pair["changed"]))
    lines += ["", "Fresh deploy of %d VMs (one run each, whole play, s):" % FRESH, ""]
    for kind, figs in sorted(deploy.items()):
        base = figs.get("fresh_baseline")
        lines.append("- deploy_vms_%s.yaml: %.1f%s" % (
            kind, figs["fresh"], " (baseline code: %.1f, %.2fx)" % (base, figs["fresh"] / base)
            if base else ""))
    return lines
