# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""One mutating operation per VM at a time on one hypervisor: a flock on a file per VM.

The kernel drops a flock when its holder dies, so a killed run never leaves a VM locked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import time

from ansible_collections.gridvirt.kvm.plugins.module_utils.errors import VmError

LOCK_DIR = "/run/lock/gridvirt-kvm"


class VmLocks(object):
    """Context manager holding the locks of several VMs (taken in sorted order, so two runs
    locking the same pair cannot deadlock)."""

    def __init__(self, names, wait_seconds, scope="standalone", lock_dir=LOCK_DIR):
        self.names = sorted(set(names))
        self.wait_seconds = wait_seconds
        self.scope = scope
        self.lock_dir = lock_dir
        self._fds = []

    def __enter__(self):
        try:
            os.makedirs(self.lock_dir, 0o755)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise VmError("Cannot create the lock directory %s: %s." % (self.lock_dir, exc))
        try:
            for name in self.names:
                self._fds.append(self._acquire(name))
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def _acquire(self, name):
        path = os.path.join(self.lock_dir, "%s-%s.lock" % (self.scope, name))
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise VmError("VM %s is busy: another run has been changing it for more than "
                              "%d seconds; try again when it has finished."
                              % (name, self.wait_seconds))
            time.sleep(0.2)

    def __exit__(self, exc_type, exc, tb):
        while self._fds:
            fd = self._fds.pop()
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        return False
