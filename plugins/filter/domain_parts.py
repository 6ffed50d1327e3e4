# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Licensed under the Apache License 2.0 (see LICENSE), or at your option under the
# GNU General Public License version 3 or later (see https://www.gnu.org/licenses/gpl-3.0.txt).
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""Filters the VM template (templates/vm/domain.xml.j2) renders the Rocks KVM roll's XML
attributes with: the XML a user gives is parsed, checked against the elements libvirt allows
there and serialized again, never pasted, so it can neither close its element nor add one
elsewhere in the domain."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from xml.etree import ElementTree

from ansible.errors import AnsibleFilterError

CPU_MODES = ("custom", "host-model", "host-passthrough", "maximum")
# Rocks' examples name a match ("exact: <model>...") where libvirt wants a mode: libvirt
# spells that mode='custom' match='exact'.
CPU_MATCHES = ("minimum", "exact", "strict")
# Our earlier "mode:<inner XML>" form: a <cpu> without mode attribute.
LEGACY_PREFIX = "mode"
CPU_CHILDREN = ("model", "vendor", "topology", "feature", "cache", "numa", "maxphysaddr")
CPUTUNE_CHILDREN = ("vcpupin", "emulatorpin", "iothreadpin", "shares", "period", "quota",
                    "global_period", "global_quota", "emulator_period", "emulator_quota",
                    "iothread_period", "iothread_quota", "vcpusched", "iothreadsched",
                    "emulatorsched", "cachetune", "memorytune")


def _parse_children(inner, tag, what):
    """The XML fragment ``inner`` as the children of an element ``tag``: a fragment that
    closes it, or holds a DOCTYPE or entity declarations, does not parse."""
    parser = ElementTree.XMLParser()
    try:
        for piece in ("<%s>" % tag, inner, "</%s>" % tag):
            parser.feed(piece)
        return parser.close()
    except ElementTree.ParseError as exc:
        raise AnsibleFilterError("%s is not well-formed XML (%s)." % (what, exc))


def _check_children(element, allowed, what):
    if (element.text or "").strip():
        raise AnsibleFilterError("%s holds text outside its elements: %r." % (what, element.text.strip()))
    for child in element:
        if child.tag not in allowed:
            raise AnsibleFilterError("%s may hold only <%s>, not <%s>."
                                     % (what, ">, <".join(allowed), child.tag))
        if (child.tail or "").strip():
            raise AnsibleFilterError("%s holds text outside its elements: %r."
                                     % (what, child.tail.strip()))


def _serialize(element):
    return ElementTree.tostring(element, encoding="unicode")


def cpu_element(value):
    """``<mode>:<inner XML>`` (Rocks' cpu_mode colon form) -> the <cpu> element as XML."""
    if not isinstance(value, str) or ":" not in value:
        raise AnsibleFilterError("cpu_mode %r is not of the form <mode>:<inner XML>." % (value,))
    prefix, inner = value.split(":", 1)
    prefix = prefix.strip()
    what = "The XML of cpu_mode %r" % prefix
    cpu = _parse_children(inner, "cpu", what)
    if cpu.attrib:
        raise AnsibleFilterError("%s cannot set attributes of <cpu>." % what)
    _check_children(cpu, CPU_CHILDREN, what)
    if prefix in CPU_MODES:
        cpu.set("mode", prefix)
    elif prefix in CPU_MATCHES:
        cpu.set("mode", "custom")
        cpu.set("match", prefix)
    elif prefix != LEGACY_PREFIX:
        raise AnsibleFilterError(
            "cpu_mode %r: before the ':' give a libvirt CPU mode (%s) or a match (%s)."
            % (prefix, ", ".join(CPU_MODES), ", ".join(CPU_MATCHES)))
    return _serialize(cpu)


def cputune_element(value):
    """A <cputune> element given as XML (Rocks' kvm_cpu_pinning) -> the same, checked."""
    what = "The <cputune> of kvm_cpu_pinning"
    if not isinstance(value, str):
        raise AnsibleFilterError("kvm_cpu_pinning must be pin_all or a <cputune> element as XML.")
    given = list(_parse_children(value, "given", what))
    if len(given) != 1 or given[0].tag != "cputune":
        raise AnsibleFilterError("kvm_cpu_pinning must be pin_all or one <cputune> element, not %s."
                                 % (", ".join("<%s>" % e.tag for e in given) or "nothing"))
    cputune = given[0]
    _check_children(cputune, CPUTUNE_CHILDREN, what)
    return _serialize(cputune)


def numbered(variables, prefix):
    """The values of the variables named ``<prefix><N>``, in numeric order of N (Rocks'
    kvm_device_<N>: 2 comes before 10)."""
    pattern = re.compile(re.escape(prefix) + r"([0-9]+)$")
    found = []
    for name in variables:
        match = pattern.match(name)
        if match:
            found.append((int(match.group(1)), name))
    return [variables[name] for _number, name in sorted(found)]


class FilterModule(object):
    def filters(self):
        return {"cpu_element": cpu_element, "cputune_element": cputune_element,
                "numbered": numbered}
