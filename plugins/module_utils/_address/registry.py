# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The address registry's rules over a store: pools, one address per (VM, NIC), MACs unique
across the registry and IPs within a pool, release with a hold, reuse.

Every operation is a function of one consistent read of the registry (``State``) that returns
its result and the keys to write; the store applies those writes atomically, or runs the
operation again on a fresh read when another writer got there first (see store_*.py). Check
mode runs the same function and writes nothing, so its prediction is the real run's result.

Keys: ``pool:<name>`` -> pool definition; ``nic:<vm>/<nic>`` -> {pool, mac, ip, fixed_mac,
fixed_ip}; ``released:<vm>/<nic>`` -> the same plus ``at`` (seconds since the epoch).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.gridvirt.kvm.plugins.module_utils._address.pools import (
    DEFAULT_MAC_PREFIX, DEFAULT_RELEASE_HOLD_SECONDS, Pool, check_pool_name, derived_mac,
    normalize_mac)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

POOL, NIC, RELEASED = "pool:", "nic:", "released:"
# Candidate MACs tried for one NIC before the registry is called full: with 3 free octets
# (16 million MACs) a miss this many times in a row means the prefix is exhausted.
MAC_ATTEMPTS = 4096


def nic_key(vm, nic):
    return "%s%s/%d" % (NIC, vm, nic)


def split_nic_key(key, prefix):
    vm, nic = key[len(prefix):].rsplit("/", 1)
    return vm, int(nic)


class State(object):
    """One consistent read of the registry, with the writes an operation decided."""

    def __init__(self, values, now=None):
        self.values = values
        self.writes = {}
        self.now = time.time() if now is None else now

    def get(self, key):
        if key in self.writes:
            return self.writes[key]
        return self.values.get(key)

    def put(self, key, value):
        self.writes[key] = value

    def delete(self, key):
        if self.get(key) is not None:
            self.writes[key] = None

    def items(self, prefix):
        merged = dict((k, v) for k, v in self.values.items() if k.startswith(prefix))
        merged.update((k, v) for k, v in self.writes.items() if k.startswith(prefix))
        return sorted((k, v) for k, v in merged.items() if v is not None)

    # ---- views ------------------------------------------------------------------------

    def pools(self):
        return dict((k[len(POOL):], Pool.from_definition(v)) for k, v in self.items(POOL))

    def pool(self, name):
        definition = self.get(POOL + name)
        if definition is None:
            known = ", ".join(sorted(self.pools())) or "none"
            raise VmError("The address pool %s does not exist (pools in the registry: %s)."
                          % (name, known))
        return Pool.from_definition(definition)

    def allocations(self):
        return [(split_nic_key(k, NIC), v) for k, v in self.items(NIC)]

    def mac_owners(self):
        return dict((v["mac"], owner) for owner, v in self.allocations())

    def ip_owners(self, pool):
        return dict((v["ip"], owner) for owner, v in self.allocations()
                    if v.get("pool") == pool and v.get("ip"))

    def held(self, skip_owner):
        """MACs and (pool, IP)s released less than their pool's hold ago, with when, except
        those of ``skip_owner`` (its own released addresses are its to take back)."""
        macs, ips = {}, {}
        pools = self.pools()
        for key, record in self.items(RELEASED):
            if split_nic_key(key, RELEASED) == skip_owner:
                continue
            pool = pools.get(record.get("pool") or "")
            hold = pool.release_hold if pool else DEFAULT_RELEASE_HOLD_SECONDS
            if self.now - record["at"] < hold:
                macs[record["mac"]] = record["at"]
                if record.get("ip"):
                    ips[(record["pool"], record["ip"])] = record["at"]
        return macs, ips


def owner_text(owner):
    return "NIC %d of VM %s" % (owner[1], owner[0])


# ---- pools ----------------------------------------------------------------------------

def put_pool(state, pool):
    """Create or change a pool; returns (changed, before)."""
    before = state.get(POOL + pool.name)
    if before == pool.definition:
        return False, before
    for name, other in state.pools().items():
        if name != pool.name and pool.overlaps(other):
            raise VmError("Pool %s (%s) would overlap pool %s (%s): pools may not overlap."
                          % (pool.name, pool.network, name, other.network))
    outside = [owner_text(owner) + " (%s)" % record["ip"]
               for owner, record in state.allocations()
               if record.get("pool") == pool.name and record.get("ip")
               and not _still_fits(pool, record)]
    if outside:
        raise VmError("Changing pool %s this way would leave allocated addresses outside it: "
                      "%s. Release them first." % (pool.name, ", ".join(outside)))
    state.put(POOL + pool.name, pool.definition)
    return True, before


