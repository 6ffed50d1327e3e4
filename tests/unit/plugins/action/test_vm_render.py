"""vm_render (plugins/action): the VMs' state, CPUs, template and image resolved as the
inventory says, and every VM's XML byte for byte what Ansible's template lookup renders
running for that VM (a real ansible-playbook run on the controller)."""
import json
import os
import subprocess

from ansible_collections.gridvirt.kvm.plugins.action import vm_render
import unit_paths

REPO = unit_paths.REPO


def test_state_from_vm_state_else_seapaths_switches():
    assert vm_render.vm_state({}) == "running"
    assert vm_render.vm_state({"vm_state": "stopped", "enable": False}) == "stopped"
    assert vm_render.vm_state({"enable": "false"}) == "disabled"
    assert vm_render.vm_state({"nostart": True}) == "present"


def test_cpuset_list_or_seapath_string_and_nonsense_gives_none():
    assert vm_render.cpuset({"cpuset": "2,3"}) == [2, 3]
    assert vm_render.cpuset({"cpuset": [4, "5"]}) == [4, 5]
    assert vm_render.cpuset({}) == []
    assert vm_render.cpuset({"cpuset": "two"}) == []  # vm_inventory_check refuses it


def test_relative_paths_from_the_inventory_when_there_else_the_playbook(tmp_path):
    (tmp_path / "t.xml.j2").write_text("x")
    variables = {"inventory_dir": str(tmp_path)}
    assert vm_render.relative_to("t.xml.j2", variables, "/pb") == "%s/t.xml.j2" % tmp_path
    assert vm_render.relative_to("other.j2", variables, "/pb") == "/pb/other.j2"
    assert vm_render.relative_to("/abs.j2", variables, "/pb") == "/abs.j2"
    assert vm_render.relative_to("", variables, "/pb") == ""


def test_image_and_seed():
    options = {"disks_directory": "/srv/disks", "disk_copy": False}
    assert vm_render.image("vm1", {}, options, "/pb") == "/srv/disks/vm1.qcow2"
    assert vm_render.image("vm1", {"vm_disk": "rel.qcow2"}, options, "/pb") == "rel.qcow2"
    copied = dict(options, disk_copy=True, disks_directory="")
    assert vm_render.image("vm1", {"vm_disk": "rel.qcow2", "inventory_dir": "/nowhere"},
                           copied, "/pb") == "/pb/rel.qcow2"
    assert vm_render.image("vm1", {}, copied, "/pb") == ""
    assert vm_render.seeds("vm1", {}, "rbd") == ("", "")
    assert vm_render.seeds("vm1", {"cloud_init": True}, "rbd") == ("", "rbd/seed_vm1")
    assert vm_render.seeds("vm1", {"cloud_init": "yes"}, "") == (
        "/var/lib/libvirt/images/vm1-seed.img", "")


TEMPLATE = """<domain type='kvm'>
  <name>{{ vm.inventory_hostname }}</name>
  <memory unit='MiB'>{{ vm.memory | default(64) }}</memory>
  <description>{{ site_name }} {{ addresses | map(attribute='ip') | join(',') }}</description>
{% include 'devices.j2' %}
</domain>
"""
DEVICES = "  <devices><!-- {{ cloud_init_seed }}{{ cloud_init_seed_rbd }} --></devices>\n"


def write_inventory(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "vm.xml.j2").write_text(TEMPLATE)
    (templates / "devices.j2").write_text(DEVICES)
    (tmp_path / "fixed.xml").write_text("<domain><name>fixed</name></domain>\n\n")
    vms = {
        "a1": {"memory": "{{ base_memory * 2 }}", "cloud_init": True},
        "a2": {"cpuset": "1,2", "nostart": True},
        "fixed": {"xml_path": "fixed.xml"},
        "gone": {"vm_state": "absent"},
        "lost": {"vm_template": "templates/missing.j2"},
    }
    inventory = {"all": {"vars": {"site_name": "north", "base_memory": 96,
                                  "vm_template": "templates/vm.xml.j2"},
                         "children": {"vms": {"hosts": vms}}}}
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(inventory))
    return path


