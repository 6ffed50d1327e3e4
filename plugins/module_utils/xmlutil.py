# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Hardened XML parsing and serialization with lxml, for every XML the collection reads
(libvirt, Pacemaker CIB and status, user input) or writes. Pure logic: no I/O."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils.deps import lxml_etree
from ansible_collections.gridvirt.kvm.plugins.module_utils.errors import VmError


def _parser():
    etree = lxml_etree()
    # No entity expansion, no DTD loading, no network; comments and blank text dropped.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, remove_comments=True,
                           remove_blank_text=True, huge_tree=False)


def parse(text, what):
    """Parse XML text; DOCTYPEs are refused. ``what`` names the document in errors."""
    etree = lxml_etree()
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str) or not text.strip():
        raise VmError("The %s is empty." % what)
    try:
        root = etree.fromstring(text.strip().encode("utf-8"), _parser())
    except etree.XMLSyntaxError as exc:
        raise VmError("The %s is not well-formed XML: %s." % (what, exc))
    if root.getroottree().docinfo.doctype:
        raise VmError("The %s must not contain a DOCTYPE declaration." % what)
    return root


def to_string(root, pretty=True):
    return lxml_etree().tostring(root, pretty_print=pretty, encoding="unicode")


def canonical(root):
    """C14N text (attribute order, namespaces and whitespace normalized) for comparison."""
    etree = lxml_etree()
    work = etree.fromstring(etree.tostring(root), _parser())
    for el in work.iter():
        el.tail = None
        if el.text is not None and not el.text.strip():
            el.text = None
    return etree.tostring(work, method="c14n").decode("utf-8")
