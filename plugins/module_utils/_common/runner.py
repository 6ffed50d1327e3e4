# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The one way every layer runs an external command: an argument list (never a shell)
through the module's ``run`` (AnsibleModule.run_command), and a failure turned into the
sentence the user reads."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


def failure_text(out, err):
    """What a failed command said: its stderr, else its stdout."""
    return (err or "").strip() or (out or "").strip()


def run_checked(run, argv, what, data=None, detail=failure_text, explain=None):
    """Run ``argv`` -> its stdout. A non-zero exit raises VmError '<what>: <detail>.'.
    ``detail(out, err)`` picks what to quote; ``explain(rc, detail)`` may return a whole
    sentence of its own for exit codes that mean something (a timeout, a daemon down)."""
    kwargs = {"data": data, "binary_data": False} if data is not None else {}
    rc, out, err = run(list(argv), **kwargs)
    if rc == 0:
        return out
    said = detail(out, err) or "exit status %d" % rc
    sentence = explain(rc, said) if explain else None
    raise VmError(sentence or "%s: %s." % (what, said.rstrip(".")))
