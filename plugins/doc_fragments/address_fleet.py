# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Where the fleet's VMs are listed from: _address/request.fleet_argument_spec().
    DOCUMENTATION = r"""
options:
  cluster:
    description:
      - The cluster whose VMs are read, reached from the host the task runs on.
    type: dict
    suboptions:
      pool:
        description: RBD pool of the cluster's VMs.
        type: str
        default: rbd
      ceph_conf:
        description: Ceph configuration file.
        type: path
        default: /etc/ceph/ceph.conf
      ceph_user:
        description: Ceph client id, without C(client.).
        type: str
        default: libvirt
      keyring:
        description: Keyring of O(cluster.ceph_user); Ceph's default location when not given.
        type: path
  hypervisors:
    description:
      - libvirt URIs of the standalone hosts whose VMs are read (C(qemu:///system) for the
        host the task runs on, C(qemu+ssh://root@host/system) for others).
    type: list
    elements: str
    default: []
"""
