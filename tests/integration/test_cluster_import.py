"""cluster_vm command=import on the lab: a standalone VM of this node's libvirt made a
cluster VM. Its disks go to RBD (SEAPATH's names), the guest boots from them with the same
UUID and MACs (its boot counter, kept on its disk, goes on), the standalone definition and
volumes are gone once it runs; --check and a rerun change nothing; what cannot be imported
is refused with a sentence, changing nothing on either side."""
import pytest

import cluster_lab as cl
import lab

PREFIX = "itm"
VM = PREFIX + "vm1"
SNAPPED = PREFIX + "snap"

# Set up in this order, torn down in the reverse: the cluster VM (whose domain has the
# prefix too) goes through the cluster first.
clean_standalone = lab.cleanup_fixture(PREFIX)
clean_cluster = cl.cleanup_fixture(PREFIX)


def import_args(name=VM, **extra):
    args = {"name": name, "command": "import", "src_uri": lab.URI,
            "preferred_host": lab.node_name()}
    args.update(extra)
    return args


def both_sides():
    return cl.fingerprint(), lab.fingerprint()


@pytest.fixture(scope="module")
def standalone_vm():
    """imp VM running as a standalone VM of this node, with a data disk, booted once."""
    console = lab.Console(VM)
    result = lab.run_module({"name": VM, "state": "running", "xml": lab.guest_xml(VM),
                             "system_image": lab.GUEST_IMAGE, "additional_disks": ["16M"],
                             "metadata": {"role": "edge"}})
    assert result["changed"], result
    assert console.wait_boot()["boot"] == 1
    return result


def test_check_mode_predicts_the_import_and_changes_nothing(standalone_vm):
    before = both_sides()
    result = cl.run_cluster(import_args(), check=True)
    assert not result.get("failed") and result["changed"], result
    assert both_sides() == before


def test_import_boots_the_vm_from_rbd_with_its_identity(standalone_vm):
    console = lab.Console(VM)
    result = cl.ok(import_args())
    assert result["changed"] and result["status"] == "Started", result
    assert result["uuid"] == standalone_vm["uuid"]
    boot = console.wait_boot()
    # Its own disk came along: the counter it keeps there goes on.
    assert boot["boot"] == 2 and boot["uuid"] == standalone_vm["uuid"]
    assert boot["disks"] == ["vda", "vdb"]
    assert {"system_" + VM, "data_%s_1" % VM} <= set(cl.images())
    assert cl.image_meta("system_" + VM)["role"] == "edge"
    live = lab.domain_xml(VM, inactive=False)
    assert [s.get("protocol") for s in live.findall("devices/disk/source")] == ["rbd", "rbd"]
    assert [m.get("address") for m in live.findall("devices/interface/mac")] == \
        standalone_vm["macs"]
    # Nothing of the standalone VM is left: no definition, no volume.
    listed = lab.run_module({"command": "list_vms"})
    assert VM not in [vm["name"] for vm in listed["vms"] if vm["persistent"]]
    assert not [f for f in lab.pool_files() if f.startswith(VM + ".")]
    assert not [i for i in cl.images() if i.startswith("_gvimport_")]


def test_rerun_changes_nothing(standalone_vm):
    before = both_sides()
    result = cl.ok(import_args())
    assert not result["changed"], result["changes"]
    assert both_sides() == before


def test_a_vm_with_snapshots_is_refused_and_nothing_changes():
    created = lab.run_module({"name": SNAPPED, "state": "present", "xml": lab.guest_xml(SNAPPED),
                              "system_image": lab.GUEST_IMAGE})
    assert created["changed"], created
    snap = lab.run_module({"name": SNAPPED, "command": "create_snapshot",
                           "snapshot_name": "s1"})
    assert snap["changed"], snap
    before = both_sides()
    result = cl.run_cluster(import_args(SNAPPED))
    assert result.get("failed") and "has snapshots (s1)" in result["msg"], result
    assert both_sides() == before


@pytest.mark.parametrize("uri,said", [
    ("qemu+ssh://hv2/system?netcat=/tmp/x", "parameter netcat is not accepted"),
    ("xen:///system", "is not a libvirt URI"),
    (None, "src_uri is required when command is import."),
])
def test_bad_source_uris_are_sentences(uri, said):
    before = both_sides()
    args = import_args(src_uri=uri)
    result = cl.run_cluster(dict((k, v) for k, v in args.items() if v is not None))
    assert result.get("failed") and said in result["msg"], result
    assert both_sides() == before


def test_a_missing_source_vm_is_a_sentence():
    result = cl.run_cluster(import_args(PREFIX + "none"))
    assert result.get("failed")
    assert result["msg"] == "Cannot import VM %snone: it does not exist on %s." % (
        PREFIX, lab.conn().getHostname())


def test_the_running_cluster_vm_is_not_a_source(standalone_vm):
    """This node is the source host too: the imported VM's transient domain here is the
    cluster's, not a standalone VM to import again."""
    result = cl.run_cluster(import_args(name=PREFIX + "other", src_name=VM))
    assert result.get("failed"), result
    assert result["msg"] == ("Cannot import VM %s: it runs on %s without a definition there (a "
                             "transient domain), so it is not a standalone VM."
                             % (VM, lab.conn().getHostname()))
