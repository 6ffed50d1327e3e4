# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Address pools as values: parsing and checking a pool's definition, which addresses it hands
out, and the deterministic first candidate of a (VM, NIC). Pure logic, no I/O."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import re

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

# Locally administered (bit 1 of the first octet) and unicast (bit 0 clear), and not QEMU's
# 52:54:00, which libvirt gives every NIC that names no MAC: ours never meet those.
DEFAULT_MAC_PREFIX = "02:67:76"
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}")
PREFIX_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){0,4}")
POOL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                       r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# A released address stays out of reuse this long (unless nothing else is free), so a VM
# deployed again days later gets its address back.
DEFAULT_RELEASE_HOLD_SECONDS = 30 * 24 * 3600


def _text(value):
    return u"%s" % value


def check_pool_name(name):
    if not isinstance(name, str) or not POOL_NAME_RE.fullmatch(name):
        raise VmError("The address pool name %r is not valid: 1 to 63 letters, digits, '.', "
                      "'_' or '-', starting with a letter or digit." % (name,))
    return name


def normalize_mac(mac, what="MAC address"):
    """A MAC in lower case with colons; multicast, all-zero and malformed ones refused."""
    text = _text(mac).lower().replace("-", ":")
    if not MAC_RE.fullmatch(text):
        raise VmError("The %s %r is not a MAC address (six hexadecimal octets separated by "
                      "colons, e.g. 02:67:76:12:34:56)." % (what, mac))
    if int(text[:2], 16) & 1:
        raise VmError("The %s %s is a multicast address (the lowest bit of its first octet is "
                      "set): a NIC needs a unicast one." % (what, text))
    if text == "00:00:00:00:00:00":
        raise VmError("The %s 00:00:00:00:00:00 is not a usable address." % what)
    return text


def normalize_mac_prefix(prefix):
    text = _text(prefix or DEFAULT_MAC_PREFIX).lower().replace("-", ":")
    if not PREFIX_RE.fullmatch(text):
        raise VmError("The mac_prefix %r is not 1 to 5 hexadecimal octets separated by colons "
                      "(e.g. 02:67:76)." % (prefix,))
    if int(text[:2], 16) & 1:
        raise VmError("The mac_prefix %s is multicast (the lowest bit of its first octet is "
                      "set): NICs need unicast MACs." % text)
    return text


def derived_mac(prefix, vm, nic, attempt):
    """The attempt-th candidate MAC of a (VM, NIC) under ``prefix``: the same everywhere, so a
    VM redeployed elsewhere asks for the same MAC first."""
    free_octets = 6 - len(prefix.split(":"))
    digest = _digest("mac", vm, nic, attempt)
    return ":".join([prefix] + ["%02x" % b for b in bytearray(digest[:free_octets])])


def _digest(*parts):
    return hashlib.sha256(u"\x00".join(_text(p) for p in parts).encode("utf-8")).digest()


