# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The one lifecycle of a module call, for every kind of VM: under the VM's locks, read the
VM once, plan (the steps and their sentences and diffs), apply the plan unless in check mode,
report. A kind of VM is a Backend; nothing here knows libvirt, Ceph or Pacemaker."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import abc

from ansible_collections.gridvirt.kvm.plugins.module_utils._common import library_errors
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.plan import Plan


class Backend(abc.ABC):
    """How one kind of VM is read and changed. ``run`` calls: locks(), read(), plan(), the
    plan's steps (not in check mode), report(), and close() whatever happened."""

    @abc.abstractmethod
    def where(self):
        """Where the VM lives, for sentences: 'qemu:///system', 'node hv1'."""

    def timed_out(self, what):
        """The VmError of a backend service that waited past its timeout (None: none can)."""
        return None

    @abc.abstractmethod
    def locks(self, request, check_mode):
        """A context manager holding the locks of the VMs the request changes."""

    @abc.abstractmethod
    def read(self, request):
        """-> the VM as it is (a view the plan may change into what it will be)."""

    @abc.abstractmethod
    def plan(self, request, view, plan):
        """Add the request's steps to ``plan``; -> the view as the plan leaves the VM."""

    @abc.abstractmethod
    def report(self, request, view, applied):
        """-> the result values: read again after an applied plan, else from ``view``."""

    @abc.abstractmethod
    def close(self):
        """Release the connections."""


def run(request, backend, check_mode):
    """One module call -> the module result (raises VmError with a sentence). A failure after
    the plan began reports the changes it could not take back as ``changed``/``changes``."""
    what = library_errors.doing(request.command, request.action, request.name)
    plan = Plan()
    try:
        with library_errors.as_sentences(what, backend.where(), backend.timed_out):
            with backend.locks(request, check_mode):
                view = backend.read(request)
                after = backend.plan(request, view, plan)
                if not check_mode:
                    plan.apply()
                return plan.outcome(backend.report(request, after, applied=not check_mode))
    except VmError as exc:
        if plan.kept:
            exc.details.setdefault("changed", True)
            exc.details.setdefault("changes", list(plan.kept))
        raise
    finally:
        backend.close()
