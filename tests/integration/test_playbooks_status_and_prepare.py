"""Two playbooks an operator runs as they are:
- vm_status.yaml prints one row per VM with its kind, status and node, cluster and
  standalone VMs alike;
- prepare_hypervisors.yaml under --check changes nothing on a hypervisor (the resource agent,
  the Ceph secret, the files it writes) and predicts the changes the real run then makes."""
import hashlib
import json
import os
import re
import subprocess
import tempfile

import cluster_lab as cl
import lab

PREFIX = "ipb"
CLUSTER_VM, STANDALONE_VM = PREFIX + "cl1", PREFIX + "sa1"
AGENT = "/usr/lib/ocf/resource.d/gridvirt/VirtualDomain"
ROLE_AGENT = os.path.join(lab.REPO, "roles", "hypervisor", "files", "ocf", "VirtualDomain")
ROW = re.compile(r"^(\S+)\s+(cluster|standalone)\s+(\S+)\s+(\S+)$")
TASK = re.compile(r"^TASK \[(?:[\w.]+ : )?(.*)\] \**$")

clean = cl.cleanup_fixture(PREFIX)


def playbook(name, *extra):
    """Run a playbook of the collection with Ansible's default output; -> that output."""
    env = dict(lab.ansible_env(), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    proc = subprocess.run(["ansible-playbook", os.path.join(lab.REPO, "playbooks", name)]
                          + list(extra), cwd=lab.REPO, env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def task_sections(output):
    """[(task name, the lines Ansible printed under it)]."""
    sections = []
    for line in output.splitlines():
        header = TASK.match(line)
        if header:
            sections.append((header.group(1), []))
        elif sections:
            sections[-1][1].append(line)
    return sections


def changed_tasks(output):
    return [name for name, lines in task_sections(output)
            if any(line.startswith("changed: ") for line in lines)]


def status_rows(output):
    """The rows of vm_status.yaml's table: {name: (kind, status, node)}."""
    text = "\n".join(dict(task_sections(output))["Show the status table"])
    result = json.JSONDecoder().raw_decode(text[text.index("{"):])[0]
    lines = result["msg"]
    assert lines[0].split() == ["NAME", "KIND", "STATUS", "NODE"]
    rows = {}
    for line in lines[1:]:
        name, kind, status, node = ROW.match(line).groups()
        assert name not in rows, "%s is listed twice" % name
        rows[name] = (kind, status, node)
    return rows


def test_vm_status_table_lists_cluster_and_standalone_vms():
    cl.ok(cl.vm_args(CLUSTER_VM))
    created = lab.run_module({"name": STANDALONE_VM, "state": "present",
                              "xml": lab.guest_xml(STANDALONE_VM),
                              "system_image": lab.GUEST_IMAGE})
    assert not created["failed"], created.get("msg")
    rows = status_rows(playbook("vm_status.yaml"))
    node = lab.node_name()
    assert rows[CLUSTER_VM] == ("cluster", "Started", node)
    assert rows[STANDALONE_VM] == ("standalone", "Stopped", node)
    # (status_rows fails on a VM listed twice: the cluster VM's domain on the node is not
    # listed again as a standalone VM.)


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def hypervisor_state():
    """What prepare_hypervisors manages on this host."""
    secrets = subprocess.run(["virsh", "-c", lab.URI, "secret-list"], capture_output=True,
                             text=True, check=True).stdout
    return {"agent": (digest(AGENT), oct(os.stat(AGENT).st_mode)),
            "secrets": secrets,
            "keyring": digest("/etc/ceph/ceph.client.libvirt.keyring"),
            "leftovers": [p for p in ("/run/gridvirt-ceph-key", "/run/gridvirt-ceph-secret.xml")
                          if os.path.exists(p)]}


def test_prepare_check_mode_changes_nothing_and_predicts_the_fix():
    assert changed_tasks(playbook("prepare_hypervisors.yaml", "--check")) == []
    # An agent edited behind Ansible's back: --check says it would fix it, and does not.
    with open(AGENT, "ab") as handle:
        handle.write(b"# edited behind Ansible's back\n")
    try:
        before = hypervisor_state()
        predicted = changed_tasks(playbook("prepare_hypervisors.yaml", "--check"))
        assert predicted == ["Install the resource agent ocf:gridvirt:VirtualDomain"]
        assert hypervisor_state() == before
        fixed = changed_tasks(playbook("prepare_hypervisors.yaml"))
        assert fixed == predicted
    finally:
        if digest(AGENT) != digest(ROLE_AGENT):
            with tempfile.NamedTemporaryFile(dir=os.path.dirname(AGENT), delete=False) as tmp:
                with open(ROLE_AGENT, "rb") as source:
                    tmp.write(source.read())
            os.chmod(tmp.name, 0o755)
            os.replace(tmp.name, AGENT)
    assert digest(AGENT) == digest(ROLE_AGENT)
    assert changed_tasks(playbook("prepare_hypervisors.yaml")) == []
