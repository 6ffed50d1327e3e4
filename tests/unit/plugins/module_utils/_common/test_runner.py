"""run_checked: the one runner of every layer's external commands."""
import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._common import runner
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def fake(rc, out="", err=""):
    seen = []

    def run(args, **kwargs):
        seen.append((args, kwargs))
        return rc, out, err
    return run, seen


def test_success_returns_stdout_and_passes_the_argument_list_and_data():
    run, seen = fake(0, out="ok\n")
    assert runner.run_checked(run, ("tool", "--flag"), "Tool failed", data="<x/>") == "ok\n"
    assert seen == [(["tool", "--flag"], {"data": "<x/>", "binary_data": False})]


@pytest.mark.parametrize("out,err,expected", [
    ("", "no such file.\n", "Importing a failed: no such file."),
    ("said on stdout", "", "Importing a failed: said on stdout."),
    ("", "", "Importing a failed: exit status 3."),
], ids=["stderr", "stdout", "silent"])
def test_a_failure_is_one_sentence(out, err, expected):
    run, _seen = fake(3, out, err)
    with pytest.raises(VmError) as raised:
        runner.run_checked(run, ["qemu-img"], "Importing a failed")
    assert raised.value.msg == expected


def test_an_exit_code_with_a_meaning_gets_its_own_sentence():
    run, _seen = fake(124, err="killed")

    def explain(rc, detail):
        return "It timed out (%s)." % detail if rc == 124 else None
    with pytest.raises(VmError) as raised:
        runner.run_checked(run, ["cibadmin"], "Pacemaker refused x", explain=explain)
    assert raised.value.msg == "It timed out (killed)."
