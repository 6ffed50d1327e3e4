# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Lazy imports of the hypervisor's Python bindings.

Modules run on the hypervisor under its system Python with the distribution's bindings
(python3-libvirt, python3-lxml). They are imported only when needed so that a missing one is
reported as a sentence telling what to install, not as an ImportError traceback.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import sys

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

PACKAGES = {
    "libvirt": "python3-libvirt (Debian/Ubuntu) or python3-libvirt (RHEL)",
    "lxml.etree": "python3-lxml",
}


def require(module_name):
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise VmError(
            "The Python module %s is missing on the hypervisor (interpreter %s): install %s "
            "there (%s)." % (module_name, sys.executable, PACKAGES.get(module_name, module_name),
                             exc))


def libvirt():
    return require("libvirt")


def lxml_etree():
    return require("lxml.etree")


def _installed_classes(names):
    """The exception classes (module, attribute) of the bindings that are installed."""
    classes = []
    for module_name, attribute in names:
        try:
            classes.append(getattr(importlib.import_module(module_name), attribute))
        except (ImportError, AttributeError):
            continue
    return tuple(classes)


def ceph_timeouts():
    """Exception classes of a Ceph operation that waited past the connection's timeout."""
    return _installed_classes((("rados", "TimedOut"), ("rbd", "Timeout")))


def refusals():
    """Exception classes with which Ceph and libvirt refuse an operation, for turning them
    into sentences."""
    return _installed_classes((("rbd", "Error"), ("rados", "Error"), ("libvirt", "libvirtError")))
