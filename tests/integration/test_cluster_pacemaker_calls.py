"""How often one cluster_vm task asks Pacemaker, counted by wrappers of its command line tools
put first on the module's PATH (each logs its arguments, then runs the real tool). A no-op
rerun reads the cluster's state at most twice in all; a create queries the CIB at most three
times. Every call also costs the cluster's controller a round trip, so the count is what an
operator running a fleet of reruns pays."""
import os
import shutil
import stat

import pytest

import cluster_lab as cl
import lab

pytestmark = pytest.mark.timeout(900)
VM = "pcc1"
TOOLS = ("cibadmin", "crm_mon", "crm_resource", "crm_attribute", "crm_node", "crm")
clean_cluster = cl.cleanup_fixture("pcc")


@pytest.fixture()
def counted(tmp_path):
    """-> run(args) that runs cluster_vm and returns (result, [argv of each Pacemaker call])."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool in TOOLS:
        real = shutil.which(tool)
        if real is None:
            continue
        wrapper = bin_dir / tool
        wrapper.write_text('#!/bin/sh\nprintf "%%s\\n" "%s $*" >> %s\nexec %s "$@"\n'
                           % (tool, log, real))
        wrapper.chmod(stat.S_IRWXU)
    path = "%s:%s" % (bin_dir, os.environ["PATH"])

    def run(args, **kwargs):
        if log.exists():
            log.unlink()
        result = cl.ok(args, env_extra={"PATH": path}, **kwargs)
        calls = log.read_text().splitlines() if log.exists() else []
        return result, calls
    return run


def state_reads(calls):
    return [c for c in calls if c.startswith(("cibadmin --query", "crm_mon"))]


def cib_queries(calls):
    return [c for c in calls if c.startswith("cibadmin --query")]


def test_a_create_queries_the_cib_at_most_three_times(counted):
    result, calls = counted(cl.vm_args(VM))
    assert result["changed"] and result["status"] == "Started"
    print("create: %d cibadmin --query, %d crm_mon, %d calls in all"
          % (len(cib_queries(calls)), len([c for c in calls if c.startswith("crm_mon")]),
             len(calls)))
    assert len(cib_queries(calls)) <= 3, "\n".join(calls)


def test_a_noop_rerun_reads_the_cluster_state_at_most_twice(counted):
    result, calls = counted(cl.vm_args(VM))
    assert not result["changed"]
    print("no-op converge: %d state reads (%s)" % (len(state_reads(calls)), state_reads(calls)))
    assert len(state_reads(calls)) <= 2, calls
    # Nothing but reads: a no-op writes nothing to the CIB.
    assert [c for c in calls if not c.startswith(("cibadmin --query", "crm_mon"))] == []


def test_a_noop_status_reads_the_cluster_state_at_most_twice(counted):
    result, calls = counted({"name": VM, "command": "status"})
    assert result["status"] == "Started" and result["node"] == lab.node_name()
    assert len(state_reads(calls)) <= 2, calls
