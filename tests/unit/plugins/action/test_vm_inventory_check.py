"""The checks of vm_inventory_check (plugins/action), on VMs' variables as dictionaries: each
problem is one sentence naming the VM, in the order the roles always checked."""
from ansible_collections.gridvirt.kvm.plugins.action import vm_inventory_check as check

ARGS = dict((key, None) for key in check.ARGS)


# What vm_render resolved, given here under the names the roles' facts had.
RENDERED = {"vm_definition_state": "state", "vm_definition_image": "image",
            "vm_definition_disk_copy_resolved": "disk_copy",
            "vm_definition_template": "template", "vm_definition_cpuset": "cpuset"}


class Vm(object):
    def __init__(self, name, **variables):
        self.rendered = dict((RENDERED[key], variables.pop(key)) for key in list(variables)
                             if key in RENDERED)
        self.name, self.vars = name, variables

    def __contains__(self, key):
        return key in self.vars

    def get(self, key, default=None):
        return self.vars.get(key, default)


def problems(vm, **args):
    return check.vm_problems(vm, check.vm_variable_spec(), dict(ARGS, **args))


def good(name="vm1", **variables):
    base = dict(vm_definition_state="running", vm_definition_image=__file__,
                vm_definition_disk_copy_resolved=True, vm_definition_template="",
                vm_definition_cpuset=[])
    base.update(variables)
    return Vm(name, **base)


def test_a_good_vm_has_no_problem():
    assert problems(good(memory=128, cpuset=[0], vm_definition_cpuset=[0]), host_cpus=2) == []


def test_wrong_types_and_choices_name_the_variable():
    assert "memory" in problems(good(memory="lots"))[0]
    said = problems(good(vm_state="paused"))[0]
    assert said.startswith("vm1: ") and "vm_state" in said and "paused" in said


def test_numbers_disks_cpus_and_files():
    assert "positive" in problems(good(memory=-1))[0]
    assert "not sizes" in problems(good(additional_disk=["10G:20G"]))[0]
    assert "exactly one of image and size" in problems(
        good(additional_disks=[{"image": "/x", "size": "1G"}]))[0]
    assert "do not exist on the controller" in problems(
        good(additional_disks=["/nonexistent/d.qcow2"]), copy_disk_images=True)[0]
    assert problems(good(additional_disks=["/nonexistent/d.qcow2"])) == []
    said = problems(good(cpuset="0,4096", vm_definition_cpuset=[0, 4096]), host_cpus=2)[0]
    assert "4096" in said and "0-1" in said
    assert problems(good(emulatorpin="2048"), host_cpus={"vm1": 4})[0].count("2048") == 1
    assert "does not exist on the controller" in problems(good(vm_definition_image="/nope"))[0]
    assert "vm_template /t.j2 does not exist" in problems(
        good(vm_template="/t.j2", vm_definition_template="/t.j2"))[0]


def test_placement_hypervisor_and_plan_errors():
    assert "not a node" in problems(good(pinned_host="hv9"), nodes=["hv1"])[0]
    assert "ghost" in problems(good(colocated_vms=["ghost"]), colocation_group=["vm1"])[0]
    assert "not a host of the inventory" in problems(
        good(), hypervisors={"vm1": "hv9"}, known_hosts=["hv1"])[0]
    assert "the hypervisors group is empty" in problems(
        good(), hypervisors={"vm1": ""}, known_hosts=["hv1"])[0]
    invalid = {"vm1": {"error": "bad element", "xml_invalid": True}}
    assert "not a valid libvirt domain: bad element" in problems(good(), plan=invalid)[0]
    assert problems(good(), plan={"vm1": {"error": "It failed."}}) == ["vm1: It failed."]


def test_duplicate_macs_name_both_vms():
    one = good("vm1", bridges=[{"name": "br0", "mac_address": "52:54:00:00:00:01"}])
    two = good("vm2", ovs=[{"ovs_port": "p", "mac_address": "52:54:00:00:00:01".upper()}])
    said = check.mac_problems([one, two])
    assert len(said) == 1 and "vm1" in said[0] and "vm2" in said[0]
    twice = good("vm3", bridges=[{"mac_address": "52:54:00:00:00:03"}] * 2)
    assert "lists one twice" in check.mac_problems([twice])[0]


class Templar(object):
    def template(self, value):
        return value


def test_role_options_are_checked_once_naming_the_role():
    good = {"deploy_vms_cluster_parallelism": 4, "deploy_vms_cluster_prune_unlisted": False}
    assert check.role_option_problems("deploy_vms_cluster", good, Templar()) == []
    said = check.role_option_problems(
        "deploy_vms_standalone", {"deploy_vms_standalone_parallelism": "many"}, Templar())
    assert said[0].startswith("deploy_vms_standalone: ") and "parallelism" in said[0]


def test_vm_variables_of_the_deploy_roles_are_checked_with_vm_definitions():
    spec = check.vm_variable_spec(["deploy_vms_cluster", "deploy_vms_standalone"])
    assert {"memory", "pinned_host", "autostart", "hypervisor"} <= set(spec)
    said = check.vm_problems(good(migration_transport="pigeon"), spec, ARGS)
    assert "migration_transport" in said[0] and "pigeon" in said[0]


def test_where_the_plans_found_each_vm_decides_moves_and_refusals():
    vms = [good("here"), good("moved"), good("twice"), good("new"),
           good("gone", vm_definition_state="absent")]
    hypervisors = {"here": "hv1", "moved": "hv2", "twice": "hv1", "new": "hv2", "gone": "hv2"}
    listings = {"hv1": ["here", "moved", "twice", "gone", "other"], "hv2": ["twice"],
                "hv3": []}
    moves, refused = check.placements(vms, hypervisors, listings)
    # Found elsewhere: moved from there; on its own host or nowhere yet: no move; a VM to
    # remove is never moved.
    assert moves == {"moved": "hv1"}
    assert refused == ["twice: it is defined on hv1 and hv2: remove the copy that should not "
                       "be there, then deploy again."]
