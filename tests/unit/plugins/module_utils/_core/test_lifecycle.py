"""The shared lifecycle (read once, plan, apply unless check mode, report) driven by a fake
backend that keeps its VMs in memory: check mode applies nothing and predicts the changes and
the diff of the real run, for every state from every status; a failure part-way takes back
what the plan did and reports what it could not."""
import contextlib

import libvirt
import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import lifecycle
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.plan import Plan

STATUSES = ("Undefined", "Stopped", "Started", "Paused", "Failed")
STATES = ("present", "running", "stopped", "absent")


class Request(object):
    def __init__(self, state, name="vm1", memory=None, fail=None):
        self.command, self.action, self.state, self.name = None, state, state, name
        self.memory = memory
        self.fail = fail  # the step (by its first word) that fails when applied


class FakeBackend(lifecycle.Backend):
    """VMs as dicts {status, memory}; every step changes the dict, as libvirt would."""

    def __init__(self, vms):
        self.vms = vms
        self.reads = 0
        self.locked = []
        self.closed = False

    def where(self):
        return "fake:///"

    @contextlib.contextmanager
    def locks(self, request, check_mode):
        self.locked.append((request.name, check_mode))
        yield

    def read(self, request):
        self.reads += 1
        vm = self.vms.get(request.name)
        return dict(vm) if vm else {"status": "Undefined"}

    def _step(self, plan, request, sentence, apply, undo=None):
        def applied():
            if request.fail and sentence.startswith(request.fail):
                raise VmError("%s failed." % sentence)
            apply()
        plan.change(sentence, apply=applied, undo=undo)

    def plan(self, request, view, plan):
        name = request.name
        if request.state == "absent":
            if view["status"] != "Undefined":
                plan.diff(name, "definition", "memory: %s\n" % view["memory"], "")
                self._step(plan, request, "removed VM %s" % name,
                           lambda: self.vms.pop(name))
            return {"status": "Undefined"}
        if view["status"] == "Undefined":
            memory = request.memory or 512
            plan.diff(name, "definition", "", "memory: %s\n" % memory)
            self._step(plan, request, "created VM %s" % name,
                       lambda: self.vms.update({name: {"status": "Stopped", "memory": memory}}),
                       undo=lambda: self.vms.pop(name))
            view = {"status": "Stopped", "memory": memory}
        elif request.memory and request.memory != view["memory"]:
            plan.diff(name, "definition", "memory: %s\n" % view["memory"],
                      "memory: %s\n" % request.memory)
            self._step(plan, request, "redefined VM %s" % name,
                       lambda: self.vms[name].update(memory=request.memory))
            view = dict(view, memory=request.memory)
        if request.state == "running" and view["status"] != "Started":
            self._step(plan, request, "started VM %s" % name,
                       lambda: self.vms[name].update(status="Started"))
            view = dict(view, status="Started")
        elif request.state == "stopped" and view["status"] not in ("Stopped", "Failed"):
            self._step(plan, request, "stopped VM %s" % name,
                       lambda: self.vms[name].update(status="Stopped"))
            view = dict(view, status="Stopped")
        return view

    def report(self, request, view, applied):
        now = self.read(request) if applied else view
        return {"name": request.name, "status": now["status"]}

    def close(self):
        self.closed = True


def start_with(status):
    return {} if status == "Undefined" else {"vm1": {"status": status, "memory": 512}}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("memory", [None, 1024], ids=["same", "new-memory"])
def test_check_mode_applies_nothing_and_predicts_the_real_run(state, status, memory):
    checked = FakeBackend(start_with(status))
    predicted = lifecycle.run(Request(state, memory=memory), checked, check_mode=True)
    assert checked.vms == start_with(status)
    real = FakeBackend(start_with(status))
    result = lifecycle.run(Request(state, memory=memory), real, check_mode=False)
    for key in ("changed", "changes", "diff", "status"):
        assert predicted.get(key) == result.get(key), key
    # The VM was read once for the plan; the real run reads it again for its report only.
    assert checked.reads == 1 and real.reads == 2
    assert checked.closed and real.closed


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("state", STATES)
def test_a_second_run_changes_nothing(state, status):
    backend = FakeBackend(start_with(status))
    lifecycle.run(Request(state), backend, check_mode=False)
    again = lifecycle.run(Request(state), backend, check_mode=False)
    assert again["changed"] is False and again["changes"] == [] and "diff" not in again


def test_a_failure_part_way_undoes_what_the_plan_did():
    backend = FakeBackend({})
    with pytest.raises(VmError) as err:
        lifecycle.run(Request("running", fail="started"), backend, check_mode=False)
    assert err.value.msg == "started VM vm1 failed."
    # The create before it is taken back: nothing changed, and the failure says so.
    assert backend.vms == {}
    assert "changed" not in err.value.details


def test_a_change_that_cannot_be_undone_is_reported_with_the_failure():
    backend = FakeBackend({"vm1": {"status": "Stopped", "memory": 512}})
    with pytest.raises(VmError) as err:
        lifecycle.run(Request("running", memory=2048, fail="started"), backend,
                      check_mode=False)
    assert backend.vms["vm1"] == {"status": "Stopped", "memory": 2048}
    assert err.value.details == {"changed": True, "changes": ["redefined VM vm1"]}


def test_the_backend_is_told_check_mode_when_it_takes_its_locks():
    backend = FakeBackend({})
    lifecycle.run(Request("present"), backend, check_mode=True)
    lifecycle.run(Request("present"), backend, check_mode=False)
    assert backend.locked == [("vm1", True), ("vm1", False)]


def test_a_library_refusal_becomes_a_sentence_naming_the_request_and_the_place():
    class Refusing(FakeBackend):
        def read(self, request):
            raise libvirt.libvirtError("Domain not found")
    with pytest.raises(VmError) as err:
        lifecycle.run(Request("running"), Refusing({}), check_mode=False)
    assert err.value.msg == "Cannot make VM vm1 running on fake:///: Domain not found."


def test_an_undo_that_fails_leaves_its_change_reported_and_the_first_failure_raised():
    plan = Plan()
    made = []

    def bad_undo():
        raise VmError("cannot undo")
    plan.change("first", apply=lambda: made.append(1), undo=bad_undo)
    plan.change("second", apply=lambda: made.append(2), undo=made.pop)

    def third():
        raise VmError("third failed.")
    plan.change("third", apply=third)
    with pytest.raises(VmError) as err:
        plan.apply()
    assert err.value.msg == "third failed."
    assert made == [1] and plan.kept == ["first"]
