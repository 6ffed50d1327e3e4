# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The names a VM's objects have in its pool (SEAPATH's vm_manager's): the group is the VM's
name, its system disk ``system_<vm>``, its data disks ``data_<vm>_<i>``; our cloud-init seed
image ``seed_<vm>`` and per-VM lock object ``gridvirt.lock.<vm>``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def system_image(vm):
    return "system_%s" % vm


def data_image(vm, index):
    return "data_%s_%d" % (vm, index)


def seed_image(vm):
    """The VM's cloud-init seed (not in the VM's group: snapshots and clones leave it out)."""
    return "seed_%s" % vm


def lock_object(vm):
    return "gridvirt.lock.%s" % vm
