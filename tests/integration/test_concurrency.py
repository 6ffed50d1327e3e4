"""Concurrent runs on different VMs of one host (issue 11): ten creates, then ten removals, at
once, on the standalone hypervisor and on the cluster. Each run lists the host's domains,
volumes, images or resources while the others define and remove theirs; every run must
succeed and leave exactly what was asked.

Also: a libvirt refusal that no step explains itself reaches the user as a sentence naming
the VM, the host and the request, and changes nothing."""
import os
from concurrent.futures import ThreadPoolExecutor

import libvirt
import pytest

import cluster_lab as cl
import lab

PREFIX = "hl"
VMS = ["%s%d" % (PREFIX, index) for index in range(1, 11)]
ROUNDS = 3
# The lab's read-only libvirt socket: reads are allowed, every change is refused.
READ_ONLY_URI = "qemu+unix:///system?socket=/run/libvirt/libvirt-sock-ro"


def my_images(names):
    """Those of the RBD image names that are disks of this file's VMs."""
    disks = set("system_%s" % vm for vm in VMS) | set("data_%s_1" % vm for vm in VMS)
    return sorted(n for n in names if n in disks)


@pytest.fixture(scope="module", autouse=True)
def clean_lab():
    """Before and after: nothing of this file's VMs (exact names: other helpers share the
    lab, cluster_lab.remove_all matches substrings)."""
    def remove():
        for vm in set(VMS) & set(cl.groups()):
            cl.run_cluster({"name": vm, "state": "absent", "purge": True})
        for image in my_images(cl.images()):
            cl.remove_image(image)
        for entry in cl.rbd("trash", "ls"):
            if my_images([entry["name"]]):
                cl.remove_trashed(entry["id"])
        lab.remove_everything(PREFIX)
    remove()
    yield
    remove()


def run_all(argument_lists, module="gridvirt.kvm.standalone_vm"):
    """One ansible process per argument list, all started at once; -> results in order."""
    with ThreadPoolExecutor(max_workers=len(argument_lists)) as pool:
        return list(pool.map(lambda args: lab.run_module(args, module=module), argument_lists))


def assert_all_succeeded(results, when=""):
    failures = [(r.get("name"), r.get("msg") or r["_stdout"][-2000:]) for r in results
                if r["failed"] is not False]
    assert not failures, (when, failures)


def mine(names):
    return sorted(n for n in names if n in VMS)


def my_pool_files():
    return [f for f in lab.pool_files() if f.split(".", 1)[0] in VMS]


def standalone_vm(name, state):
    return {"name": name, "state": state, "xml": lab.guest_xml(name),
            "system_image": lab.GUEST_IMAGE, "additional_disks": ["16M"]}


@pytest.mark.parametrize("round_number", range(1, ROUNDS + 1))
def test_ten_standalone_creates_then_removals_at_once(round_number):
    results = run_all([standalone_vm(name, "present") for name in VMS])
    assert_all_succeeded(results, "creates of round %d" % round_number)
    assert all(r["changed"] and r["status"] == "Stopped" for r in results), results
    assert mine(lab.domain_names()) == sorted(VMS)
    assert sorted(my_pool_files()) == sorted("%s.disk%d.qcow2" % (name, index)
                                             for name in VMS for index in (0, 1))

    results = run_all([{"name": name, "state": "absent"} for name in VMS])
    assert_all_succeeded(results, "removals of round %d" % round_number)
    assert all(r["changed"] and r["status"] == "Undefined" for r in results), results
    assert mine(lab.domain_names()) == []
    assert my_pool_files() == []


def test_ten_standalone_listings_while_vms_come_and_go():
    """list_vms reads every domain's state while half of the VMs are being removed."""
    assert_all_succeeded(run_all([standalone_vm(name, "present") for name in VMS[:5]]))
    removals = [{"name": name, "state": "absent"} for name in VMS[:5]]
    results = run_all(removals + [{"command": "list_vms"}] * 5)
    assert_all_succeeded(results)
    assert mine(lab.domain_names()) == []


def my_cib_primitives():
    return [vm for vm in VMS if cl.cib_xpath("//primitive[@id='%s']" % vm)]


def test_ten_cluster_creates_then_removals_at_once():
    results = run_all([cl.vm_args(name, state="stopped") for name in VMS], module=cl.MODULE)
    assert_all_succeeded(results)
    assert all(r["changed"] and r["status"] == "Stopped" for r in results), results
    assert mine(cl.groups()) == sorted(VMS)
    assert my_cib_primitives() == VMS
    assert my_images(cl.images()) == sorted(
        ["system_%s" % vm for vm in VMS] + ["data_%s_1" % vm for vm in VMS])

    results = run_all([{"name": name, "state": "absent", "purge": True} for name in VMS],
                      module=cl.MODULE)
    assert_all_succeeded(results)
    assert all(r["changed"] and r["status"] == "Undefined" for r in results), results
    assert mine(cl.groups()) == []
    assert my_cib_primitives() == []
    assert my_images(cl.images()) == []


def test_ten_cluster_listings_while_vms_come_and_go():
    assert_all_succeeded(run_all([cl.vm_args(name, state="disabled") for name in VMS[:5]],
                                 module=cl.MODULE))
    removals = [{"name": name, "state": "absent", "purge": True} for name in VMS[:5]]
    results = run_all(removals + [{"command": "list_vms"}] * 5, module=cl.MODULE)
    assert_all_succeeded(results)
    assert mine(cl.groups()) == []


# ---- libvirt refusals as sentences -------------------------------------------------------

def my_fingerprint():
    """What lab.fingerprint() records, for this file's VMs only (other tests share the lab
    and change the rest meanwhile)."""
    domains = {}
    conn = lab.conn()
    try:
        for dom in conn.listAllDomains():
            if dom.name() in VMS:
                domains[dom.name()] = (dom.isActive(), dom.autostart(),
                                       dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE),
                                       sorted(s.getName() for s in dom.listAllSnapshots()))
    finally:
        conn.close()
    files = dict((f, os.stat(os.path.join(lab.POOL_DIR, f)).st_size) for f in my_pool_files())
    return {"domains": domains, "files": files}


@pytest.fixture()
def stopped_vm():
    result = lab.run_module(standalone_vm(VMS[0], "present"))
    assert result["failed"] is False, result.get("msg")
    yield VMS[0]
    assert lab.run_module({"name": VMS[0], "state": "absent"})["failed"] is False


@pytest.mark.parametrize("args,refused", [
    ({"state": "present", "autostart": True}, "virDomainSetAutostart"),
    ({"state": "absent"}, "virDomainUndefineFlags"),
], ids=["autostart", "remove"])
def test_a_libvirt_refusal_is_a_sentence_and_changes_nothing(stopped_vm, args, refused):
    before = my_fingerprint()
    result = lab.run_module(dict(args, name=stopped_vm, uri=READ_ONLY_URI))
    assert result["failed"] is True
    assert result["msg"] == ("Cannot make VM %s %s on %s: operation forbidden: read only "
                             "access prevents %s." % (stopped_vm, args["state"], READ_ONLY_URI,
                                                      refused)), result["msg"]
    assert "exception" not in result and "module_stderr" not in result
    assert my_fingerprint() == before


def test_a_read_through_the_read_only_socket_still_works(stopped_vm):
    result = lab.run_module({"name": stopped_vm, "command": "status", "uri": READ_ONLY_URI})
    assert result["failed"] is False and result["status"] == "Stopped"
