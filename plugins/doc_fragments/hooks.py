# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The site hooks (allocate / preboot / disallocate) a VM module runs.
    DOCUMENTATION = r"""
options:
  hook_timeout:
    description:
      - Seconds one site hook may run (allocate, preboot or disallocate, in
        C(/etc/gridvirt/hooks/<stage>.d/) on the host the task runs on) before it is killed
        with the processes it started and counted as failed.
      - A killed allocate or preboot hook refuses the action; a killed disallocate hook is a
        warning.
      - Hooks run in name order, each given one JSON document on stdin (keys C(vm), C(kind),
        C(node), C(action), C(stage), C(xml), C(metadata), C(addresses)). Their output is
        logged in C(/var/log/gridvirt/hooks.log). A hook that is not executable, not owned by
        root or writable by another user is refused. Check mode runs no hook.
    type: int
    default: 60
  addresses:
    description:
      - The VM's addresses as M(gridvirt.kvm.address) returns them (the deploy roles pass
        those of the address registry), handed to the site hooks as C(addresses).
    type: list
    elements: dict
"""
