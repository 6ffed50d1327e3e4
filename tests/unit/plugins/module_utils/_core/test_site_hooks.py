"""What the modules take from the hooks: allocate's NIC changes checked like the task's own
inputs and applied to a copy (the boot's definition), preboot's XML checked to be the same
domain. The hooks' runner is a stand-in returning what hooks would have printed."""
import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.site_hooks import SiteHooks

XML = ("<domain type='qemu'><name>vm1</name><uuid>7d0e0b5e-1f1a-4c55-9d4b-0c1f2e3d4a5b</uuid>"
       "<devices><interface type='bridge'><mac address='02:67:76:00:00:01'/>"
       "<source bridge='br0'/></interface></devices></domain>")


class Runner(object):
    def __init__(self, allocate=None, preboot=None):
        self.changes = allocate or {}
        self.xml = preboot

    def allocate(self, document):
        return self.changes

    def preboot(self, document):
        return self.xml


def site(**printed):
    return SiteHooks("standalone", 60, [], None, None, runner=Runner(**printed))


def test_nic_changes_apply_to_a_copy():
    root = dx.parse_domain(XML)
    allocation = site(allocate={"nics": [{"index": 0, "network": "vlan7", "mac": "02:AA:00:00:00:01",
                                          "vlan": 7}]}).allocate("vm1", "hv1", "start", root, {})
    boot = allocation.boot_root(root)
    nic = boot.find("devices/interface")
    assert (nic.get("type"), nic.find("source").attrib, nic.find("mac").get("address"),
            nic.find("vlan/tag").get("id")) == ("network", {"network": "vlan7"},
                                                "02:aa:00:00:00:01", "7")
    assert dx.to_string(root) == dx.to_string(dx.parse_domain(XML))  # the stored one is kept


@pytest.mark.parametrize("nic, sentence", [
    ({"index": 3, "vlan": 1}, "The allocate hooks changed NIC 3 of VM vm1, which has no such NIC."),
    ({"index": 0, "network": "a b"}, "The allocate hooks moved NIC 0 of VM vm1 to 'a b', which is "
                                     "not a network or bridge name."),
    ({"index": 0, "network": "n", "bridge": "b"}, "The allocate hooks moved NIC 0 of VM vm1 to both "
                                                  "a network and a bridge."),
    ({"index": 0, "vlan": 4096}, "The allocate hooks gave NIC 0 of VM vm1 the VLAN 4096: a tag is a "
                                 "number from 0 to 4095."),
    ({"index": 0, "mac": "01:00:5e:00:00:01"}, "The MAC the allocate hooks gave 01:00:5e:00:00:01 is a "
                                               "multicast address"),
])
def test_nic_changes_are_checked(nic, sentence):
    with pytest.raises(VmError) as err:
        site(allocate={"nics": [nic]}).allocate("vm1", "hv1", "start", dx.parse_domain(XML), {})
    assert err.value.msg.startswith(sentence)


def test_a_node_that_is_not_a_host_name_is_refused():
    with pytest.raises(VmError) as err:
        site(allocate={"node": "hv2; reboot"}).allocate("vm1", "hv1", "start", dx.parse_domain(XML), {})
    assert err.value.msg == "The allocate hooks returned the node 'hv2; reboot', which is not a host name."


@pytest.mark.parametrize("printed, sentence", [
    (XML.replace("vm1", "vm2"), "The preboot XML of VM vm1 names another domain (its name differs)."),
    (XML.replace("7d0e", "8d0e"), "The preboot XML of VM vm1 names another domain (its uuid differs)."),
    ('<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/shadow">]><domain>&x;</domain>', "XML the preboot hook"),
])
def test_preboot_xml_must_be_the_same_domain(printed, sentence):
    with pytest.raises(VmError) as err:
        site(preboot=printed).preboot("vm1", "hv1", "start", dx.parse_domain(XML), {})
    assert sentence in err.value.msg


def test_preboot_xml_of_the_same_domain_is_the_boot():
    printed = XML.replace("<devices>", "<memory unit='MiB'>256</memory><devices>")
    boot = site(preboot=printed).preboot("vm1", "hv1", "start", dx.parse_domain(XML), {})
    assert boot.findtext("memory") == "256"
