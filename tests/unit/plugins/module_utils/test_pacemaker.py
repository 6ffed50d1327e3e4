"""CIB XML built by the Pacemaker layer, checked by Pacemaker's own tools on an offline CIB
(CIB_file): cibadmin accepts it and crm_verify finds the configuration valid."""
import pytest
from lxml import etree

from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_waits
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def verify(run):
    rc, out, err = run(["crm_verify", "--live-check", "--verbose"])
    assert rc == 0, out + err


def test_primitive_with_constraints_is_valid(offline_cluster):
    cluster, run = offline_cluster
    prim = pcib.build_primitive(
        "vm1", {"config": "/var/lib/gridvirt/domains/vm1.xml", "hypervisor": "qemu:///system"},
        {"is-managed": "false", "target-role": "Started", "allow-migrate": "true"},
        utilization={"cpu": 2}, op_timeouts={"stop": 45})
    cluster.create(prim, "resources")
    cluster.create(pcib.build_primitive("vm2", {"config": "/x/vm2.xml"}, {}), "resources")
    cluster.create(pcib.build_location("vm1", "hv1", 100, "prefer"), "constraints")
    cluster.create(pcib.build_location("vm1", "hv2", "-INFINITY", "ban"), "constraints")
    cluster.create(pcib.build_colocation("vm1", "vm2", "INFINITY"), "constraints")
    verify(run)
    cib = cluster.cib()
    stored = pcib.primitive(cib, "vm1")
    assert stored.get("provider") == "gridvirt" and stored.get("type") == "VirtualDomain"
    assert pcib.primitive_timeouts(stored)["stop"] == 45
    assert pcib.primitive_timeouts(stored)["start"] == 120
    ids = sorted(c.get("id") for c in pcib.constraints_of(cib, "vm1"))
    assert ids == ["colocation-vm1-vm2-strong", "location-vm1-ban-hv2",
                   "location-vm1-prefer-hv1"]
    # Ids are deterministic: building them again names the same constraints.
    assert pcib.build_location("vm1", "hv1", 100, "prefer").get("id") in ids


def test_replace_and_delete(offline_cluster):
    cluster, run = offline_cluster
    cluster.create(pcib.build_primitive("vm1", {"config": "/a.xml"}, {}), "resources")
    cluster.replace(pcib.build_primitive("vm1", {"config": "/b.xml"}, {"priority": 5}),
                    "resources")
    stored = pcib.primitive(cluster.cib(), "vm1")
    assert stored.find("instance_attributes/nvpair[@name='config']").get("value") == "/b.xml"
    cluster.delete("primitive", "vm1")
    assert pcib.primitive(cluster.cib(), "vm1") is None
    verify(run)


def test_refused_change_is_a_sentence(offline_cluster):
    cluster, _run = offline_cluster
    cluster.create(pcib.build_primitive("vm1", {"config": "/a.xml"}, {}), "resources")
    with pytest.raises(VmError) as err:
        cluster.create(pcib.build_primitive("vm1", {"config": "/a.xml"}, {}), "resources")
    assert err.value.msg.startswith("Pacemaker refused creating primitive vm1")


@pytest.mark.parametrize("text,seconds", [("20s", 20), ("2min", 120), ("1m", 60),
                                          ("500ms", 0.5), ("90", 90), ("1h", 3600)])
def test_timeouts(text, seconds):
    assert pcib.duration_seconds(text) == seconds


def test_status_mapping():
    def res(**attrs):
        el = etree.Element("resource", **attrs)
        etree.SubElement(el, "node", name="hv1")
        return el
    assert pcib.resource_status(res(role="Started", active="true")) == ("Started", "hv1")
    assert pcib.resource_status(res(role="Stopped", active="false")) == ("Stopped", "hv1")
    assert pcib.resource_status(res(role="Started", failed="true")) == ("Failed", "hv1")
    assert pcib.resource_status(res(role="Starting")) == ("Starting", "hv1")


def test_failures_are_attributed_to_their_resource():
    root = etree.fromstring(
        '<pacemaker-result><failures>'
        '<failure op_key="vm_a-1_start_0" node="hv1" exitreason="no xml" task="start"/>'
        '<failure op_key="vm2_monitor_10000" node="hv2" exitstatus="not running" '
        'task="monitor"/>'
        '<failure op_key="vm_b_migrate_to_0" node="hv1" exitreason="ssh" task="migrate_to"/>'
        '</failures></pacemaker-result>')
    assert pcib.failures_by_resource(root) == {
        "vm_a-1": ["start on hv1: no xml"], "vm2": ["monitor on hv2: not running"],
        "vm_b": ["migrate_to on hv1: ssh"]}


