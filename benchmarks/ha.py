"""High-availability figures on the three-node lab (section "ha" of benchmarks/run.py).

  * lab bring-up: the one-node lab, the three-node lab from nothing (Ceph and Pacemaker
    bootstrapped), and the three-node lab again from its kept state;
  * failover: node1 (running ha-plc of inventories/lab3) loses power; from that instant, the
    seconds until the survivors see it gone (detection), until the cluster has fenced it,
    until Pacemaker reports ha-plc Started elsewhere, and until the guest prints its boot
    marker there. Median of BENCH_FAILOVER_RUNS runs (node1 is powered on between runs);
  * live migration of ha-gw between two nodes: the whole cluster_vm migrate task, and the
    guest's pause, from the arrival times of its one-per-second serial ticks (the longest gap
    between two ticks, less the one second between them);
  * standalone_vm's moves between two nodes (benchmarks/moves.py).

The one-node lab is stopped while the three-node one runs (two cores), and restarted after.
"""
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "multinode"))
import cluster3 as c3  # noqa: E402  (the three-node tests' helpers)
import moves as standalone_moves  # noqa: E402  (benchmarks/moves.py: standalone_vm's moves)

LAB_SH = os.path.join(REPO, "lab", "lab.sh")
RUNS = int(os.environ.get("BENCH_FAILOVER_RUNS", "3"))
MIGRATIONS = int(os.environ.get("BENCH_MIGRATIONS", "4"))
PHASES = ("detected", "fenced", "started", "marker")


def timed(*cmd):
    start = time.monotonic()
    subprocess.run(list(cmd), cwd=REPO, check=True, capture_output=True)
    return time.monotonic() - start


def prepared_three_nodes():
    rc, out = c3.playbook("prepare_hypervisors.yaml")
    assert rc == 0, out[-3000:]
    rc, out = c3.playbook("deploy_vms_cluster.yaml")
    assert rc == 0, out[-3000:]


def settled():
    where = c3.resources()
    vms = ("ha-plc", "ha-hmi", "ha-gw", "ha-rtu")
    return where if all(where.get(vm) for vm in vms) and where["ha-plc"] == "node1" else None


def bring_up():
    figures = {}
    subprocess.run([LAB_SH, "down"], cwd=REPO, check=True, capture_output=True)
    figures["one node (kept state)"] = timed(LAB_SH, "up")
    subprocess.run([LAB_SH, "down"], cwd=REPO, check=True, capture_output=True)
    subprocess.run([LAB_SH, "nodes-reset"], cwd=REPO, check=True, capture_output=True)
    figures["three nodes (from nothing)"] = timed(LAB_SH, "nodes-up", "3")
    prepared_three_nodes()
    c3.wait(settled, 600, "lab3 VMs Started")
    subprocess.run([LAB_SH, "nodes-down"], cwd=REPO, check=True, capture_output=True)
    figures["three nodes (kept state)"] = timed(LAB_SH, "nodes-up", "3")
    return figures


def one_failover():
    c3.wait(settled, 600, "ha-plc on node1, every VM Started")
    boot = c3.boot_count("ha-plc")
    since = time.time()
    c3.power_off("node1")
    seen = c3.observe_failover("ha-plc", "node1", boot, since)
    c3.power_on("node1")
    c3.wait(settled, 600, "ha-plc back on node1")
    return dict((phase, seen[phase]) for phase in PHASES)


def one_migration(vm="ha-gw"):
    where = c3.resources()
    source = where[vm]
    target = [n for n in c3.nodes() if n not in (source, where["ha-plc"])][0]
    watcher = c3.TickWatcher(vm, source)
    watcher.start()
    time.sleep(3)
    start = time.monotonic()
    result = c3.module("node1", "gridvirt.kvm.cluster_vm",
                       {"name": vm, "command": "migrate", "node": target})
    total = time.monotonic() - start
    time.sleep(3)
    watcher.stopped.set()
    watcher.join()
    assert result.get("changed") and not result.get("failed"), result
    return {"task": total, "pause": max(watcher.longest_gap() - 1.0, 0.0)}


