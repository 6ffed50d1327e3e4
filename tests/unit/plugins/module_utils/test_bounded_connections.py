"""Every connection is bounded and a service that does not answer is named in one sentence:
Pacemaker's XML error replies read as text, its exit codes for "not running" and "timed
out"; a libvirtd that accepts the connection and never answers (a real libvirt client
against a socket that only listens); the bound checked before any I/O."""
import os
import socket
import threading

import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils import libvirt_host
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

NOT_RUNNING = """<pacemaker-result api-version="2.25" request="crm_mon --output-as=xml">
  <status code="102" message="Not connected">
    <errors>
      <error>crm_mon: Error: cluster is not available on this node</error>
    </errors>
  </status>
</pacemaker-result>"""


def replying(rc, out="", err=""):
    calls = []

    def run(args, **_kwargs):
        calls.append(list(args))
        return rc, out, err
    return run, calls


def test_pacemaker_not_running_is_a_sentence_not_its_xml():
    run, _calls = replying(102, NOT_RUNNING)
    with pytest.raises(VmError) as err:
        pcmk.Cluster(run).status()
    assert err.value.msg == (
        "Pacemaker does not answer on node %s (crm_mon: Error: cluster is not available on "
        "this node, for the status query): start Corosync and Pacemaker there, or run the task "
        "on another cluster node." % os.uname()[1])
    assert "<" not in err.value.msg


def test_a_pacemaker_command_is_bounded_and_its_timeout_named():
    run, calls = replying(124)
    with pytest.raises(VmError) as err:
        pcmk.Cluster(run, timeout=7).cib()
    assert calls == [["timeout", "--kill-after=5", "7", "cibadmin", "--query"]]
    assert err.value.msg.startswith(
        "Pacemaker did not answer the CIB query within 7 seconds on node %s" % os.uname()[1])


def test_other_pacemaker_refusals_keep_their_reason():
    run, _calls = replying(1, "", "Error performing operation: No such device or address\n")
    with pytest.raises(VmError) as err:
        pcmk.Cluster(run).cib()
    assert err.value.msg == ("Pacemaker refused the CIB query: Error performing operation: No "
                             "such device or address.")


def test_failure_detail_falls_back_to_the_message_and_to_text():
    xml = '<pacemaker-result><status code="105" message="No such object"/></pacemaker-result>'
    assert pcib.failure_detail(xml, "") == "No such object"
    assert pcib.failure_detail("", " plain error \n") == "plain error"
    assert pcib.failure_detail("<pacemaker-result", "") == "<pacemaker-result"


@pytest.fixture()
def silent_libvirtd(tmp_path):
    """A unix socket that accepts connections and never answers: a hung libvirtd."""
    path = str(tmp_path / "libvirt-sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    accepted = []
    done = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not done.is_set():
            try:
                accepted.append(server.accept()[0])
            except socket.timeout:
                continue
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield "qemu+unix:///system?socket=%s" % path, accepted
    done.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_libvirtd_that_never_answers_fails_with_a_sentence(silent_libvirtd):
    uri, accepted = silent_libvirtd
    hv = libvirt_host.Hypervisor(uri, None, timeout=1)
    with pytest.raises(VmError) as err:
        hv.conn
    assert accepted, "the client must really have connected"
    assert err.value.msg == (
        "libvirt at %s did not answer within 1 seconds (from node %s): check that libvirtd "
        "runs there and answers, then run the task again." % (uri, os.uname()[1]))


def test_a_libvirt_that_refuses_at_once_says_why(tmp_path):
    uri = "qemu+unix:///system?socket=%s" % (tmp_path / "nothing-here")
    with pytest.raises(VmError) as err:
        libvirt_host.Hypervisor(uri, None, timeout=30).conn
    assert err.value.msg.startswith("Cannot connect to libvirt at %s: " % uri)
    assert err.value.msg.endswith("Is libvirtd running on the hypervisor?")


@pytest.mark.parametrize("seconds", [0, -1, 601, 10 ** 9])
def test_connect_timeout_is_bounded(seconds):
    with pytest.raises(VmError) as err:
        spec.validate_connect_timeout(seconds)
    assert err.value.msg == ("connect_timeout must be at least 1 and at most 600 (a whole "
                             "number), not %r." % seconds)


def test_connect_timeout_in_range_is_kept():
    assert [spec.validate_connect_timeout(s) for s in (1, 30, 600)] == [1, 30, 600]


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e400, "inf", "1e400", "nan",
                                   2.5, "2.5", True, "", "ten", [], None, 86401, "-1", -1])
def test_whole_numbers_refuse_what_ansible_int_would_crash_on_or_accept(value):
    with pytest.raises(VmError) as err:
        spec.whole_number(value, "stop_timeout", 0, 86400)
    assert err.value.msg == ("stop_timeout must be zero or more and at most 86400 (a whole "
                             "number), not %r." % (value,))


def test_whole_numbers_as_ints_or_digits():
    assert [spec.whole_number(v, "timeout", 1, 600) for v in (1, "30", " 600 ")] == [1, 30, 600]


@pytest.mark.parametrize("value", [float("inf"), 1e400, "inf", "nan", 2.5, True, 10 ** 15, "x"])
def test_numbers_that_are_not_whole_numbers_are_a_sentence(value):
    params = {"memory": value, "purge_date": {"posix": value}}
    with pytest.raises(VmError) as err:
        spec.normalize_numbers(params, ("memory",))
    assert err.value.msg == "memory must be a whole number, not %r." % (value,)
    with pytest.raises(VmError) as err:
        spec.normalize_purge_numbers(params)
    assert err.value.msg == "purge_date.posix must be a whole number, not %r." % (value,)


def test_numbers_become_ints_and_none_stays_none():
    params = {"memory": "512", "vcpus": None, "purge_number": 3, "purge_date": {"posix": "17"}}
    spec.normalize_numbers(params, ("memory", "vcpus"))
    spec.normalize_purge_numbers(params)
    assert params == {"memory": 512, "vcpus": None, "purge_number": 3,
                      "purge_date": {"posix": 17}}
