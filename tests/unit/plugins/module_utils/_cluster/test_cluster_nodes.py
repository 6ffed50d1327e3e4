"""Node maintenance: the refusals of a standby, the account of what moved, the standby
attribute written by crm_attribute and read back from an offline CIB, and the orchestration
over crm_mon views (faked: the real moves are tested on the lab)."""
import pytest
from lxml import etree

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_nodes as cn
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def node(online=True, standby=False, maintenance=False):
    return {"online": online, "standby": standby, "maintenance": maintenance,
            "usable": online and not standby and not maintenance, "type": "member",
            "resources_running": 0}


def view(vms=None, quorum=True, **nodes):
    nodes = nodes or {"hv1": node(), "hv2": node()}
    return {"local_node": "hv1", "nodes": nodes, "vms": vms or {}, "quorum": quorum,
            "usable_nodes": sorted(n for n, s in nodes.items() if s["usable"])}


RUNNING = {"vm1": ("Started", "hv2"), "vm2": ("Stopping", "hv2"), "vm3": ("Started", "hv1"),
           "vm4": ("Stopped", None)}


def test_vms_on_a_node_include_those_on_their_way_out():
    assert cn.vms_on(view(RUNNING), "hv2") == ["vm1", "vm2"]
    assert cn.vms_on(view(RUNNING), "hv3") == []


@pytest.mark.parametrize("the_view,message", [
    (view(RUNNING, hv1=node(), hv2=node(online=False)), "Node hv2 is not online"),
    (view(RUNNING, quorum=False), "has no quorum"),
    (view(RUNNING, hv1=node(), hv2=node(maintenance=True)),
     "Node hv2 is in maintenance: Pacemaker leaves its VMs (vm1, vm2) alone"),
    (view(RUNNING, hv1=node(standby=True), hv2=node()),
     "Node hv2 is the only node that can take VMs and runs vm1, vm2: they would have "
     "nowhere to go."),
])
def test_standby_refusals(the_view, message):
    assert message in cn.standby_refusal("hv2", the_view)


def test_standby_allowed():
    assert cn.standby_refusal("hv2", view(RUNNING)) is None
    # The last usable node without VMs may go to standby.
    assert cn.standby_refusal("hv2", view({}, hv1=node(standby=True), hv2=node())) is None
    with pytest.raises(VmError) as err:
        cn.known_node("hv9", view())
    assert err.value.msg == "hv9 is not a node of the cluster (nodes: hv1, hv2)."


def test_moves_tell_where_each_vm_went():
    after = view({"vm1": ("Started", "hv1"), "vm2": ("Stopped", None),
                  "vm3": ("Started", "hv2")})
    assert cn.moves({"vm1": "hv2", "vm2": "hv2", "vm3": "hv2"}, after,
                    {"vm1": True, "vm2": True}) == [
        {"name": "vm1", "from": "hv2", "to": "hv1", "live": True},
        {"name": "vm2", "from": "hv2", "to": None, "live": False}]


def test_standby_attribute_written_and_read_back(offline_cluster):
    cluster, _run = offline_cluster
    assert pcib.standby_settings(cluster.cib(), "hv2") == (False, False)
    cluster.set_standby("hv2")
    assert pcib.standby_settings(cluster.cib(), "hv2") == (True, False)
    assert pcib.standby_settings(cluster.cib(), "hv1") == (False, False)
    cluster.clear_standby("hv2")
    assert pcib.standby_settings(cluster.cib(), "hv2") == (False, False)


def test_pins_and_live_flags_read_from_the_cib(offline_cluster):
    cluster, _run = offline_cluster
    cluster.create(pcib.build_primitive("vm1", {}, {"allow-migrate": "true"}), "resources")
    cluster.create(pcib.build_primitive("vm2", {}, {"allow-migrate": "false"}), "resources")
    cluster.create(pcib.build_pin("vm2", "hv2"), "constraints")
    cib = cluster.cib()
    assert cn.allow_migrate(cib, ["vm1", "vm2", "gone"]) == {"vm1": True, "vm2": False,
                                                             "gone": False}
    assert cn.pinned_here(cib, ["vm1", "vm2"], "hv2") == ["vm2"]
    assert cn.pinned_here(cib, ["vm1", "vm2"], "hv1") == []


