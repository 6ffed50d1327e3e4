# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Where cluster VMs live: the Ceph cluster, pool and credentials. The options of
    # spec.ceph_argument_spec(), whose defaults (DEFAULT_SECRET_UUID) sanity checks these against.
    DOCUMENTATION = r"""
options:
  ceph_conf:
    description:
      - Ceph configuration file on the node the task runs on.
    type: path
    default: /etc/ceph/ceph.conf
  ceph_user:
    description:
      - Ceph client id (without C(client.)) the module, the resource agent and QEMU use.
    type: str
    default: libvirt
  keyring:
    description:
      - Keyring of O(ceph_user); Ceph's default location when not given
        (C(/etc/ceph/ceph.client.<user>.keyring)).
    type: path
  pool:
    description:
      - RBD pool of the VMs' images.
    type: str
    default: rbd
  secret_uuid:
    description:
      - UUID of the libvirt secret holding the Ceph key of O(ceph_user) on every node (the
        C(gridvirt.kvm.hypervisor) role defines it with this UUID).
    type: str
    default: 5b1a8d2e-3c4f-4e6a-9b7d-1f0e2c3a4b5d
  connect_timeout:
    description:
      - Seconds the module waits for Ceph (the connection to its monitors, then each
        monitor or OSD operation), for each Pacemaker command and for libvirt before it fails,
        saying which service on which node did not answer (a whole number, 1 to 600). Without it, librados
        waits 5 minutes for monitors that are down.
    type: raw
    default: 30
requirements:
  - Python bindings of librados and librbd on the node (Debian packages C(python3-rados),
    C(python3-rbd))
  - lxml on the node (Debian package C(python3-lxml))
  - Pacemaker command line tools (C(cibadmin), C(crm_mon), C(crm_resource)), C(qemu-img)
    with RBD support, C(virt-xml-validate), and libvirt Python bindings on the node
"""
