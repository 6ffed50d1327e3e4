"""vm_manager's encodings of a VM's intent, read as ours; the constraints it made from that
intent, recognised so that ours replace them."""
import json

from lxml import etree

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import seapath_layout as seapath

SEAPATH_METADATA = {
    "vm_name": "guest0", "xml": "<domain/>", "_base_xml": "<domain/>",
    "_crm_config_cmd": "location ping_test_guest0 guest0 rule pingd: defined pingd\n"
                       "order guest0-after-db Mandatory: db guest0",
    "_remote_node": "remote1", "_remote_node_address": "10.0.0.9",
    "_remote_node_port": "3121", "_remote_node_timeout": "20",
    "_live_migration": "true", "_pacemaker_meta": '{"resource-stickiness": 1}',
    "_additional_disks": "1", "_disk_bus": "virtio",
}


def test_vm_manager_encodings_read_as_ours():
    ours = seapath.adopted(SEAPATH_METADATA)
    assert json.loads(ours["_crm_config_cmd"]) == [
        "location ping_test_guest0 guest0 rule pingd: defined pingd",
        "order guest0-after-db Mandatory: db guest0"]
    assert json.loads(ours["_remote"]) == {"name": "remote1", "address": "10.0.0.9",
                                           "port": "3121", "timeout": "20"}
    assert not [k for k in ours if k.startswith("_remote_node")]
    # What vm_manager and we encode alike is kept as it is.
    for key in ("_live_migration", "_pacemaker_meta", "_additional_disks", "_disk_bus", "xml"):
        assert ours[key] == SEAPATH_METADATA[key]
    # The pacemaker remote comes back on the primitive we build from it.
    meta = ci.resource_meta(ours)
    assert (meta["remote-node"], meta["remote-addr"], meta["remote-port"],
            meta["remote-connect-timeout"]) == ("remote1", "10.0.0.9", "3121", "20")
    assert [" ".join(w) for w in ci.stored_crm_commands("guest0", ours)][1] == \
        "order guest0-after-db Mandatory: db guest0"


def test_a_vm_of_ours_reads_unchanged():
    ours = {"vm_name": "web", "_crm_config_cmd": '["order web-after-db Mandatory: db web"]',
            "_remote": '{"address": "r1", "name": "r1"}', "_live_migration": "false"}
    assert seapath.adopted(ours) == ours


def test_a_remote_without_port_or_address():
    ours = seapath.adopted({"_remote_node": "remote1"})
    assert json.loads(ours["_remote"]) == {"name": "remote1", "address": "remote1"}


def test_blank_crm_lines_are_dropped():
    ours = seapath.adopted({"_crm_config_cmd": "\n\norder a-b Mandatory: b a\n"})
    assert json.loads(ours["_crm_config_cmd"]) == ["order a-b Mandatory: b a"]


def colocation_set(cid, vm, others):
    element = etree.fromstring(
        '<rsc_colocation id="%s" score="700"><resource_set id="%s-0"><resource_ref id="%s"/>'
        '</resource_set><resource_set id="%s-1" sequential="false">%s</resource_set>'
        '</rsc_colocation>' % (cid, cid, vm, cid, "".join(
            '<resource_ref id="%s"/>' % o for o in others)))
    return element


def test_resource_sets_name_their_resources():
    element = colocation_set("colocation-guest1-withguest0-db", "guest1", ["guest0", "db"])
    assert pcib.named_resources(element) == {"guest1", "guest0", "db"}


def test_vm_manager_placement_is_replaced_by_ours():
    metadata = {"_preferred_host": "hv1"}
    prefer = etree.fromstring('<rsc_location id="cli-prefer-guest0" rsc="guest0" role="Started" '
                              'node="hv1" score="INFINITY"/>')
    assert seapath.replaced_by_ours("guest0", prefer, metadata)
    # An operator's move to another node is not the stored preference: it stays.
    assert not seapath.replaced_by_ours("guest0", prefer, {"_preferred_host": "hv2"})
    assert not seapath.replaced_by_ours("guest0", prefer, {})
    pin = etree.fromstring('<rsc_location id="pin-guest0-onhv2" rsc="guest0" '
                           'resource-discovery="exclusive" node="hv2" score="INFINITY"/>')
    assert seapath.replaced_by_ours("guest0", pin, {"_pinned_host": "hv2"})
    assert not seapath.replaced_by_ours("guest0", pin, {"_pinned_host": "hv3"})


def test_a_colocation_set_is_replaced_once_ours_says_the_same():
    weak = colocation_set("colocation-guest1-withguest0", "guest1", ["guest0"])
    strong = colocation_set("colocation-strong-guest1-withguest0", "guest1", ["guest0"])
    assert not seapath.replaced_by_ours("guest1", weak, {})
    assert seapath.replaced_by_ours("guest1", weak, {"_colocated_vms": '{"guest0": "weak"}'})
    assert not seapath.replaced_by_ours("guest1", strong,
                                        {"_colocated_vms": '{"guest0": "weak"}'})
    assert seapath.replaced_by_ours("guest1", strong,
                                    {"_colocated_vms": '{"guest0": "strong"}'})
    # The set of another VM that names this one is that VM's, not this one's.
    assert not seapath.replaced_by_ours("guest0", weak, {"_colocated_vms": '{"guest1": "weak"}'})
