"""A libvirt network's DHCP and DNS hosts kept equal to the registry's reservations: the
checks of the reservations, the plan read from the network's XML, and the whole convergence
against real libvirt (its test driver, test:///default, in-process: a transient network)."""
import itertools

import libvirt
import pytest
from lxml import etree

from ansible_collections.gridvirt.kvm.plugins.module_utils import libvirt_network as ln
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

URI = "test:///default"
MAC1, MAC2 = "02:67:76:00:00:01", "02:67:76:00:00:02"
_names = itertools.count(1)


def network_xml(dhcp_hosts="", dns_hosts="", name="net"):
    return ("<network><name>%s</name><bridge name='gvln%d'/><dns>%s</dns>"
            "<ip address='10.9.0.1' netmask='255.255.255.0'><dhcp>"
            "<range start='10.9.0.100' end='10.9.0.200'/>%s</dhcp></ip></network>"
            % (name, next(_names), dns_hosts, dhcp_hosts))


def web1(**extra):
    host = {"mac": MAC1.upper(), "ip": "10.9.0.5", "name": "web1", "fqdn": "web1.lab.test"}
    host.update(extra)
    return host


def sentences(steps):
    return [s.sentence for s in steps]


# ---- the reservations -----------------------------------------------------------------------

def test_reservation_is_normalized():
    assert ln.checked_hosts([web1()]) == [
        {"mac": MAC1, "ip": "10.9.0.5", "name": "web1", "hostnames": ["web1.lab.test", "web1"]}]


def test_reservation_without_fqdn_has_one_name():
    assert ln.checked_hosts([web1(fqdn=None)])[0]["hostnames"] == ["web1"]


@pytest.mark.parametrize("hosts, message", [
    ([web1(), web1(name="web2", ip="10.9.0.6")],
     "Hosts web1 and web2 have the same MAC 02:67:76:00:00:01: each reservation needs its own."),
    ([web1(), web1(mac=MAC2, name="web2")],
     "Hosts web1 and web2 have the same IP 10.9.0.5: each reservation needs its own."),
    ([web1(mac="02:67:76:00:00"), ],
     "The mac '02:67:76:00:00' of host web1 is not a MAC address (six hexadecimal octets "
     "separated by colons)."),
    ([web1(ip="10.9.0.300")], "The ip '10.9.0.300' of host web1 is not an IP address."),
    ([web1(name="web 1")], "The name 'web 1' of hosts[0] is not a host name (1 to 63 letters, "
     "digits, '-' or '_', starting and ending with a letter or digit)."),
    ([web1(mac=None)], "Host web1 has no mac: an IPv4 DHCP reservation is made for a MAC."),
    ([web1(fqdn="web1..lab")], "The fqdn 'web1..lab' of host web1 is not a domain name."),
])
def test_bad_reservations_are_refused_with_a_sentence(hosts, message):
    with pytest.raises(VmError) as error:
        ln.checked_hosts(hosts)
    assert error.value.msg == message


# ---- the plan -------------------------------------------------------------------------------

def plan(xml, hosts, purge=False):
    return ln.plan(etree.fromstring(xml), ln.checked_hosts(hosts), purge, "net")


def test_new_reservation_adds_a_dhcp_and_a_dns_host():
    steps = plan(network_xml(), [web1()])
    assert sentences(steps) == [
        "added DHCP host 02:67:76:00:00:01 10.9.0.5 web1",
        "added DNS host 10.9.0.5 (web1.lab.test, web1)"]
    assert [s.parent for s in steps] == [0, -1]
    assert etree.tostring(steps[0].element) == \
        b'<host mac="02:67:76:00:00:01" name="web1" ip="10.9.0.5"/>'
    assert etree.tostring(steps[1].element) == \
        b'<host ip="10.9.0.5"><hostname>web1.lab.test</hostname><hostname>web1</hostname></host>'


