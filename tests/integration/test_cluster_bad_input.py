"""cluster_vm bad input: each case fails with one clear sentence and changes nothing in the
CIB, RBD or libvirt."""
import pytest

import cluster_lab as cl
import lab

PREFIX = "itd"
VM = PREFIX + "vm1"
GOOD_XML = lab.guest_xml(VM)
DISK_XML = GOOD_XML.replace(
    "<devices>", "<devices><disk type='network' device='disk'><source protocol='rbd' "
    "name='rbd/other'/><target dev='vda' bus='virtio'/></disk>")


def create(**extra):
    args = {"name": VM, "state": "present", "xml": GOOD_XML, "system_image": lab.GUEST_IMAGE}
    args.update(extra)
    return dict((k, v) for k, v in args.items() if v is not None)


def on_vm(command, **extra):
    args = {"name": VM, "command": command}
    args.update(extra)
    return args


# (case id, module arguments, expected part of the message)
CASES = lab.control_character_cases(VM, create) + [
    ("empty name", create(name=""), "VM name must not be empty"),
    ("shell metacharacters", create(name="vm;reboot"), "Invalid VM name"),
    ("name too long", create(name="v" * 64), "Invalid VM name"),
    ("name with a slash", create(name="rbd/vm"), "Invalid VM name"),
    ("malformed xml", create(xml="<domain><name>x</domain>"), "not well-formed XML"),
    ("xml with its own disk", create(xml=DISK_XML), "must not contain disk devices"),
    ("missing image", create(system_image="/nonexistent/disk.qcow2"),
     "Disk image /nonexistent/disk.qcow2 does not exist on the hypervisor (or is not a file)."),
    ("create without image", create(system_image=None), "give both xml and system_image"),
    ("unknown preferred host", create(preferred_host="nosuchnode"),
     "preferred_host nosuchnode is not a node of the cluster"),
    ("unknown pinned host", create(pinned_host="nosuchnode"),
     "pinned_host nosuchnode is not a node of the cluster"),
    ("bad pool name", create(pool="a/b"), "Invalid storage pool name"),
    ("unknown pool", create(pool="nosuchpool"), "The Ceph pool nosuchpool does not exist."),
    ("bad secret uuid", create(secret_uuid="not-a-uuid"), "Invalid UUID"),
    ("negative disk size", create(additional_disks=["-1G"]), "Invalid additional disk size"),
    ("reserved metadata key xml", create(metadata={"xml": "x"}), "reserved"),
    ("internal metadata key", create(metadata={"_pinned_host": "x"}), "Invalid metadata key"),
    ("metadata key with space", create(metadata={"a b": "x"}), "Invalid metadata key"),
    ("bad stop timeout", create(stop_timeout="soon"), "stop_timeout must be a positive"),
    ("negative priority", create(priority="-3"), "priority must be a whole number"),
    ("forbidden pacemaker meta", create(pacemaker_meta={"target-role": "Started"}),
     "pacemaker_meta cannot set target-role"),
    ("nested pacemaker param", create(pacemaker_params={"a": {"b": 1}}),
     "must be a string or a number"),
    ("constraint without type", create(constraints=[{"node": "x"}]),
     "constraints[0]: type must be one of"),
    ("constraint with unknown key", create(constraints=[{"type": "ban", "node": "x",
                                                         "colour": "red"}]),
     "unknown key(s) colour"),
    ("location on an unknown node", create(constraints=[{"type": "location",
                                                         "node": "nosuchnode"}]),
     "not a node of the cluster"),
    ("bad constraint score", create(constraints=[{"type": "location", "node": "x",
                                                  "score": "high"}]), "is not a number"),
    ("raw constraint not naming the VM", create(constraints=[{
        "type": "xml", "xml": '<rsc_location id="x1" rsc="other" node="n" score="1"/>'}]),
     "must name the VM"),
    ("raw constraint malformed", create(constraints=[{"type": "xml", "xml": "<rsc_location"}]),
     "not well-formed"),
    ("colocated with itself", create(colocated_vms=[VM]), "cannot be colocated with itself"),
    ("colocated with a missing VM", create(colocated_vms=[PREFIX + "ghost"]),
     "VM %sghost does not exist." % PREFIX),
    ("state and command", {"name": VM, "state": "present", "command": "status"},
     "mutually exclusive"),
    ("purge number and date", on_vm("purge_image", purge_number=1,
                                    purge_date={"posix": 1}), "mutually exclusive"),
    ("bad purge date", on_vm("purge_image", purge_date={"date": "21/11/2026"}),
     "Invalid purge_date"),
    ("bad iso date", on_vm("purge_image", purge_date={"iso_8601": "yesterday"}),
     "Invalid purge_date"),
    ("clone without source", on_vm("clone"), "src_name is required"),
    ("clone of a missing VM", on_vm("clone", src_name=PREFIX + "ghost"),
     "VM %sghost does not exist." % PREFIX),
    ("bad snapshot name", on_vm("create_snapshot", snapshot_name="a b"),
     "Invalid snapshot name"),
    ("start a missing VM", on_vm("start"), "VM %s does not exist." % VM),
    ("snapshot of a missing VM", on_vm("create_snapshot", snapshot_name="s"),
     "VM %s does not exist." % VM),
    ("colocation without VMs", on_vm("define_colocation"), "colocated_vms is required"),
    ("remote without name", on_vm("add_pacemaker_remote"), "remote_name is required"),
    ("remote port out of range", on_vm("add_pacemaker_remote", remote_name="r",
                                       remote_port=70000), "remote_port must be between"),
    ("get_metadata without key", on_vm("get_metadata"), "metadata_name is required"),
    ("negative trash delay", {"name": VM, "state": "absent", "trash_delay": -1},
     "trash_delay must be zero or more"),
    ("pacemaker attribute name with newline",
     create(pacemaker_meta={"resource-stickiness\n": 1}),
     "pacemaker_meta: 'resource-stickiness\\n' is not a valid attribute name."),
    ("doctype with a file entity", create(xml=(
        "<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
        + GOOD_XML.replace("<vcpu>", "<description>&x;</description><vcpu>"))),
     "The xml option must not contain a DOCTYPE declaration."),
    ("doctype with an http DTD", create(xml=(
        "<!DOCTYPE domain SYSTEM 'http://127.0.0.1:9/d.dtd'>" + GOOD_XML)),
     "The xml option must not contain a DOCTYPE declaration."),
    ("billion laughs", create(xml=(
        "<!DOCTYPE domain [<!ENTITY a0 'lol'>"
        + "".join("<!ENTITY a%d '%s'>" % (i, ("&a%d;" % (i - 1)) * 10) for i in range(1, 11))
        + "]>" + GOOD_XML.replace("<vcpu>", "<description>&a10;</description><vcpu>"))),
     "The xml option must not contain a DOCTYPE declaration."),
    ("xml nested 10000 deep", create(xml=(
        "<domain type='qemu'>" + "<x>" * 10000 + "</x>" * 10000 + "</domain>")),
     "The xml option is not well-formed XML: Excessive depth in document: 256"),
    # Numbers Ansible's own int conversion would crash on ("cannot convert Infinity").
    ("trash delay inf", {"name": VM, "state": "absent", "trash_delay": "inf"},
     "trash_delay must be zero or more and at most 315360000 (a whole number), not 'inf'."),
    ("trash delay 1e400", {"name": VM, "state": "absent", "trash_delay": 1e400},
     "trash_delay must be zero or more and at most 315360000 (a whole number), not inf."),
    ("connect timeout nan", create(connect_timeout=float("nan")),
     "connect_timeout must be at least 1 and at most 600 (a whole number), not nan."),
    ("connect timeout zero", create(connect_timeout=0),
     "connect_timeout must be at least 1 and at most 600 (a whole number), not 0."),
    ("remote port inf", on_vm("add_pacemaker_remote", remote_name="r", remote_port=1e400),
     "remote_port must be a whole number, not inf."),
    ("purge number inf", on_vm("purge_image", purge_number="inf"),
     "purge_number must be a whole number, not 'inf'."),
]

