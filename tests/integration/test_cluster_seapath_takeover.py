"""A SEAPATH cluster switches to this collection without re-creating its VMs.

The fixture lays two VMs down in the lab exactly as SEAPATH's vm_manager 2.0 does (its
cluster module's create, enable_vm, create_snapshot, add_colocation and add_pacemaker_remote):
RBD group, ``system_<vm>`` and ``data_<vm>_0`` imported by qemu-img, every metadata key in
vm_manager's encoding (``_crm_config_cmd`` as lines joined by newlines, the remote as four
``_remote_node*`` keys, no ``_colocated_vms``), a domain XML without a uuid (vm_manager drew a
random one), one snapshot per image, and the Pacemaker side made by the same crmsh commands
(``ocf:seapath:VirtualDomain`` primitive, ``crm resource move`` for the preferred host, the
crm_config_cmd lines, a colocation as a resource set). The resource agent is a stand-in for
SEAPATH's (it fetches the XML from RBD when ``seapath=true``, then runs the heartbeat agent).

Then this collection takes them over: read, converge, rerun, snapshots, disable/enable, and
remove, and each step is checked where a user would see it (RBD, the CIB, the guest's
console). Tests run in file order.
"""
import json
import os
import subprocess
import uuid

import pytest
from lxml import etree

import cluster_lab as cl
import lab

PREFIX = "sptk"  # vm_manager's names: letters and digits only
VM, OTHER = PREFIX + "guest0", PREFIX + "guest1"
NODE = lab.node_name()
SECRET = "5b1a8d2e-3c4f-4e6a-9b7d-1f0e2c3a4b5d"  # the lab's "client.libvirt secret"
AGENT = "/usr/lib/ocf/resource.d/seapath/VirtualDomain"
CRM_LINES = ["location ping_test_%s %s rule pingd: defined pingd" % (VM, VM),
             "location %s-likes-%s %s 10: %s" % (VM, NODE, VM, NODE)]
REMOTE = {"_remote_node": "remote1", "_remote_node_address": "127.0.0.2",
          "_remote_node_port": "3121", "_remote_node_timeout": "20"}
# SEAPATH's agent with seapath=true: the definition from RBD into `config`, then heartbeat's.
STAND_IN_AGENT = r"""#!/bin/sh
: "${OCF_ROOT:=/usr/lib/ocf}"
HEARTBEAT="$OCF_ROOT/resource.d/heartbeat/VirtualDomain"
case "$1" in
meta-data)
    "$HEARTBEAT" meta-data | sed 's|<parameters>|<parameters><parameter name="seapath"><content type="boolean" default="false"/></parameter>|'
    exit $? ;;
start|migrate_from)
    if [ "$OCF_RESKEY_seapath" = true ]; then
        mkdir -p "$(dirname "$OCF_RESKEY_config")"
        rbd --id libvirt image-meta get "rbd/system_$OCF_RESOURCE_INSTANCE" xml \
            >"$OCF_RESKEY_config.new" && mv "$OCF_RESKEY_config.new" "$OCF_RESKEY_config" \
            || exit 1
    fi ;;
esac
exec "$HEARTBEAT" "$@"
"""

clean = cl.cleanup_fixture(PREFIX)