class FakeRun(object):
    """crm_mon's XML (what Pacemaker 2.1 prints) and crm_node's name, for node_info."""

    def __init__(self, nodes, maintenance_mode="false"):
        self.status = (
            '<pacemaker-result><summary><current_dc present="true" with_quorum="true"/>'
            '<cluster_options maintenance-mode="%s"/></summary><nodes>%s</nodes>'
            '</pacemaker-result>' % (maintenance_mode, "".join(
                '<node name="%s" online="%s" standby="%s" maintenance="%s" type="member" '
                'resources_running="%d"/>' % n for n in nodes)))

    def __call__(self, args, **_kwargs):
        if args[0] == "crm_node":
            return 0, "hv1\n", ""
        return 0, self.status, ""


def test_node_info_tells_which_nodes_can_take_vms():
    run = FakeRun([("hv1", "true", "false", "false", 3), ("hv2", "true", "true", "false", 0),
                   ("hv3", "false", "false", "false", 0), ("hv4", "true", "false", "true", 1)])
    info = pcmk.Cluster(run).node_info()
    assert info["local_node"] == "hv1" and info["quorum"] is True
    assert info["usable_nodes"] == ["hv1"]
    assert info["nodes"]["hv2"]["standby"] and not info["nodes"]["hv2"]["usable"]
    assert not info["nodes"]["hv3"]["online"]
    assert info["nodes"]["hv4"]["maintenance"] and info["nodes"]["hv1"]["resources_running"] == 3


def test_a_node_on_its_way_out_or_failed_into_standby_cannot_take_vms():
    run = FakeRun([("hv1", "true", "false", "false", 0)])
    run.status = run.status.replace('type="member"', 'type="member" shutdown="true"')
    assert pcmk.Cluster(run).node_info()["usable_nodes"] == []
    run = FakeRun([("hv1", "true", "false", "false", 0)])
    run.status = run.status.replace('type="member"', 'type="member" standby_onfail="true"')
    info = pcmk.Cluster(run).node_info()
    assert info["nodes"]["hv1"]["standby"] and info["usable_nodes"] == []


def test_cluster_maintenance_mode_puts_every_node_in_maintenance():
    run = FakeRun([("hv1", "true", "false", "false", 0)], maintenance_mode="true")
    info = pcmk.Cluster(run).node_info()
    assert info["nodes"]["hv1"]["maintenance"] and info["usable_nodes"] == []


class BusyCluster(object):
    """crm_mon shows the VM Started (its stop queued); the DC is busy for ``busy_polls``
    controller queries, then idle."""

    STATUS = ('<pacemaker-result><summary><current_dc name="hv1"/></summary>'
              '<resources><resource id="vm1" role="Started" active="true">'
              '<node name="hv1"/></resource></resources></pacemaker-result>')

    def __init__(self, busy_polls):
        self.busy_polls = busy_polls
        self.queries = 0

    def __call__(self, args, **_kwargs):
        if args[0] == "crmadmin":
            self.queries += 1
            state = "S_TRANSITION_ENGINE" if self.queries <= self.busy_polls else "S_IDLE"
            return 0, ('<pacemaker-result><crmd node_name="hv1" state="%s"/>'
                       '</pacemaker-result>' % state), ""
        return 0, self.STATUS, ""


@pytest.mark.parametrize("busy_polls,waits_past_timeout", [(0, False), (3, True)])
def test_wait_goes_on_while_the_controller_is_busy(fake_clock, busy_polls, waits_past_timeout):
    run = BusyCluster(busy_polls)
    status = pcmk.Cluster(run).waits.wait_for("vm1", ("Stopped",), timeout=60)
    assert status == ("Started", "hv1")  # never stopped: the wait ends, bounded
    assert (run.queries > 1) == waits_past_timeout
    assert run.queries == busy_polls + 1


