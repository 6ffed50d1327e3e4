# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Which snapshots purge_image deletes, and how snapshots are reported: the same rules for
standalone and cluster VMs. Pure logic: no I/O."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def snapshots_to_purge(snapshots, params):
    """SEAPATH's purge_image: purge_number deletes the N oldest; purge_date deletes those
    taken before the date; purge_keep keeps the N newest; none of them deletes all.
    snapshots: [(name, epoch seconds)] oldest first."""
    given = [k for k in ("purge_number", "purge_date", "purge_keep") if params.get(k) is not None]
    if len(given) > 1:
        raise VmError("Give only one of %s." % ", ".join(given))
    if params.get("purge_number") is not None:
        if params["purge_number"] < 0:
            raise VmError("purge_number must be zero or more.")
        return [snap[0] for snap in snapshots[:params["purge_number"]]]
    if params.get("purge_keep") is not None:
        if params["purge_keep"] < 0:
            raise VmError("purge_keep must be zero or more.")
        keep = params["purge_keep"]
        return [snap[0] for snap in (snapshots[:-keep] if keep else snapshots)]
    if params.get("purge_date") is not None:
        limit = spec.parse_purge_date(params["purge_date"]).timestamp()
        return [snap[0] for snap in snapshots if snap[1] < limit]
    return [snap[0] for snap in snapshots]


def listing(snapshots):
    """Return values of the snapshot commands from [(name, epoch seconds)], oldest first:
    SEAPATH's ``list_snapshot`` and ours with creation times (ISO 8601, UTC)."""
    return {
        "list_snapshot": [snap[0] for snap in snapshots],
        "snapshots": [{"name": snap[0], "created": datetime.datetime.fromtimestamp(
            snap[1], datetime.timezone.utc).isoformat()} for snap in snapshots],
    }
