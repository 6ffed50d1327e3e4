# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""One mutating operation per VM at a time on one hypervisor: a flock on a file per VM.

The kernel drops a flock when its holder dies, so a killed run never leaves a VM locked.
The holder removes its lock file before it lets go, so runs leave no file behind; a run
that waited on the removed file sees that it is no longer the one at the path and takes the
lock on the new one.
The lock files live in a directory only root can enter (not in the world-writable
/run/lock), and are opened without following symbolic links: another local user can neither
plant a link that makes root create or truncate a file elsewhere, nor hold a VM's lock.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import stat
import time

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

LOCK_DIR = "/run/gridvirt-kvm/locks"


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
        make_private_directory(self.lock_dir)
        try:
            for name in self.names:
                self._fds.append(self._acquire(name))
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def _acquire(self, name):
        path = os.path.join(self.lock_dir, "%s-%s.lock" % (self.scope, name))
        deadline = time.monotonic() + self.wait_seconds
        while True:
            fd = _open_lock_file(path)
            if _try_flock(fd):
                if _is_the_file_at(fd, path):
                    return fd, path
                os.close(fd)  # its holder removed it as it let go: take the new file's lock
                continue
            os.close(fd)
            if time.monotonic() >= deadline:
                raise VmError("VM %s is busy: another run has been changing it for more than "
                              "%d seconds; try again when it has finished."
                              % (name, self.wait_seconds))
            time.sleep(0.2)

    def __exit__(self, exc_type, exc, tb):
        while self._fds:
            fd, path = self._fds.pop()
            try:
                os.unlink(path)  # while it is still ours: a waiting run then retries
            finally:
                os.close(fd)  # closing releases the flock
        return False


def _try_flock(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (IOError, OSError) as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise
    return False


def _is_the_file_at(fd, path):
    try:
        at_path = os.lstat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)


def make_private_directory(path):
    """Create path and its missing parents (0700), then check that each directory created
    and path itself is a real directory of ours that no one else can enter."""
    missing = []
    parent = os.path.abspath(path)
    while not os.path.lexists(parent):
        missing.insert(0, parent)
        parent = os.path.dirname(parent)
    for directory in missing:
        try:
            os.mkdir(directory, 0o700)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise VmError("Cannot create the lock directory %s: %s." % (directory, exc))
        _check_private_directory(directory)
    if not missing:
        _check_private_directory(path)


def _check_private_directory(path):
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid != os.geteuid():
        problem = "is owned by uid %d, not by uid %d that runs the module" % (
            info.st_uid, os.geteuid())
    elif info.st_mode & 0o077:
        problem = "has mode %04o, open to group or others" % stat.S_IMODE(info.st_mode)
    else:
        return
    raise VmError("The lock directory %s %s: remove it, the module creates it itself with "
                  "mode 0700." % (path, problem))


def _open_lock_file(path):
    """Open (create) a lock file, never through a symbolic link."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise VmError("The lock file %s is a symbolic link: remove it, the module does "
                          "not follow links there." % path)
        raise VmError("Cannot open the lock file %s: %s." % (path, exc))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise VmError("The lock file %s is not a regular file: remove it." % path)
    return fd
