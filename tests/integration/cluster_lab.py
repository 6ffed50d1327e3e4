"""Helpers for cluster_vm tests on the lab's real Ceph + Pacemaker + libvirt."""
import json
import os
import subprocess
import time

import pytest
from lxml import etree

import lab

MODULE = "gridvirt.kvm.cluster_vm"
RBD = ["rbd", "--id", "libvirt", "--format", "json"]
# rbd's changing commands reject --format.
RBD_CHANGE = ["rbd", "--id", "libvirt"]
RADOS = ["rados", "--id", "libvirt", "-p", "rbd"]
LOCK_PREFIX = "gridvirt.lock."
RBD_STATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rbd_state.py")


def run_cluster(args, check=False, diff=False, timeout=900, env_extra=None):
    return lab.run_module(args, module=MODULE, check=check, diff=diff, timeout=timeout,
                          env_extra=env_extra)


def ok(args, **kwargs):
    """Run the module and insist it succeeded."""
    result = run_cluster(args, **kwargs)
    assert not result["failed"], result.get("msg") or result["_stdout"][-3000:]
    return result


def rbd(*args):
    proc = subprocess.run(RBD + list(args), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError("rbd %s failed: %s" % (" ".join(args), proc.stderr.strip()))
    return json.loads(proc.stdout) if proc.stdout.strip() else []


def rbd_change(*args):
    """An rbd command that changes something (those take no --format)."""
    proc = subprocess.run(RBD_CHANGE + list(args), capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise AssertionError("rbd %s failed: %s" % (" ".join(args), proc.stderr.strip()))


def images():
    return sorted(rbd("ls"))


def groups():
    return sorted(rbd("group", "ls"))


def trash():
    return sorted(entry["name"] for entry in rbd("trash", "ls"))


def image_info(name):
    return rbd("info", name)


def exported(name):
    """The bytes of an RBD image, read back with rbd export."""
    return subprocess.run(RBD_CHANGE + ["export", name, "-"], capture_output=True,
                          check=True).stdout


def image_meta(name):
    return rbd("image-meta", "list", name) or {}


def cib_configuration():
    return subprocess.run(["cibadmin", "--query", "--scope", "configuration"],
                          capture_output=True, text=True, check=True).stdout


def node_attributes():
    """The nodes' attributes in the CIB status section (standby, fail counts, ...)."""
    status = etree.fromstring(subprocess.run(
        ["cibadmin", "--query", "--scope", "status"], capture_output=True, check=True).stdout)
    return sorted((state.get("uname"), pair.get("name"), pair.get("value"))
                  for state in status.iter("node_state")
                  for pair in state.iterfind("transient_attributes//nvpair"))


def lock_objects():
    """The per-VM lock objects of the pool (gridvirt.lock.<vm>) with their lockers."""
    listing = subprocess.run(RADOS + ["ls"], capture_output=True, text=True, check=True).stdout
    locks = {}
    for name in sorted(n for n in listing.split() if n.startswith(LOCK_PREFIX)):
        held = json.loads(subprocess.run(RADOS + ["lock", "list", name, "--format", "json"],
                                         capture_output=True, text=True, check=True).stdout)
        lockers = []
        for lock in held.get("locks", []):
            info = json.loads(subprocess.run(
                RADOS + ["lock", "info", name, lock["name"], "--format", "json"],
                capture_output=True, text=True, check=True).stdout)
            lockers.append((lock["name"], sorted(locker.get("cookie", "") for locker in info.get("lockers", []))))
        locks[name] = lockers
    return locks


def cib_xpath(xpath):
    """Elements of the CIB matching xpath, as text ('' when none)."""
    proc = subprocess.run(["cibadmin", "--query", "--xpath", xpath], capture_output=True,
                          text=True, check=False)
    return proc.stdout if proc.returncode == 0 else ""


def fingerprint():
    """Everything a cluster_vm call could change: RBD images with their ids, sizes,
    snapshots and metadata, groups with their snapshots, the trash (rbd_state.py, one
    process), the per-VM RADOS lock objects, the CIB configuration and its nodes'
    attributes, libvirt's definitions."""
    state = json.loads(subprocess.run(
        ["/usr/bin/python3", RBD_STATE, "rbd", "libvirt"], capture_output=True, text=True,
        check=True).stdout)
    state.update({"cib": cib_configuration(), "node_attributes": node_attributes(),
                  "locks": lock_objects(), "domains": lab.definitions()})
    return state


def status(name):
    result = ok({"name": name, "command": "status"})
    return result["status"], result["node"]


def wait_status(name, wanted, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        current = status(name)[0]
        if current == wanted or time.monotonic() > deadline:
            return current
        time.sleep(1)


def remove_image(name, patience=45):
    """rbd rm, waiting out the watch of a client killed a moment ago (Ceph drops it after
    30 s), so a test that kills a module does not leave its image to the next run."""
    deadline = time.monotonic() + patience
    while True:
        proc = subprocess.run(RBD_CHANGE + ["rm", name], capture_output=True, text=True,
                              check=False)
        if proc.returncode == 0:
            return
        if "watchers" not in proc.stderr or time.monotonic() >= deadline:
            raise AssertionError("Test cleanup cannot remove RBD image %s: %s"
                                 % (name, proc.stderr.strip()))
        time.sleep(2)


def unprotected(snapshots):
    """Snapshots as rbd snap ls lists them -> those to unprotect before a purge."""
    return [s["name"] for s in snapshots if str(s.get("protected")).lower() == "true"]


def run_steps(steps):
    """rbd commands in order, up to the first that fails; -> its error, or None."""
    for step in steps:
        proc = subprocess.run(RBD_CHANGE + step, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return "rbd %s: %s" % (" ".join(step), proc.stderr.strip())
    return None


def remove_trashed(image_id):
    """-> the error of a trashed image's removal, or None."""
    steps = [["snap", "unprotect", "--image-id", image_id, "--snap", snap]
             for snap in unprotected(rbd("snap", "ls", "--all", "--image-id", image_id))]
    return run_steps(steps + [["snap", "purge", "--image-id", image_id],
                              ["trash", "rm", "--force", image_id]])


def remove_listed(name):
    """-> the error of an image's removal (snapshots unprotected and purged first), or None."""
    steps = [["snap", "unprotect", "%s@%s" % (name, snap)]
             for snap in unprotected(rbd("snap", "ls", name))]
    error = run_steps(steps + [["snap", "purge", name]])
    if error is None:
        remove_image(name)
    return error


def running_domains(prefix):
    c = lab.conn()
    try:
        return set(d.name() for d in c.listAllDomains() if d.name().startswith(prefix)
                   and d.isActive())
    finally:
        c.close()


def remove_all(prefix):
    """Remove every VM, image, trash entry and constraint whose name starts with prefix;
    fails, naming what is left, when anything could not be removed."""
    running = running_domains(prefix)
    for group in groups():
        if group.startswith(prefix):
            if group in running:
                # Powered off at once: a graceful shutdown of a TCG guest costs the suite
                # tens of seconds per VM, and no test judges its cleanup's shutdown.
                run_cluster({"name": group, "state": "stopped", "force": True})
            ok({"name": group, "state": "absent", "purge": True})
    # A parent keeps its protected clone snapshot until its clones are gone, listed or in
    # the trash: passes until nothing is left, and the errors of the last pass if anything is.
    errors = []
    for _attempt in range(3):
        errors = [remove_listed(name) for name in images() if prefix in name]
        errors += [remove_trashed(entry["id"]) for entry in rbd("trash", "ls")
                   if prefix in entry["name"]]
        errors = [e for e in errors if e]
        if not errors:
            break
    lab.remove_everything(prefix)
    left = ([g for g in groups() if g.startswith(prefix)] + [i for i in images() if prefix in i]
            + [t for t in trash() if prefix in t])
    if left or errors:
        raise AssertionError("Test cleanup left %s behind: %s" % (left, errors))


def cleanup_fixture(prefix):
    @pytest.fixture(scope="module", autouse=True)
    def clean_cluster():
        remove_all(prefix)
        yield
        remove_all(prefix)
    return clean_cluster


def vm_args(name, **extra):
    args = {"name": name, "state": "running", "xml": lab.guest_xml(name),
            "system_image": lab.GUEST_IMAGE, "additional_disks": ["16M"],
            "preferred_host": lab.node_name()}
    args.update(extra)
    return args
