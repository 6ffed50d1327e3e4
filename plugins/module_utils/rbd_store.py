# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The RBD store: VM disks, registry, metadata, trash and the per-VM lease lock, through the
rados/rbd Python bindings; their snapshots and clones are in rbd_snapshots. Knows nothing of
libvirt or Pacemaker.

Data model (compatible with SEAPATH's vm_manager): a VM exists when the RBD group named after
it exists; its system disk is the image ``system_<vm>``, additional disks ``data_<vm>_<i>``,
all members of the group; metadata lives on ``system_<vm>``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import struct
import threading
import time
import uuid as uuid_lib

from ansible_collections.gridvirt.kvm.plugins.module_utils._common import deps
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.runner import run_checked
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import (
    lock_object, system_image)
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_snapshots import RbdSnapshots

# How long the module waits for Ceph to answer (connection, then each monitor or OSD
# operation) before it says which service did not: librados waits 5 minutes by default.
DEFAULT_CONNECT_TIMEOUT = 30
LOCK_NAME = "gridvirt"
# librados' LIBRADOS_LOCK_FLAG_RENEW; the Python binding does not export it.
LOCK_FLAG_RENEW = 1
# cls_lock's ClsLockType for an exclusive lock.
LOCK_TYPE_EXCLUSIVE = 1
DEFAULT_LEASE_SECONDS = 60
# A client that died without closing an image (QEMU killed when a guest would not shut down)
# leaves its watch until the OSDs time it out (osd_client_watch_timeout, 30 s by default):
# until then the image is "busy" and cannot be removed or moved to the trash.
STALE_WATCH_SECONDS = 45


# qemu-img names an image "rbd:<pool>/<image>:id=<user>:conf=<path>:keyring=<path>": one of
# these characters in a value would end it there and start options of the caller's choosing.
SPEC_SEPARATORS = (":", "=", "\\")
SPEC_PATH_SEPARATORS = SPEC_SEPARATORS + ("/", "@")


def _check_spec_value(option, value, specials):
    """Refuse a value that would change the meaning of qemu-img's rbd: image name."""
    found = [c for c in specials if c in (value or "")]
    if found:
        raise VmError("%s %r must not contain %s: qemu-img would read what follows as options "
                      "of its own." % (option, value, " or ".join("'%s'" % c for c in found)))


class RbdConnection(object):
    """One connection to a pool, bounded by ``timeout`` seconds per wait."""

    def __init__(self, conf, user, keyring, pool, run, timeout=DEFAULT_CONNECT_TIMEOUT):
        for option, value, specials in (
                ("ceph_conf", conf, SPEC_SEPARATORS), ("ceph_user", user, SPEC_SEPARATORS),
                ("keyring", keyring, SPEC_SEPARATORS), ("pool", pool, SPEC_PATH_SEPARATORS)):
            _check_spec_value(option, value, specials)
        self.conf = conf
        self.user = user
        self.keyring = keyring
        self.pool = pool
        self._run = run
        self.timeout = timeout
        self._cluster = None
        self._ioctx = None

    # ---- connection -------------------------------------------------------------------

    @property
    def ioctx(self):
        if self._ioctx is None:
            self._connect()
        return self._ioctx

    def _client_conf(self):
        """librados settings of our connection: the bound on every wait (the Python
        binding's connect timeout is ignored; these are what librados honours)."""
        conf = dict((option, str(self.timeout)) for option in (
            "client_mount_timeout", "rados_mon_op_timeout", "rados_osd_op_timeout"))
        if self.keyring:
            conf["keyring"] = self.keyring
        return conf

    def _connect(self):
        rados = deps.require("rados")
        try:
            self._cluster = rados.Rados(conffile=self.conf, rados_id=self.user,
                                        conf=self._client_conf())
            self._cluster.connect()
        except rados.TimedOut:
            self._cluster = None
            raise self.not_answering("no monitor answered")
        except rados.Error as exc:
            self._cluster = None
            raise VmError("Cannot connect to Ceph as client.%s with %s: %s. Check the Ceph "
                          "configuration and keyring on the hypervisor."
                          % (self.user, self.conf, exc))
        try:
            self._ioctx = self._cluster.open_ioctx(self.pool)
        except rados.ObjectNotFound:
            self.close()
            raise VmError("The Ceph pool %s does not exist." % self.pool)

    def not_answering(self, what):
        """The sentence for a Ceph that did not answer within our timeout."""
        return VmError("Ceph did not answer within %d seconds (%s; client.%s with %s, on node "
                       "%s): check that its monitors and OSDs run and are reachable from this "
                       "node, then run the task again."
                       % (self.timeout, what, self.user, self.conf, os.uname()[1]))

    def close(self):
        if self._ioctx is not None:
            self._ioctx.close()
            self._ioctx = None
        if self._cluster is not None:
            self._cluster.shutdown()
            self._cluster = None

    @staticmethod
    def _rbd():
        return deps.require("rbd").RBD()

    def monitors(self):
        """[(host, port)] of the monitors, for network disk definitions."""
        if self._cluster is None:
            self._connect()
        out = self._mon_command({"prefix": "mon dump", "format": "json"})
        hosts = []
        for mon in out["mons"]:
            addrs = mon.get("public_addrs", {}).get("addrvec", [])
            v1 = [a["addr"] for a in addrs if a.get("type") == "v1"]
            addr = v1[0] if v1 else mon["addr"].split("/")[0]
            host, port = addr.rsplit(":", 1)
            hosts.append((host, port))
        return hosts

    def _mon_command(self, cmd):
        ret, out, err = self._cluster.mon_command(json.dumps(cmd), b"")
        if ret != 0:
            raise VmError("Ceph refused %s: %s." % (cmd["prefix"], err))
        return json.loads(out)


class RbdStore(RbdConnection):
    """The VMs of one pool: registry (groups), images, metadata, the per-VM lease; their
    snapshots and clones through ``snapshots`` (rbd_snapshots)."""

    def __init__(self, *args, **kwargs):
        super(RbdStore, self).__init__(*args, **kwargs)
        self.snapshots = RbdSnapshots(self)

    # ---- registry ---------------------------------------------------------------------

    def vm_names(self):
        return sorted(self._rbd().group_list(self.ioctx))

    def vm_exists(self, vm):
        return vm in self._rbd().group_list(self.ioctx)

    def image_names(self):
        return set(self._rbd().list(self.ioctx))

    def image_exists(self, name):
        return name in self.image_names()

    def images_of(self, vm):
        """Member images of the VM's group: system first, then data disks by index."""
        rbd = deps.require("rbd")
        names = [i["name"] for i in rbd.Group(self.ioctx, vm).list_images()]

        def order(name):
            if name == system_image(vm):
                return (0, 0)
            tail = name.rsplit("_", 1)[-1]
            return (1, int(tail) if tail.isdigit() else 0)
        return sorted(names, key=order)

    def create_group(self, vm):
        self._rbd().group_create(self.ioctx, vm)

    def remove_group(self, vm):
        rbd = deps.require("rbd")
        try:
            self._rbd().group_remove(self.ioctx, vm)
        except rbd.ObjectNotFound:
            pass

    def add_to_group(self, vm, image):
        deps.require("rbd").Group(self.ioctx, vm).add_image(self.ioctx, image)

    def remove_from_group(self, vm, image):
        deps.require("rbd").Group(self.ioctx, vm).remove_image(self.ioctx, image)

    # ---- images -----------------------------------------------------------------------

    def qemu_target(self, image):
        """qemu-img's name for an image of this store (rbd: protocol, our user and conf)."""
        spec = "rbd:%s/%s:id=%s:conf=%s" % (self.pool, image, self.user, self.conf)
        if self.keyring:
            spec += ":keyring=%s" % self.keyring
        return spec

    def create_image(self, name, size_bytes):
        rbd = deps.require("rbd")
        features = (rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK
                    | rbd.RBD_FEATURE_OBJECT_MAP | rbd.RBD_FEATURE_FAST_DIFF
                    | rbd.RBD_FEATURE_DEEP_FLATTEN)
        try:
            self._rbd().create(self.ioctx, name, size_bytes, old_format=False,
                               features=features)
        except rbd.ImageExists:
            raise VmError("The RBD image %s already exists in pool %s." % (name, self.pool))

    def import_image(self, name, source, fmt, virtual_size):
        """Create the image at the source's virtual size and let qemu-img write into it
        directly (-n: no create, -W: out-of-order parallel writes; zeroes are skipped)."""
        self.create_image(name, virtual_size)
        try:
            run_checked(self._run, ["qemu-img", "convert", "-n", "-W", "-f", fmt, "-O", "raw",
                                    source, self.qemu_target(name)],
                        "Importing %s into RBD failed" % source)
        except VmError:
            self.remove_image(name)
            raise

    def write_pieces(self, name, pieces):
        """Write a stream into image ``name`` from its start: ('data', bytes) pieces written,
        ('hole', length) pieces skipped (a new image reads zeroes there, and takes no room
        for them); -> the data bytes written."""
        written, offset = 0, 0
        with deps.require("rbd").Image(self.ioctx, name) as img:
            for kind, value in pieces:
                if kind == "hole":
                    offset += value
                    continue
                img.write(value, offset)
                offset += len(value)
                written += len(value)
        return written

    def convert_image(self, source, fmt, target, virtual_size):
        """Image ``source`` holding a disk in ``fmt`` (qcow2: the file as it was) converted
        into a new raw image ``target`` of ``virtual_size`` bytes, by qemu-img reading and
        writing RBD directly."""
        self.create_image(target, virtual_size)
        try:
            run_checked(self._run, ["qemu-img", "convert", "-n", "-W", "-f", fmt, "-O", "raw",
                                    self.qemu_target(source), self.qemu_target(target)],
                        "Converting RBD image %s failed" % source)
        except VmError:
            self.remove_image(target)
            raise

    def remove_image(self, name):
        rbd = deps.require("rbd")
        try:
            self._past_stale_watch(name, lambda: self._rbd().remove(self.ioctx, name))
        except rbd.ImageNotFound:
            pass

    def trash_image(self, name, delay_seconds):
        """Move to the RBD trash: recoverable (`rbd trash restore`) until purged."""
        self._past_stale_watch(
            name, lambda: self._rbd().trash_move(self.ioctx, name, delay_seconds))

    def _past_stale_watch(self, name, action):
        """``action`` on image ``name`` retried while the image is busy, up to
        STALE_WATCH_SECONDS: the watch of a client that died is then gone; a live client's
        is not, and the error names it."""
        busy = deps.require("rbd").ImageBusy
        deadline = time.monotonic() + STALE_WATCH_SECONDS
        while True:
            try:
                return action()
            except busy:
                if time.monotonic() >= deadline:
                    raise VmError("RBD image %s is still open by %s after %d seconds: a "
                                  "guest or an rbd client still uses it; stop it and run "
                                  "again." % (name, self._watchers(name), STALE_WATCH_SECONDS))
                time.sleep(1)

    def _watchers(self, name):
        """Who holds an image open, as 'client <address>' (RBD's watchers list)."""
        try:
            with deps.require("rbd").Image(self.ioctx, name, read_only=True) as img:
                found = ["client %s" % w.get("addr") for w in img.watchers_list()]
        except Exception:  # pylint: disable=broad-except
            found = []  # only said in an error: what was found is enough
        return ", ".join(found) or "a client"

    # ---- metadata ---------------------------------------------------------------------

    def metadata(self, image):
        with deps.require("rbd").Image(self.ioctx, image, read_only=True) as img:
            return dict(img.metadata_list())

    def set_metadata(self, image, values):
        with deps.require("rbd").Image(self.ioctx, image) as img:
            for key in sorted(values):
                img.metadata_set(key, values[key])

    def replace_metadata(self, image, values):
        """The image's metadata becomes exactly ``values`` (a clone or a copy starts with
        its parent's metadata, which must not leak into the new VM)."""
        current = self.metadata(image)
        self.remove_metadata(image, [key for key in current if key not in values])
        self.set_metadata(image, dict((k, v) for k, v in values.items()
                                      if current.get(k) != v))

    def remove_metadata(self, image, keys):
        rbd = deps.require("rbd")
        with rbd.Image(self.ioctx, image) as img:
            for key in keys:
                try:
                    img.metadata_remove(key)
                except (KeyError, rbd.ObjectNotFound):
                    pass  # already gone: removing is idempotent

    def rename_image(self, name, new_name):
        self._rbd().rename(self.ioctx, name, new_name)

    # ---- per-VM lock -------------------------------------------------------------------

    def lease(self, vm, wait_seconds, lease_seconds=DEFAULT_LEASE_SECONDS):
        return VmLease(self, vm, wait_seconds, lease_seconds)


class VmLease(object):
    """Exclusive RADOS object lock with a lease, renewed while held. A run killed without
    releasing it blocks the VM for at most one lease; less on its own node: the lock object
    records who holds it, and a run on the holder's node whose process is gone (killed,
    crashed) breaks the lock at once instead of waiting for the lease to run out."""

    def __init__(self, store, vm, wait_seconds, lease_seconds):
        self.store = store
        self.vm = vm
        self.wait_seconds = wait_seconds
        self.lease_seconds = lease_seconds
        self.cookie = uuid_lib.uuid4().hex
        self._stop = threading.Event()
        self._renewer = None

    def _lock(self, flags=0):
        self.store.ioctx.lock_exclusive(lock_object(self.vm), LOCK_NAME, self.cookie,
                                        "gridvirt.kvm run", self.lease_seconds, flags)

    def __enter__(self):
        rados = deps.require("rados")
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                self._lock()
                break
            except (rados.ObjectBusy, rados.ObjectExists):
                if self._broke_dead_holders_lock():
                    continue
                if time.monotonic() >= deadline:
                    raise VmError("VM %s is busy: another run holds its lock; try again when "
                                  "it has finished (a lock left by a run killed on another node "
                                  "expires after %d seconds)." % (self.vm, self.lease_seconds))
                time.sleep(0.5)
        self.store.ioctx.write_full(lock_object(self.vm), _this_process().encode("utf-8"))
        self._renewer = threading.Thread(target=self._renew, name="gridvirt-lease")
        self._renewer.daemon = True
        self._renewer.start()
        return self

    def _broke_dead_holders_lock(self):
        """True when the lock's holder was a process of this node that is gone and its lock
        object is removed (with its lock): the lock is free. The removal asserts the object's
        version as read, so a holder that renewed, or another run that took the lock
        meanwhile, keeps it."""
        rados = deps.require("rados")
        ioctx, obj = self.store.ioctx, lock_object(self.vm)
        try:
            holder = ioctx.read(obj, 4096)
            version = ioctx.get_last_version()
        except rados.ObjectNotFound:
            return True  # released meanwhile
        if not _gone_from_this_node(holder):
            return False
        op = ioctx.create_write_op()
        try:
            op.assert_version(version)
            op.remove()
            ioctx.operate_write_op(op, obj)
        except rados.Error:
            return False
        finally:
            ioctx.release_write_op(op)
        return True

    def _renew(self):
        while not self._stop.wait(self.lease_seconds / 3.0):
            try:
                self._lock(LOCK_FLAG_RENEW)
            except Exception:  # a failed renewal surfaces as a lost lock at release
                return

    def __exit__(self, exc_type, exc, tb):
        rados = deps.require("rados")
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        # The lock object goes with the lock, so a run leaves nothing behind in the pool; the
        # removal is one atomic operation that asserts the lock is still ours (a lease that
        # ran out may be another run's lock by now).
        op = self.store.ioctx.create_write_op()
        try:
            op.execute("lock", "assert_locked", _assert_locked_op(LOCK_NAME, self.cookie))
            op.remove()
            self.store.ioctx.operate_write_op(op, lock_object(self.vm))
        except (rados.ObjectNotFound, rados.ObjectBusy):
            pass
        finally:
            self.store.ioctx.release_write_op(op)
        return False


def _process_start(pid):
    """The start time of process ``pid`` (clock ticks since boot), or None when it is gone:
    with the pid it names one process, even after the pid is reused."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _boot_id():
    with open("/proc/sys/kernel/random/boot_id") as handle:
        return handle.read().strip()


def _this_process():
    """What a lock object records of its holder: node, boot, process."""
    pid = os.getpid()
    return json.dumps({"node": os.uname()[1], "boot": _boot_id(), "pid": pid,
                       "start": _process_start(pid)}, sort_keys=True)


def _gone_from_this_node(recorded):
    """The holder recorded was a process of this node, since this boot, that is gone."""
    try:
        holder = json.loads(recorded.decode("utf-8"))
        mine = holder["node"] == os.uname()[1] and holder["boot"] == _boot_id()
        return mine and _process_start(int(holder["pid"])) != holder["start"]
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return False  # an older run's lock (no record) or not ours: wait for its lease


def _encoded_string(text):
    data = text.encode("utf-8")
    return struct.pack("<I", len(data)) + data


def _assert_locked_op(name, cookie):
    """cls_lock's assert_locked input (cls_lock_assert_op, encoding version 1): lock name,
    type exclusive, our cookie, empty tag (what rados_lock_exclusive sets)."""
    body = (_encoded_string(name) + struct.pack("<B", LOCK_TYPE_EXCLUSIVE)
            + _encoded_string(cookie) + _encoded_string(""))
    return struct.pack("<BBI", 1, 1, len(body)) + body
