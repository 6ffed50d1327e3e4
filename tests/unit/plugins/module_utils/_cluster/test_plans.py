"""The cluster kind on the shared lifecycle, driven by an in-memory pool and Pacemaker
(cluster_fakes): for every state and command from every status of the VM, check mode
applies nothing and predicts the changed, changes and diff of the real run; a second run
changes nothing; a failure part-way takes back what the plan made and reports what it could
not. The planners, steps and lifecycle are the module's own."""
import copy

import pytest

import cluster_fakes as fakes
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import backend, view
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.request import ClusterRequest
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import lifecycle, site_hooks
from ansible_collections.gridvirt.kvm.plugins.modules import cluster_vm

STATUSES = ("Undefined", "Disabled", "Stopped", "Started", "Failed")
STATES = ("present", "running", "stopped", "disabled", "absent")
XML = ("<domain type='qemu'><name>vm1</name><memory unit='MiB'>%d</memory><vcpu>1</vcpu>"
       "<os><type arch='x86_64'>hvm</type></os></domain>")


class World(object):
    """A pool and a cluster, and the backend the module would build over them."""

    def __init__(self):
        self.store = fakes.FakeStore()
        self.cluster = fakes.FakeCluster(self.store)
        self.warnings = []

    def state(self):
        return self.store.state(), self.cluster.state()

    def run(self, params, check=False):
        request = ClusterRequest(params)
        return lifecycle.run(request, Backend(self), check)


class Backend(backend.ClusterBackend):
    def __init__(self, world):  # pylint: disable=super-init-not-called
        self.store, self.cluster = world.store, world.cluster
        self.run, self.warn = fakes.run, world.warnings.append
        self.owns_connections = False


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "guest.qcow2"
    path.write_bytes(b"QFI\xfb")
    return str(path)


def params(image, **given):
    """The module's parameters as Ansible passes them: every option, defaults filled."""
    full = dict((k, v.get("default")) for k, v in cluster_vm.argument_spec().items())
    full.update(name="vm1", pool="rbd", ceph_conf="/etc/ceph/ceph.conf", ceph_user="libvirt",
                connect_timeout=30, purge_date=None)
    if "command" not in given and "state" not in given:
        given["state"] = "running"
    if given.get("state") not in (None, "absent") and "xml" not in given:
        given.update(xml=XML % 128, system_image=image)
    full.update(given)
    return full


def world_with(status, image):
    """A VM vm1 with ``status`` (Undefined: none), made by the module itself."""
    world = World()
    if status == "Undefined":
        return world
    state = {"Disabled": "disabled", "Stopped": "present"}.get(status, "running")
    world.run(params(image, state=state))
    if status == "Failed":
        world.cluster.running.pop("vm1")
        world.cluster.failed.add("vm1")
    assert world.run(params(image, command="status"))["status"] == status
    return world


def predicted_and_real(status, image, args):
    """-> (check-mode result, real result, the world after the real run); check mode must
    have changed nothing."""
    checked = world_with(status, image)
    before = checked.state()
    predicted = checked.run(args, check=True)
    assert checked.state() == before, "check mode changed the world"
    real = world_with(status, image)
    return predicted, real.run(copy.deepcopy(args)), real


def assert_same_prediction(predicted, result):
    for key in ("changed", "changes", "diff"):
        assert predicted.get(key) == result.get(key), key


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("memory", [128, 256], ids=["same", "new-memory"])
def test_check_mode_predicts_the_real_run_of_every_state(state, status, memory, image):
    args = params(image, state=state)
    if state != "absent":
        args["xml"] = XML % memory
    predicted, result, world = predicted_and_real(status, image, args)
    assert_same_prediction(predicted, result)
    again = world.run(copy.deepcopy(args))
    assert again["changed"] is False and again["changes"] == [], again["changes"]
    expected = {"present": None, "running": "Started", "stopped": "Stopped",
                "disabled": "Disabled", "absent": "Undefined"}[state]
    if expected:
        assert result["status"] == expected
    if state == "present" and status != "Failed":
        assert result["status"] == {"Undefined": "Stopped", "Disabled": "Stopped"}.get(
            status, status)


def test_a_running_vm_given_new_memory_says_it_needs_a_restart_until_restarted(image):
    world = world_with("Started", image)
    bigger = params(image, xml=XML % 256)
    predicted = world.run(bigger, check=True)
    assert predicted["restart_required"] is True
    assert world.run(params(image, command="status"))["restart_required"] is False
    updated = world.run(bigger)
    assert updated["restart_required"] is True
    restarted = world.run(dict(bigger, apply="restart"))
    assert restarted["changes"] == ["restarted VM vm1 on its new definition"]
    assert restarted["restart_required"] is False


