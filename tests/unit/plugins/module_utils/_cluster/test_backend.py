"""A cluster_vm task that fails after it began changing the VM says so: changed, and the
sentences of what it changed, the last being the change that failed (a failure before any
change, or in check mode, reports no change)."""
import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import backend
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.view import ClusterView
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import lifecycle
from ansible_collections.gridvirt.kvm.plugins.modules import cluster_vm
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.request import ClusterRequest


def request():
    params = dict((k, v.get("default")) for k, v in cluster_vm.argument_spec().items())
    params.update(name="vm1", command="status", pool="rbd", connect_timeout=30,
                  ceph_conf="/etc/ceph/ceph.conf", ceph_user="libvirt")
    return ClusterRequest(params)


class Planned(backend.ClusterBackend):
    """The cluster backend with a VM read from nowhere and a plan of partial steps, the last
    of which fails when applied."""

    def __init__(self, changes):
        super(Planned, self).__init__(request(), lambda *a, **k: (0, "", ""), lambda m: None)
        self.changes = changes

    def read(self, request):
        return ClusterView(request.name)

    def plan(self, request, view, plan):
        for sentence in self.changes:
            plan.change(sentence, apply=lambda: None, partial=True)
        plan.act(self.fail)
        return view

    @staticmethod
    def fail():
        raise VmError("crm configure failed: it said no.")


def failing_run(check, changes):
    with pytest.raises(VmError) as err:
        lifecycle.run(request(), Planned(changes), check)
    return err.value


def test_a_failure_after_a_change_reports_it():
    error = failing_run(False, ["stopped VM vm1", "disabled VM vm1"])
    assert error.msg == "crm configure failed: it said no."
    assert error.details == {"changed": True, "changes": ["stopped VM vm1", "disabled VM vm1"]}


def test_a_partial_step_that_fails_is_reported_last():
    req = request()

    class Failing(Planned):
        def plan(self, _req, view, plan):
            plan.change("stopped VM vm1", apply=lambda: None, partial=True)
            plan.change("disabled VM vm1", apply=self.fail, partial=True)
            return view
    with pytest.raises(VmError) as err:
        lifecycle.run(req, Failing([]), False)
    assert err.value.details["changes"] == ["stopped VM vm1", "disabled VM vm1"]


@pytest.mark.parametrize("check,changes", [(False, []), (True, ["disabled VM vm1"])])
def test_no_change_reported_without_one(check, changes):
    if check:
        # Check mode applies nothing: the plan is predicted, the report read.
        result = lifecycle.run(request(), Reporting(changes), True)
        assert result["changed"] and result["changes"] == changes
        return
    assert failing_run(check, changes).details == {}


class Reporting(Planned):
    def report(self, request, view, applied):
        return {"name": request.name, "status": "Undefined", "node": None}