ADDRESSES = [{"vm": "a1", "nic": 0, "ip": "10.0.0.5"}, {"vm": "a2", "nic": 0, "ip": "10.0.0.6"}]
PLAY = [{"hosts": "vms", "gather_facts": False, "vars": {"addresses_given": ADDRESSES}, "tasks": [
    {"gridvirt.kvm.vm_render": {
        "vms": "{{ ansible_play_hosts }}", "disk_copy": False, "disks_directory": "/d",
        "default_template": "/nonexistent.j2", "seed_rbd_pool": "",
        "addresses": "{{ addresses_given }}"},
     "register": "out", "run_once": True},
    # The reference: the template lookup, running for each VM with the same extra names.
    {"ansible.builtin.set_fact": {"lookup_xml": (
        "{{ lookup('ansible.builtin.template', out.vms[inventory_hostname].template,"
        " template_vars={'vm': hostvars[inventory_hostname],"
        " 'addresses': addresses_given | selectattr('vm', 'equalto', inventory_hostname) | list,"
        " 'cloud_init_seed': '/var/lib/libvirt/images/a1-seed.img'"
        " if inventory_hostname == 'a1' else '', 'cloud_init_seed_rbd': ''}) }}")},
     "when": "inventory_hostname in ['a1', 'a2']"},
    {"ansible.builtin.copy": {"content": "{{ {'out': out.vms, 'lookup': lookup_xml"
                                         " | default('')} | to_json }}",
                              "dest": "{{ dest }}/{{ inventory_hostname }}.json"},
     "delegate_to": "localhost"}]}]


def run_play(tmp_path, inventory):
    play = tmp_path / "play.json"
    play.write_text(json.dumps(PLAY))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(play), "-e", "dest=%s" % tmp_path,
         "-c", "local"], cwd=str(tmp_path), env=env, capture_output=True, text=True,
        check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict((name, json.loads((tmp_path / ("%s.json" % name)).read_text()))
                for name in ("a1", "a2", "fixed", "gone", "lost"))


def test_every_vm_resolved_and_rendered_as_the_template_lookup_renders_it(tmp_path):
    results = run_play(tmp_path, write_inventory(tmp_path))
    vms = results["a1"]["out"]
    a1, a2 = vms["a1"], vms["a2"]
    assert a1["xml"] == results["a1"]["lookup"] and a2["xml"] == results["a2"]["lookup"]
    assert "<memory unit='MiB'>192</memory>" in a1["xml"]
    assert "<description>north 10.0.0.5</description>" in a1["xml"]
    assert "a1-seed.img" in a1["xml"] and a1["xml"].endswith("</domain>\n")
    assert a1["template"] == "%s/templates/vm.xml.j2" % tmp_path
    assert (a1["state"], a1["image"], a1["disk_copy"]) == ("running", "/d/a1.qcow2", False)
    assert (a2["state"], a2["cpuset"]) == ("present", [1, 2])
    assert vms["fixed"]["xml"] == "<domain><name>fixed</name></domain>"
    assert vms["gone"]["xml"] == "" and vms["gone"]["state"] == "absent"
    assert vms["lost"]["xml"] == "" and vms["lost"]["template"].endswith("missing.j2")
    # Registered once, seen by every VM host.
    assert results["gone"]["out"] == vms


def test_an_undefined_variable_names_the_vm_and_renders_nothing(tmp_path):
    inventory = write_inventory(tmp_path)
    data = json.loads(inventory.read_text())
    del data["all"]["vars"]["site_name"]
    inventory.write_text(json.dumps(data))
    play = tmp_path / "play.json"
    play.write_text(json.dumps(PLAY[:1]))
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), str(play), "-c", "local"],
                          cwd=str(tmp_path), capture_output=True, text=True, check=False,
                          env=dict(os.environ,
                                   ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg")))
    assert proc.returncode == 2
    assert "a1: its domain XML could not be rendered" in proc.stdout
    assert "site_name" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