def _still_fits(pool, record):
    return pool.contains(record["ip"]) if record.get("fixed_ip") else pool.in_ranges(record["ip"])


def remove_pool(state, name):
    before = state.get(POOL + name)
    if before is None:
        return False, None
    users = [owner_text(owner) for owner, record in state.allocations()
             if record.get("pool") == name]
    if users:
        raise VmError("Pool %s still has %d allocated address(es) (%s): release them before "
                      "removing the pool." % (name, len(users), ", ".join(users)))
    for key, record in state.items(RELEASED):
        if record.get("pool") == name:
            state.delete(key)
    state.delete(POOL + name)
    return True, before


def pool_usage(state, pool):
    allocated = state.ip_owners(pool.name)
    in_ranges = sum(1 for ip in allocated if pool.in_ranges(ip))
    return {"size": pool.size, "used": len(allocated), "free": pool.size - in_ranges}


# ---- addresses ------------------------------------------------------------------------

class Ask(object):
    """What a task asks for one NIC: its pool (None: a MAC only) and fixed MAC or IP."""

    def __init__(self, vm, nic, pool=None, ip=None, mac=None):
        self.vm, self.nic = vm, nic
        self.pool = check_pool_name(pool) if pool else None
        self.mac = normalize_mac(mac) if mac else None
        self.ip = ip


def allocate(state, ask):
    """The NIC's address, allocated if needed; returns (changed, record)."""
    owner = (ask.vm, ask.nic)
    key = nic_key(*owner)
    pool = state.pool(ask.pool) if ask.pool else None
    fixed_ip = pool.fixed_ip(ask.ip) if (pool and ask.ip) else None
    if ask.ip and not pool:
        raise VmError("An IP address (%s) needs a pool: give the pool it belongs to."
                      % ask.ip)
    current = state.get(key)
    wanted = _wanted(state, owner, pool, fixed_ip, ask.mac, current)
    if wanted == current:
        return False, current
    state.put(key, wanted)
    state.delete(RELEASED + key[len(NIC):])
    return True, wanted


def _wanted(state, owner, pool, fixed_ip, fixed_mac, current):
    previous = current or state.get(RELEASED + nic_key(*owner)[len(NIC):]) or {}
    held_macs, held_ips = state.held(owner)
    mac = _choose_mac(state, owner, pool, fixed_mac, previous, held_macs)
    record = {"pool": pool.name if pool else None, "mac": mac, "ip": None,
              "fixed_mac": bool(fixed_mac), "fixed_ip": bool(fixed_ip)}
    if pool:
        record["ip"] = _choose_ip(state, owner, pool, fixed_ip, previous, held_ips)
    if current and _same(current, record):
        return current
    return record


def _same(current, record):
    return all(current.get(k) == record[k] for k in record)


def _choose_mac(state, owner, pool, fixed_mac, previous, held):
    owners = state.mac_owners()
    if fixed_mac:
        _refuse_taken("MAC address", fixed_mac, owners, owner)
        return fixed_mac
    mine = previous.get("mac")
    if mine and owners.get(mine, owner) == owner:
        return mine
    prefix = pool.mac_prefix if pool else DEFAULT_MAC_PREFIX
    fallback = None
    for attempt in range(MAC_ATTEMPTS):
        mac = derived_mac(prefix, owner[0], owner[1], attempt)
        if mac in owners:
            continue
        if mac not in held:
            return mac
        fallback = fallback or mac
    if fallback:
        return fallback
    raise VmError("No free MAC address under the prefix %s after %d attempts: the prefix is "
                  "(nearly) exhausted; give the pool a shorter mac_prefix."
                  % (prefix, MAC_ATTEMPTS))


