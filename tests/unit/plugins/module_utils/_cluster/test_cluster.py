"""A cluster_vm task that fails after it began changing the VM says so: changed, and the
sentences of what it changed, the last being the change that failed (a failure before any
change, or in check mode, reports no change)."""
import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

PARAMS = {"name": "vm1", "command": "status", "ceph_conf": "/etc/ceph/ceph.conf",
          "ceph_user": "libvirt", "keyring": None, "pool": "rbd",
          "connect_timeout": 30}


def failing_run(check, changes):
    vm = cluster.ClusterVm(dict(PARAMS), check, lambda *a, **k: (0, "", ""), lambda m: None)

    def dispatch(_action):
        for sentence in changes:
            vm._changed(sentence)
        raise VmError("crm configure failed: it said no.")
    vm._dispatch = dispatch
    with pytest.raises(VmError) as err:
        vm.run()
    return err.value


def test_a_failure_after_a_change_reports_it():
    error = failing_run(False, ["stopped VM vm1", "disabled VM vm1"])
    assert error.msg == "crm configure failed: it said no."
    assert error.details == {"changed": True, "changes": ["stopped VM vm1", "disabled VM vm1"]}


@pytest.mark.parametrize("check,changes", [(False, []), (True, ["disabled VM vm1"])])
def test_no_change_reported_without_one(check, changes):
    assert failing_run(check, changes).details == {}
