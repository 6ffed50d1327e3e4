# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Validation of names, sizes, dates and option combinations. Pure logic: no I/O.

Everything here runs before the modules touch libvirt, Ceph or Pacemaker, so bad input
changes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re
import uuid as uuid_lib

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

# VM names end up in file names, RBD image names, Pacemaker ids and shell-free command
# arguments; keep them to a set that is safe in all of these (no XML or shell metacharacters).
# Always used with fullmatch: "$" would accept a trailing newline. ASCII classes only ([0-9],
# not \d, which also matches other scripts' digits).
VM_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
SNAPSHOT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
METADATA_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
POOL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SIZE_RE = re.compile(r"\s*([0-9]+)\s*([KMGT]?)(i?B)?\s*", re.IGNORECASE)
SIZE_FACTORS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
# Larger than any disk a hypervisor of this kind will hold; catches unit mistakes ("2000T").
MAX_DISK_BYTES = 64 * 1024 ** 4
MAX_MEMORY_MIB = 16 * 1024 * 1024
MAX_VCPUS = 4096
MAX_CONNECT_TIMEOUT = 600
# Seconds a module may wait for one thing (a graceful stop, a node's VMs to leave): a day.
MAX_WAIT_SECONDS = 24 * 3600
WHOLE_NUMBER_RE = re.compile(r"-?[0-9]{1,15}")

# Names derived from a VM name are stable across runs: uuid5 under this namespace.
GRIDVIRT_UUID_NAMESPACE = uuid_lib.UUID("9b3f4c52-6f1e-5a7b-8c1d-2e4f6a8b0c13")


def _check_name(kind, value, regex, rule):
    if value is None or value == "":
        raise VmError("The %s must not be empty." % kind)
    if not isinstance(value, str) or not regex.fullmatch(value):
        raise VmError("Invalid %s %r: %s." % (kind, value, rule))
    return value


def validate_vm_name(name):
    return _check_name(
        "VM name", name, VM_NAME_RE,
        "use 1 to 63 letters, digits, '-' or '_', starting with a letter or digit")


def validate_snapshot_name(name):
    return _check_name(
        "snapshot name", name, SNAPSHOT_NAME_RE,
        "use 1 to 128 letters, digits, '-', '_', '.' or ':', starting with a letter or digit")


def validate_metadata_key(key):
    _check_name(
        "metadata key", key, METADATA_KEY_RE,
        "use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit")
    if key == "xml":
        raise VmError("The metadata key 'xml' is reserved for the VM definition.")
    return key


def validate_pool_name(name):
    return _check_name(
        "storage pool name", name, POOL_NAME_RE,
        "use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit")


# A QEMU driver URI of another host, as libvirt documents them: the transports that reach one.
LIBVIRT_REMOTE_URI_RE = re.compile(
    r"qemu\+(ssh|tcp|tls|libssh|libssh2)://[A-Za-z0-9._@:\[\]-]+/system"
    r"(\?(?P<query>[A-Za-z0-9._~%/=&+-]*))?")
# The URI parameters that only say how to authenticate or verify the other end; the others
# (netcat, socket, command…) choose what runs there.
LIBVIRT_URI_PARAMETERS = ("keyfile", "known_hosts", "known_hosts_verify", "no_verify",
                          "no_tty", "pkipath", "sshauth", "tls_priority", "mode")


def validate_libvirt_uri(uri, option, local=False):
    """A libvirt URI of another hypervisor's QEMU driver (qemu+ssh://, qemu+tcp://,
    qemu+tls://…/system) with only authentication parameters (``local``: this host's
    qemu:///system too); anything else (control characters, another driver, a parameter
    that picks the remote command) refused."""
    if local and uri == "qemu:///system":
        return uri
    match = LIBVIRT_REMOTE_URI_RE.fullmatch(uri or "")
    if not match:
        raise VmError("%s %r is not a libvirt URI of another host's QEMU driver: use "
                      "qemu+ssh://[user@]host/system, qemu+tcp://host/system or "
                      "qemu+tls://host/system." % (option, uri))
    for pair in (match.group("query") or "").split("&"):
        name = pair.split("=", 1)[0]
        if name and name not in LIBVIRT_URI_PARAMETERS:
            raise VmError("%s %r: parameter %s is not accepted (only %s)."
                          % (option, uri, name, ", ".join(LIBVIRT_URI_PARAMETERS)))
    return uri


