"""The hooks layer with real executables in a private directory: name order, run-parts'
names, what each stage takes from the hooks' output, the refusals, the timeout and the log.
(The lab's tests run them through the modules and the resource agent.)"""
import json
import os
import stat
import subprocess
import time

import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils import hooks

DOC = hooks.document_for("vm1", "standalone", "hv1", "start", "<domain><name>vm1</name></domain>",
                         {"rack": "r4"}, [{"ip": "10.0.0.5"}])


def run(argv, data=None):
    """The runner a module gives the layer (AnsibleModule.run_command's contract)."""
    proc = subprocess.run(argv, input=data, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture()
def site(tmp_path):
    """-> (Hooks on tmp_path, add(stage, name, body)) with a log file in tmp_path."""
    tmp_path.chmod(0o755)
    runner = hooks.Hooks(run, str(tmp_path / "hooks"), timeout=5,
                         log_file=str(tmp_path / "log" / "h.log"))

    def add(stage, name, body, mode=0o755):
        directory = tmp_path / "hooks" / ("%s.d" % stage)
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        path = directory / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(mode)
        return str(path)
    return runner, add


def test_no_directory_runs_nothing(site):
    runner, _add = site
    assert runner.allocate(DOC) == {} and runner.preboot(DOC) is None
    assert runner.disallocate(DOC) == []


def test_hooks_run_in_name_order_and_leftovers_are_skipped(site, tmp_path):
    runner, add = site
    out = tmp_path / "order"
    for name in ("20-b", "10-a", "x.dpkg-old", "y~", ".hidden"):
        add("disallocate", name, "echo %s >> %s" % (name, out))
    assert runner.disallocate(DOC) == []
    assert out.read_text().split() == ["10-a", "20-b"]


def test_every_hook_reads_the_document_with_its_stage(site, tmp_path):
    runner, add = site
    add("allocate", "10-copy", "cat > %s" % (tmp_path / "doc.json"))
    runner.allocate(DOC)
    read = json.loads((tmp_path / "doc.json").read_text())
    assert read == dict(DOC, stage="allocate")


def test_allocate_changes_chain_and_a_failure_vetoes(site):
    runner, add = site
    add("allocate", "10-node", """echo '{"node": "hv2"}'""")
    add("allocate", "20-nic", """grep -q '"node": "hv2"' && echo '{"nics": [{"index": 0, "vlan": 7}]}'""")
    assert runner.allocate(DOC) == {"node": "hv2", "nics": [{"index": 0, "vlan": 7}]}
    add("allocate", "30-veto", "echo 'no free slot in rack r4' >&2; exit 2")
    with pytest.raises(hooks.HookError) as err:
        runner.allocate(DOC)
    assert str(err.value) == "The allocate hook 30-veto refused start of VM vm1: no free slot in rack r4."


@pytest.mark.parametrize("printed, sentence", [
    ("not json", "printed something that is not a JSON document"),
    ('{"memory": 4}', "printed a document whose keys are not node and nics"),
    ('{"node": 3}', "printed a node that is not a name"),
    ('{"nics": [{"index": true}]}', "printed a NIC change that is not a mapping"),
    ('{"nics": [{"index": 0, "script": "x"}]}', "printed a NIC change that is not a mapping"),
    ('{"nics": {"index": 0}}', "printed a NIC change that is not a mapping"),
])
def test_allocate_output_is_checked(site, printed, sentence):
    runner, add = site
    add("allocate", "10-bad", "echo '%s'" % printed)
    with pytest.raises(hooks.HookError) as err:
        runner.allocate(DOC)
    assert str(err.value).startswith("The allocate hook 10-bad " + sentence)


def test_preboot_xml_chains_and_empty_output_keeps_it(site):
    runner, add = site
    add("preboot", "10-first", "echo '<domain><name>vm1</name><memory>2</memory></domain>'")
    add("preboot", "20-quiet", "cat > /dev/null")
    add("preboot", "30-sees-first", "grep -q '<memory>2</memory>' || exit 1")
    assert runner.preboot(DOC) == "<domain><name>vm1</name><memory>2</memory></domain>\n"
    add("preboot", "40-junk", "echo 'memory=4'")
    with pytest.raises(hooks.HookError) as err:
        runner.preboot(DOC)
    assert "is not a domain XML document" in str(err.value)


def test_disallocate_runs_every_hook_and_reports_failures(site, tmp_path):
    runner, add = site
    add("disallocate", "10-fail", "echo 'switch down' >&2; exit 1")
    add("disallocate", "20-ok", "touch %s" % (tmp_path / "ran"))
    assert runner.disallocate(dict(DOC, action="stop")) == [
        "The disallocate hook 10-fail failed after stop of VM vm1: switch down."]
    assert (tmp_path / "ran").exists()


@pytest.mark.parametrize("unsafe, reason", [
    (lambda path: os.chmod(path, 0o775), "users other than root may write it"),
    (lambda path: os.chmod(path, 0o644), "it is not executable"),
    (lambda path: os.chown(path, 65534, 0), "it is not owned by root"),
    (lambda path: (os.unlink(path), os.symlink("/bin/true", path)), "it is not a regular file"),
])
def test_a_hook_a_local_user_could_change_is_refused(site, unsafe, reason):
    runner, add = site
    path = add("preboot", "10-hook", "exit 0")
    unsafe(path)
    with pytest.raises(hooks.HookError) as err:
        runner.preboot(DOC)
    assert str(err.value) == "Refused preboot hook %s: %s." % (path, reason)
    assert runner.disallocate(DOC) == []  # another stage's directory is not concerned


def test_a_writable_stage_directory_is_refused(site):
    runner, add = site
    path = add("allocate", "10-hook", "exit 0")
    os.chmod(os.path.dirname(path), 0o777)
    with pytest.raises(hooks.HookError) as err:
        runner.allocate(DOC)
    assert "users other than root may write it" in str(err.value)


def test_a_hook_past_its_timeout_is_killed_with_its_children(site, tmp_path):
    runner, add = site
    runner.timeout = 1
    add("preboot", "10-slow", "sleep 30 & echo $! > %s; sleep 30" % (tmp_path / "child"))
    with pytest.raises(hooks.HookError) as err:
        runner.preboot(DOC)
    assert str(err.value).endswith("refused start of VM vm1: did not finish within 1 seconds.")
    child = int((tmp_path / "child").read_text())
    deadline = time.monotonic() + 10  # SIGKILL is sent; the kernel ends the child soon after
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_runs_are_logged_privately(site, tmp_path):
    runner, add = site
    add("disallocate", "10-talk", "echo hello; echo careful >&2")
    runner.disallocate(DOC)
    log = tmp_path / "log" / "h.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    first, out, err = log.read_text().splitlines()
    assert " disallocate vm=vm1 kind=standalone node=hv1 action=start hook=10-talk exit 0 " in first
    assert (out, err) == ("  stdout: hello", "  stderr: careful")


@pytest.mark.parametrize("image_meta, action", [
    ({}, "start"),
    ({hooks.STARTED_ON: "node1"}, "start"),
    ({hooks.STARTED_ON: "node2"}, "failover"),
    ({hooks.STARTED_ON: ""}, "start"),
])
def test_a_start_after_a_run_elsewhere_that_never_stopped_is_a_failover(image_meta, action):
    assert hooks.start_action(image_meta, "node1") == action