def test_wait_is_bounded_even_if_the_controller_stays_busy(fake_clock):
    """A controller that never settles does not hold the module forever: the wait returns
    (BUSY_FACTOR times the timeout) with the status it saw."""
    run = BusyCluster(busy_polls=10 ** 6)
    start = fake_clock.now
    assert pcmk.Cluster(run).waits.wait_for("vm1", ("Stopped",), timeout=60) == ("Started", "hv1")
    waited = fake_clock.now - start
    assert 60 * pacemaker_waits.BUSY_FACTOR <= waited < 60 * pacemaker_waits.BUSY_FACTOR + 2 * pacemaker_waits.POLL_SECONDS
    assert run.queries >= 1


class RestartingCluster(object):
    """A restart in progress: crm_mon shows the VM Stopped while the controller is busy (its
    start comes next), then Started and the controller idle; then, stopped for good."""

    def __init__(self):
        self.monitors = 0

    def __call__(self, args, **_kwargs):
        if args[0] == "crmadmin":
            state = "S_TRANSITION_ENGINE" if self.monitors <= 2 else "S_IDLE"
            return 0, ('<pacemaker-result><crmd node_name="hv1" state="%s"/>'
                       '</pacemaker-result>' % state), ""
        self.monitors += 1
        role = "Started" if self.monitors == 3 else "Stopped"
        return 0, ('<pacemaker-result><summary><current_dc name="hv1"/></summary>'
                   '<resources><resource id="vm1" role="%s" active="%s"><node name="hv1"/>'
                   '</resource></resources></pacemaker-result>'
                   % (role, "true" if role == "Started" else "false")), ""


def test_a_stop_seen_mid_transition_is_not_taken_for_a_stopped_vm(fake_clock):
    """Stopped while the controller is still working (the stop of a restart) could be
    followed by a start: a removal that went on then would find the disks in use."""
    run = RestartingCluster()
    assert pcmk.Cluster(run).waits.wait_for("vm1", ("Stopped",), timeout=60) == ("Stopped", None)
    assert run.monitors == 4  # not the first Stopped (busy), not Started: the last one


def counting(run):
    """``run`` that also records the argv of each command."""
    calls = []

    def counted(args, **kwargs):
        calls.append(list(args))
        return run(args, **kwargs)
    return counted, calls


def test_the_cib_is_read_once_until_the_run_changes_it(offline_cluster):
    _cluster, run = offline_cluster
    counted, calls = counting(run)
    cluster = pcmk.Cluster(counted)
    cluster.cib()
    assert pcib.primitive(cluster.cib(), "vm1") is None
    assert [c[:2] for c in calls] == [["cibadmin", "--query"]]
    cluster.create(pcib.build_primitive("vm1", {"config": "/x/vm1.xml"}, {}), "resources")
    # What was read before the change is stale: the next read asks again, and sees it.
    assert pcib.primitive(cluster.cib(), "vm1") is not None
    assert [c[:2] for c in calls].count(["cibadmin", "--query"]) == 2


def test_a_failed_command_is_a_sentence_with_pacemakers_words(offline_cluster):
    cluster, _run = offline_cluster
    with pytest.raises(VmError) as err:
        cluster.set_meta("no-such-vm", "target-role", "Stopped")
    assert err.value.msg.startswith("Pacemaker refused setting target-role of no-such-vm: ")
    # Pacemaker's own words, then the full stop.
    assert "Resource 'no-such-vm' not found" in err.value.msg and err.value.msg.endswith(".")


class GivenUpCluster(BusyCluster):
    """A start that failed wherever the VM could run: crm_mon shows it Stopped; the
    controller is busy (recovering, trying another node) for ``busy_polls`` queries."""

    STATUS = ('<pacemaker-result><summary><current_dc name="hv1"/></summary>'
              '<resources><resource id="vm1" role="Stopped" active="false"/>'
              '</resources></pacemaker-result>')


@pytest.mark.parametrize("busy_polls", [0, 100])
def test_a_wait_for_a_start_pacemaker_gave_up_on_ends_once_the_controller_is_idle(
        fake_clock, busy_polls):
    run = GivenUpCluster(busy_polls)
    start = fake_clock.now
    assert pcmk.Cluster(run).waits.wait_for("vm1", ("Started",), timeout=120) == ("Stopped", None)
    waited = fake_clock.now - start
    settle = pacemaker_waits.SETTLE_SECONDS
    # Not before SETTLE_SECONDS, then not while the controller works (one query a poll),
    # long before the timeout.
    expected = settle + busy_polls * pacemaker_waits.POLL_SECONDS
    assert expected <= waited < expected + 1 < 120
