# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The registry option of the address modules: _address/request.registry_argument_spec().
    DOCUMENTATION = r"""
options:
  registry:
    description:
      - Where the address registry lives, the same in every task of an inventory (the deploy
        roles pass their C(address_registry) variable).
    type: dict
    default: {}
    suboptions:
      backend:
        description:
          - C(sqlite) keeps the registry in one SQLite file on the host the task runs on
            (run the tasks on one host, the roles' C(address_registry_host)); writers queue
            on SQLite's lock.
          - C(rados) keeps it in the omap of the RADOS object C(gridvirt_addresses) of a Ceph
            pool, written with compare-and-set, so any node of the cluster can allocate.
        type: str
        choices: [sqlite, rados]
        default: sqlite
      path:
        description:
          - The SQLite file (C(sqlite)). Created with mode 0600, its directory 0700.
        type: path
        default: /var/lib/gridvirt/addresses.db
      pool:
        description:
          - The Ceph pool of the registry object (C(rados)).
        type: str
        default: rbd
      ceph_conf:
        description:
          - Ceph configuration file on the host the task runs on (C(rados)).
        type: path
        default: /etc/ceph/ceph.conf
      ceph_user:
        description:
          - Ceph client id, without C(client.) (C(rados)).
        type: str
        default: libvirt
      keyring:
        description:
          - Keyring of O(registry.ceph_user); Ceph's default location when not given (C(rados)).
        type: path
      connect_timeout:
        description:
          - Seconds to wait for Ceph to answer before failing (C(rados)), 1 to 600.
        type: int
        default: 30
"""
