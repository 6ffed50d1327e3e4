# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection to the hypervisor's libvirt daemon.
    DOCUMENTATION = r"""
options:
  uri:
    description:
      - libvirt connection URI on the hypervisor the task runs on.
    type: str
    default: qemu:///system
  connect_timeout:
    description:
      - Seconds the module waits for libvirtd to accept its connection before it fails,
        saying which libvirt did not answer (a whole number, 1 to 600).
    type: raw
    default: 30
requirements:
  - libvirt Python bindings on the hypervisor (Debian package C(python3-libvirt))
  - lxml on the hypervisor (Debian package C(python3-lxml))
  - qemu-img on the hypervisor (Debian package C(qemu-utils))
"""
