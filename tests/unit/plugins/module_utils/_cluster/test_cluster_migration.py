"""Moving a running VM to a named node: the refusals (pure), the wait bound, the sentence of
a move Pacemaker did not carry out, and the order of the move (refusals change nothing,
check mode runs nothing, the temporary constraint is always cleared). The Pacemaker layer is
replaced by a recorder only for these decisions; the move itself is tested on the lab."""
import copy

import pytest
from lxml import etree

from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_waits
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_migration as mig
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.request import ClusterRequest
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.resource import Resource
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.view import ClusterView
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.plan import Plan
from ansible_collections.gridvirt.kvm.plugins.modules import cluster_vm


def node(online=True, standby=False, maintenance=False, usable=None):
    if usable is None:
        usable = online and not standby and not maintenance
    return {"online": online, "standby": standby, "maintenance": maintenance,
            "usable": usable, "type": "member", "resources_running": 0}


def info(quorum=True, **nodes):
    nodes = nodes or {"hv1": node(), "hv2": node(), "hv3": node()}
    return {"local_node": "hv1", "quorum": quorum, "nodes": nodes,
            "usable_nodes": sorted(n for n, s in nodes.items() if s["usable"])}


@pytest.mark.parametrize("state,where,role,message", [
    ("Undefined", None, None, "VM vm1 does not exist."),
    ("Disabled", None, None, "is disabled (not a cluster resource)"),
    ("Stopped", None, "Stopped", "is being stopped (its target-role is Stopped)"),
    ("Stopping", "hv1", "Stopped", "is being stopped"),
    ("Stopped", None, "Started", "is not running (it is Stopped)"),
    ("Failed", "hv1", "Started", "is not running (it is Failed)"),
    ("Starting", "hv1", "Started", "is not running (it is Starting)"),
])
def test_only_a_running_vm_moves(state, where, role, message):
    with pytest.raises(VmError) as err:
        mig.check_running("vm1", state, where, role)
    assert message in err.value.msg
    mig.check_running("vm1", "Started", "hv1", "Started")
    mig.check_running("vm1", "Started", "hv1", None)


@pytest.mark.parametrize("nodes,quorum,message", [
    ({"hv1": node(), "hv2": node()}, True,
     "VM vm1 cannot move to hv3: hv3 is not a node of the cluster (nodes: hv1, hv2)."),
    ({"hv3": node(online=False)}, True, "VM vm1 cannot move to hv3: node hv3 is offline."),
    ({"hv3": node(standby=True)}, True, "node hv3 is in standby."),
    ({"hv3": node(maintenance=True)}, True, "node hv3 is in maintenance."),
    ({"hv3": node(usable=False)}, True, "(unclean, pending or shutting down)"),
    ({"hv3": node()}, False, "has no quorum"),
])
def test_a_node_that_cannot_take_the_vm_is_refused(nodes, quorum, message):
    with pytest.raises(VmError) as err:
        mig.check_target("vm1", "hv3", info(quorum, **nodes), {})
    assert message in err.value.msg


def test_placement_of_the_vm_itself_refuses_or_allows():
    with pytest.raises(VmError) as err:
        mig.check_target("vm1", "hv2", info(), {ci.KEY_PINNED: "hv1"})
    assert err.value.msg == ("VM vm1 is pinned to node hv1 and cannot run on hv2; change its "
                             "pinned_host to move it.")
    with pytest.raises(VmError) as err:
        mig.check_target("vm1", "hv2", info(), {ci.KEY_PREFERRED: "hv1"})
    assert "would move back there as soon as the move to hv2 is over" in err.value.msg
    assert "change its preferred_host to hv2" in err.value.msg
    mig.check_target("vm1", "hv2", info(), {ci.KEY_PREFERRED: "hv2"})
    mig.check_target("vm1", "hv2", info(), {ci.KEY_PINNED: "hv2"})
    mig.check_target("vm1", "hv2", info(), {})


def test_wait_bound_is_migrate_to_or_stop_plus_start():
    assert mig.move_timeout(dict(pcib.DEFAULT_OPS)) == 120 + 120
    longer_stop = dict(pcib.DEFAULT_OPS, stop=300)
    assert mig.move_timeout(longer_stop) == 300 + 120


