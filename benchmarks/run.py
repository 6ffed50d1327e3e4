"""Benchmarks of gridvirt.kvm on the local lab, figures side by side from one run.

  * linked vs full clone time (standalone_vm) for a 100 MiB and a 2 GiB source disk,
    filled with data so that a copy costs what copying a real disk costs;
  * the cost of a no-op rerun of a standalone_vm task per VM, against an
    ansible.builtin.ping task per VM on the same host;
  * importing an image into RBD: the RBD store's path (qemu-img writing into a pre-created
    image) against `rbd import` of the raw image and SEAPATH's copy-then-convert;
  * deploy_vms_cluster.yaml and deploy_vms_standalone.yaml: a fresh deploy of 10 VMs, and
    the no-op rerun with 2, 10 and 30 VMs against a ping per VM (benchmarks/deploy.py);
  * the three-node lab: bring-up of 1 vs 3 nodes, failover phases after a power cut, live
    migration time and guest pause (benchmarks/ha.py); standalone_vm's offline and live moves
    against a plain copy of the same volumes (benchmarks/moves.py);
  * cluster_vm: a whole create (import, definition, Pacemaker resource) against the raw
    `rbd import` and SEAPATH's path for the same image; linked clone time for a 40 MiB and
    a 4 GiB source; list_vms with 1 and with 50 VMs registered;
  * listing the fleet: ansible-inventory through the gridvirt.kvm.vms plugin with 2, 10 and 30
    VMs, against one cluster_vm list_vms play and one vm_info play (benchmarks/inventory.py).

Every figure is the median of several runs of the real module through ansible-playbook.
These are measurements, not assertions. Results: benchmarks/results/<time>.json and
benchmarks/results/latest.md (printed too).
"""
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import lab  # noqa: E402  (the integration tests' lab helpers: XML of the test guest)
import addresses  # noqa: E402  (benchmarks/addresses.py: the address registry's figures)
import deploy  # noqa: E402  (benchmarks/deploy.py: the deploy playbook's figures)
import ha  # noqa: E402  (benchmarks/ha.py: the three-node lab's figures)
import inventory  # noqa: E402  (benchmarks/inventory.py: listing the fleet)

RESULTS = os.path.join(REPO, "benchmarks", "results")
IMAGES = os.path.join(REPO, ".lab", "images")
SIZES = [("100M", "100 MiB"), ("2G", "2 GiB")]
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
NOOP_VMS = int(os.environ.get("BENCH_NOOP_VMS", "10"))
LIST_REPEAT = max(REPEAT, 9)
# Another checkout of the collection (with its .build link): the no-op and create figures are
# then measured with that code too, in the same run, side by side (before/after a change).
BASELINE = os.environ.get("BENCH_BASELINE")


def bench_image(size):
    path = os.path.join(IMAGES, "bench-%s.qcow2" % size)
    if not os.path.exists(path):
        subprocess.run([os.path.join(REPO, "lab", "guest", "build-image.sh"), "--size", size,
                        "--fill", path], check=True)
    return path


