# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The registry in one SQLite file on the host the task runs on (the default backend).

Each operation runs inside one ``BEGIN IMMEDIATE`` transaction: concurrent writers (separate
processes included) queue on SQLite's lock, so an operation always decides on the registry as
it is when it writes. The file and the directory it creates are private (0600 / 0700).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sqlite3
import stat

from ansible_collections.gridvirt.kvm.plugins.module_utils._address.registry import State
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

DEFAULT_PATH = "/var/lib/gridvirt/addresses.db"
# How long a writer waits for another one's transaction (each lasts milliseconds).
LOCK_WAIT_SECONDS = 60
SCHEMA = "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class SqliteStore(object):
    backend = "sqlite"

    def __init__(self, path=None):
        self.path = path or DEFAULT_PATH

    def describe(self):
        return "the SQLite registry %s" % self.path

    def transact(self, operation, check_mode=False):
        """``operation(state)``'s result, its writes committed unless ``check_mode``."""
        if check_mode and not os.path.exists(self.path):
            return operation(State({}))
        connection = self._open(create=not check_mode)
        try:
            connection.execute("BEGIN IMMEDIATE" if not check_mode else "BEGIN")
            state = State(self._read(connection))
            result = operation(state)
            if check_mode:
                connection.execute("ROLLBACK")
            else:
                self._write(connection, state.writes)
                connection.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            raise VmError("Cannot use %s: %s." % (self.describe(), exc))
        finally:
            connection.close()

    def read(self, operation):
        """``operation(state)`` on the registry as it is; an absent file is an empty one."""
        return self.transact(operation, check_mode=True)

    # ---- file -------------------------------------------------------------------------

    def _open(self, create):
        directory = os.path.dirname(self.path) or "."
        if create and not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        if create and not os.path.exists(self.path):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._keep_private()
        try:
            connection = sqlite3.connect(self.path, timeout=LOCK_WAIT_SECONDS,
                                         isolation_level=None)
            connection.execute(SCHEMA)
        except sqlite3.Error as exc:
            raise VmError("%s cannot be opened as an SQLite database: %s." % (
                self.describe().capitalize(), exc))
        return connection

    def _keep_private(self):
        """Someone's chmod must not leave the registry readable by every local user."""
        try:
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
        except OSError:
            return
        if mode & 0o077:
            os.chmod(self.path, mode & 0o700)

    @staticmethod
    def _read(connection):
        return dict((key, json.loads(value))
                    for key, value in connection.execute("SELECT key, value FROM entries"))

    @staticmethod
    def _write(connection, writes):
        for key, value in sorted(writes.items()):
            if value is None:
                connection.execute("DELETE FROM entries WHERE key = ?", (key,))
            else:
                connection.execute("INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)",
                                   (key, json.dumps(value, sort_keys=True)))

    def close(self):
        return None
