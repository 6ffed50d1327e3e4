"""deploy_plan's planner (module_utils/_core/batch.py) over the in-memory pool and Pacemaker
of cluster_fakes: per VM, what the converge would do, without changing anything; a problem
with one VM is that VM's error."""
import pytest

import cluster_fakes as fakes
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import backend
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import request as creq
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import batch
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import lifecycle

XML = ("<domain type='qemu'><name>%s</name><memory unit='MiB'>%d</memory><vcpu>1</vcpu>"
       "<os><type arch='x86_64'>hvm</type></os></domain>")
COMMON = {"pool": "rbd", "ceph_user": "libvirt"}


class World(object):
    def __init__(self):
        self.store = fakes.FakeStore()
        self.cluster = fakes.FakeCluster(self.store)
        self.backends = 0

    def backend(self, request, run, warn, shared=None):
        self.backends += shared is None
        return Backend(self, shared is None)

    def kind(self):
        return batch.Kind(creq.argument_spec(), creq.ClusterRequest, self.backend)

    def state(self):
        return self.store.state(), self.cluster.state()

    def create(self, name, image, memory=128, **options):
        params = batch.validated_params(creq.argument_spec(), dict(
            COMMON, name=name, state="running", xml=XML % (name, memory),
            system_image=image, **options))
        lifecycle.run(creq.ClusterRequest(params), Backend(self, False), False)

    def plan(self, vms):
        return batch.plan_all(self.kind(), COMMON, vms, fakes.run, lambda msg: None)


class Backend(backend.ClusterBackend):
    def __init__(self, world, owns):  # pylint: disable=super-init-not-called
        self.store, self.cluster = world.store, world.cluster
        self.run, self.warn = fakes.run, lambda msg: None
        self.owns_connections = owns
        self.planned = None


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "guest.qcow2"
    path.write_bytes(b"QFI\xfb")
    return str(path)


def wanted(name, memory=128, **options):
    return dict(name=name, state="running", xml=XML % (name, memory), **options)


def test_a_converged_vm_is_unchanged_and_a_new_one_needs_its_image(image):
    world = World()
    world.create("vm1", image)
    before = world.state()
    planned = world.plan([wanted("vm1"), wanted("vm2")])
    assert world.state() == before
    assert world.backends == 1, "every VM must be planned over one connection"
    vm1, vm2 = planned["vms"]["vm1"], planned["vms"]["vm2"]
    assert (vm1["changed"], vm1["changes"], vm1["exists"], vm1["image_needed"]) == (
        False, [], True, False)
    assert (vm2["changed"], vm2["exists"], vm2["image_needed"]) == (True, False, True)
    assert vm2["changes"] == ["created VM vm2"]
    assert vm1["options"]["xml"] == wanted("vm1")["xml"], "the converge gets what was planned"
    assert [vm["name"] for vm in planned["listed"]] == ["vm1"]


def test_a_change_is_planned_as_the_module_would_make_it(image):
    world = World()
    world.create("vm1", image)
    options = dict(COMMON, **wanted("vm1", memory=256))
    params = batch.validated_params(creq.argument_spec(), options)
    predicted = lifecycle.run(creq.ClusterRequest(params), Backend(world, False), True)
    verdict = world.plan([wanted("vm1", memory=256)])["vms"]["vm1"]
    assert verdict["changed"] is True
    assert verdict["changes"] == predicted["changes"]


def test_kept_metadata_keeps_its_current_value(image):
    world = World()
    world.create("vm1", image, metadata={"deployed_image_sha1": "abc", "team": "a"})
    kept = world.plan([wanted("vm1", metadata={"team": "a"},
                              keep_metadata=["deployed_image_sha1"])])["vms"]["vm1"]
    assert kept["changed"] is False, kept["changes"]
    assert kept["metadata"]["deployed_image_sha1"] == "abc"
    assert kept["options"]["metadata"] == {"team": "a", "deployed_image_sha1": "abc"}
    assert "keep_metadata" not in kept["options"]
    changed = world.plan([wanted("vm1", metadata={"team": "b"},
                                 keep_metadata=["deployed_image_sha1"])])["vms"]["vm1"]
    assert changed["changed"] is True


def test_each_problem_is_its_vms_error_and_the_others_are_planned(image):
    world = World()
    world.create("vm1", image)
    planned = world.plan([wanted("vm1"), dict(wanted("bad1"), state="paused"),
                          dict(wanted("bad2"), xml="<domain><bogus/>"),
                          dict(wanted("bad3"), xml=XML.replace("<vcpu>", "<bogus/><vcpu>")
                               % ("bad3", 128))])["vms"]
    assert planned["vm1"]["changed"] is False
    assert "state" in planned["bad1"]["error"] and "paused" in planned["bad1"]["error"]
    assert not planned["bad1"].get("xml_invalid")
    assert planned["bad2"]["xml_invalid"] is True and "well-formed" in planned["bad2"]["error"]
    assert planned["bad3"]["xml_invalid"] is True and "bogus" in planned["bad3"]["error"]


def test_cluster_vms_are_planned_with_their_own_registry_addresses():
    given = [{"vm": "a", "nic": 0, "mac": "02:00:00:00:00:01", "ip": "10.0.0.5", "prefix": 24},
             {"vm": "b", "nic": 0, "mac": "02:00:00:00:00:02"},
             {"vm": "a", "nic": 1, "mac": "02:00:00:00:00:03"}]
    vms = [{"name": "a", "state": "running"}, {"name": "b", "state": "absent"},
           {"name": "c", "state": "running"}]
    planned = batch.with_kept_addresses(vms, given)
    assert planned == [{"name": "a", "state": "running", "addresses": [given[0], given[2]]},
                       {"name": "b", "state": "absent"}, {"name": "c", "state": "running"}]
