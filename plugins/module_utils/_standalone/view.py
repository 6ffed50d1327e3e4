# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""A standalone VM as one read finds it, and as a plan leaves it: the lifecycle reads the VM
once, and each planned step updates the view, so the next step is planned against the VM as
it will be (check mode then predicts what a real run does)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx


class VmView(object):
    """``exists``; ``status`` (Undefined, Started, Paused, Stopping, Stopped, Failed);
    ``root``: the inactive definition; ``meta``, ``stored`` and ``stored_digest``: our record;
    ``autostart``; ``restart_pending``: it runs another definition than the stored one;
    ``snapshots``: [(name, epoch seconds)] oldest first."""

    def __init__(self, name):
        self.name = name
        self.exists = False
        self.status = "Undefined"
        self.root = None
        self.meta = {}
        self.stored = None
        self.stored_digest = None
        self.autostart = False
        self.restart_pending = False
        self.snapshots = []

    @property
    def active(self):
        return self.status in ("Started", "Paused", "Stopping")


def read_view(hv, name):
    """The VM ``name`` on the host of ``hv`` (one read of its definitions and state)."""
    view = VmView(name)
    dom = hv.domain(name) if name else None
    if dom is None:
        return view
    view.exists = True
    view.status = hv.status(dom)
    view.root = hv.xml_root(dom)
    view.meta, view.stored, view.stored_digest = dx.read_gv_metadata(view.root)
    view.autostart = hv.autostart(dom)
    view.snapshots = hv.snapshots(dom)
    if hv.is_active(dom):
        live = dx.read_gv_metadata(hv.xml_root(dom, inactive=False))[1]
        view.restart_pending = bool(live and view.stored) and live != view.stored
    return view


def created(name, root, meta):
    """The view of a VM the plan defines (stopped, no autostart, no snapshot)."""
    view = VmView(name)
    view.exists = True
    view.status = "Stopped"
    view.root = root
    view.meta = meta
    view.stored = dx.canonical(root)
    return view