def validate_metadata(metadata):
    """User metadata: a flat mapping of valid keys to strings."""
    if metadata is None:
        return {}
    result = {}
    for key, value in metadata.items():
        validate_metadata_key(key)
        if isinstance(value, (dict, list)):
            raise VmError("The value of metadata key %r must be a string, not a %s."
                          % (key, type(value).__name__))
        result[key] = "" if value is None else str(value)
    return result


def parse_size(value, what="size"):
    """'10G', '512MiB', 1048576 -> bytes (binary units)."""
    if isinstance(value, bool):
        raise VmError("Invalid %s %r: give a number of bytes or a size like 10G." % (what, value))
    if isinstance(value, int):
        size = value
    else:
        match = SIZE_RE.fullmatch(str(value))
        if not match:
            raise VmError("Invalid %s %r: give a number of bytes or a size like 512M or 10G."
                          % (what, value))
        size = int(match.group(1)) * SIZE_FACTORS[match.group(2).upper()]
    if size <= 0:
        raise VmError("Invalid %s %r: it must be greater than zero." % (what, value))
    if size > MAX_DISK_BYTES:
        raise VmError("Invalid %s %r: larger than 64 TiB, check the unit." % (what, value))
    return size


def additional_disk_source(item):
    """An item of additional_disks -> ('image', absolute path) or ('size', bytes). SEAPATH's
    deploy role passes the paths of the images it copied to the node; ours may pass sizes,
    or a dict with exactly one of image or size. The image itself is checked by its reader."""
    if isinstance(item, dict):
        given = sorted(k for k, v in item.items() if v is not None)
        if given == ["image"]:
            return "image", _absolute_image_path(item["image"])
        if given == ["size"]:
            return "size", parse_size(item["size"], "additional disk size")
        raise VmError("Each additional disk is an image path, a size, or a dict with exactly "
                      "one of image or size; got %r." % (item,))
    if isinstance(item, str) and item.startswith("/"):
        return "image", _absolute_image_path(item)
    return "size", parse_size(item, "additional disk size")


def _absolute_image_path(path):
    if not isinstance(path, str) or not path.startswith("/") or not path.strip("/"):
        raise VmError("Invalid additional disk image %r: give the absolute path of a qcow2 or "
                      "raw image on the hypervisor." % (path,))
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise VmError("Invalid additional disk image %r: the path has a control character."
                      % (path,))
    return path


def validate_memory(memory_mib):
    if memory_mib is None:
        return None
    if memory_mib < 16 or memory_mib > MAX_MEMORY_MIB:
        raise VmError("Invalid memory %s MiB: give a value between 16 MiB and 16 TiB."
                      % memory_mib)
    return memory_mib


def validate_vcpus(vcpus):
    if vcpus is None:
        return None
    if vcpus < 1 or vcpus > MAX_VCPUS:
        raise VmError("Invalid vcpus %s: give a value between 1 and %d." % (vcpus, MAX_VCPUS))
    return vcpus


def as_whole_number(value, option):
    """An int given as an int or as digits (15 at most). The modules take numbers as raw
    values: Ansible's own int conversion crashes on inf ("cannot convert Infinity to
    integer") and turns 1e400 into a number of 400 digits."""
    digits = isinstance(value, str) and WHOLE_NUMBER_RE.fullmatch(value.strip())
    if isinstance(value, bool) or not (digits or (isinstance(value, int)
                                                  and abs(value) < 10 ** 15)):
        raise VmError("%s must be a whole number, not %r." % (option, value))
    return int(value)


def whole_number(value, option, minimum, maximum):
    """A whole number (see as_whole_number) from minimum to maximum."""
    try:
        number = as_whole_number(value, option)
    except VmError:
        number = None
    if number is None or not minimum <= number <= maximum:
        lower = "zero or more" if minimum == 0 else "at least %d" % minimum
        raise VmError("%s must be %s and at most %d (a whole number), not %r."
                      % (option, lower, maximum, value))
    return number


def normalize_numbers(params, options, prefix=""):
    """The given options of ``params`` as ints (None stays None); each has a check of its
    own (memory's, vcpus', remote_port's) that then says what range it takes."""
    for option in options:
        if params.get(option) is not None:
            params[option] = as_whole_number(params[option], prefix + option)


def normalize_purge_numbers(params):
    normalize_numbers(params, ("purge_number", "purge_keep"))
    if params.get("purge_date"):
        normalize_numbers(params["purge_date"], ("posix",), prefix="purge_date.")


def validate_connect_timeout(seconds):
    """How long a module waits for Ceph, Pacemaker or libvirt to answer."""
    return whole_number(seconds, "connect_timeout", 1, MAX_CONNECT_TIMEOUT)


