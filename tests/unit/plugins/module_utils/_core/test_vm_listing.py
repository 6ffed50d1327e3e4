from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import vm_listing


def test_the_kinds_asked_in_a_fixed_order(tmp_path):
    assert vm_listing.kinds_here(["standalone", "cluster"], "/nowhere") == ["cluster", "standalone"]
    assert vm_listing.kinds_here(["cluster"], "/nowhere") == ["cluster"]


def test_by_default_the_cluster_only_on_a_cluster_node(tmp_path, monkeypatch):
    conf = tmp_path / "ceph.conf"
    monkeypatch.setattr(pcmk, "installed", lambda: True)
    assert vm_listing.kinds_here(None, str(conf)) == ["standalone"]  # no Ceph here
    conf.write_text("[global]\n")
    assert vm_listing.kinds_here(None, str(conf)) == ["cluster", "standalone"]
    monkeypatch.setattr(pcmk, "installed", lambda: False)
    assert vm_listing.kinds_here([], str(conf)) == ["standalone"]  # no Pacemaker here