def test_a_move_not_carried_out_names_the_vms_constraints_not_the_temporary_one():
    constraints = [etree.Element("rsc_colocation", id="colocation-vm2-vm1-strong"),
                   etree.Element("rsc_location", id="cli-prefer-vm1"),
                   etree.Element("rsc_colocation", id="gv-vm1-colocation-abc")]
    text = mig.not_placed("vm1", "hv2", "Started", "hv1", constraints, [])
    assert text == ("VM vm1 was not moved to hv2: Pacemaker keeps it on hv1; constraints "
                    "involving it: colocation-vm2-vm1-strong, gv-vm1-colocation-abc.")
    text = mig.not_placed("vm1", "hv2", "Stopped", None, [], ["start on hv2: no xml"])
    assert text == ("VM vm1 was not moved to hv2: Pacemaker keeps it stopped; constraints "
                    "involving it: none (failures: start on hv2: no xml).")


@pytest.mark.parametrize("params,message", [
    ({"command": "migrate"}, "node is required when command is migrate."),
    ({"command": "start", "node": "hv2"}, "node is only used with command migrate"),
    ({"state": "stopped", "node": "hv2"}, "node is only used with command migrate"),
    ({"state": "present", "node": "hv2"}, "node is only used with command migrate"),
    ({"state": "running", "node": ""}, "node must name a cluster node."),
])
def test_node_goes_with_migrate_or_running_only(params, message):
    # As Ansible passes them: every option, with its default when not given.
    full = dict((k, v.get("default")) for k, v in cluster_vm.argument_spec().items())
    full.update(name="vm1", pool="rbd", secret_uuid=spec.DEFAULT_SECRET_UUID,
                purge_date=None)
    full.update(params)
    with pytest.raises(VmError) as err:
        ClusterRequest(full)
    assert message in err.value.msg
    for fine in ({"command": "migrate", "node": "hv2"}, {"state": "started", "node": "hv2"},
                 {"state": "running", "node": "hv2"}):
        full.update(dict(command=None, state=None, node=None), **fine)
        assert ClusterRequest(full).node == "hv2"


# ---- the order of the move, with the Pacemaker layer recorded -----------------------------

class FakeCluster(object):
    """Records what the move asks of Pacemaker; ``lands_on``: where the wait finds the VM."""

    def __init__(self, where="hv1", lands_on="hv2", live=True, wait_error=None):
        self.where, self.lands_on, self.wait_error = where, lands_on, wait_error
        self.calls = []
        self.waits = self
        meta = {"target-role": "Started", "allow-migrate": "true" if live else "false"}
        self.prim = pcib.build_primitive("vm1", {}, meta)

    def cib(self):
        root = etree.fromstring(
            "<cib><configuration><resources/><constraints><rsc_colocation "
            "id='colocation-vm1-db-strong' rsc='vm1' with-rsc='db' score='INFINITY'/>"
            "</constraints></configuration></cib>")
        root.find("configuration/resources").append(copy.deepcopy(self.prim))
        return root

    def node_info(self):
        return info()

    def move(self, vm, target):
        self.calls.append(("move", vm, target))

    def wait_on(self, vm, target, timeout):
        self.calls.append(("wait_on", vm, target, timeout))
        if self.wait_error:
            raise self.wait_error
        self.where = self.lands_on
        return "Started", self.lands_on

    def clear(self, vm):
        self.calls.append(("clear", vm))

    def settle(self, timeout):
        self.calls.append(("settle",))
        return True

    def status(self):
        return {"failures": {}}


class Placed(Resource):
    """The VM's resource, where the fake cluster has it."""

    def __init__(self, cluster, state):
        super(Placed, self).__init__(cluster, None, {})
        self.state = state

    def status_of(self, vm):
        return (self.state, self.cluster.where)


class Context(object):
    def __init__(self, cluster, state):
        self.cluster, self.plan = cluster, Plan()
        self.resource = Placed(cluster, state)


