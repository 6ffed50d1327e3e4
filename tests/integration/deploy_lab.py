"""The deploy playbooks run on the one-node lab, as a user runs them: an inventory written
from dicts, ansible-playbook with the lab's settings; the output is asserted free of
tracebacks."""
import json
import os
import re
import subprocess
import tempfile

import lab

LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
GROUPS = {"cluster": "VMs", "standalone": "standalone_VMs"}


def deploy(kind, hosts, *extra_args, inventory_vars=None, fails=False):
    """ansible-playbook deploy_vms_<kind>.yaml over ``hosts`` {VM name: its variables}, with
    ``inventory_vars`` for all -> the output. ``fails``: the run must fail."""
    inventory = {"all": {"vars": inventory_vars or {}, "children": {
        "hypervisors": {"hosts": {lab.HOST: LOCAL}}, GROUPS[kind]: {"hosts": hosts}}}}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hosts.yml")
        with open(path, "w") as handle:
            json.dump(inventory, handle)
        env = dict(lab.ansible_env(), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
        playbook = os.path.join(lab.REPO, "playbooks", "deploy_vms_%s.yaml" % kind)
        proc = subprocess.run(["ansible-playbook", "-i", path, playbook] + list(extra_args),
                              cwd=lab.REPO, env=env, capture_output=True, text=True,
                              timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert (proc.returncode != 0) == fails, output[-4000:]
    assert "Traceback" not in output
    return output


def changed_per_host(output):
    return dict((host, int(n)) for host, n in re.findall(
        r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", output, re.M))
