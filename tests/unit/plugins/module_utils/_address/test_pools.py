import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._address.pools import (
    Pool, derived_mac, normalize_mac, normalize_mac_prefix)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def test_default_ranges_leave_out_network_broadcast_and_gateway():
    pool = Pool("p", "10.0.0.0/29", gateway="10.0.0.1")
    assert pool.ranges == ["10.0.0.2-10.0.0.6"] and pool.size == 5


def test_explicit_ranges_and_cidrs_with_the_gateway_cut_out():
    pool = Pool("p", "10.0.0.0/24", ranges=["10.0.0.64/30", "10.0.0.10-10.0.0.12"],
                gateway="10.0.0.11")
    assert pool.ranges == ["10.0.0.10", "10.0.0.12", "10.0.0.64-10.0.0.67"]
    assert pool.size == 6


def test_ipv6_pool():
    pool = Pool("v6", "fd00:1::/120", gateway="fd00:1::1")
    assert pool.size == 254
    assert pool.fixed_ip("fd00:1::10") == "fd00:1::10"


def test_candidates_cover_the_ranges_once_from_a_derived_start():
    pool = Pool("p", "10.0.0.0/28")
    first = list(pool.candidates("vm1", 0))
    assert sorted(first, key=lambda ip: int(ip.split(".")[-1])) == [
        "10.0.0.%d" % i for i in range(1, 15)]
    assert list(pool.candidates("vm1", 0)) == first
    assert list(pool.candidates("vm1", 1))[0] != first[0] or \
        list(pool.candidates("vm2", 0))[0] != first[0]


@pytest.mark.parametrize("kwargs, words", [
    (dict(cidr="10.0.0.1/24"), "CIDR"),
    (dict(cidr="10.0.0.0/24", ranges=["10.0.0.5-10.0.0.1"]), "ends before it starts"),
    (dict(cidr="10.0.0.0/24", ranges=["10.0.0.1-10.0.0.9", "10.0.0.8/29"]), "overlap"),
    (dict(cidr="10.0.0.0/24", ranges=["10.0.1.1-10.0.1.9"]), "outside pool"),
    (dict(cidr="10.0.0.0/24", ranges=["fd00::/120"]), "outside pool"),
    (dict(cidr="10.0.0.0/24", gateway="10.0.0.0"), "network's own address"),
    (dict(cidr="10.0.0.0/24", dns_servers=["x"]), "not an IP address"),
    (dict(cidr="10.0.0.0/24", release_hold=-1), "release_hold"),
    (dict(cidr="10.0.0.0/30", gateway="10.0.0.1", ranges=["10.0.0.1"]), "no address to hand out"),
])
def test_bad_pools_are_sentences(kwargs, words):
    with pytest.raises(VmError) as err:
        Pool("p", **kwargs)
    assert words in err.value.msg


@pytest.mark.parametrize("ip, words", [
    ("10.0.0.0", "network or broadcast"), ("10.0.0.255", "network or broadcast"),
    ("10.0.0.1", "gateway"), ("10.0.1.1", "outside pool"), ("x", "not an IP address"),
])
def test_fixed_ip_refusals(ip, words):
    with pytest.raises(VmError) as err:
        Pool("p", "10.0.0.0/24", gateway="10.0.0.1").fixed_ip(ip)
    assert words in err.value.msg


def test_macs():
    assert normalize_mac("52-54-00-AA-BB-CC") == "52:54:00:aa:bb:cc"
    for bad in ("01:00:5e:00:00:01", "52:54:00:aa:bb", "52:54:00:aa:bb:cc\n",
                "00:00:00:00:00:00"):
        with pytest.raises(VmError):
            normalize_mac(bad)
    with pytest.raises(VmError):
        normalize_mac_prefix("03:00")
    mac = derived_mac("02:67:76", "vm", 0, 0)
    assert mac.startswith("02:67:76:") and mac == derived_mac("02:67:76", "vm", 0, 0)
    assert derived_mac("02:67:76", "vm", 0, 1) != mac
    assert derived_mac("0a:bb:cc:dd:ee", "vm", 0, 0).startswith("0a:bb:cc:dd:ee:")
