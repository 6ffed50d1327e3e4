# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Every standalone VM of this host as an inventory shows it: state, definition, snapshots,
our metadata. Only persistent domains: a transient one is a cluster VM that Pacemaker runs
here (the cluster's listing shows it). A VM that cannot be read is listed with its error."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.library_errors import (
    as_sentences)


def host_vms(hv, node, name=None):
    """[summary of each standalone VM of the host ``node``] by name (only ``name`` when
    given)."""
    if name is not None:
        dom = hv.domain(name)
        domains = [dom] if dom is not None else []
    else:
        domains = hv.domains()
    found = hv.read_domains(lambda dom: _summary(hv, dom, node), domains)
    return sorted((vm for vm in found if vm is not None), key=lambda vm: vm["name"])


def _summary(hv, dom, node):
    if not dom.isPersistent():
        return None
    name = dom.name()
    entry = {"name": name, "kind": "standalone", "status": hv.status(dom), "node": node}
    try:
        with as_sentences("read VM %s" % name, "host %s" % node):
            root = hv.xml_root(dom)
            entry.update(dx.device_summary(root))
            entry.update(snapshots=hv.snapshot_count(dom), addresses=[],
                         metadata=dx.read_gv_metadata(root)[0])
    except VmError as exc:
        entry["error"] = exc.msg
    return entry
