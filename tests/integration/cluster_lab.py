"""Helpers for cluster_vm tests on the lab's real Ceph + Pacemaker + libvirt."""
import json
import subprocess
import time

import pytest

import lab

MODULE = "gridvirt.kvm.cluster_vm"
RBD = ["rbd", "--id", "libvirt", "--format", "json"]
# rbd's changing commands reject --format.
RBD_CHANGE = ["rbd", "--id", "libvirt"]


def run_cluster(args, check=False, diff=False):
    return lab.run_module(args, module=MODULE, check=check, diff=diff)


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


def image_meta(name):
    return rbd("image-meta", "list", name) or {}


def cib_configuration():
    return subprocess.run(["cibadmin", "--query", "--scope", "configuration"],
                          capture_output=True, text=True, check=True).stdout


def cib_xpath(xpath):
    """Elements of the CIB matching xpath, as text ('' when none)."""
    proc = subprocess.run(["cibadmin", "--query", "--xpath", xpath], capture_output=True,
                          text=True, check=False)
    return proc.stdout if proc.returncode == 0 else ""


def fingerprint():
    """Everything a cluster_vm call could change: RBD images with their snapshots and
    metadata, groups with their snapshots, the trash, the CIB configuration, libvirt."""
    state = {"images": {}, "groups": {}, "trash": trash(), "cib": cib_configuration(),
             "domains": lab.domain_names()}
    for name in images():
        snaps = sorted((s["name"], s.get("protected"))
                       for s in rbd("snap", "ls", "--all", name))
        state["images"][name] = (snaps, image_meta(name))
    for group in groups():
        members = sorted(i["image"] for i in rbd("group", "image", "list", group))
        snaps = sorted(s["snapshot"] for s in rbd("group", "snap", "ls", group))
        state["groups"][group] = (members, snaps)
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
        if proc.returncode == 0 or "watchers" not in proc.stderr:
            return
        if time.monotonic() >= deadline:
            return
        time.sleep(2)


def remove_trashed(image_id):
    for snap in rbd("snap", "ls", "--all", "--image-id", image_id):
        subprocess.run(RBD_CHANGE + ["snap", "unprotect", "--image-id", image_id,
                                     "--snap", snap["name"]], capture_output=True, check=False)
    subprocess.run(RBD_CHANGE + ["snap", "purge", "--image-id", image_id], capture_output=True,
                   check=False)
    subprocess.run(RBD_CHANGE + ["trash", "rm", "--force", image_id], capture_output=True,
                   check=False)


def remove_all(prefix):
    """Remove every VM, image, trash entry and constraint whose name starts with prefix."""
    for group in groups():
        if group.startswith(prefix):
            run_cluster({"name": group, "state": "absent", "purge": True})
    for name in sorted(images(), key=lambda n: "_gvclone" in n):
        if prefix in name:
            for snap in rbd("snap", "ls", name):
                subprocess.run(RBD_CHANGE + ["snap", "unprotect", "%s@%s" % (name, snap["name"])],
                               capture_output=True, check=False)
            subprocess.run(RBD_CHANGE + ["snap", "purge", name], capture_output=True,
                           check=False)
            remove_image(name)
    # Trashed clones first, then the trashed images they hung from (a second pass): a
    # parent keeps its protected clone snapshot until its children are gone.
    for _attempt in range(2):
        for entry in rbd("trash", "ls"):
            if prefix in entry["name"]:
                remove_trashed(entry["id"])
    lab.remove_everything(prefix)


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
