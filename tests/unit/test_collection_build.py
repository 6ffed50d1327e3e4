"""The collection as shipped: `ansible-galaxy collection build` of the checkout leaves the lab,
its state, the venv, benchmarks, test output and caches out, and keeps what users install."""
import os
import subprocess
import sys
import tarfile

import pytest
import unit_paths

REPO = unit_paths.REPO
GALAXY = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
LEFT_OUT = (".lab/", ".venv/", ".build/", ".cache/", ".ci/", ".git/", ".pytest_cache/", "lab/",
            "benchmarks/", "tests/output/")
SHIPPED = ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml",
           "plugins/modules/cluster_vm.py", "plugins/modules/standalone_vm.py",
           "plugins/module_utils/_cluster/backend.py", "plugins/doc_fragments/ceph.py",
           "roles/hypervisor/files/ocf/VirtualDomain", "roles/deploy_vms_cluster/tasks/main.yml",
           "playbooks/deploy_vms_cluster.yaml", "templates/vm/domain.xml.j2")


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    proc = subprocess.run([GALAXY, "collection", "build", REPO, "--output-path", str(out)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tarball,) = [p for p in os.listdir(str(out)) if p.endswith(".tar.gz")]
    with tarfile.open(os.path.join(str(out), tarball)) as archive:
        return [m.name + ("/" if m.isdir() else "") for m in archive.getmembers()]


def test_the_built_collection_leaves_the_developers_files_out(members):
    leaked = sorted(m for m in members if m.startswith(LEFT_OUT) or "__pycache__" in m
                    or m.endswith((".pyc", ".qcow2", ".raw", ".log")) or m == "Makefile")
    assert leaked == []


def test_the_built_collection_holds_what_users_install(members):
    assert [f for f in SHIPPED if f not in members] == []