def ha_figures():
    figures = {"bring_up": bring_up()}
    figures.update(failover_figures())
    moves = [one_migration() for _move in range(MIGRATIONS)]
    figures["migration_runs"] = moves
    figures["migration"] = dict((k, statistics.median(m[k] for m in moves))
                                for k in ("task", "pause"))
    figures["moves"] = standalone_moves.move_figures()
    subprocess.run([LAB_SH, "nodes-down"], cwd=REPO, check=True, capture_output=True)
    subprocess.run([LAB_SH, "up"], cwd=REPO, check=True, capture_output=True)
    return figures


def failover_figures():
    runs = [one_failover() for _run in range(RUNS)]
    return {"failover_runs": runs,
            "failover": dict((p, statistics.median(r[p] for r in runs)) for p in PHASES)}


def failover_alone():
    """Section "failover" without the rest of "ha": the three nodes up from their kept
    state, their VMs deployed, the failovers measured, the one-node lab back."""
    subprocess.run([LAB_SH, "down"], cwd=REPO, check=True, capture_output=True)
    subprocess.run([LAB_SH, "nodes-up", "3"], cwd=REPO, check=True, capture_output=True)
    prepared_three_nodes()
    figures = failover_figures()
    subprocess.run([LAB_SH, "nodes-down"], cwd=REPO, check=True, capture_output=True)
    subprocess.run([LAB_SH, "up"], cwd=REPO, check=True, capture_output=True)
    return figures


def moves_alone():
    """Section "moves" without the rest of "ha": the three nodes up, the moves measured, the
    one-node lab back."""
    subprocess.run([LAB_SH, "down"], cwd=REPO, check=True, capture_output=True)
    subprocess.run([LAB_SH, "nodes-up", "3"], cwd=REPO, check=True, capture_output=True)
    rc, out = c3.playbook("prepare_hypervisors.yaml")
    assert rc == 0, out[-3000:]
    figures = {"moves": standalone_moves.move_figures()}
    subprocess.run([LAB_SH, "nodes-down"], cwd=REPO, check=True, capture_output=True)
    subprocess.run([LAB_SH, "up"], cwd=REPO, check=True, capture_output=True)
    return figures


def report_ha(figures):
    ha = figures.get("ha")
    if not ha:
        return []
    lines = report_bring_up(ha["bring_up"]) if "bring_up" in ha else []
    if "failover" in ha:
        lines += report_failover(ha)
    if "migration" in ha:
        mig = ha["migration"]
        lines += ["", "| live migration of ha-gw (median of %d) | seconds |"
                  % len(ha["migration_runs"]), "|---|---|",
                  "| cluster_vm migrate task (ansible included) | %.1f |" % mig["task"],
                  "| guest pause (longest gap between ticks - 1 s) | %.2f |" % mig["pause"]]
    return lines


def report_bring_up(up):
    lines = ["", "## Three-node lab: bring-up, failover, live migration", "",
             "| lab bring-up (lab.sh) | seconds |", "|---|---|"]
    lines += ["| %s | %.1f |" % (name, seconds) for name, seconds in up.items()]
    return lines + ["", "Three nodes from kept state vs one node: %.2fx."
                    % (up["three nodes (kept state)"] / up["one node (kept state)"])]


def report_failover(ha):
    fo = ha["failover"]
    lines = ["", "| failover of ha-plc, node1 powered off (median of %d) | seconds after the "
             "cut |" % len(ha["failover_runs"]), "|---|---|"]
    labels = {"detected": "survivors see node1 gone", "fenced": "node1 fenced",
              "started": "ha-plc Started on a survivor", "marker": "guest boot marker"}
    lines += ["| %s | %.1f |" % (labels[p], fo[p]) for p in PHASES]
    runs = "; ".join(", ".join("%s %.1f" % (p, r[p]) for p in PHASES)
                     for r in ha["failover_runs"])
    return lines + [
        "", "Runs: %s." % runs,
        "Detection %.1f s, fencing %.1f s more, Pacemaker's restart %.1f s more, the "
        "guest's boot %.1f s more." % (fo["detected"], fo["fenced"] - fo["detected"],
                                       fo["started"] - fo["fenced"],
                                       fo["marker"] - fo["started"])]
