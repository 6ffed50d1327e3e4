# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The registry in the omap of one RADOS object, so any node of the cluster can allocate.

Writes are compare-and-set on a generation key: an operation reads the registry (the
generation first: it sorts first), decides, and writes its keys together with the next
generation only if the generation is still the one it read; otherwise another writer got
there first and the operation runs again on a fresh read. Nothing is ever written twice or
from a stale read.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json

from ansible_collections.gridvirt.kvm.plugins.module_utils._address.registry import State
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import deps
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_store import RbdConnection

OBJECT = "gridvirt_addresses"
GENERATION = "gen"
PAGE = 1000
# Each failed compare means another writer succeeded: this many in a row is not contention
# a registry of addresses sees, but something rewriting the object in a loop.
MAX_ATTEMPTS = 500


class _Conflict(Exception):
    """The generation compare failed: another writer committed since our read."""


class RadosStore(RbdConnection):
    backend = "rados"

    def describe(self):
        return "the RADOS registry %s/%s" % (self.pool, OBJECT)

    def transact(self, operation, check_mode=False):
        if check_mode:
            return self.read(operation)
        self._ensure_object()
        for _attempt in range(MAX_ATTEMPTS):
            values, generation = self._read_all()
            state = State(values)
            result = operation(state)
            if not state.writes or self._compare_and_write(generation, state.writes):
                return result
        raise VmError("%s changed %d times while this task tried to write it: something "
                      "rewrites it without pause."
                      % (self.describe().capitalize(), MAX_ATTEMPTS))

    def read(self, operation):
        values, _generation = self._read_all()
        return operation(State(values))

    def _ensure_object(self):
        rados = deps.require("rados")
        with rados.WriteOpCtx() as op:
            op.new(rados.LIBRADOS_CREATE_IDEMPOTENT)
            self._operate(self.ioctx.operate_write_op, op)

    def _read_all(self):
        rados = deps.require("rados")
        raw, after = {}, ""
        while True:
            with rados.ReadOpCtx() as op:
                entries, _ret = self.ioctx.get_omap_vals(op, after, "", PAGE)
                try:
                    self._operate(self.ioctx.operate_read_op, op)
                except rados.ObjectNotFound:
                    return {}, ""
                page = list(entries)
            raw.update(page)
            if len(page) < PAGE:
                break
            after = page[-1][0]
        generation = raw.pop(GENERATION, b"").decode("ascii")
        return dict((k, json.loads(v.decode("utf-8"))) for k, v in raw.items()), generation

    def _compare_and_write(self, generation, writes):
        rados = deps.require("rados")
        sets = sorted((k, v) for k, v in writes.items() if v is not None)
        deletes = sorted(k for k, v in writes.items() if v is None)
        following = str(int(generation or "0") + 1).encode("ascii")
        with rados.WriteOpCtx() as op:
            op.omap_cmp(GENERATION, generation, rados.LIBRADOS_CMPXATTR_OP_EQ)
            keys = tuple([GENERATION] + [k for k, _v in sets])
            values = tuple([following] + [json.dumps(v, sort_keys=True).encode("utf-8")
                                          for _k, v in sets])
            self.ioctx.set_omap(op, keys, values)
            if deletes:
                self.ioctx.remove_omap_keys(op, tuple(deletes))
            try:
                self._operate(self.ioctx.operate_write_op, op)
            except _Conflict:
                return False
        return True

    def _operate(self, call, op):
        rados = deps.require("rados")
        try:
            call(op, OBJECT)
        except rados.TimedOut:
            raise self.not_answering("the registry object %s did not answer" % OBJECT)
        except rados.ObjectNotFound:
            raise
        except rados.Error as exc:
            if getattr(exc, "errno", None) == errno.ECANCELED:
                raise _Conflict()
            raise VmError("Cannot use %s: %s." % (self.describe(), exc))