clean = cl.cleanup_fixture(PREFIX)


def test_the_table_is_large_enough():
    assert len(CASES) >= 25


table = lab.refusal_table(CASES, cl.fingerprint, module=cl.MODULE)


@pytest.mark.parametrize("case,expected", [(c[0], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_fails_cleanly_and_changes_nothing(table, case, expected):
    lab.assert_refused(table, case, expected)


@pytest.fixture(scope="module")
def existing_vm():
    result = cl.ok(cl.vm_args(VM, state="present"))
    assert result["changed"]
    return result


EXISTING_CASES = [
    ("unknown snapshot", on_vm("rollback_snapshot", snapshot_name="nosuch"),
     "VM %s has no snapshot nosuch." % VM),
    ("unknown metadata key", on_vm("get_metadata", metadata_name="nope"),
     "has no metadata key nope"),
    ("set a reserved key", on_vm("set_metadata", metadata={"vm_name": "x"}), "reserved"),
    ("clone onto itself", on_vm("clone", src_name=VM), "different from its source"),
    ("clone from an unknown snapshot",
     {"name": PREFIX + "c", "command": "clone", "src_name": VM, "snapshot_name": "nosuch"},
     "has no snapshot nosuch"),
    ("update to an unknown host", {"name": VM, "state": "present", "pinned_host": "nowhere"},
     "pinned_host nowhere is not a node"),
    ("xml refused by libvirt", create(xml=GOOD_XML.replace("<vcpu>1</vcpu>",
                                                           "<vcpu>1</vcpu><bogus/>")),
     "does not pass libvirt's schema"),
]


@pytest.fixture(scope="module")
def existing_table(existing_vm):
    return lab.run_refusals(EXISTING_CASES, cl.fingerprint, module=cl.MODULE)


@pytest.mark.parametrize("case,expected", [(c[0], c[2]) for c in EXISTING_CASES],
                         ids=[c[0] for c in EXISTING_CASES])
def test_bad_input_on_an_existing_vm(existing_table, case, expected):
    lab.assert_refused(existing_table, case, expected)


NODE_TIMEOUT_CASES = [
    ("timeout %s" % shown, {"name": lab.node_name(), "state": "online", "timeout": timeout},
     "timeout must be at least 1 and at most 86400 (a whole number), not %s." % shown)
    for timeout, shown in [("inf", "'inf'"), (1e400, "inf"), (0, "0"), (86401, "86401")]]
node_timeouts = lab.refusal_table(NODE_TIMEOUT_CASES, cl.fingerprint,
                                  module="gridvirt.kvm.cluster_node")


@pytest.mark.parametrize("case,expected", [(c[0], c[2]) for c in NODE_TIMEOUT_CASES],
                         ids=[c[0] for c in NODE_TIMEOUT_CASES])
def test_cluster_node_timeout_is_a_bounded_whole_number(node_timeouts, case, expected):
    lab.assert_refused(node_timeouts, case, expected)
