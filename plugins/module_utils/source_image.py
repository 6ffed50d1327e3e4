# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Disk images on the hypervisor that the modules import (system_image, additional disks):
checked before any change, and read with qemu-img. Shared by the standalone (pool volumes)
and cluster (RBD) imports. Commands run through the caller's ``run`` as argument lists."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.runner import run_checked

IMPORTABLE_FORMATS = ("qcow2", "raw")


def readable(path):
    """The path, when it names a readable regular file by an absolute path."""
    if not path or not os.path.isabs(path):
        raise VmError("Disk image %r must be an absolute path on the hypervisor." % (path,))
    if not os.path.isfile(path):
        raise VmError("Disk image %s does not exist on the hypervisor (or is not a file)."
                      % path)
    if not os.access(path, os.R_OK):
        raise VmError("Disk image %s is not readable." % path)
    return path


def info(run, path, force_share=False, fmt=None):
    """qemu-img's JSON description of an image (-U: also while a running VM holds it).
    Without fmt qemu-img probes the format: only for the first look at a user's image,
    whose answer ``refusal`` then checks."""
    args = ["qemu-img", "info", "--output=json"]
    if force_share:
        args.append("-U")
    if fmt:
        args += ["-f", fmt]
    out = run_checked(run, args + [path], "Cannot read disk image %s" % path)
    try:
        return json.loads(out)
    except ValueError:
        raise VmError("Cannot read disk image %s: qemu-img info gave no JSON." % path) from None


def _data_file(details):
    data = (details.get("format-specific") or {}).get("data") or {}
    if data.get("data-file"):
        return data["data-file"]
    return "unnamed" if data.get("data-file-raw") else None


def refusal(path, details):
    """The sentence refusing an image that qemu-img describes with ``details``, or None.
    A backing file or an external data file would make qemu-img convert copy another file
    of the hypervisor (/etc/shadow, a block device, another VM's disk) into the new disk."""
    fmt = details.get("format")
    if fmt not in IMPORTABLE_FORMATS:
        return "Disk image %s is in %s format: give a qcow2 or raw image." % (path, fmt)
    backing = details.get("backing-filename") or details.get("full-backing-filename")
    if backing:
        return ("Disk image %s has a backing file (%s): give a self-contained image "
                "(qemu-img convert it first)." % (path, backing))
    data_file = _data_file(details)
    if data_file:
        return ("Disk image %s has an external data file (%s): give a self-contained image "
                "(qemu-img convert it first)." % (path, data_file))
    if not isinstance(details.get("virtual-size"), int):
        return "Disk image %s has no virtual size that qemu-img can read." % path
    return None


def checked(run, path):
    """The path of an image the modules can import (see importable), refused otherwise."""
    importable(run, path)
    return path


def importable(run, path):
    """-> (format, virtual size in bytes) of an image the modules can import: a readable,
    self-contained qcow2 or raw file. Called when the disks are planned (before any change,
    also in check mode) and again right before the import reads it."""
    details = info(run, readable(path))
    reason = refusal(path, details)
    if reason:
        raise VmError(reason)
    return details["format"], details["virtual-size"]