PRESENT = network_xml(
    "<host mac='02:67:76:00:00:01' name='web1' ip='10.9.0.5'/>"
    "<host mac='02:67:76:00:00:09' name='other' ip='10.9.0.9'/>",
    "<host ip='10.9.0.5'><hostname>web1.lab.test</hostname><hostname>web1</hostname></host>"
    "<host ip='10.9.0.9'><hostname>other</hostname></host>")


def test_present_reservation_needs_nothing_and_others_stay_without_purge():
    assert plan(PRESENT, [web1()]) == []


def test_purge_removes_the_entries_not_asked_for():
    assert sentences(plan(PRESENT, [web1()], purge=True)) == [
        "removed DHCP host 02:67:76:00:00:09 10.9.0.9 other",
        "removed DNS host 10.9.0.9 (other)"]


def test_changed_address_replaces_the_clashing_entries_even_without_purge():
    assert sentences(plan(PRESENT, [web1(ip="10.9.0.7")])) == [
        "removed DHCP host 02:67:76:00:00:01 10.9.0.5 web1",
        "removed DNS host 10.9.0.5 (web1.lab.test, web1)",
        "added DHCP host 02:67:76:00:00:01 10.9.0.7 web1",
        "added DNS host 10.9.0.7 (web1.lab.test, web1)"]


def test_address_outside_the_network_is_refused():
    with pytest.raises(VmError) as error:
        plan(network_xml(), [web1(ip="10.8.0.5")])
    assert error.value.msg == ("The address 10.8.0.5 is in none of the subnets of libvirt "
                               "network net: a DHCP reservation must be in one of them.")


# ---- against libvirt's test driver ----------------------------------------------------------

@pytest.fixture()
def network():
    conn = libvirt.open(URI)
    name = "gvln%d" % next(_names)
    net = conn.networkCreateXML(network_xml(name=name))  # transient: the running view only
    yield conn, name
    net.destroy()
    conn.close()


def live_hosts(conn, name):
    return ln.entries_view(etree.fromstring(conn.networkLookupByName(name).XMLDesc(0)))


def test_converge_adds_then_changes_nothing(network):
    conn, name = network
    first = ln.converge(conn, URI, name, ln.checked_hosts([web1()]), False, False)
    assert first["changed"] is True
    assert first["changes"] == [
        "running network of libvirt network %s: added DHCP host 02:67:76:00:00:01 10.9.0.5 web1"
        % name,
        "running network of libvirt network %s: added DNS host 10.9.0.5 (web1.lab.test, web1)"
        % name]
    assert live_hosts(conn, name) == first["after"] == {
        "dhcp_hosts": [{"mac": MAC1, "ip": "10.9.0.5", "name": "web1"}],
        "dns_hosts": [{"ip": "10.9.0.5", "hostnames": ["web1.lab.test", "web1"]}]}
    second = ln.converge(conn, URI, name, ln.checked_hosts([web1()]), False, False)
    assert second["changed"] is False
    assert second["changes"] == []


def test_check_mode_predicts_and_changes_nothing(network):
    conn, name = network
    before = live_hosts(conn, name)
    result = ln.converge(conn, URI, name, ln.checked_hosts([web1()]), False, True)
    assert result["changed"] is True
    assert result["after"]["dhcp_hosts"] == [{"mac": MAC1, "ip": "10.9.0.5", "name": "web1"}]
    assert live_hosts(conn, name) == before


def test_released_reservation_leaves_with_purge(network):
    conn, name = network
    ln.converge(conn, URI, name, ln.checked_hosts([web1()]), False, False)
    result = ln.converge(conn, URI, name, [], True, False)
    assert result["changed"] is True
    assert live_hosts(conn, name) == {"dhcp_hosts": [], "dns_hosts": []}


def test_missing_network_is_a_sentence():
    conn = libvirt.open(URI)
    try:
        with pytest.raises(VmError) as error:
            ln.converge(conn, URI, "gvln-none", [], False, False)
    finally:
        conn.close()
    assert error.value.msg == "libvirt at test:///default has no network gvln-none."
