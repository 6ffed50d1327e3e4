"""The cloud-init NoCloud documents a VM's addresses become: what the guest is told (its
addresses, gateway, DNS, names, keys), when its instance-id changes (cloud-init reapplies the
network config only then), and the input that is refused before anything is written."""
import json

import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils import cloud_init_seed as cis
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMn1R0ZQv8pJ0Fh0cZ4xgJmW8wXQw3b6dE2nYt3kK2rQ ops@site"


def address(nic=0, **changes):
    base = {"vm": "web1", "nic": nic, "pool": "lan", "mac": "02:67:76:00:00:%02x" % (nic + 1),
            "ip": "192.0.2.%d" % (10 + nic), "prefix": 24, "gateway": "192.0.2.1",
            "dns_servers": ["192.0.2.53", "2001:db8::53"], "domain": "example.org",
            "fqdn": "web1.example.org"}
    base.update(changes)
    return base


def yaml_of(text):
    """The documents are JSON, which every YAML parser reads the same way."""
    return json.loads(text)


def user_data(seed):
    text = seed.documents["user-data"]
    assert text.startswith("#cloud-config\n")
    return yaml_of(text.split("\n", 1)[1])


def test_a_static_nic_gets_its_address_gateway_and_dns_matched_by_mac():
    seed = cis.Seed("web1", [address()])
    assert yaml_of(seed.documents["network-config"]) == seed.network_config == {
        "version": 2,
        "ethernets": {"eth0": {
            "match": {"macaddress": "02:67:76:00:00:01"}, "set-name": "eth0",
            "addresses": ["192.0.2.10/24"], "gateway4": "192.0.2.1",
            "nameservers": {"addresses": ["192.0.2.53", "2001:db8::53"],
                            "search": ["example.org"]}}}}


def test_an_ipv6_nic_gets_gateway6_and_a_mac_only_nic_gets_dhcp():
    seed = cis.Seed("web1", [
        address(0, ip="2001:db8::10", prefix=64, gateway="2001:db8::1"),
        address(1, ip=None, prefix=None, gateway=None, dns_servers=None, domain=None)])
    ethernets = seed.network_config["ethernets"]
    assert ethernets["eth0"]["addresses"] == ["2001:db8::10/64"]
    assert ethernets["eth0"]["gateway6"] == "2001:db8::1"
    assert ethernets["eth1"] == {"match": {"macaddress": "02:67:76:00:00:02"},
                                 "set-name": "eth1", "dhcp4": True}


def test_nics_are_named_after_their_index_whatever_the_list_order():
    seed = cis.Seed("web1", [address(2), address(0)])
    ethernets = seed.network_config["ethernets"]
    assert sorted(ethernets) == ["eth0", "eth2"]
    assert ethernets["eth2"]["match"]["macaddress"] == "02:67:76:00:00:03"


def test_meta_and_user_data_name_the_guest_with_the_first_nics_domain():
    seed = cis.Seed("web1", [address(0, domain=None), address(1, domain="lan.example")],
                    ssh_authorized_keys=[KEY])
    assert yaml_of(seed.documents["meta-data"]) == {
        "instance-id": seed.instance_id, "local-hostname": "web1"}
    assert user_data(seed) == {"hostname": "web1", "fqdn": "web1.lan.example",
                               "ssh_authorized_keys": [KEY]}


def test_a_hostname_with_dots_is_the_fqdn_and_no_domain_leaves_the_short_name():
    assert user_data(cis.Seed("web1", [address()], hostname="www.example.net")) == {
        "hostname": "www", "fqdn": "www.example.net"}
    assert user_data(cis.Seed("web1", [address(domain=None)])) == {
        "hostname": "web1", "fqdn": "web1"}


def test_a_key_comment_may_hold_any_printable_character():
    key = KEY + " Zoë's laptop"
    assert user_data(cis.Seed("web1", [address()], ssh_authorized_keys=[key]))[
        "ssh_authorized_keys"] == [key]


def test_same_inputs_give_the_same_documents_and_instance_id():
    first = cis.Seed("web1", [address(0), address(1)], ssh_authorized_keys=[KEY])
    again = cis.Seed("web1", [address(1), address(0)], ssh_authorized_keys=[KEY])
    assert first.documents == again.documents
    assert first.instance_id == again.instance_id and first.instance_id.startswith("web1-")


@pytest.mark.parametrize("change", [
    {"addresses": [address(ip="192.0.2.99")]},
    {"addresses": [address(gateway="192.0.2.254")]},
    {"hostname": "other"},
    {"ssh_authorized_keys": [KEY + "2"]},
])
def test_the_instance_id_changes_when_the_guest_must_apply_something_new(change):
    inputs = {"addresses": [address()], "hostname": None, "ssh_authorized_keys": [KEY]}
    before = cis.Seed("web1", **inputs)
    after = cis.Seed("web1", **dict(inputs, **change))
    assert after.instance_id != before.instance_id
    assert after.digest != before.digest


def refusal(*args, **kwargs):
    with pytest.raises(VmError) as caught:
        cis.Seed(*args, **kwargs)
    return caught.value.msg


@pytest.mark.parametrize("args, kwargs, words", [
    (("web\n1", []), {}, "Invalid VM name"),
    (("web_1", []), {}, "give the guest a hostname"),
    (("web1", []), {"hostname": "bad host"}, "is not a DNS name"),
    (("web1", []), {"hostname": "-x.example.org"}, "is not a DNS name"),
    (("web1", []), {"ssh_authorized_keys": [KEY + "\nruncmd: [reboot]"]}, "not one line"),
    (("web1", []), {"ssh_authorized_keys": ["not a key"]}, "not one line"),
    (("web1", [address(mac="01:00:5e:00:00:01")]), {}, "not a unicast MAC"),
    (("web1", [address(mac="02:67:76:00:00")]), {}, "not a unicast MAC"),
    (("web1", [address(ip="192.0.2.300")]), {}, "is not an IP address"),
    (("web1", [address(prefix=None)]), {}, "is not a prefix length"),
    (("web1", [address(prefix=33)]), {}, "is not a prefix length"),
    (("web1", [address(gateway="2001:db8::1")]), {}, "is not an IPv4 address"),
    (("web1", [address(dns_servers=["dns.example.org"])]), {}, "DNS server"),
    (("web1", [address(domain="example.org\nx: y")]), {}, "is not a DNS name"),
    (("web1", [address(0), address(0, mac="02:00:00:00:00:09")]), {}, "two addresses for NIC 0"),
    (("web1", [address(0), address(1, mac="02:67:76:00:00:01")]), {}, "given to two NICs"),
    (("web1", [address(vm="db1")]), {}, "belongs to VM 'db1'"),
    (("web1", [dict(address(), nic="first")]), {}, "is not a NIC index"),
])
def test_bad_input_is_refused_with_a_sentence(args, kwargs, words):
    assert words in refusal(*args, **kwargs)


def test_a_seed_path_must_be_absolute_and_without_control_characters():
    assert cis.check_path("/var/lib/libvirt/images/web1-seed.img") == \
        "/var/lib/libvirt/images/web1-seed.img"
    for bad in ("relative.img", "/var/lib/libvirt/images/\nx.img", "/var/lib/libvirt/images/"):
        with pytest.raises(VmError, match="not an absolute file path"):
            cis.check_path(bad)
