"""A stack that is down: with Ceph, Pacemaker or libvirtd stopped, a read and a change each
fail within the task's connect_timeout with one sentence naming the service and the node,
change nothing, and the next run after the service is back converges. The services are
stopped and started again by the lab's own script."""
import os
import signal
import subprocess
import time

import pytest

import cluster_lab as cl
import lab

PREFIX = "isd"
CLUSTER_VM, STANDALONE_VM = PREFIX + "cl1", PREFIX + "sa1"
BOUND = 10
# The harness's own limit: a task still running by then hangs (it must end after BOUND).
HARNESS_SECONDS = 180
NODE = os.uname()[1]
LIBVIRTD_PID = os.path.join(lab.REPO, ".lab", "nodes", "local", "run", "libvirtd.pid")

clean = cl.cleanup_fixture(PREFIX)


@pytest.fixture(scope="module")
def fingerprints():
    """Everything the module calls could change, before the first service is stopped."""
    return {"cluster": cl.fingerprint(), "standalone": lab.fingerprint()}


def lab_script(*args):
    proc = subprocess.run([os.path.join(lab.REPO, "lab", "lab.sh")] + list(args),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.fixture()
def stopped(request):
    """Stops a lab component for the test and starts it again after (also on failure)."""
    component = request.param
    if component == "libvirtd":
        stop_libvirtd()
        yield component
        lab_script("up", "libvirt")
    else:
        lab_script("down", component)
        yield component
        lab_script("up", component)


def stop_libvirtd():
    """libvirtd alone (its guests and virtlogd keep running), by the PID the lab recorded."""
    with open(LIBVIRTD_PID) as handle:
        pid = int(handle.read().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while os.path.exists("/proc/%d" % pid):
        assert time.monotonic() < deadline, "libvirtd (pid %d) did not stop" % pid
        time.sleep(0.2)


def cluster(args):
    return cl.run_cluster(dict(args, connect_timeout=BOUND), timeout=HARNESS_SECONDS)


def standalone(args):
    return lab.run_module(dict(args, connect_timeout=BOUND), timeout=HARNESS_SECONDS)


def cluster_create():
    return dict(cl.vm_args(CLUSTER_VM), state="present")


def standalone_create():
    return {"name": STANDALONE_VM, "state": "present", "xml": lab.guest_xml(STANDALONE_VM),
            "system_image": lab.GUEST_IMAGE}


def assert_sentence(result, start):
    assert result["failed"] is True, result
    assert result["msg"].startswith(start), result["msg"]
    assert "Traceback" not in result["msg"] and "exception" not in result, result
    assert "<" not in result["msg"], "a sentence, not the service's XML: " + result["msg"]


def converges(run, args):
    first = run(args)
    assert not first["failed"] and first["changed"], first.get("msg")
    again = run(args)
    assert not again["failed"] and again["changed"] is False, again.get("changes")


@pytest.mark.parametrize("stopped", ["ceph"], indirect=True)
def test_ceph_down(fingerprints, stopped):
    sentence = ("Ceph did not answer within %d seconds (no monitor answered; client.libvirt "
                "with /etc/ceph/ceph.conf, on node %s)" % (BOUND, NODE))
    assert_sentence(cluster({"command": "list_vms"}), sentence)
    assert_sentence(cluster(cluster_create()), sentence)


@pytest.mark.parametrize("stopped", ["pacemaker"], indirect=True)
def test_pacemaker_down(fingerprints, stopped):
    sentence = "Pacemaker does not answer on node %s (" % NODE
    assert_sentence(cluster({"command": "list_vms"}), sentence)
    assert_sentence(cluster(cluster_create()), sentence)


@pytest.mark.parametrize("stopped", ["libvirtd"], indirect=True)
def test_libvirtd_down(fingerprints, stopped):
    sentence = "Cannot connect to libvirt at qemu:///system: "
    assert_sentence(standalone({"name": STANDALONE_VM, "command": "status"}), sentence)
    assert_sentence(standalone(standalone_create()), sentence)


def test_nothing_changed_and_the_next_runs_converge(fingerprints):
    assert cl.fingerprint() == fingerprints["cluster"]
    assert lab.fingerprint() == fingerprints["standalone"]
    converges(cluster, cluster_create())
    converges(standalone, standalone_create())
