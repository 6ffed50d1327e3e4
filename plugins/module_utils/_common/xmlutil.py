# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Hardened XML parsing and serialization with lxml, for every XML the collection reads
(libvirt, Pacemaker CIB and status, user input) or writes. Pure logic: no I/O."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.deps import lxml_etree
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


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
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise VmError("The %s is not UTF-8 text." % what)
    if not isinstance(text, str) or not text.strip():
        raise VmError("The %s is empty." % what)
    _refuse_doctype(text, what)
    try:
        root = etree.fromstring(text.strip().encode("utf-8"), _parser())
    except etree.XMLSyntaxError as exc:
        raise VmError("The %s is not well-formed XML: %s." % (what, exc))
    # Second line of defence, should the prolog scan ever miss a form of DOCTYPE.
    if root.getroottree().docinfo.doctype:
        raise VmError("The %s must not contain a DOCTYPE declaration." % what)
    return root


_PROLOG_SPACE = re.compile(r"[\s\ufeff]*")
_PROLOG_ITEMS = (("<?", "?>"), ("<!--", "-->"))


def _refuse_doctype(text, what):
    """Refuse a DOCTYPE before the parser sees the document, so that none of its entity
    declarations is ever parsed, expanded or fetched. A DOCTYPE can only stand in the prolog;
    anywhere else it is a syntax error, which the parser reports."""
    if text.startswith("<!DOCTYPE", _prolog_end(text)):
        raise VmError("The %s must not contain a DOCTYPE declaration." % what)


def _prolog_end(text):
    """Where the blanks, XML declaration, comments and processing instructions before the
    DOCTYPE or the root element end."""
    pos = 0
    while True:
        pos = _PROLOG_SPACE.match(text, pos).end()
        for opening, closing in _PROLOG_ITEMS:
            if text.startswith(opening, pos):
                end = text.find(closing, pos + len(opening))
                if end < 0:
                    return len(text)  # unterminated: the parser says so
                pos = end + len(closing)
                break
        else:
            return pos


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
