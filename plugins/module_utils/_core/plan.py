# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""What one run will change, computed before anything is changed: the steps in order, each
with the sentence it reports and its part of the --diff. Check mode and a real run compute
the same plan; only a real run applies it. ``changed``, ``changes`` and ``diff`` come from
here, for both kinds of VM."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


# What a step's apply() returns when, at the time it runs, there was nothing left to do
# (a VM the plan starts turned out to start where a later step would have moved it): its
# sentence is then not reported.
NOT_NEEDED = "not needed"


class Step(object):
    """One change: ``sentence`` (None for a step the user does not see as a change: a wait, a
    read for the result), ``apply()`` makes it, ``undo()`` takes it back if a later step
    fails (None: the change stays, and the failure reports it). ``partial``: a failure of
    the step itself may leave part of its change made (a stop done, the delete after it
    not), so the failure reports its sentence too."""

    def __init__(self, sentence, apply=None, undo=None, partial=False):
        self.sentence = sentence
        self.apply = apply
        self.undo = undo
        self.partial = partial
        self.needed = True


class Plan(object):
    """The steps of one run, the --diff entries, and values the steps return."""

    def __init__(self):
        self.steps = []
        self.diffs = []
        self.values = {}
        self.kept = []  # sentences of the steps a failed run made and could not undo

    def change(self, sentence, apply=None, undo=None, partial=False):
        step = Step(sentence, apply, undo, partial)
        self.steps.append(step)
        return step

    def first(self, apply):
        """A step the user does not see as a change that runs before every step planned so
        far (the allocate hooks, which may veto the whole run before anything changed)."""
        step = Step(None, apply)
        self.steps.insert(0, step)
        return step

    def act(self, apply):
        """A step that changes nothing the user sees as a change (a wait, a cleanup)."""
        return self.change(None, apply)

    def diff(self, name, what, before, after):
        """A --diff entry headed '<name> (<what>)', when the two texts differ."""
        if before != after:
            header = "%s (%s)" % (name, what)
            self.diffs.append({"before_header": header, "after_header": header,
                               "before": before, "after": after})

    @property
    def changes(self):
        return [step.sentence for step in self.steps if step.sentence and step.needed]

    def apply(self):
        """Make every step in order. A failure takes back, newest first, what the steps made
        before it could undo; the others are listed in ``kept`` (and last, a ``partial`` step
        that failed), then the failure goes on."""
        done = []
        try:
            for step in self.steps:
                if step.apply is not None:
                    step.needed = step.apply() != NOT_NEEDED
                done.append(step)
        except BaseException:
            failed = self.steps[len(done)]
            if failed.partial and failed.sentence:
                self.kept.append(failed.sentence)
            for step in reversed(done):
                if not self._undone(step) and step.sentence and step.needed:
                    self.kept.insert(0, step.sentence)
            raise

    @staticmethod
    def _undone(step):
        """Take the step back -> whether it is (an undo that fails leaves the change there:
        the run's own failure is the one to report)."""
        if step.undo is None:
            return False
        try:
            step.undo()
        except Exception:  # pylint: disable=broad-except
            return False
        return True

    def outcome(self, values):
        """The module result: ``values``, what the steps returned, changed, the sentences and
        the diffs when there are some."""
        result = dict(values)
        result.update(self.values)
        result["changed"] = bool(self.changes)
        result["changes"] = self.changes
        if self.diffs:
            result["diff"] = self.diffs
        return result