COMMANDS = [
    ("start", {}), ("stop", {}), ("stop", {"force": True}), ("enable", {}),
    ("enable", {"nostart": True}), ("disable", {}), ("status", {}),
    ("create_snapshot", {"snapshot_name": "s1"}), ("remove_snapshot", {"snapshot_name": "s0"}),
    ("rollback_snapshot", {"snapshot_name": "s0"}), ("purge_image", {"purge_number": 1}),
    ("set_metadata", {"metadata": {"site": "north"}}),
    ("define_colocation", {"colocated_vms": ["db"]}),
    ("add_pacemaker_remote", {"remote_name": "g1", "remote_address": "192.0.2.9"}),
    ("remove_pacemaker_remote", {}), ("list_snapshots", {}), ("list_metadata", {}),
    ("get_metadata", {"metadata_name": "vm_name"}), ("list_vms", {}),
    ("migrate", {"node": "hv1"}), ("remove", {}), ("remove", {"purge": True}),
    ("create", {"xml": XML % 256, "nostart": True}), ("create", {"enable": False}),
]


def with_companions(world, image):
    """What the commands name: a snapshot s0 of vm1, a VM db."""
    if world.store.vm_exists("vm1"):
        world.run(params(image, command="create_snapshot", snapshot_name="s0"))
    world.run(params(image, name="db", state="present"))


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("command,extra", COMMANDS,
                         ids=["%s%s" % (c, "-" + "-".join(e) if e else "") for c, e in COMMANDS])
def test_check_mode_predicts_the_real_run_of_every_command(command, extra, status, image):
    args = params(image, command=command, **extra)
    if command == "create":
        args.update(xml=extra.get("xml", XML % 128), system_image=image)
    outcomes = []
    for check in (True, False):
        world = world_with(status, image)
        with_companions(world, image)
        before = world.state()
        try:
            outcomes.append(world.run(copy.deepcopy(args), check=check))
        except VmError as exc:
            outcomes.append(exc.msg)
        if check:
            assert world.state() == before, "check mode changed the world"
    predicted, result = outcomes
    if isinstance(result, str):
        assert predicted == result  # the same refusal, in both modes
        # Only a VM that is not there, not a resource, failed, or not running (a move) is refused.
        assert status in ("Undefined", "Disabled", "Failed") or command == "migrate"
        return
    assert_same_prediction(predicted, result)
    if command in backend.MUST_EXIST or command in ("start", "stop", "create", "remove"):
        again = world.run(copy.deepcopy(args))
        rolls_back = command == "rollback_snapshot"
        assert again["changed"] is rolls_back, again["changes"]


def test_a_clone_is_linked_enabled_and_started_and_a_rerun_changes_nothing(image):
    world = world_with("Started", image)
    args = params(image, name="vm2", command="clone", src_name="vm1")
    predicted = world.run(args, check=True)
    result = world.run(copy.deepcopy(args))
    assert_same_prediction(predicted, result)
    assert result["changes"] == ["linked clone vm2 of VM vm1", "enabled VM vm2"]
    assert result["status"] == "Started"
    assert world.store.images["system_vm2"]["parent"] == ("system_vm1", "gvclone-vm2")
    assert world.run(copy.deepcopy(args))["changed"] is False


def test_a_failed_start_of_a_clone_takes_the_clone_back(image):
    world = world_with("Stopped", image)
    world.cluster.fail_on = "set_meta"  # the enable cannot manage the new resource
    args = params(image, name="vm2", command="clone", src_name="vm1")
    with pytest.raises(VmError) as err:
        world.run(args)
    assert "Pacemaker refused set_meta" in err.value.msg
    assert "changed" not in err.value.details  # the clone was taken back
    assert not world.store.vm_exists("vm2")
    assert sorted(world.store.images) == ["system_vm1"]
    assert world.store.images["system_vm1"]["snaps"] == []  # the clone's snapshot is gone


def test_a_failed_create_leaves_nothing(image):
    world = World()
    world.cluster.fail_on = "set_meta"
    with pytest.raises(VmError):
        world.run(params(image))
    assert world.store.images == {} and world.store.groups == {}
    assert pcib.primitive(world.cluster.root, "vm1") is None


