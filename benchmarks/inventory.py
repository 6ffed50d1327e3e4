"""Inventory figures: `ansible-inventory --list` through the gridvirt.kvm.vms inventory plugin
(which runs gridvirt.kvm.vm_info on the hypervisor over its connection) with 2, 10 and 30
cluster VMs, against one `cluster_vm command=list_vms` play and one `vm_info` play over the
same VMs."""
import json
import os
import statistics
import subprocess
import tempfile
import time

import lab  # tests/integration's lab helpers (on sys.path through run.py)

SIZES = [int(n) for n in os.environ.get("BENCH_INVENTORY_SIZES", "2,10,30").split(",")]
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
PREFIX = "benchinv-"


def fleet_config(directory):
    """The plugin's file for the lab: its hypervisor is a one-node cluster."""
    path = os.path.join(directory, "fleet.gridvirt.yml")
    with open(path, "w") as handle:
        json.dump({"plugin": "gridvirt.kvm.vms",
                   "clusters": [{"name": "lab", "nodes": [lab.HOST]}],
                   "hypervisor_vars": {"ansible_connection": "local",
                                       "ansible_python_interpreter": "/usr/bin/python3"}},
                  handle)
    return path


def list_inventory(config):
    """-> (seconds, the cluster VMs listed) of one `ansible-inventory --list`."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab.REPO, "ansible.cfg"))
    start = time.monotonic()
    proc = subprocess.run(["ansible-inventory", "-i", config, "--list"], cwd=lab.REPO,
                          env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("ansible-inventory failed:\n%s" % proc.stderr[-3000:])
    listed = json.loads(proc.stdout)["_meta"]["hostvars"]
    return elapsed, [vm for vm in listed if vm.startswith(PREFIX)]


def inventory_figures(playbook, cluster_task, cluster_remove):
    """{n: {inventory, list_vms, vm_info}} medians, n cluster VMs (linked clones, stopped)."""
    cluster_remove(PREFIX)
    src = PREFIX + "src"
    playbook([cluster_task({"name": src, "state": "present", "xml": lab.guest_xml(src),
                            "system_image": lab.GUEST_IMAGE})])
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = fleet_config(tmp)
        have = 1
        for size in SIZES:
            if size > have:
                playbook([cluster_task({"name": PREFIX + "c{{ item }}", "command": "clone",
                                        "src_name": src, "nostart": True})
                          | {"loop": list(range(have, size))}])
                have = size
            runs = [list_inventory(config) for _run in range(REPEAT)]
            assert all(len(listed) == size for _s, listed in runs), runs[0][1]
            figures[size] = {
                "inventory": statistics.median(seconds for seconds, _l in runs),
                "list_vms": statistics.median(
                    playbook([cluster_task({"command": "list_vms"})])[0] for _r in range(REPEAT)),
                "vm_info": statistics.median(
                    playbook([{"gridvirt.kvm.vm_info": {"kinds": ["cluster"]}}])[0]
                    for _r in range(REPEAT))}
    cluster_remove(PREFIX)
    return figures


def report_inventory(figures):
    listing = figures.get("inventory")
    if not listing:
        return []
    lines = ["", "## Listing the fleet: the inventory plugin against one list_vms call", "",
             "Cluster VMs (stopped linked clones) on the lab's one node. `ansible-inventory "
             "--list` through `gridvirt.kvm.vms` (it runs `vm_info` on the node with "
             "ansible-playbook); a one-task play of `cluster_vm command=list_vms` (names, "
             "status, node) and of `vm_info` (status, node, definition, snapshots, metadata).",
             "", "| VMs | ansible-inventory --list (s) | cluster_vm list_vms play (s) | "
             "vm_info play (s) | inventory / list_vms |", "|---|---|---|---|---|"]
    for size in sorted(listing, key=int):
        row = listing[size]
        lines.append("| %s | %.2f | %.2f | %.2f | %.2fx |" % (
            size, row["inventory"], row["list_vms"], row["vm_info"],
            row["inventory"] / row["list_vms"]))
    return lines
