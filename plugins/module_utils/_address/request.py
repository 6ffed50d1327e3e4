# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The address modules' options: their argument specs (documented by the doc fragment
gridvirt.kvm.address_registry and each module) and the store a task's ``registry`` names."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils._address.pools import (
    DEFAULT_RELEASE_HOLD_SECONDS, Pool)
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.registry import Ask
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.store_rados import (
    RadosStore)
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.store_sqlite import (
    DEFAULT_PATH, SqliteStore)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec

STATES = ["present", "absent"]


def registry_argument_spec():
    """The ``registry`` option, the same in every address module."""
    return dict(registry=dict(
        type="dict", default={}, apply_defaults=True,
        options=dict(
            backend=dict(type="str", choices=["sqlite", "rados"], default="sqlite"),
            path=dict(type="path", default=DEFAULT_PATH),
            pool=dict(type="str", default="rbd"),
            ceph_conf=dict(type="path", default="/etc/ceph/ceph.conf"),
            ceph_user=dict(type="str", default="libvirt"),
            keyring=dict(type="path", no_log=False),
            connect_timeout=dict(type="int", default=spec.DEFAULT_CONNECT_TIMEOUT),
        )))


def pool_argument_spec():
    argument_spec = dict(
        name=dict(type="str", required=True),
        cidr=dict(type="str"),
        ranges=dict(type="list", elements="str"),
        gateway=dict(type="str"),
        dns_servers=dict(type="list", elements="str", default=[]),
        domain=dict(type="str"),
        mac_prefix=dict(type="str"),
        release_hold=dict(type="int", default=DEFAULT_RELEASE_HOLD_SECONDS),
        state=dict(type="str", choices=STATES, default="present"),
    )
    argument_spec.update(registry_argument_spec())
    return argument_spec


def address_argument_spec():
    argument_spec = dict(
        vm=dict(type="str"),
        nic=dict(type="int"),
        pool=dict(type="str"),
        ip=dict(type="str"),
        mac=dict(type="str"),
        state=dict(type="str", choices=STATES, default="present"),
        expect=dict(type="list", elements="dict"),
    )
    argument_spec.update(batch_argument_spec())
    return argument_spec


def batch_argument_spec():
    """A play's pools and NICs (the address module's batch; deploy_plan's addresses)."""
    argument_spec = dict(
        nics=dict(type="list", elements="dict", options=dict(
            vm=dict(type="str", required=True),
            nic=dict(type="int", default=0),
            pool=dict(type="str"),
            ip=dict(type="str"),
            mac=dict(type="str"),
        )),
        pools=dict(type="list", elements="dict", options=dict(
            (k, v) for k, v in pool_argument_spec().items() if k not in ("state", "registry"))),
    )
    argument_spec.update(registry_argument_spec())
    return argument_spec


# vm names one NIC, nics many; pools and expect only come with nics (the roles' one call
# per play).
ADDRESS_RULES = dict(
    required_one_of=[("vm", "nics")],
    mutually_exclusive=[("vm", "nics")],
    required_by={"pools": "nics", "expect": "nics"},
)


def fleet_argument_spec():
    """Where the fleet's VMs are listed from: the cluster and libvirt hosts."""
    return dict(
        cluster=dict(type="dict", options=dict(
            pool=dict(type="str", default="rbd"),
            ceph_conf=dict(type="path", default="/etc/ceph/ceph.conf"),
            ceph_user=dict(type="str", default="libvirt"),
            keyring=dict(type="path", no_log=False),
        )),
        hypervisors=dict(type="list", elements="str", default=[]),
    )


def info_argument_spec():
    argument_spec = dict(
        pool=dict(type="str"),
        vm=dict(type="str"),
        orphans=dict(type="bool", default=False),
    )
    argument_spec.update(fleet_argument_spec())
    argument_spec.update(registry_argument_spec())
    return argument_spec


def import_argument_spec():
    argument_spec = fleet_argument_spec()
    argument_spec.update(registry_argument_spec())
    return argument_spec


def open_store(registry, run):
    """The store a task's ``registry`` option names."""
    if registry["backend"] == "sqlite":
        return SqliteStore(registry["path"])
    timeout = spec.validate_connect_timeout(registry["connect_timeout"])
    return RadosStore(registry["ceph_conf"], registry["ceph_user"], registry["keyring"],
                      registry["pool"], run, timeout=timeout)


def pool_request(params):
    """The pool a task describes (checked), or None for ``absent``."""
    if params["state"] == "absent":
        return None
    if not params.get("cidr"):
        raise VmError("Pool %s needs a cidr (the network it hands addresses out of)."
                      % params["name"])
    return Pool(params["name"], params["cidr"], ranges=params.get("ranges"),
                gateway=params.get("gateway"), dns_servers=params.get("dns_servers"),
                domain=params.get("domain"), mac_prefix=params.get("mac_prefix"),
                release_hold=params.get("release_hold"))


def address_request(params):
    """What a task of the address module asks for one NIC (checked before any I/O)."""
    return nic_request(dict(params, nic=params.get("nic")), params["state"])


def batch_request(params):
    """The pools and NICs of a batch call, all checked before any I/O."""
    if params["state"] == "absent":
        raise VmError("nics allocates; release a VM's addresses with vm and state=absent.")
    pools = [pool_request(dict(p, state="present")) for p in params.get("pools") or []]
    asks = [nic_request(n, "present") for n in params["nics"]]
    seen = set()
    for ask in asks:
        if (ask.vm, ask.nic) in seen:
            raise VmError("nics names NIC %d of VM %s twice." % (ask.nic, ask.vm))
        seen.add((ask.vm, ask.nic))
    return pools, asks


def nic_request(params, state):
    spec.validate_vm_name(params["vm"])
    nic = params.get("nic")
    if nic is not None and not 0 <= nic <= 63:
        raise VmError("nic is the NIC's index, 0 to 63 (got %d)." % nic)
    if state == "absent":
        return Ask(params["vm"], nic)
    return Ask(params["vm"], nic or 0, pool=params.get("pool"), ip=params.get("ip"),
               mac=params.get("mac"))