class FakeCluster(object):
    """Views in turn (the last one repeats), a CIB with hv2's standby as given."""

    def __init__(self, views, standby=False):
        self.views, self.calls = list(views), []
        self.standby = standby
        self.waits = self  # Cluster.waits: settle below

    def overview(self):
        return self.views.pop(0) if len(self.views) > 1 else self.views[0]

    def cib(self):
        value = '<nvpair id="n2-standby" name="standby" value="on"/>' if self.standby else ""
        return etree.fromstring(
            '<cib><configuration><nodes><node id="2" uname="hv2"><instance_attributes '
            'id="n2-ia">%s</instance_attributes></node></nodes><resources><primitive '
            'id="vm1"><meta_attributes id="m"><nvpair id="m-a" name="allow-migrate" '
            'value="true"/></meta_attributes></primitive></resources><constraints/>'
            '</configuration><status/></cib>' % value)

    def set_standby(self, name):
        self.calls.append(("set_standby", name))

    def settle(self, timeout):
        # The controller runs its transition to the end: the next view is the one after it.
        self.calls.append(("settle", timeout))
        return True

    def clear_standby(self, name, permanent, transient):
        self.calls.append(("clear_standby", name, permanent, transient))


def maintenance(cluster, check=False):
    warnings = []
    runner = cn.NodeMaintenance(lambda *a, **k: None, check, warnings.append)
    runner.cluster = cluster
    return runner, warnings


def test_standby_waits_for_the_vms_and_reports_the_moves(fake_clock):
    before = view({"vm1": ("Started", "hv2")})
    moving = view({"vm1": ("Starting", "hv2")})
    done = view({"vm1": ("Started", "hv1")}, hv1=node(), hv2=node(standby=True))
    cluster = FakeCluster([before, moving, done])
    runner, _warnings = maintenance(cluster)
    result = runner.run("hv2", "standby", True, 60)
    assert [c[0] for c in cluster.calls] == ["set_standby", "settle"]
    assert result["changed"] and result["node"]["standby"]
    assert result["moved"] == [{"name": "vm1", "from": "hv2", "to": "hv1", "live": True}]


def test_standby_returns_once_a_stopped_vm_is_started_elsewhere(fake_clock):
    """A VM that cannot migrate live is stopped on the node, then started elsewhere by the same
    transition: the node is empty in between, and the task waits for the start."""
    before = view({"vm1": ("Started", "hv2")})
    in_between = view({"vm1": ("Stopped", None)}, hv1=node(), hv2=node(standby=True))
    done = view({"vm1": ("Started", "hv1")}, hv1=node(), hv2=node(standby=True))
    cluster = FakeCluster([before, in_between, done])
    result = maintenance(cluster)[0].run("hv2", "standby", True, 60)
    assert [round(c[1]) for c in cluster.calls if c[0] == "settle"] == [60]
    assert result["moved"] == [{"name": "vm1", "from": "hv2", "to": "hv1", "live": True}]


def test_standby_again_changes_nothing():
    done = view({"vm1": ("Started", "hv1")}, hv1=node(), hv2=node(standby=True))
    cluster = FakeCluster([done], standby=True)
    result = maintenance(cluster)[0].run("hv2", "standby", True, 60)
    assert [c for c in cluster.calls if c[0] != "settle"] == []
    assert result["changed"] is False and result["moved"] == []


def test_standby_timeout_names_the_vms_left(fake_clock):
    stuck = view({"vm1": ("Started", "hv2")})
    start = fake_clock.now
    with pytest.raises(VmError) as err:
        maintenance(FakeCluster([stuck]))[0].run("hv2", "standby", True, 60)
    assert 60 <= fake_clock.now - start < 60 + 2 * cn.POLL_SECONDS
    assert err.value.msg.startswith("Node hv2 is in standby, but VMs vm1 still run on it")
    assert "the node stays in standby" in err.value.msg


def test_check_mode_and_refusals_change_nothing():
    cluster = FakeCluster([view({"vm1": ("Started", "hv2")})])
    result = maintenance(cluster, check=True)[0].run("hv2", "standby", True, 60)
    assert result["changed"] and cluster.calls == []
    lonely = view({"vm1": ("Started", "hv2")}, hv1=node(online=False), hv2=node())
    cluster = FakeCluster([lonely])
    with pytest.raises(VmError):
        maintenance(cluster)[0].run("hv2", "standby", True, 60)
    assert cluster.calls == []


def test_online_clears_standby_and_waits(fake_clock):
    standby = view({}, hv1=node(), hv2=node(standby=True))
    cluster = FakeCluster([standby, standby, view({})], standby=True)
    result = maintenance(cluster)[0].run("hv2", "online", True, 60)
    assert cluster.calls == [("clear_standby", "hv2", True, False)]
    assert result["changed"] and not result["node"]["standby"]
    cluster = FakeCluster([view({})])
    result = maintenance(cluster)[0].run("hv2", "online", True, 60)
    assert cluster.calls == [] and result["changed"] is False
