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

from ansible_collections.gridvirt.kvm.plugins.module_utils.errors import VmError

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


def info(run, path, force_share=False):
    """qemu-img's JSON description of an image (-U: also while a running VM holds it)."""
    args = ["qemu-img", "info", "--output=json"]
    if force_share:
        args.append("-U")
    rc, out, err = run(args + [path])
    if rc != 0:
        raise VmError("Cannot read disk image %s: %s." % (path, (err or out).strip()))
    return json.loads(out)


def importable(run, path):
    """-> (format, virtual size in bytes) of an image the modules can import."""
    details = info(run, path)
    fmt = details.get("format")
    if fmt not in IMPORTABLE_FORMATS:
        raise VmError("Disk image %s is in %s format: give a qcow2 or raw image." % (path, fmt))
    return fmt, int(details["virtual-size"])