class Mover(object):
    """plan_move on a view of the fake cluster's VM, applied unless in check mode."""

    def __init__(self, cluster, metadata=None, check=False, state="Started"):
        self.cluster, self.metadata, self.check, self.state = cluster, metadata or {}, check, state
        self.result, self.changes = {}, []

    def move(self, vm, target, start_predicted=False):
        ctx = Context(self.cluster, self.state)
        view = ClusterView(vm)
        view.exists, view.intent, view.primitive = True, self.metadata, self.cluster.prim
        view.status, view.node = self.state, self.cluster.where
        if start_predicted and self.state != "Started":
            view.status, view.node, view.starting = "Started", None, True
        mig.plan_move(ctx, view, target)
        if not self.check:
            ctx.plan.apply()
        self.result, self.changes = ctx.plan.values, ctx.plan.changes
        return bool(self.changes)


def test_a_move_asks_waits_and_always_clears():
    cluster = FakeCluster()
    mover = Mover(cluster)
    assert mover.move("vm1", "hv2") is True
    assert [c[0] for c in cluster.calls] == ["move", "wait_on", "clear", "settle"]
    assert cluster.calls[1][3] == 240  # migrate_to 120 + start 120
    assert mover.result == {"previous_node": "hv1", "migrated_live": True}
    assert mover.changes == ["moved VM vm1 from hv1 to hv2 (live)"]


def test_a_failed_wait_still_clears_the_temporary_constraint():
    cluster = FakeCluster(wait_error=VmError("Pacemaker refused the status query: gone."))
    with pytest.raises(VmError):
        Mover(cluster).move("vm1", "hv2")
    assert [c[0] for c in cluster.calls] == ["move", "wait_on", "clear"]


def test_a_vm_pacemaker_keeps_elsewhere_fails_after_the_clear():
    cluster = FakeCluster(lands_on="hv1", live=False)
    with pytest.raises(VmError) as err:
        Mover(cluster).move("vm1", "hv2")
    assert [c[0] for c in cluster.calls] == ["move", "wait_on", "clear"]
    assert err.value.msg.startswith("VM vm1 was not moved to hv2: Pacemaker keeps it on hv1")
    assert "colocation-vm1-db-strong" in err.value.msg


@pytest.mark.parametrize("where,check,metadata,state", [
    ("hv2", False, {}, "Started"),                   # already there
    ("hv1", True, {}, "Started"),                    # check mode
    ("hv1", False, {ci.KEY_PREFERRED: "hv1"}, "Started"),  # refused
    ("hv1", False, {}, "Stopped"),                   # refused
])
def test_no_move_is_asked_when_there_refused_or_in_check_mode(where, check, metadata, state):
    cluster = FakeCluster(where=where)
    mover = Mover(cluster, metadata, check=check, state=state)
    try:
        changed = mover.move("vm1", "hv2")
    except VmError:
        changed = None
    assert cluster.calls == []
    assert changed is {"hv2": False}.get(where, True if check else None)


def test_check_mode_predicts_the_move_of_a_vm_it_would_start():
    cluster = FakeCluster(where=None)
    mover = Mover(cluster, check=True, state="Stopped")
    assert mover.move("vm1", "hv2", start_predicted=True) is True
    assert cluster.calls == [] and mover.changes == ["moved VM vm1 to hv2 (live)"]


class SettlingRun(object):
    """crm_mon shows vm1 Started on hv1 throughout; the controller is idle."""

    def __init__(self):
        self.crm_mon = 0

    def __call__(self, args, **_kwargs):
        if args[0] == "crmadmin":
            return 0, '<pacemaker-result><crmd state="S_IDLE"/></pacemaker-result>', ""
        self.crm_mon += 1
        return 0, ('<pacemaker-result><summary><current_dc name="hv1"/></summary>'
                   '<resources><resource id="vm1" role="Started" active="true" '
                   'resource_agent="ocf:gridvirt:VirtualDomain"><node name="hv1"/>'
                   '</resource></resources></pacemaker-result>'), ""


def test_the_wait_for_a_node_ends_once_pacemaker_settled_elsewhere(fake_clock):
    run = SettlingRun()
    start = fake_clock.now
    assert pcmk.Cluster(run).waits.wait_on("vm1", "hv2", timeout=3600) == ("Started", "hv1")
    waited = fake_clock.now - start
    # It waited the settle time, not the hour.
    assert pacemaker_waits.SETTLE_SECONDS <= waited < pacemaker_waits.SETTLE_SECONDS + 2 * pacemaker_waits.POLL_SECONDS
    assert run.crm_mon > 1
