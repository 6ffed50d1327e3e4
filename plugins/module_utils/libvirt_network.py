# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The libvirt network layer: a network's static DHCP hosts (<ip><dhcp><host mac ip name>)
and DNS hosts (<dns><host ip><hostname>) kept equal to a list of reservations (the address
registry's), through virNetworkUpdate, in the running network and in its definition.

Pure part (no I/O): the reservations checked, the entries read from the network's XML, the
plan (deletions first, then additions, each with its sentence). ``converge`` reads the
network once per view (definition, running), plans, and applies unless in check mode.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.gridvirt.kvm.plugins.module_utils._common import deps
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

DHCP = "dhcp"
DNS = "dns"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
NAME_RE = re.compile(_LABEL)
FQDN_RE = re.compile(r"%s(?:\.%s)*" % (_LABEL, _LABEL))
MAC_RE = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


# ---- the reservations asked for -------------------------------------------------------------

def checked_hosts(hosts):
    """The module's ``hosts`` -> a list of dicts (mac or None, ip, name, hostnames), or a
    sentence. Two reservations may share neither a MAC, an IP nor a name."""
    checked = [_checked_host(index, host) for index, host in enumerate(hosts or [])]
    for field in ("mac", "ip", "name"):
        seen = {}
        for host in checked:
            value = host[field]
            if value is None:
                continue
            if value in seen:
                raise VmError("Hosts %s and %s have the same %s %s: each reservation needs its "
                              "own." % (seen[value], host["name"], field.upper()
                                        if field != "name" else "name", value))
            seen[value] = host["name"]
    return checked


def _checked_host(index, host):
    where = "hosts[%d]" % index
    name = _text(host.get("name"))
    if not NAME_RE.fullmatch(name):
        raise VmError("The name %r of %s is not a host name (1 to 63 letters, digits, '-' or "
                      "'_', starting and ending with a letter or digit)." % (name, where))
    try:
        ip = ipaddress.ip_address(_text(host.get("ip")))
    except ValueError:
        raise VmError("The ip %r of host %s is not an IP address." % (host.get("ip"), name))
    mac = _text(host.get("mac")).lower().replace("-", ":") or None
    if mac is not None and not MAC_RE.fullmatch(mac):
        raise VmError("The mac %r of host %s is not a MAC address (six hexadecimal octets "
                      "separated by colons)." % (host.get("mac"), name))
    if mac is None and ip.version == 4:
        raise VmError("Host %s has no mac: an IPv4 DHCP reservation is made for a MAC." % name)
    fqdn = _text(host.get("fqdn")) or name
    if len(fqdn) > 253 or not FQDN_RE.fullmatch(fqdn):
        raise VmError("The fqdn %r of host %s is not a domain name." % (fqdn, name))
    hostnames = [fqdn] if fqdn == name else [fqdn, name]
    # libvirt keeps no MAC for an IPv6 DHCP host: it is matched by name.
    return {"mac": mac if ip.version == 4 else None, "ip": str(ip), "name": name,
            "hostnames": hostnames}


def _text(value):
    return "" if value is None else str(value).strip()


# ---- the entries of a network's XML ---------------------------------------------------------

def dhcp_entries(root):
    """-> [(ip element index, entry dict, host element)] of every <ip><dhcp><host>."""
    found = []
    for index, ip_el in enumerate(root.findall("ip")):
        for host in ip_el.findall("dhcp/host"):
            found.append((index, _dhcp_entry(host), host))
    return found


def dns_entries(root):
    """-> [(entry dict, host element)] of every <dns><host>."""
    return [(_dns_entry(host), host) for host in root.findall("dns/host")]


def _dhcp_entry(host):
    return {"mac": (host.get("mac") or "").lower() or None,
            "ip": _normalized_ip(host.get("ip")), "name": host.get("name")}


def _dns_entry(host):
    return {"ip": _normalized_ip(host.get("ip")),
            "hostnames": [h.text for h in host.findall("hostname")]}


def _normalized_ip(text):
    try:
        return str(ipaddress.ip_address(text or ""))
    except ValueError:
        return text  # not ours to judge: compared as written


def parent_index(root, ip_text, network_name):
    """Index of the network's <ip> element whose subnet holds ``ip_text`` (libvirt's
    parentIndex of a DHCP host), or a sentence."""
    ip = ipaddress.ip_address(ip_text)
    for index, ip_el in enumerate(root.findall("ip")):
        subnet = _subnet(ip_el)
        if subnet is not None and ip.version == subnet.version and ip in subnet:
            return index
    raise VmError("The address %s is in none of the subnets of libvirt network %s: a DHCP "
                  "reservation must be in one of them." % (ip_text, network_name))


def _subnet(ip_el):
    address = ip_el.get("address")
    if not address:
        return None
    bits = ip_el.get("prefix") or ip_el.get("netmask") or ("64" if ":" in address else "24")
    try:
        return ipaddress.ip_network("%s/%s" % (address, bits), strict=False)
    except ValueError:
        return None


def entries_view(root):
    """What the diff and the result show: the DHCP and DNS hosts, sorted."""
    return {
        "dhcp_hosts": sorted((e for _i, e, _h in dhcp_entries(root)),
                             key=lambda e: (e["ip"] or "", e["name"] or "")),
        "dns_hosts": sorted((e for e, _h in dns_entries(root)), key=lambda e: e["ip"] or ""),
    }


# ---- the plan -------------------------------------------------------------------------------

class Step(object):
    """One virNetworkUpdate: ``command`` 'add' or 'delete' of ``element`` in ``section``."""

    def __init__(self, command, section, element, parent, sentence):
        self.command = command
        self.section = section
        self.element = element
        self.parent = parent
        self.sentence = sentence


def plan(root, hosts, purge, network_name):
    """Steps that make the network's entries those of ``hosts`` (checked_hosts): deletions
    first (an entry that is not asked for, when ``purge``; one that shares a MAC, IP or name
    with a reservation but differs from it, always: libvirt refuses duplicates), then
    additions."""
    deletions, additions = [], []
    _plan_dhcp(root, hosts, purge, network_name, deletions, additions)
    _plan_dns(root, hosts, purge, deletions, additions)
    return deletions + additions


def _plan_dhcp(root, hosts, purge, network_name, deletions, additions):
    wanted = dict(((h["mac"], h["ip"], h["name"]), h) for h in hosts)
    present = set()
    for index, entry, element in dhcp_entries(root):
        key = (entry["mac"], entry["ip"], entry["name"])
        if key in wanted:
            present.add(key)
        elif purge or _dhcp_clash(entry, hosts):
            deletions.append(Step("delete", DHCP, element, index, "removed DHCP host %s"
                                  % _dhcp_words(entry)))
    for key, host in sorted(wanted.items(), key=lambda item: item[0][1]):
        if key not in present:
            additions.append(Step("add", DHCP, dhcp_element(host),
                                  parent_index(root, host["ip"], network_name),
                                  "added DHCP host %s" % _dhcp_words(host)))


def _plan_dns(root, hosts, purge, deletions, additions):
    wanted = dict(((h["ip"], tuple(h["hostnames"])), h) for h in hosts)
    present = set()
    for entry, element in dns_entries(root):
        key = (entry["ip"], tuple(entry["hostnames"]))
        if key in wanted:
            present.add(key)
        elif purge or _dns_clash(entry, hosts):
            deletions.append(Step("delete", DNS, element, -1, "removed DNS host %s"
                                  % _dns_words(entry)))
    for key, host in sorted(wanted.items(), key=lambda item: item[0][0]):
        if key not in present:
            additions.append(Step("add", DNS, dns_element(host), -1,
                                  "added DNS host %s" % _dns_words(host)))


def _dhcp_clash(entry, hosts):
    return any((entry["mac"] and entry["mac"] == h["mac"]) or entry["ip"] == h["ip"]
               or (entry["name"] and entry["name"] == h["name"]) for h in hosts)


def _dns_clash(entry, hosts):
    return any(entry["ip"] == h["ip"] or set(entry["hostnames"]) & set(h["hostnames"])
               for h in hosts)


def _dhcp_words(entry):
    return " ".join(v for v in (entry["mac"], entry["ip"], entry["name"]) if v)


def _dns_words(entry):
    return "%s (%s)" % (entry["ip"], ", ".join(entry["hostnames"]))


def dhcp_element(host):
    etree = deps.lxml_etree()
    element = etree.Element("host")
    if host["mac"]:
        element.set("mac", host["mac"])
    element.set("name", host["name"])
    element.set("ip", host["ip"])
    return element


def dns_element(host):
    etree = deps.lxml_etree()
    element = etree.Element("host", ip=host["ip"])
    for hostname in host["hostnames"]:
        etree.SubElement(element, "hostname").text = hostname
    return element


def predicted(root, steps):
    """The entries as they will be after ``steps`` (check mode's result, the diff)."""
    view = entries_view(root)
    dhcp, dns = view["dhcp_hosts"], view["dns_hosts"]
    for step in steps:
        if step.section == DHCP:
            entry, target = _dhcp_entry(step.element), dhcp
        else:
            entry, target = _dns_entry(step.element), dns
        if step.command == "delete":
            target.remove(entry)
        else:
            target.append(entry)
    return {"dhcp_hosts": sorted(dhcp, key=lambda e: (e["ip"] or "", e["name"] or "")),
            "dns_hosts": sorted(dns, key=lambda e: e["ip"] or "")}


def diff_text(view):
    """One line per entry, for --diff."""
    lines = ["dhcp host %s" % _dhcp_words(e) for e in view["dhcp_hosts"]]
    lines += ["dns host %s" % _dns_words(e) for e in view["dns_hosts"]]
    return "\n".join(lines) + ("\n" if lines else "")


# ---- libvirt --------------------------------------------------------------------------------

def _views(lv, net):
    """(flag, what, parsed XML) of each copy of the network to keep: its definition (when
    persistent) and the running network (when active)."""
    views = []
    if net.isPersistent():
        xml = net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)
        views.append((lv.VIR_NETWORK_UPDATE_AFFECT_CONFIG, "definition",
                      xmlutil.parse(xml, "definition of libvirt network %s" % net.name())))
    if net.isActive():
        views.append((lv.VIR_NETWORK_UPDATE_AFFECT_LIVE, "running network",
                      xmlutil.parse(net.XMLDesc(0), "libvirt network %s" % net.name())))
    return views


