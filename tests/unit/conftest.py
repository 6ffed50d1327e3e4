"""Fixtures of the unit tests."""
import os
import subprocess

import pytest
from lxml import etree

from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk


@pytest.fixture()
def offline_cluster(tmp_path):
    """A Pacemaker layer on an offline CIB file (CIB_file) with nodes hv1 and hv2: cibadmin
    and crm_verify check what it writes, no cluster needed. -> (Cluster, run)."""
    cib = tmp_path / "cib.xml"
    cib.write_text(subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True,
                                  check=True).stdout)
    env = dict(os.environ, CIB_file=str(cib))

    def run(args, data=None, binary_data=False):
        proc = subprocess.run(args, input=data, capture_output=True, text=True, env=env,
                              check=False)
        return proc.returncode, proc.stdout, proc.stderr

    cluster = pcmk.Cluster(run)
    cluster.create(etree.fromstring(
        '<cluster_property_set id="opts"><nvpair id="opts-stonith" name="stonith-enabled" '
        'value="false"/></cluster_property_set>'), "crm_config")
    cluster.create(etree.fromstring('<node id="1" uname="hv1"/>'), "nodes")
    cluster.create(etree.fromstring('<node id="2" uname="hv2"/>'), "nodes")
    return cluster, run


class FakeClock(object):
    """Time that passes only when the code under test sleeps: waits bounded by real-scale
    timeouts (minutes, hours) run instantly and cannot hang, whatever the machine's load."""

    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def monotonic(self):
        return self.now

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture()
def fake_clock(monkeypatch):
    """The fake clock in place of the time module of the layers that wait (Pacemaker, nodes)."""
    from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_waits
    from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_nodes

    clock = FakeClock()
    for module in (pcmk, pacemaker_waits, cluster_nodes):
        monkeypatch.setattr(module, "time", clock)
    return clock