def crm(*words):
    """A crmsh command as vm_manager runs it (an argument list, no shell)."""
    proc = subprocess.run(["crm"] + list(words), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "crm %s: %s" % (" ".join(words), proc.stderr)


def vm_manager_xml(name, images):
    """vm_manager's _create_xml: its <name> appended last, a random uuid when the XML has
    none, then one RBD network disk per image (vda, vdb...) with its host list and secret."""
    root = etree.fromstring(lab.guest_xml(name))
    etree.SubElement(root, "uuid").text = str(uuid.uuid4())
    etree.SubElement(root, "name").text = name
    devices = root.find("devices")
    for index, image in enumerate(images):
        disk = etree.SubElement(devices, "disk", type="network", device="disk")
        etree.SubElement(disk, "driver", name="qemu", type="raw", cache="writeback")
        auth = etree.SubElement(disk, "auth", username="libvirt")
        etree.SubElement(auth, "secret", type="ceph", uuid=SECRET)
        source = etree.SubElement(disk, "source", protocol="rbd", name="rbd/" + image)
        etree.SubElement(source, "host", name="127.0.0.1", port="6789")
        etree.SubElement(disk, "target", dev="vd" + chr(ord("a") + index), bus="virtio")
    etree.indent(root, space="  ")  # ElementTree.indent: heartbeat's agent greps <name>
    return etree.tostring(root, encoding="unicode")


def wait_boot(console):
    """The next boot marker: vm_manager gives the guest no SMBIOS product name, so QEMU's own
    (with spaces) is printed until our definition runs it."""
    match = console.wait_for(r"booted name=(.*) uuid=(\S*) boot=(\d+) disks=(\S*)", 180)
    console.wait_for(r"alive tick=1 ", 60)
    return {"name": match.group(1), "uuid": match.group(2), "boot": int(match.group(3)),
            "disks": match.group(4).split(",")}


def import_qcow2(path, image):
    subprocess.run(["qemu-img", "convert", "-W", "-f", "qcow2", "-O", "raw", path,
                    "rbd:rbd/%s:id=libvirt" % image], check=True)


def lay_down(name, data_images, metadata, snapshot=None):
    """vm_manager's create: images, group, metadata on system_<name>; per-image snapshot."""
    images = ["system_" + name] + ["data_%s_%d" % (name, i) for i in range(len(data_images))]
    import_qcow2(lab.GUEST_IMAGE, images[0])
    for image, path in zip(images[1:], data_images):
        import_qcow2(path, image)
    cl.rbd_change("group", "create", name)
    for image in images:
        cl.rbd_change("group", "image", "add", name, image)
    values = {"vm_name": name, "xml": vm_manager_xml(name, images),
              "_base_xml": lab.guest_xml(name), "_disk_bus": "virtio"}
    values.update(metadata)
    for key, value in values.items():
        cl.rbd_change("image-meta", "set", images[0], key, value)
    for image in images if snapshot else []:
        cl.rbd_change("snap", "create", "%s@%s" % (image, snapshot))
    return values


def enable_vm(name, metadata, nostart=False):
    """vm_manager's enable_vm: the primitive (unmanaged), the preferred host as a move, the
    crm_config_cmd lines, then managed."""
    live = metadata.get("_live_migration", "false")
    crm("configure", "primitive", name, "ocf:seapath:VirtualDomain", "params",
        "force_stop=false", "migration_downtime=0", "config=/etc/pacemaker/%s.xml" % name,
        "hypervisor='qemu:///system'", "seapath='true'", "migration_transport=ssh",
        "migration_user='root'", "meta", "allow-migrate='%s'" % live, "is-managed=false",
        "priority='0'", "target-role=%s" % ("Stopped" if nostart else "Started"),
        "resource-stickiness='1'", "op", "start", "timeout='120'", "op", "stop",
        "timeout='30'", "op", "migrate_from", "timeout='60'", "op", "migrate_to",
        "timeout='120'", "op", "monitor", "timeout='60'", "interval='10'")
    if metadata.get("_preferred_host"):
        crm("resource", "move", name, metadata["_preferred_host"])
    for line in (metadata.get("_crm_config_cmd") or "").split("\n"):
        if line:
            crm(*(["configure"] + line.split(" ")))
    crm("resource", "manage", name)


@pytest.fixture(scope="module")
def seapath_vms(tmp_path_factory):
    """Both VMs as vm_manager leaves them: VM running (its first boot seen), OTHER stopped
    with a pacemaker remote and a weak colocation with VM as a resource set."""
    os.makedirs(os.path.dirname(AGENT), exist_ok=True)
    with open(AGENT, "w") as handle:
        handle.write(STAND_IN_AGENT)
    os.chmod(AGENT, 0o755)
    data = str(tmp_path_factory.mktemp("seapath") / "additional_data.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", data, "16M"], check=True)
    console = lab.Console(VM)
    vm_meta = lay_down(VM, [data], {
        "_live_migration": "true", "_migration_user": "root", "_preferred_host": NODE,
        "_crm_config_cmd": "\n".join(CRM_LINES), "_pacemaker_meta": '{"resource-stickiness": 1}',
        "_additional_disks": "1"}, snapshot="snap1")
    enable_vm(VM, vm_meta)
    first = wait_boot(console)
    other_meta = lay_down(OTHER, [], {})
    enable_vm(OTHER, other_meta, nostart=True)
    crm("configure", "colocation", "colocation-%s-with%s" % (OTHER, VM), "700:", OTHER, "(",
        VM, ")")
    for key, value in REMOTE.items():  # add_pacemaker_remote: metadata, then the meta
        cl.rbd_change("image-meta", "set", "system_" + OTHER, key, value)
    for name, key in (("remote-port", "_remote_node_port"),
                      ("remote-connect-timeout", "_remote_node_timeout"),
                      ("remote-addr", "_remote_node_address"), ("remote-node", "_remote_node")):
        crm("resource", "meta", OTHER, "set", name, REMOTE[key])
    yield {"data": data, "first_boot": first, "console": console,
           "uuid": etree.fromstring(vm_meta["xml"]).findtext("uuid")}
    cl.remove_all(PREFIX)
    os.unlink(AGENT)
    os.rmdir(os.path.dirname(AGENT))
    for name in (VM, OTHER):
        if os.path.exists("/etc/pacemaker/%s.xml" % name):
            os.unlink("/etc/pacemaker/%s.xml" % name)


