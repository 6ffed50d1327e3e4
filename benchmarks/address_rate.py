"""Allocations per second of the address registry (run by benchmarks/addresses.py with the
distribution Python, where the rados bindings are): PROCESSES processes started together,
each allocating COUNT addresses (one transaction each) in a fresh pool of one backend.

    address_rate.py BACKEND DB_PATH COUNT PROCESSES  -> JSON {seconds, allocations, distinct}
"""
import json
import multiprocessing
import sys
import time

from ansible_collections.gridvirt.kvm.plugins.module_utils._address import registry
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.pools import Pool
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.request import open_store

POOL = Pool("bench", "10.96.0.0/16")


def store_of(backend, path):
    option = {"backend": backend, "path": path, "pool": "rbd", "ceph_conf": "/etc/ceph/ceph.conf",
              "ceph_user": "libvirt", "keyring": None, "connect_timeout": 30}
    return open_store(option, None)


def allocate_many(args):
    backend, path, worker, count, start_at = args
    store = store_of(backend, path)
    while time.time() < start_at:
        time.sleep(0.001)
    ips = []
    for index in range(count):
        ask = registry.Ask("bench-%d-%d" % (worker, index), 0, pool="bench")
        ips.append(store.transact(lambda state: registry.allocate(state, ask))[1]["ip"])
    store.close()
    return ips


def main():
    backend, path, count, processes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = store_of(backend, path)
    store.transact(lambda state: registry.put_pool(state, POOL))
    store.close()
    start_at = time.time() + 1.0
    with multiprocessing.Pool(processes) as workers:
        results = workers.map(allocate_many, [(backend, path, w, count, start_at)
                                              for w in range(processes)])
    seconds = time.time() - start_at
    ips = [ip for result in results for ip in result]
    print(json.dumps({"seconds": seconds, "allocations": len(ips), "distinct": len(set(ips))}))


if __name__ == "__main__":
    main()
