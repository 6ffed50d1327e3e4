# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""What one run of an orchestrator changed (or, in check mode, would change): one sentence
per change, the --diff entries, and the result the module returns. Shared by the standalone
and the cluster orchestration."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class Outcome(object):
    """Base of the orchestrators: collects changes, diffs and result values."""

    def __init__(self):
        self.changes = []
        self.diffs = []
        self.result = {}

    def _changed(self, what):
        self.changes.append(what)

    def _add_text_diff(self, name, what, before, after):
        """A --diff entry headed '<name> (<what>)', when the two texts differ."""
        if before != after:
            header = "%s (%s)" % (name, what)
            self.diffs.append({"before_header": header, "after_header": header,
                               "before": before, "after": after})

    def finish(self):
        """The module result: the values set, changed (any change at all), the sentences,
        and the diffs when there are some."""
        result = dict(self.result)
        result["changed"] = bool(self.changes)
        result["changes"] = self.changes
        if self.diffs:
            result["diff"] = self.diffs
        return result
