"""Helpers for tests of the address registry on both backends: the registry option of a test,
a fingerprint of everything the registry holds, and the modules run through ansible."""
import json
import os
import sqlite3
import subprocess
import tempfile

import pytest

from lab import HOST, REPO, ansible_env, run_module

RADOS_POOL = "rbd"
RADOS_OBJECT = "gridvirt_addresses"
# The rados bindings are Debian's, for the distribution Python (lab-notes): the object is read
# and removed by that interpreter, not by the tests' one.
RADOS_DUMP = """
import json, sys, rados
cluster = rados.Rados(conffile="/etc/ceph/ceph.conf", rados_id="libvirt")
cluster.connect()
ioctx = cluster.open_ioctx(sys.argv[1])
try:
    if sys.argv[2] == "remove":
        try:
            ioctx.remove_object(sys.argv[3])
        except rados.ObjectNotFound:
            pass
    else:
        with rados.ReadOpCtx() as op:
            entries, _ = ioctx.get_omap_vals(op, "", "", 100000)
            try:
                ioctx.operate_read_op(op, sys.argv[3])
                values = dict((k, v.decode()) for k, v in entries)
            except rados.ObjectNotFound:
                values = None
        print(json.dumps(values, sort_keys=True))
finally:
    ioctx.close()
    cluster.shutdown()
"""


def rados_call(action):
    proc = subprocess.run(["/usr/bin/python3", "-c", RADOS_DUMP, RADOS_POOL, action,
                           RADOS_OBJECT], capture_output=True, text=True, check=True,
                          timeout=120)
    return json.loads(proc.stdout) if action == "dump" else None


class Registry(object):
    """One test's registry: the module option, a fingerprint, the modules."""

    def __init__(self, backend, directory):
        self.backend = backend
        self.path = os.path.join(str(directory), "addresses.db")
        if backend == "sqlite":
            self.option = {"backend": "sqlite", "path": self.path}
        else:
            self.option = {"backend": "rados", "pool": RADOS_POOL}

    def wipe(self):
        if self.backend == "rados":
            rados_call("remove")
        elif os.path.exists(self.path):
            os.remove(self.path)

    def fingerprint(self):
        """Every key and value the registry holds (the RADOS generation included)."""
        if self.backend == "rados":
            return rados_call("dump")
        if not os.path.exists(self.path):
            return None
        db = sqlite3.connect(self.path)
        try:
            return sorted(db.execute("SELECT key, value FROM entries"))
        finally:
            db.close()

    def run(self, module, check=False, **args):
        args = dict(args, registry=self.option)
        return run_module(args, module="gridvirt.kvm." + module, check=check)

    def run_many(self, module, calls):
        """One play running ``module`` once per item of ``calls`` (failures kept): the
        results in order, each with ``failed`` and ``msg``."""
        with tempfile.TemporaryDirectory() as work:
            out = os.path.join(work, "results.json")
            task = {"gridvirt.kvm." + module: "{{ item | combine({'registry': registry}) }}",
                    "loop": calls, "register": "results", "ignore_errors": True}
            save = {"ansible.builtin.copy": {"content": "{{ results.results | to_json }}",
                                             "dest": out}}
            play = [{"hosts": HOST, "gather_facts": False, "vars": {"registry": self.option},
                     "tasks": [task, save]}]
            playbook = os.path.join(work, "play.json")
            with open(playbook, "w") as handle:
                json.dump(play, handle)
            proc = subprocess.run(["ansible-playbook", playbook], cwd=REPO, env=ansible_env(),
                                  capture_output=True, text=True, timeout=900, check=False)
            assert os.path.exists(out), proc.stdout[-3000:] + proc.stderr[-2000:]
            with open(out) as handle:
                return json.load(handle)

    def pool(self, check=False, **args):
        return self.run("address_pool", check=check, **args)

    def address(self, check=False, **args):
        return self.run("address", check=check, **args)

    def info(self, **args):
        return self.run("address_info", **args)


@pytest.fixture(params=["sqlite", "rados"])
def registry(request, tmp_path):
    reg = Registry(request.param, tmp_path)
    reg.wipe()
    yield reg
    reg.wipe()