def seapath_create(name, **extra):
    """The cluster_vm create task SEAPATH's deploy role runs for the VM, as our converge."""
    args = {"name": name, "command": "create", "xml": lab.guest_xml(name),
            "system_image": lab.GUEST_IMAGE}
    args.update(extra)
    return args


def vm_inputs(seapath_vms):
    return seapath_create(VM, additional_disks=[seapath_vms["data"]], preferred_host=NODE,
                          live_migration=True, migration_user="root",
                          crm_config_cmd=CRM_LINES,
                          pacemaker_meta={"resource-stickiness": 1})


def other_inputs():
    return seapath_create(OTHER, nostart=True)


def constraint_ids():
    cib = etree.fromstring(cl.cib_configuration())
    return sorted(c.get("id") for c in cib.find(".//constraints")
                  if PREFIX in etree.tostring(c, encoding="unicode"))


def set_colocation():
    return cl.cib_xpath("//rsc_colocation[@id='colocation-%s-with%s']" % (OTHER, VM))


def test_status_and_list_read_a_vm_manager_vm(seapath_vms):
    assert cl.status(VM) == ("Started", NODE)
    assert cl.status(OTHER)[0] == "Stopped"
    listed = cl.ok({"command": "list_vms"})["list_vms"]
    assert VM in listed and OTHER in listed
    snaps = cl.ok({"name": VM, "command": "list_snapshots"})
    assert snaps["list_snapshot"] == ["snap1"]
    result = cl.ok({"name": VM, "command": "status"})
    assert result["uuid"] == seapath_vms["uuid"]
    assert result["images"] == ["system_" + VM, "data_%s_0" % VM]


def test_a_converge_takes_the_vm_over_without_reimporting(seapath_vms):
    ids_before = dict((i, cl.image_info(i)["id"]) for i in cl.images() if PREFIX in i)
    before = cl.fingerprint()
    predicted = cl.run_cluster(vm_inputs(seapath_vms), check=True)
    assert not predicted["failed"] and predicted["changed"], predicted
    assert cl.fingerprint() == before
    console = seapath_vms["console"]
    console.mark()
    result = cl.ok(vm_inputs(seapath_vms))
    assert result["changed"] and result["status"] == "Started", result
    assert result["restart_required"] is False, result
    # The guest restarted once, under our agent, from its own disks: same boot counter
    # (one more), the uuid vm_manager drew, both disks.
    boot = wait_boot(console)
    assert boot["boot"] == seapath_vms["first_boot"]["boot"] + 1, boot
    assert boot["uuid"] == seapath_vms["uuid"]
    assert len(boot["disks"]) == 2, boot
    assert dict((i, cl.image_info(i)["id"]) for i in cl.images() if PREFIX in i) == ids_before
    prim = etree.fromstring(cl.cib_xpath("//primitive[@id='%s']" % VM))
    assert (prim.get("provider"), prim.get("type")) == ("gridvirt", "VirtualDomain")
    assert len(etree.fromstring(cl.cib_configuration()).findall(
        ".//primitive[@id='%s']" % VM)) == 1
    ids = constraint_ids()
    # vm_manager's move constraint became our preference; its crm lines' constraints and
    # the other VM's colocation stay.
    assert "cli-prefer-%s" % VM not in ids and "location-%s-prefer-%s" % (VM, NODE) in ids
    for kept in ("ping_test_%s" % VM, "%s-likes-%s" % (VM, NODE),
                 "colocation-%s-with%s" % (OTHER, VM)):
        assert kept in ids, ids
    stored = cl.image_meta("system_" + VM)
    assert json.loads(stored["_crm_config_cmd"]) == CRM_LINES


def test_the_rerun_changes_nothing(seapath_vms):
    before = cl.fingerprint()
    again = cl.ok(vm_inputs(seapath_vms))
    assert again["changed"] is False, again["changes"]
    assert again["restart_required"] is False
    checked = cl.run_cluster(vm_inputs(seapath_vms), check=True)
    assert checked["changed"] is False, checked["changes"]
    assert cl.fingerprint() == before


