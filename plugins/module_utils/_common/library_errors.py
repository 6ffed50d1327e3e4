# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The one place where an exception of a binding (rados, rbd, libvirt, lxml) that no step
turned into a sentence of its own becomes the VmError the user reads, for both kinds of VM."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible_collections.gridvirt.kvm.plugins.module_utils._common import deps
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def doing(command, state, name):
    """A run's request as the middle of a sentence: 'make VM x running', 'run status on VM x',
    'run list_vms'."""
    if command:
        return "run %s%s" % (command, " on VM %s" % name if name else "")
    return "make VM %s %s" % (name, state)


def reason(exc):
    """The library's own words: libvirt's message, else the exception's text."""
    message = exc.get_error_message() if hasattr(exc, "get_error_message") else None
    return (message or str(exc)).rstrip(".")


@contextlib.contextmanager
def as_sentences(what, where, timed_out=None):
    """Inside: a library refusal becomes 'Cannot <what> on <where>: <reason>.'; a Ceph
    operation that waited past the connection's timeout becomes ``timed_out(reason)``."""
    try:
        yield
    except deps.ceph_timeouts() as exc:
        if timed_out is None:
            raise
        raise timed_out("%s waited: %s" % (what, exc)) from None
    except deps.refusals() as exc:
        raise VmError("Cannot %s on %s: %s." % (what, where, reason(exc))) from None