def validate_uuid(value):
    try:
        return str(uuid_lib.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise VmError("Invalid UUID %r in the domain XML." % (value,))


def stable_uuid(name):
    """The UUID a VM gets when its XML names none: the same on every run and every host."""
    return str(uuid_lib.uuid5(GRIDVIRT_UUID_NAMESPACE, name))


def stable_mac(name, index):
    """A MAC derived from the VM name and NIC index, in QEMU's locally administered 52:54:00."""
    digest = uuid_lib.uuid5(GRIDVIRT_UUID_NAMESPACE, "%s/nic%d" % (name, index)).bytes
    return "52:54:00:%02x:%02x:%02x" % (digest[0], digest[1], digest[2])


def parse_purge_date(purge_date):
    """SEAPATH's purge_date (one of date+time, iso_8601, posix) -> aware UTC datetime.

    A date/time or ISO 8601 value without a timezone is read as UTC, so the result does not
    depend on the hypervisor's local timezone.
    """
    given = dict((k, v) for k, v in (purge_date or {}).items() if v not in (None, ""))
    if not given:
        raise VmError("purge_date needs one of: date (with optional time), iso_8601, posix.")
    styles = [k for k in ("date", "iso_8601", "posix") if k in given]
    if len(styles) != 1:
        raise VmError("purge_date takes exactly one of date, iso_8601 or posix, got: %s."
                      % ", ".join(sorted(given)))
    if "time" in given and styles != ["date"]:
        raise VmError("purge_date.time is only used together with purge_date.date.")
    style = styles[0]
    if style == "posix":
        try:
            return datetime.datetime.fromtimestamp(float(given["posix"]), _utc())
        except (ValueError, OverflowError, OSError):
            raise VmError("Invalid purge_date.posix %r: give seconds since 1970-01-01 UTC."
                          % (given["posix"],))
    if style == "iso_8601":
        text = str(given["iso_8601"]).strip()
        parsed = _parse_iso(text)
        if parsed is None:
            raise VmError("Invalid purge_date.iso_8601 %r: use a form like "
                          "2026-11-21T08:30:00+01:00." % (text,))
        return parsed
    text = "%sT%s" % (str(given["date"]).strip(), str(given.get("time", "00:00:00")).strip())
    parsed = _parse_iso(text)
    if parsed is None:
        raise VmError("Invalid purge_date date %r / time %r: use YYYY-MM-DD and HH:MM[:SS]."
                      % (given["date"], given.get("time")))
    return parsed


def _utc():
    return datetime.timezone.utc


def _parse_iso(text):
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_utc())
    return parsed


def purge_argument_spec():
    """Options of command=purge_image, the same in both modules (doc fragment
    gridvirt.kvm.purge)."""
    return dict(
        purge_number=dict(type="raw"),
        purge_keep=dict(type="raw"),
        purge_date=dict(type="dict", options=dict(
            date=dict(type="str"), time=dict(type="str"),
            iso_8601=dict(type="str"), posix=dict(type="raw"))),
    )


# The libvirt secret holding the Ceph key on every node: the hypervisor role defines it with
# this UUID, cluster_vm names it in every RBD disk (doc fragment gridvirt.kvm.ceph).
DEFAULT_SECRET_UUID = "5b1a8d2e-3c4f-4e6a-9b7d-1f0e2c3a4b5d"
DEFAULT_CONNECT_TIMEOUT = 30


def ceph_argument_spec():
    """Where cluster VMs live: the Ceph connection options (doc fragment gridvirt.kvm.ceph)."""
    return dict(
        ceph_conf=dict(type="path", default="/etc/ceph/ceph.conf"),
        ceph_user=dict(type="str", default="libvirt"),
        keyring=dict(type="path"),
        pool=dict(type="str", default="rbd"),
        # A UUID naming the libvirt secret, not the secret itself.
        secret_uuid=dict(type="str", default=DEFAULT_SECRET_UUID, no_log=False),
        connect_timeout=dict(type="raw", default=DEFAULT_CONNECT_TIMEOUT),
    )


def hook_argument_spec():
    """The site hooks a VM module runs (doc fragment gridvirt.kvm.hooks)."""
    return dict(
        hook_timeout=dict(type="int", default=60),
        addresses=dict(type="list", elements="dict"),
    )


def libvirt_argument_spec():
    """The hypervisor's libvirt daemon (doc fragment gridvirt.kvm.libvirt)."""
    return dict(
        uri=dict(type="str", default="qemu:///system"),
        connect_timeout=dict(type="raw", default=DEFAULT_CONNECT_TIMEOUT),
    )