def playbook(tasks, hosts="hypervisors", tree=None):
    """Run a one-play playbook (with the collection of checkout ``tree``, else this one);
    -> seconds of the whole ansible-playbook run."""
    play = [{"name": "bench", "hosts": hosts, "gather_facts": False, "tasks": tasks}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=REPO, delete=False) as handle:
        json.dump(play, handle)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    if tree:
        env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(tree, ".build")
    try:
        start = time.monotonic()
        proc = subprocess.run(["ansible-playbook", handle.name], cwd=REPO, env=env,
                              capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
    finally:
        os.unlink(handle.name)
    if proc.returncode != 0:
        raise SystemExit("benchmark play failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr))
    return elapsed, proc.stdout


def median_seconds(tasks, tree=None):
    """Median time of REPEAT runs of a one-play playbook."""
    return statistics.median(playbook(tasks, tree=tree)[0] for _attempt in range(REPEAT))


def vm_task(args):
    return {"gridvirt.kvm.standalone_vm": args}


def clone_times(size):
    image = bench_image(size)
    src = "bench-src-%s" % size.lower()
    lab.remove_everything("bench-")
    playbook([vm_task({"name": src, "state": "present", "xml": lab.guest_xml(src),
                       "system_image": image})])
    # A read-only task on the same VM: ansible-playbook start-up and module transfer, which
    # every clone run pays too; subtracted to show the clone's own work.
    figures = {"baseline": median_seconds([vm_task({"name": src, "command": "status"})])}
    for kind, full in (("linked", False), ("full", True)):
        runs = []
        for attempt in range(REPEAT):
            clone = "bench-%s-%s-%d" % (kind, size.lower(), attempt)
            seconds, _out = playbook([vm_task({"name": clone, "command": "clone",
                                               "src_name": src, "full": full,
                                               "nostart": True})])
            runs.append(seconds)
        figures[kind] = statistics.median(runs)
    lab.remove_everything("bench-")
    return figures


def noop_rerun_cost():
    """Per-VM cost of a no-op rerun of standalone_vm and of cluster_vm (stopped cluster VMs:
    no guest load), against ping, from the slope between 1 and NOOP_VMS items so that
    ansible-playbook's start-up (the same for all) cancels out; with BENCH_BASELINE, the
    same by the baseline's code."""
    lab.remove_everything("bench-")
    cluster_remove("bench-")
    result = {}
    for kind in ("standalone_vm", "cluster_vm"):
        names = ["bench-%snoop-%d" % (kind[0], i) for i in range(NOOP_VMS)]
        items = [{"name": n, "state": "present", "xml": lab.guest_xml(n),
                  "system_image": lab.GUEST_IMAGE} for n in names]
        task = {"gridvirt.kvm." + kind: {"name": "{{ item.name }}", "state": "present",
                                         "xml": "{{ item.xml }}",
                                         "system_image": "{{ item.system_image }}"}}
        playbook([dict(task, loop=items)])  # create them once
        result[kind + " no-op"] = per_vm_cost(task, items)
        if BASELINE:
            result[kind + " no-op (baseline)"] = per_vm_cost(task, items, BASELINE)
        _secs, out = playbook([dict(task, loop=items)])
        result[kind + " rerun changed"] = "changed=0" not in out
    result["ping"] = per_vm_cost({"ansible.builtin.ping": {}}, items)
    lab.remove_everything("bench-")
    cluster_remove("bench-")
    return result


def per_vm_cost(task, items, tree=None):
    one = median_seconds([dict(task, loop=items[:1])], tree)
    many = median_seconds([dict(task, loop=items)], tree)
    return {"per_vm": (many - one) / (len(items) - 1), "total_%d" % len(items): many}


CEPH_ARGS = ["--id", "libvirt", "--conf", "/etc/ceph/ceph.conf"]
RBD_TARGET = "rbd:rbd/%s:id=libvirt:conf=/etc/ceph/ceph.conf"


def timed(commands):
    """Seconds to run the commands one after the other (each must succeed)."""
    start = time.monotonic()
    for cmd in commands:
        subprocess.run(cmd, check=True, capture_output=True)
    return time.monotonic() - start


def rbd_remove(image):
    subprocess.run(["rbd"] + CEPH_ARGS + ["rm", "--no-progress", "rbd/" + image],
                   check=False, capture_output=True)


def rbd_import_paths(qcow2, raw, size):
    """The three ways to put an image into RBD, as command lists (image name -> commands)."""
    staging = os.path.join(tempfile.gettempdir(), "gridvirt-bench-staging.qcow2")
    return {
        # What the RBD store does: create the image, qemu-img writes into it directly.
        "gridvirt (qemu-img convert -n -W into RBD)": lambda img: [
            ["rbd"] + CEPH_ARGS + ["create", "--size", "%dB" % size, "rbd/" + img],
            ["qemu-img", "convert", "-n", "-W", "-f", "qcow2", "-O", "raw", qcow2,
             RBD_TARGET % img]],
        "rbd import of the raw image": lambda img: [
            ["rbd"] + CEPH_ARGS + ["import", "--no-progress", raw, "rbd/" + img]],
        "SEAPATH (copy to /tmp, qemu-img convert -W)": lambda img: [
            ["cp", qcow2, staging],
            ["qemu-img", "convert", "-W", "-f", "qcow2", "-O", "raw", staging,
             RBD_TARGET % img],
            ["rm", "-f", staging]],
    }


def rbd_import_throughput(size_label="1G"):
    qcow2 = bench_image(size_label)
    raw = qcow2[:-len(".qcow2")] + ".raw"
    size = os.path.getsize(raw)
    result = {"size_bytes": size}
    for label, commands in rbd_import_paths(qcow2, raw, size).items():
        runs = []
        for attempt in range(REPEAT):
            image = "bench_import_%d" % attempt
            rbd_remove(image)
            runs.append(timed(commands(image)))
            rbd_remove(image)
        result[label] = statistics.median(runs)
    return result


def cluster_task(args):
    return {"gridvirt.kvm.cluster_vm": args}


def cluster_remove(prefix):
    """Remove the bench's cluster VMs (purged, not trashed) and stray images."""
    groups = json.loads(subprocess.run(["rbd"] + CEPH_ARGS + ["--format", "json", "group",
                                                              "ls"],
                                       capture_output=True, text=True, check=True).stdout)
    doomed = [g for g in groups if g.startswith(prefix)]
    # Clones first: their source's images cannot go while clones hang from them.
    doomed.sort(key=lambda g: g == prefix + "src")
    if doomed:
        playbook([cluster_task({"name": "{{ item }}", "state": "absent", "purge": True}) | {
            "loop": doomed}])


def sparse_source(size, data_mib):
    """The test guest grown to `size` with `data_mib` MiB of data written into it: what a
    real VM's disk holds, within the lab's 4 GiB OSD."""
    path = os.path.join(IMAGES, "bench-sparse-%s-%d.raw" % (size, data_mib))
    if not os.path.exists(path):
        subprocess.run(["qemu-img", "convert", "-O", "raw", lab.GUEST_RAW, path], check=True)
        subprocess.run(["qemu-img", "resize", "-f", "raw", path, size], check=True,
                       capture_output=True)
        with open(path, "r+b") as handle:
            handle.seek(64 * 1048576)
            chunk = os.urandom(1048576)
            for _mib in range(data_mib):
                handle.write(chunk)
    return path


def cluster_create_throughput(size_label="1G"):
    """cluster_vm create (state present: import + definition + resource, no boot) of the
    filled image, whole play minus a status play, against the raw import paths."""
    qcow2 = bench_image(size_label)
    name = "benchcl-create"
    cluster_remove("benchcl-")
    args = {"name": name, "state": "present", "xml": lab.guest_xml(name),
            "system_image": qcow2}
    trees = [("create", None)] + ([("create (baseline)", BASELINE)] if BASELINE else [])
    runs, baselines = dict((label, []) for label, _tree in trees), []
    for _attempt in range(REPEAT):
        for label, tree in trees:
            runs[label].append(playbook([cluster_task(args)], tree=tree)[0])
            if tree is None:
                baselines.append(playbook([cluster_task({"name": name,
                                                         "command": "status"})])[0])
            cluster_remove("benchcl-")
    result = dict((label, statistics.median(times)) for label, times in runs.items())
    result["baseline"] = statistics.median(baselines)
    return result


def cluster_clone_times():
    """Linked clone of a running-size source: 40 MiB (the test guest) and 4 GiB virtual
    with 1 GiB of data."""
    figures = {}
    for label, image in (("40 MiB", lab.GUEST_IMAGE),
                         ("4 GiB (1 GiB data)", sparse_source("4G", 1024))):
        cluster_remove("benchcl-")
        src = "benchcl-src"
        playbook([cluster_task({"name": src, "state": "present", "xml": lab.guest_xml(src),
                                "system_image": image})])
        baseline = median_seconds([cluster_task({"name": src, "command": "status"})])
        runs = []
        for attempt in range(REPEAT):
            clone = "benchcl-c%d" % attempt
            runs.append(playbook([cluster_task({"name": clone, "command": "clone",
                                                "src_name": src, "nostart": True})])[0])
        figures[label] = {"clone": statistics.median(runs), "baseline": baseline}
    cluster_remove("benchcl-")
    return figures


def cluster_list_vms(count=50):
    """list_vms with the source alone, then with `count` more VMs (linked clones, each a
    Pacemaker resource)."""
    cluster_remove("benchcl-")
    src = "benchcl-src"
    playbook([cluster_task({"name": src, "state": "present", "xml": lab.guest_xml(src),
                            "system_image": lab.GUEST_IMAGE})])
    listing = [cluster_task({"command": "list_vms"})]
    # Small differences: more runs than the other figures.
    alone = statistics.median(playbook(listing)[0] for _run in range(LIST_REPEAT))
    playbook([cluster_task({"name": "benchcl-l{{ item }}", "command": "clone",
                            "src_name": src, "nostart": True})
              | {"loop": list(range(count))}])
    many = statistics.median(playbook(listing)[0] for _run in range(LIST_REPEAT))
    cluster_remove("benchcl-")
    return {"vms": count + 1, "one": alone, "many": many}


def report_cluster(figures):
    cluster = figures.get("cluster")
    if not cluster:
        return []
    create, imports = cluster["create"], figures["rbd_import"]
    mib = imports["size_bytes"] / 1048576.0
    own = create["create"] - create["baseline"]
    lines = ["", "## cluster_vm create against raw imports (%d MiB image)" % mib, "",
             "cluster_vm `state: present` of a new VM: import into RBD, definition and "
             "metadata, libvirt validation, Pacemaker resource. Whole play %.2f s; its own "
             "work (minus a `status` play on the VM, i.e. ansible start-up) %.2f s."
             % (create["create"], own), "",
             "| path | seconds | MiB/s | time / cluster_vm create |", "|---|---|---|---|",
             "| cluster_vm create (own work) | %.2f | %.0f | 1.00x |" % (own, mib / own)]
    if "create (baseline)" in create:
        before = create["create (baseline)"] - create["baseline"]
        lines.append("| cluster_vm create, BENCH_BASELINE's code (own work) | %.2f | %.0f | "
                     "%.2fx |" % (before, mib / before, before / own))
    for label in ("rbd import of the raw image", "SEAPATH (copy to /tmp, qemu-img convert -W)"):
        lines.append("| %s | %.2f | %.0f | %.2fx |" % (label, imports[label],
                                                       mib / imports[label],
                                                       imports[label] / own))
    if "clone" not in cluster:  # BENCH_SECTIONS=create
        return lines
    lines += ["", "## cluster_vm linked clone", "",
              "| source | whole play (s) | own work (s) |", "|---|---|---|"]
    clones = cluster["clone"]
    for label in clones:
        lines.append("| %s | %.2f | %.2f |" % (label, clones[label]["clone"],
                                               clones[label]["clone"]
                                               - clones[label]["baseline"]))
    small, big = (clones[label]["clone"] for label in clones)
    lines += ["", "Linked clone, 4 GiB vs 40 MiB source (whole play): %.2fx." % (big / small)]
    listing = cluster["list_vms"]
    lines += ["", "## cluster_vm list_vms", "",
              "| VMs registered | whole play (s) |", "|---|---|",
              "| 1 | %.2f |" % listing["one"],
              "| %d | %.2f |" % (listing["vms"], listing["many"]), "",
              "%d VMs vs 1: %.2fx (medians of %d runs; one CIB status read and one RBD group "
              "listing serve all of them)." % (listing["vms"], listing["many"] / listing["one"],
                                               LIST_REPEAT)]
    return lines


def report(figures):
    lines = ["# gridvirt.kvm benchmarks (%s)" % figures["time"], "",
             "Machine: %s cores; guests under TCG; medians of %d runs; times of whole "
             "ansible-playbook runs (s)." % (os.cpu_count(), REPEAT)]
    lines += report_standalone_clone(figures) + report_noop(figures)
    lines += report_import(figures) + report_cluster(figures) + deploy.report_deploy(figures)
    lines += addresses.report_addresses(figures) + inventory.report_inventory(figures)
    lines += ha.report_ha(figures)
    lines += ha.standalone_moves.report_moves(figures)
    return "\n".join(lines) + "\n"


def report_standalone_clone(figures):
    if not figures["clone"]:
        return []
    lines = ["", "## Clone (standalone_vm)", "",
             "Whole play, then the clone's own work (whole play minus a `status` play on the "
             "same VM, i.e. without ansible start-up).", "",
             "| source disk | linked | full | linked, own work | full, own work | full / linked "
             "(own work) |", "|---|---|---|---|---|---|"]
    for _size, label in SIZES:
        clone = figures["clone"][label]
        own_linked = max(clone["linked"] - clone["baseline"], 0.01)
        own_full = max(clone["full"] - clone["baseline"], 0.01)
        lines.append("| %s | %.2f | %.2f | %.2f | %.2f | %.1fx |" % (
            label, clone["linked"], clone["full"], own_linked, own_full, own_full / own_linked))
    small, big = (figures["clone"][label]["linked"] for _s, label in SIZES)
    lines += ["", "Linked clone (whole play), 2 GiB vs 100 MiB: %.2fx (flat means ~1x)."
              % (big / small)]
    return lines


def report_noop(figures):
    noop = figures.get("noop")
    if not noop:
        return []
    ping = noop["ping"]
    lines = ["", "## No-op rerun per VM (%d VMs)" % NOOP_VMS, "",
             "| task | per VM (s) | %d VMs, whole play (s) | per VM / ping |" % NOOP_VMS,
             "|---|---|---|---|"]
    for label in sorted(k for k in noop if k.endswith(")") or k.endswith("no-op")) + ["ping"]:
        cost = noop[label]
        lines.append("| %s | %.3f | %.2f | %.2fx |" % (
            label, cost["per_vm"], cost["total_%d" % NOOP_VMS], cost["per_vm"] / ping["per_vm"]))
    changed = [k for k in noop if k.endswith("rerun changed") and noop[k]]
    lines += ["", "The reruns reported %s." % (
        "changes (a defect): %s" % ", ".join(changed) if changed else "changed=0")]
    return lines


def report_import(figures):
    imports = figures.get("rbd_import")
    lines = []
    if imports:
        ours = imports["gridvirt (qemu-img convert -n -W into RBD)"]
        mib = imports["size_bytes"] / 1048576.0
        lines += ["", "## Import into RBD (%d MiB image, filled with data)" % mib, "",
                  "| path | seconds | MiB/s | time / gridvirt's |", "|---|---|---|---|"]
        for label in sorted(k for k in imports if k != "size_bytes"):
            lines.append("| %s | %.2f | %.0f | %.2fx |"
                         % (label, imports[label], mib / imports[label], imports[label] / ours))
    return lines


def main():
    """BENCH_SECTIONS (comma-separated: clone, noop, import, cluster, deploy, addresses,
    inventory, ha;
    create: the cluster create alone; failover, moves: those parts of ha alone) limits the
    run; cluster needs import (its ratios are against the same raw imports); ha runs last:
    it stops the one-node lab for the three-node one, and restarts it after."""
    sections = os.environ.get("BENCH_SECTIONS",
                              "clone,noop,import,cluster,deploy,addresses,inventory,ha").split(",")
    os.makedirs(RESULTS, exist_ok=True)
    figures = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "clone": {}}
    if "clone" in sections:
        for size, label in SIZES:
            figures["clone"][label] = clone_times(size)
    if "noop" in sections:
        figures["noop"] = noop_rerun_cost()
    if "import" in sections or "cluster" in sections or "create" in sections:
        figures["rbd_import"] = rbd_import_throughput()
    if "cluster" in sections:
        figures["cluster"] = {"create": cluster_create_throughput(),
                              "clone": cluster_clone_times(), "list_vms": cluster_list_vms()}
    elif "create" in sections:
        figures["cluster"] = {"create": cluster_create_throughput()}
    if "deploy" in sections:
        figures["deploy"] = deploy.deploy_figures()
    if "addresses" in sections:
        figures["addresses"] = addresses.address_figures()
    if "inventory" in sections:
        figures["inventory"] = inventory.inventory_figures(playbook, cluster_task, cluster_remove)
    if "ha" in sections:
        figures["ha"] = ha.ha_figures()
    else:
        if "failover" in sections:
            figures["ha"] = ha.failover_alone()
        if "moves" in sections:
            figures.setdefault("ha", {}).update(ha.moves_alone())
    stamp = figures["time"].replace(":", "")
    with open(os.path.join(RESULTS, "%s.json" % stamp), "w") as handle:
        json.dump(figures, handle, indent=2)
    text = report(figures)
    with open(os.path.join(RESULTS, "latest.md"), "w") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
