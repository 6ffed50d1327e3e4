"""What standalone_vm's move plans from where the VM is and from the record an earlier move
left in the destination pool (the moves themselves run in tests/multinode)."""
import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.plan import Plan
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import move
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import states
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import view as views


class Host(object):
    def __init__(self, name):
        self.name = name
        self.uri = "qemu+tcp://%s/system" % name

    def hostname(self):
        return self.name


class Ctx(states.Context):
    """The planners' context on a fake host, with no site hooks (the lab's tests run them)."""

    def __init__(self):
        super(Ctx, self).__init__(Host("hv1"), None, None, Plan())


class Req(object):
    name = "vm1"
    live = False
    nostart = False
    destination_pool = "default"
    stop_timeout = 60


def vm_view(status=None, snapshots=()):
    view = views.VmView("vm1")
    if status:
        view.exists, view.status, view.snapshots = True, status, list(snapshots)
    return view


@pytest.fixture
def world(monkeypatch):
    """Where the VM is: ``there`` (the destination's view) and the ``record`` left there."""
    state = {"there": vm_view(), "record": None, "written_since_copy": False}
    monkeypatch.setattr(move.views, "read_view", lambda hv, name: state["there"])
    monkeypatch.setattr(move.Move, "record", lambda self: state["record"])
    monkeypatch.setattr(move, "source_volumes", lambda hv, view: [])
    monkeypatch.setattr(move, "check_room", lambda mv, disks: None)
    monkeypatch.setattr(move, "check_names_free", lambda mv, disks: None)
    monkeypatch.setattr(move, "check_room_to_flatten", lambda hv, vm, disks: None)
    monkeypatch.setattr(move, "written_since_copy",
                        lambda mv, view, record: state["written_since_copy"])
    monkeypatch.setattr(move.StandaloneHost, "check_uuid_free", lambda self, uuid, vm: None)
    monkeypatch.setattr(move.dx, "uuid_of", lambda root: "u")
    return state


def planned(here, req=Req):
    ctx = Ctx()
    view = move.plan_move(ctx, req, here, Host("hv2"))
    return ctx.plan.changes, view


def test_a_vm_here_is_moved(world):
    assert planned(vm_view("Started"))[0] == ["moved VM vm1 to hv2"]


class NostartReq(Req):
    nostart = True


def test_a_move_with_nostart_leaves_the_vm_stopped_there(world):
    changes, view = planned(vm_view("Started"), NostartReq)
    assert changes == ["moved VM vm1 to hv2"] and view.status == "Stopped"


def test_a_vm_already_there_is_not_changed(world):
    world["there"] = vm_view("Started")
    changes, view = planned(vm_view())
    assert changes == [] and view is world["there"]


def test_a_vm_neither_here_nor_there_is_a_sentence(world):
    with pytest.raises(VmError) as err:
        planned(vm_view())
    assert err.value.msg == "Cannot move VM vm1: it is neither on this host nor on hv2."


def test_a_vm_both_here_and_there_without_a_record_is_a_sentence(world):
    world["there"] = vm_view("Stopped")
    with pytest.raises(VmError) as err:
        planned(vm_view("Started"))
    assert "exists both here and on hv2" in err.value.msg


def test_a_move_killed_after_the_define_is_finished(world):
    world["there"] = vm_view("Stopped")
    world["record"] = {"was_running": True, "volumes": ["vm1.disk0.qcow2"]}
    assert planned(vm_view("Stopped"))[0] == ["finished the move of VM vm1 to hv2"]
    assert planned(vm_view())[0] == ["finished the move of VM vm1 to hv2"]


def test_a_move_killed_during_the_copy_is_undone_then_made_running_as_before(world):
    world["record"] = {"was_running": True, "volumes": ["vm1.disk0.qcow2"]}
    changes, view = planned(vm_view("Stopped"))
    assert changes == ["removed what an unfinished move of VM vm1 left on hv2",
                       "moved VM vm1 to hv2"]
    assert view.status == "Started"  # the move starts it there (or here if it fails)


def test_a_copy_there_of_a_vm_running_here_again_is_removed_then_moved(world):
    """A failed move started the VM here again but could not clean up there: the copy there
    is stale, never finished."""
    world["there"] = vm_view("Stopped")
    world["record"] = {"was_running": True, "volumes": ["vm1.disk0.qcow2"]}
    assert planned(vm_view("Started"))[0] == [
        "removed what an unfinished move of VM vm1 left on hv2", "moved VM vm1 to hv2"]


class LiveReq(Req):
    live = True


def test_live_moves_refuse_snapshots_and_stopped_vms_move_offline(world):
    with pytest.raises(VmError) as err:
        planned(vm_view("Started", snapshots=[("s1", 0)]), LiveReq)
    assert "has snapshots (s1)" in err.value.msg and "offline" in err.value.msg
    assert planned(vm_view("Started"), LiveReq)[0] == ["moved VM vm1 live to hv2"]
    assert planned(vm_view("Stopped"), LiveReq)[0] == ["moved VM vm1 to hv2"]


def test_the_destination_must_be_another_host(world):
    ctx = Ctx()
    with pytest.raises(VmError) as err:
        move.plan_move(ctx, Req, vm_view("Started"), Host("hv1"))
    assert "is this host (hv1)" in err.value.msg


def test_a_copy_there_older_than_the_disks_here_is_never_finished(world):
    """The VM ran here after an earlier move stopped (its undo could not reach the
    destination): the copy there is stale; it is removed and the move made again."""
    world["there"] = vm_view("Stopped")
    world["record"] = {"was_running": False, "volumes": ["vm1.disk0.qcow2"]}
    world["written_since_copy"] = True
    assert planned(vm_view("Stopped"))[0] == [
        "removed what an unfinished move of VM vm1 left on hv2", "moved VM vm1 to hv2"]


def test_a_live_move_killed_at_its_end_is_finished_where_the_guest_runs(world):
    """Killed between the destination's finish and the source's confirmation: the guest runs
    there, its paused source here is stale."""
    world["there"] = vm_view("Started")
    world["record"] = {"was_running": True, "live": True, "volumes": ["vm1.disk0.qcow2"]}
    assert planned(vm_view("Paused"))[0] == ["finished the move of VM vm1 to hv2"]


def test_a_live_move_killed_before_the_guest_ran_there_is_undone_and_made_live_again(world):
    world["there"] = vm_view("Stopped")
    world["record"] = {"was_running": True, "live": True, "volumes": ["vm1.disk0.qcow2"]}
    assert planned(vm_view("Paused"), LiveReq)[0] == [
        "removed what an unfinished move of VM vm1 left on hv2", "moved VM vm1 live to hv2"]
