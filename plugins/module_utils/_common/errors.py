# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The one exception type every layer raises for a problem a user can act on.

Modules turn it into ``fail_json(msg=...)``: the message is a full sentence, never a traceback.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class VmError(Exception):
    """A failure explained in one sentence; ``details`` is returned beside ``msg``."""

    def __init__(self, msg, **details):
        super(VmError, self).__init__(msg)
        self.msg = msg
        self.details = details


class InvalidDefinition(VmError):
    """A domain XML libvirt would refuse (not well-formed, or outside libvirt's schema)."""