def test_its_pacemaker_remote_is_kept(seapath_vms):
    result = cl.ok(other_inputs())
    assert result["changed"] and result["status"] == "Stopped", result
    prim = cl.cib_xpath("//primitive[@id='%s']" % OTHER)
    for name, key in (("remote-node", "_remote_node"), ("remote-addr", "_remote_node_address"),
                      ("remote-port", "_remote_node_port"),
                      ("remote-connect-timeout", "_remote_node_timeout")):
        assert 'name="%s" value="%s"' % (name, REMOTE[key]) in prim, (name, prim)
    assert json.loads(cl.image_meta("system_" + OTHER)["_remote"])["name"] == "remote1"
    assert cl.ok(other_inputs())["changed"] is False


def test_disable_and_enable_keep_its_constraints(seapath_vms):
    colocation = etree.tostring(etree.fromstring(set_colocation()), method="c14n")
    disabled = cl.ok({"name": VM, "command": "disable"})
    assert disabled["changed"] and disabled["status"] == "Disabled"
    assert not set_colocation() and not [i for i in constraint_ids() if VM in i]
    console = seapath_vms["console"]
    console.mark()
    enabled = cl.ok({"name": VM, "command": "enable"})
    assert enabled["changed"] and enabled["status"] == "Started", enabled
    wait_boot(console)
    assert etree.tostring(etree.fromstring(set_colocation()), method="c14n") == colocation
    ids = constraint_ids()
    for kept in ("ping_test_%s" % VM, "%s-likes-%s" % (VM, NODE),
                 "location-%s-prefer-%s" % (VM, NODE)):
        assert kept in ids, ids


def test_its_colocation_becomes_ours_when_the_deploy_defines_it(seapath_vms):
    task = {"name": OTHER, "command": "define_colocation", "colocated_vms": [VM]}
    result = cl.ok(task)
    assert result["changed"]
    ids = constraint_ids()
    assert "colocation-%s-with%s" % (OTHER, VM) not in ids
    assert "colocation-%s-%s-weak" % (OTHER, VM) in ids
    assert cl.ok(task)["changed"] is False


def test_its_snapshots_roll_back(seapath_vms):
    # Refused first, changing nothing: a disk without the snapshot would be left apart.
    cl.rbd_change("snap", "create", "data_%s_0@onlydata" % VM)
    cl.rbd_change("snap", "create", "system_%s@halfway" % VM)
    before = cl.fingerprint()
    refused = cl.run_cluster({"name": VM, "command": "rollback_snapshot",
                              "snapshot_name": "halfway"})
    assert refused["failed"] and refused["msg"] == (
        "VM %s cannot be rolled back to snapshot halfway: its disks data_%s_0 have no "
        "snapshot of that name." % (VM, VM)), refused
    assert cl.fingerprint() == before
    removed = cl.ok({"name": VM, "command": "remove_snapshot", "snapshot_name": "halfway"})
    assert removed["changed"] and removed["list_snapshot"] == ["snap1"]
    console = seapath_vms["console"]
    console.mark()
    rolled = cl.ok({"name": VM, "command": "rollback_snapshot", "snapshot_name": "snap1"})
    assert rolled["changed"] and rolled["list_snapshot"] == ["snap1"], rolled
    assert cl.status(VM) == ("Started", NODE)
    # The disks as they were before vm_manager's first start: that boot's number again.
    assert wait_boot(console)["boot"] == seapath_vms["first_boot"]["boot"]


def test_a_hostile_stored_line_fails_the_takeover_changing_nothing(seapath_vms):
    """Anyone with the Ceph key can write the metadata: a stored crmsh line that is not a
    constraint of the VM is refused before anything is written, the intent included."""
    name = PREFIX + "guest2"
    hostile = "location %s-ok %s 10: %s\nerase" % (name, name, NODE)
    lay_down(name, [], {"_crm_config_cmd": hostile})
    before = cl.fingerprint()
    result = cl.run_cluster(seapath_create(name))
    assert result["failed"] and result["msg"].startswith(
        "Stored crm_config_cmd[1] of VM %s ('erase'): only location, colocation and order"
        % name), result
    assert "changed" not in result or result["changed"] is False, result
    assert cl.fingerprint() == before


def test_remove_leaves_nothing(seapath_vms):
    for name in (OTHER, VM, PREFIX + "guest2"):
        result = cl.ok({"name": name, "command": "remove", "purge": True})
        assert result["changed"] and result["status"] == "Undefined", result
    assert not [i for i in cl.images() if PREFIX in i]
    assert not [g for g in cl.groups() if PREFIX in g]
    assert not [t for t in cl.trash() if PREFIX in t]
    assert not [o for o in cl.lock_objects() if PREFIX in o]
    assert not constraint_ids()
    assert not cl.cib_xpath("//primitive[starts-with(@id, '%s')]" % PREFIX)