def _choose_ip(state, owner, pool, fixed_ip, previous, held):
    owners = state.ip_owners(pool.name)
    if fixed_ip:
        _refuse_taken("IP address", fixed_ip, owners, owner)
        return fixed_ip
    mine = previous.get("ip")
    if (mine and previous.get("pool") == pool.name and owners.get(mine, owner) == owner
            and pool.in_ranges(mine)):
        return mine
    oldest_held = None
    for ip in pool.candidates(owner[0], owner[1]):
        if ip in owners:
            continue
        released_at = held.get((pool.name, ip))
        if released_at is None:
            return ip
        if oldest_held is None or released_at < oldest_held[0]:
            oldest_held = (released_at, ip)
    if oldest_held:
        return oldest_held[1]
    raise VmError("Pool %s is full: all %d addresses of its ranges (%s) are allocated."
                  % (pool.name, pool.size, ", ".join(pool.ranges)))


def _refuse_taken(what, value, owners, owner):
    taken_by = owners.get(value)
    if taken_by is not None and taken_by != owner:
        raise VmError("The %s %s is already allocated to %s." % (what, value,
                                                                 owner_text(taken_by)))


def release(state, vm, nic=None):
    """Release one NIC's address, or every address of the VM; returns the records released."""
    released = []
    for (owner_vm, owner_nic), record in state.allocations():
        if owner_vm != vm or (nic is not None and owner_nic != nic):
            continue
        kept = dict(record, at=state.now)
        state.put(RELEASED + nic_key(owner_vm, owner_nic)[len(NIC):], kept)
        state.delete(nic_key(owner_vm, owner_nic))
        released.append(((owner_vm, owner_nic), record))
    return released


def addresses(state, pool_name=None, vm=None):
    pools = state.pools()
    out = []
    for owner, record in state.allocations():
        if (pool_name and record.get("pool") != pool_name) or (vm and owner[0] != vm):
            continue
        out.append(describe(owner, record, pools.get(record.get("pool") or "")))
    return out


def describe(owner, record, pool):
    """The address as modules return it."""
    domain = pool.domain if pool else None
    return {
        "vm": owner[0], "nic": owner[1], "pool": record.get("pool"), "mac": record["mac"],
        "ip": record.get("ip"), "prefix": pool.network.prefixlen if (pool and record.get("ip"))
        else None,
        "gateway": str(pool.gateway) if (pool and pool.gateway) else None,
        "dns_servers": list(pool.dns_servers) if pool else [],
        "domain": domain, "fqdn": "%s.%s" % (owner[0], domain) if domain else owner[0],
        "fixed": bool(record.get("fixed_mac") or record.get("fixed_ip")),
    }


def converge(state, pools, asks):
    """Pools first, then every NIC's address, in one transaction (the deploy roles' single
    call per play); returns (changed, [address])."""
    changed = False
    for pool in pools:
        changed = put_pool(state, pool)[0] or changed
    out = []
    for ask in asks:
        nic_changed, record = allocate(state, ask)
        changed = changed or nic_changed
        pool = state.pool(record["pool"]) if record.get("pool") else None
        out.append(describe((ask.vm, ask.nic), record, pool))
    return changed, out


def import_existing(state, vm_macs, reserved):
    """Record the MACs existing VMs use (and the IPs libvirt networks reserve for them, in the
    pool holding each) as fixed addresses; returns (changed, [address]). A MAC used twice is
    refused, naming both users, and nothing is recorded."""
    users = {}
    for vm, macs in sorted(vm_macs.items()):
        for nic, mac in enumerate(macs):
            mac = normalize_mac(mac, "MAC address of NIC %d of VM %s" % (nic, vm))
            if mac in users:
                raise VmError("The MAC address %s is used by %s and by %s: give one of them "
                              "another MAC before importing." % (
                                  mac, owner_text(users[mac]), owner_text((vm, nic))))
            users[mac] = (vm, nic)
    pools = state.pools()
    asks = []
    for mac, (vm, nic) in sorted(users.items(), key=lambda item: item[1]):
        ip = reserved.get(mac)
        pool = _pool_holding(pools, ip) if ip else None
        asks.append(Ask(vm, nic, pool=pool.name if pool else None,
                        ip=ip if pool else None, mac=mac))
    return converge(state, [], asks)


def _pool_holding(pools, ip):
    for pool in pools.values():
        try:
            if pool.contains(ip):
                return pool
        except ValueError:
            return None
    return None