def test_a_failure_after_a_change_keeps_it_and_reports_it(image):
    world = world_with("Started", image)
    world.cluster.fail_on = "set_meta"  # the stop after the update cannot be asked
    with pytest.raises(VmError) as err:
        world.run(params(image, state="stopped", xml=XML % 256))
    assert err.value.details == {"changed": True, "changes": [
        "updated _base_xml, xml of VM vm1", "stopped VM vm1"]}
    stored = world.store.metadata("system_vm1")["xml"]
    assert "<memory unit=\"KiB\">262144</memory>" in stored or "262144" in stored
    assert world.run(params(image, command="status"))["status"] == "Started"


def test_bad_input_fails_before_any_read(image):
    world = World()
    world.cluster.reads = 0
    with pytest.raises(VmError) as err:
        world.run(params(image, xml=XML % 128 + "<extra/>"))
    assert world.cluster.reads == 0 and world.store.images == {}
    assert err.value.msg


def killed_create(world, image):
    """What a create killed during its import leaves: a staged system image."""
    world.store.create_image("_gvnew_system_vm1", 1024)


def killed_clone(world, image):
    """A clone killed before its system image joined: a group with its data disk only."""
    world.run(params(image, name="db", state="present"))
    world.store.create_group("vm1")
    world.store.create_image("data_vm1_1", 1024)
    world.store.add_to_group("vm1", "data_vm1_1")
    world.store.create_image("system_vm1", 1024)


def killed_swap(world, image):
    """A forced re-create killed in its swap: the old system image renamed aside (still in
    the group), the new one already under its name."""
    world.run(params(image, state="present"))
    world.store.rename_image("system_vm1", "_gvold_system_vm1")
    world.store.create_image("system_vm1", 1024)


@pytest.mark.parametrize("leftover", [killed_create, killed_clone, killed_swap])
def test_a_rerun_clears_what_a_killed_run_left_and_converges(leftover, image):
    outcomes = []
    for check in (True, False):
        world = World()
        leftover(world, image)
        before = world.state()
        outcomes.append(world.run(params(image), check=check))
        if check:
            assert world.state() == before
    predicted, result = outcomes
    assert_same_prediction(predicted, result)
    assert result["changes"][0] == "removed what an interrupted run left of VM vm1"
    assert result["status"] == "Started"
    assert not [i for i in world.store.images if i.startswith("_gv")]
    assert world.store.images_of("vm1")[0] == "system_vm1"
    assert world.run(params(image))["changed"] is False


class AllocatingHooks(object):
    """The hooks layer as a node with one allocate hook printing ``changes`` would run it."""

    def __init__(self, changes):
        self.changes = changes
        self.allocated = []

    def allocate(self, document):
        self.allocated.append(document["action"])
        return self.changes

    def preboot(self, document):
        return None

    def disallocate(self, document):
        return []


NIC_XML = XML.replace("</os>", "</os><devices><interface type='bridge'>"
                      "<mac address='52:54:00:00:00:01'/><source bridge='br0'/>"
                      "</interface></devices>")


def test_allocated_nics_are_kept_for_the_agent_and_dropped_by_a_start_without_them(
        image, monkeypatch):
    world = World()
    world.run(params(image, state="present", xml=NIC_XML % 128, system_image=image))
    runner = AllocatingHooks({"nics": [{"index": 0, "mac": "02:67:76:ee:00:09"}]})
    monkeypatch.setattr(site_hooks.hooks, "Hooks", lambda run, timeout: runner)
    assert world.run(params(image, state="running", xml=NIC_XML % 128))["changed"]
    meta = world.store.metadata("system_vm1")
    assert runner.allocated == ["start"]
    assert "02:67:76:ee:00:09" in meta["_allocated_xml"] and "02:67:76:ee:00:09" not in meta["xml"]
    assert meta["_allocated_from"] == view.xml_digest(meta["xml"])
    # The rerun starts nothing, so it allocates nothing and keeps the allocation.
    assert not world.run(params(image, state="running", xml=NIC_XML % 128))["changed"]
    assert runner.allocated == ["start"] and "_allocated_from" in world.store.metadata("system_vm1")
    # A later start whose hooks change no NIC boots the stored definition.
    world.run(params(image, state="stopped", xml=NIC_XML % 128))
    runner.changes = {}
    world.run(params(image, state="running", xml=NIC_XML % 128))
    assert not set(world.store.metadata("system_vm1")) & {"_allocated_xml", "_allocated_from"}