class Pool(object):
    """A checked pool definition. ``definition`` is what the registry stores."""

    def __init__(self, name, cidr, ranges=None, gateway=None, dns_servers=None, domain=None,
                 mac_prefix=None, release_hold=DEFAULT_RELEASE_HOLD_SECONDS):
        self.name = check_pool_name(name)
        self.network = self._network(cidr)
        self.gateway = self.address(gateway, "gateway") if gateway else None
        if self.gateway is not None and self._special(self.gateway):
            raise VmError("The gateway %s of pool %s is the network's own address%s." % (
                self.gateway, name, " or its broadcast address" if self.network.version == 4
                else ""))
        self.dns_servers = [str(ipaddress.ip_address(_checked_ip(s, "DNS server")))
                            for s in (dns_servers or [])]
        self.domain = _checked_domain(domain)
        self.mac_prefix = normalize_mac_prefix(mac_prefix)
        self.release_hold = _checked_hold(release_hold)
        self.intervals = self._intervals(ranges)
        self.ranges = [self._range_text(first, last) for first, last in self.intervals]
        self.size = sum(last - first + 1 for first, last in self.intervals)
        if not self.size:
            raise VmError("Pool %s has no address to hand out: its ranges hold only the "
                          "network, broadcast or gateway address." % name)

    @classmethod
    def from_definition(cls, definition):
        return cls(**definition)

    @property
    def definition(self):
        return {
            "name": self.name, "cidr": str(self.network), "ranges": list(self.ranges),
            "gateway": str(self.gateway) if self.gateway else None,
            "dns_servers": list(self.dns_servers), "domain": self.domain,
            "mac_prefix": self.mac_prefix, "release_hold": self.release_hold,
        }

    # ---- parsing ----------------------------------------------------------------------

    def _network(self, cidr):
        try:
            return ipaddress.ip_network(_text(cidr), strict=True)
        except ValueError as exc:
            raise VmError("The cidr %r of pool %s is not a network in CIDR notation (%s)."
                          % (cidr, self.name, exc))

    def address(self, value, what):
        """An address of this pool's network, or a sentence."""
        ip = _checked_ip(value, what)
        if ip.version != self.network.version or ip not in self.network:
            raise VmError("The %s %s is outside pool %s (%s)." % (what, ip, self.name,
                                                                  self.network))
        return ip

    def _special(self, ip):
        """Network and broadcast addresses, which no host may have."""
        if self.network.prefixlen >= self.network.max_prefixlen - 1:
            return False
        if ip == self.network.network_address:
            return True
        return self.network.version == 4 and ip == self.network.broadcast_address

    def _intervals(self, ranges):
        spans = [self._span(r) for r in ranges] if ranges else [
            (int(self.network.network_address), int(self.network.broadcast_address))]
        spans.sort()
        for previous, current in zip(spans, spans[1:]):
            if current[0] <= previous[1]:
                raise VmError("The ranges of pool %s overlap (%s and %s)." % (
                    self.name, self._range_text(*previous), self._range_text(*current)))
        excluded = sorted(int(ip) for ip in self._excluded())
        return _cut(spans, excluded)

    def _excluded(self):
        out = [ip for ip in (self.network.network_address, self.network.broadcast_address)
               if self._special(ip)]
        if self.gateway is not None:
            out.append(self.gateway)
        return set(out)

    def _span(self, text):
        text = _text(text)
        if "/" in text:
            try:
                sub = ipaddress.ip_network(text, strict=True)
            except ValueError as exc:
                raise VmError("The range %r of pool %s is not a valid CIDR (%s)." % (
                    text, self.name, exc))
            if sub.version != self.network.version or not sub.subnet_of(self.network):
                raise VmError("The range %s is outside pool %s (%s)."
                              % (text, self.name, self.network))
            return int(sub.network_address), int(sub.broadcast_address)
        if text.count("-") > 1:
            raise VmError("The range %r of pool %s is neither 'first-last', one address nor a "
                          "CIDR." % (text, self.name))
        bounds = text.split("-") if "-" in text else [text, text]
        first, last = (self.address(part, "range bound") for part in bounds)
        if int(first) > int(last):
            raise VmError("The range %s of pool %s ends before it starts." % (text, self.name))
        return int(first), int(last)

    def _range_text(self, first, last):
        make = ipaddress.ip_address
        return "%s-%s" % (make(first), make(last)) if first != last else str(make(first))

    # ---- what the pool hands out ------------------------------------------------------

    def fixed_ip(self, value):
        """A fixed IP asked for a NIC: inside the network (not only the ranges: fixed
        addresses usually sit outside the dynamic ones), never network, broadcast, gateway."""
        ip = self.address(value, "IP address")
        if self._special(ip):
            raise VmError("The IP address %s is the network or broadcast address of pool %s."
                          % (ip, self.name))
        if self.gateway is not None and ip == self.gateway:
            raise VmError("The IP address %s is the gateway of pool %s." % (ip, self.name))
        return str(ip)

    def contains(self, ip_text):
        """Whether an allocated address still fits this pool (for a fixed one: the network)."""
        ip = ipaddress.ip_address(ip_text)
        return (ip.version == self.network.version and ip in self.network
                and not self._special(ip) and ip != self.gateway)

    def in_ranges(self, ip_text):
        value = int(ipaddress.ip_address(ip_text))
        return any(first <= value <= last for first, last in self.intervals)

    def nth(self, index):
        for first, last in self.intervals:
            count = last - first + 1
            if index < count:
                return str(ipaddress.ip_address(first + index))
            index -= count
        raise IndexError(index)

    def candidates(self, vm, nic):
        """Every address of the ranges, once, starting at the one derived from (VM, NIC)."""
        start = int.from_bytes(_digest("ip", self.name, vm, nic), "big") % self.size
        for offset in range(self.size):
            yield self.nth((start + offset) % self.size)

    def overlaps(self, other):
        return (self.network.version == other.network.version
                and self.network.overlaps(other.network))


def _cut(spans, excluded):
    """The spans less the excluded single addresses."""
    out = []
    for first, last in spans:
        for value in excluded:
            if first <= value <= last:
                if value > first:
                    out.append((first, value - 1))
                first = value + 1
        if first <= last:
            out.append((first, last))
    return out


def _checked_ip(value, what):
    try:
        return ipaddress.ip_address(_text(value))
    except ValueError:
        raise VmError("The %s %r is not an IP address." % (what, value))


def _checked_domain(domain):
    if domain in (None, ""):
        return None
    text = _text(domain).rstrip(".")
    if not DOMAIN_RE.fullmatch(text):
        raise VmError("The domain %r is not a DNS domain name (labels of letters, digits and "
                      "'-', separated by dots)." % (domain,))
    return text.lower()


def _checked_hold(value):
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = -1
    if seconds < 0 or _text(value).strip() != str(seconds):
        raise VmError("release_hold must be a whole number of seconds, 0 or more (got %r)."
                      % (value,))
    return seconds