def lookup(conn, name, uri):
    lv = deps.libvirt()
    try:
        return conn.networkLookupByName(name)
    except lv.libvirtError as exc:
        if exc.get_error_code() == lv.VIR_ERR_NO_NETWORK:
            raise VmError("libvirt at %s has no network %s." % (uri, name))
        raise VmError("Cannot look up libvirt network %s at %s: %s." % (
            name, uri, exc.get_error_message()))


def converge(conn, uri, name, hosts, purge, check_mode):
    """Make network ``name``'s hosts those of ``hosts`` (checked_hosts). -> dict(changed,
    changes, before, after) where before/after are entries_view dicts of the definition
    (else of the running network)."""
    lv = deps.libvirt()
    net = lookup(conn, name, uri)
    # Every copy planned before any change: a reservation refused by one changes neither.
    plans = [(flag, what, root, plan(root, hosts, purge, name))
             for flag, what, root in _views(lv, net)]
    changes = []
    for flag, what, _root, steps in plans:
        for step in steps:
            sentence = "%s of libvirt network %s: %s" % (what, name, step.sentence)
            if not check_mode:
                _apply(lv, net, flag, step, sentence)
            changes.append(sentence)
    if not plans:  # neither persistent nor active: libvirt has nothing to show
        return {"changed": False, "changes": [], "before": {}, "after": {}}
    _flag, _what, root, steps = plans[0]
    return {"changed": bool(changes), "changes": changes, "before": entries_view(root),
            "after": predicted(root, steps)}


def _apply(lv, net, flag, step, sentence):
    command = (lv.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST if step.command == "add"
               else lv.VIR_NETWORK_UPDATE_COMMAND_DELETE)
    section = (lv.VIR_NETWORK_SECTION_IP_DHCP_HOST if step.section == DHCP
               else lv.VIR_NETWORK_SECTION_DNS_HOST)
    xml = deps.lxml_etree().tostring(step.element, encoding="unicode")
    try:
        net.update(command, section, step.parent, xml, flag)
    except lv.libvirtError as exc:
        raise VmError("Cannot make this change (%s): %s." % (sentence, exc.get_error_message()))
