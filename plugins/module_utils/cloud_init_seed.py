# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The guest's cloud-init NoCloud seed: the three documents (meta-data, network-config v2,
user-data) built from a VM's allocated addresses, and the seed image (a FAT filesystem
labelled CIDATA) in a file on the host (standalone VMs) or in an RBD image that a cluster VM's
definition attaches over RBD, wherever it runs.

The documents are JSON, which is YAML: no YAML library is needed on the hypervisor and no
value can inject YAML of its own, since every string is quoted and escaped. Whether a seed is
current is decided on the documents, never on the image bytes (mkfs.vfat stamps a volume id
and times)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import io
import ipaddress
import json
import os
import re
import shutil
import tempfile

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.library_errors import (
    as_sentences)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.runner import run_checked
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.spec import validate_vm_name
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import seed_image

SEED_LABEL = "CIDATA"
DOCUMENT_NAMES = ("meta-data", "network-config", "user-data")
# No secrets inside (public keys, addresses the guest shows anyway), so readable by every
# user: QEMU opens it whether it runs as root or libvirt-qemu, with libvirt's
# dynamic_ownership on (it relabels the file at start) or off.
SEED_MODE = 0o644
SEED_KIB = 1024
# Metadata key of the RBD seed image: the digest of the documents it holds.
DIGEST_KEY = "gridvirt_seed_digest"
INSTANCE_HASH_CHARS = 12

LABEL_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
# An OpenSSH public key line: key type, base64 blob, optional comment.
SSH_KEY_RE = re.compile(r"(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|"
                        r"sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) "
                        r"[A-Za-z0-9+/]+={0,3}( [^\x00-\x1f\x7f]*)?")


# ---- checking the inputs -------------------------------------------------------------------

def _has_control_character(text):
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def check_dns_name(value, what):
    """A hostname or domain: dot-separated labels of letters, digits and '-' (RFC 1123)."""
    if (not isinstance(value, str) or not value or len(value) > 253
            or not all(LABEL_RE.fullmatch(label) for label in value.split("."))):
        raise VmError("The %s %r is not a DNS name: dot-separated labels of 1 to 63 letters, "
                      "digits or '-', not starting or ending with '-'." % (what, value))
    return value.lower()


def check_mac(value, where):
    text = str(value or "").strip().lower()
    if not MAC_RE.fullmatch(text) or int(text[:2], 16) & 1:
        raise VmError("The MAC address %r of %s is not a unicast MAC address (six hexadecimal "
                      "octets separated by colons)." % (value, where))
    return text


def check_ssh_key(key):
    if not isinstance(key, str) or _has_control_character(key) or not SSH_KEY_RE.fullmatch(
            key.strip()):
        raise VmError("The SSH public key %r is not one line of the OpenSSH form '<type> "
                      "<base64> [comment]' (types ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp*, "
                      "sk-*@openssh.com)." % (key,))
    return key.strip()


def check_path(path):
    if (not isinstance(path, str) or not path.startswith("/") or path.endswith("/")
            or _has_control_character(path)):
        raise VmError("The seed path %r is not an absolute file path without control "
                      "characters." % (path,))
    return os.path.normpath(path)


def _ip(value, what, where):
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise VmError("The %s %r of %s is not an IP address." % (what, value, where))


def _interface(address, where):
    """ip/prefix of a NIC as an ip_interface, or None for a MAC-only NIC."""
    if address.get("ip") in (None, ""):
        return None
    ip = _ip(address["ip"], "IP address", where)
    prefix = address.get("prefix")
    if isinstance(prefix, bool) or not str(prefix).isdigit() or int(prefix) > ip.max_prefixlen:
        raise VmError("The prefix %r of %s is not a prefix length for %s (0 to %d)."
                      % (prefix, where, ip, ip.max_prefixlen))
    return ipaddress.ip_interface("%s/%d" % (ip, int(prefix)))


def _nic_index(address, position):
    nic = address.get("nic")
    if nic is None:
        return position
    if isinstance(nic, bool) or not str(nic).isdigit():
        raise VmError("The nic %r of address %d is not a NIC index (0, 1, ...)."
                      % (nic, position + 1))
    return int(nic)


def nics_in_order(vm, addresses):
    """[(NIC index, address)] sorted by index; each address checked to be a dict of ``vm``."""
    indexed = []
    for position, address in enumerate(addresses):
        if not isinstance(address, dict):
            raise VmError("Address %d of VM %s is not a dictionary." % (position + 1, vm))
        if address.get("vm") not in (None, vm):
            raise VmError("Address %d belongs to VM %r, not to %s."
                          % (position + 1, address["vm"], vm))
        indexed.append((_nic_index(address, position), address))
    return sorted(indexed, key=lambda pair: pair[0])


# ---- the documents -------------------------------------------------------------------------

def _ethernet(address, where):
    """The network-config v2 entry of one NIC."""
    entry = {"match": {"macaddress": check_mac(address.get("mac"), where)}}
    interface = _interface(address, where)
    if interface is None:
        entry["dhcp4"] = True
        return entry
    entry["addresses"] = [str(interface)]
    if address.get("gateway"):
        gateway = _ip(address["gateway"], "gateway", where)
        if gateway.version != interface.version:
            raise VmError("The gateway %s of %s is not an IPv%d address like %s."
                          % (gateway, where, interface.version, interface.ip))
        # gateway4/gateway6, not routes 'to: default': cloud-init 22.4 (Debian 12) fails on
        # 'default' when it renders ENI or networkd, and turns '::/0' into '::/64'.
        entry["gateway%d" % interface.version] = str(gateway)
    nameservers = {}
    if address.get("dns_servers"):
        nameservers["addresses"] = [str(_ip(s, "DNS server", where))
                                    for s in address["dns_servers"]]
    if address.get("domain"):
        nameservers["search"] = [check_dns_name(address["domain"], "domain of " + where)]
    if nameservers:
        entry["nameservers"] = nameservers
    return entry


def network_config(vm, addresses):
    """network-config version 2: each NIC matched by its MAC, named ethN after its index."""
    ethernets = {}
    macs = set()
    for index, address in nics_in_order(vm, addresses):
        name = "eth%d" % index
        where = "NIC %d of VM %s" % (index, vm)
        if name in ethernets:
            raise VmError("VM %s has two addresses for NIC %d." % (vm, index))
        entry = _ethernet(address, where)
        if entry["match"]["macaddress"] in macs:
            raise VmError("The MAC address %s is given to two NICs of VM %s."
                          % (entry["match"]["macaddress"], vm))
        macs.add(entry["match"]["macaddress"])
        entry["set-name"] = name
        ethernets[name] = entry
    return {"version": 2, "ethernets": ethernets}


def host_names(vm, addresses, hostname=None):
    """(hostname, fqdn): the hostname (a FQDN's first label) or the VM name; the FQDN given,
    else hostname.domain with the domain of the first NIC that has one."""
    if hostname is None and not LABEL_RE.fullmatch(vm):
        raise VmError("The VM name %s is not a valid hostname (letters, digits and '-' only): "
                      "give the guest a hostname." % vm)
    name = check_dns_name(hostname if hostname is not None else vm, "hostname")
    if "." in name:
        return name.split(".", 1)[0], name
    domains = [a["domain"] for _index, a in nics_in_order(vm, addresses) if a.get("domain")]
    if domains:
        return name, "%s.%s" % (name, check_dns_name(domains[0], "domain"))
    return name, name


def _dump(document):
    """Stable JSON (which is YAML): the same inputs give the same bytes."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _short_hash(*texts):
    return hashlib.sha256(u"\x00".join(texts).encode("utf-8")).hexdigest()


class Seed(object):
    """The documents of one VM's seed; ``digest`` names them all, for comparing seeds."""

    def __init__(self, vm, addresses, hostname=None, ssh_authorized_keys=None):
        self.vm = validate_vm_name(vm)
        self.network_config = network_config(vm, addresses or [])
        self.hostname, self.fqdn = host_names(vm, addresses or [], hostname)
        user_data = {"hostname": self.hostname, "fqdn": self.fqdn}
        if ssh_authorized_keys:
            user_data["ssh_authorized_keys"] = [check_ssh_key(k) for k in ssh_authorized_keys]
        network_text = _dump(self.network_config)
        user_text = "#cloud-config\n" + _dump(user_data)
        # cloud-init applies the network config and per-instance settings again only when the
        # instance-id changes: it changes with any of the documents, and only then.
        self.instance_id = "%s-%s" % (vm, _short_hash(network_text, user_text, self.hostname)[
            :INSTANCE_HASH_CHARS])
        meta_text = _dump({"instance-id": self.instance_id, "local-hostname": self.hostname})
        self.documents = {"meta-data": meta_text, "network-config": network_text,
                          "user-data": user_text}
        self.digest = documents_digest(self.documents)


def documents_digest(documents):
    return _short_hash(*("%s\x00%s" % (name, documents[name]) for name in DOCUMENT_NAMES))


# ---- the image -----------------------------------------------------------------------------

def image_label(path):
    """The volume label in a FAT boot sector (FAT12/16 at byte 43, FAT32 at byte 71), or None."""
    try:
        with open(path, "rb") as handle:
            sector = handle.read(512)
    except (IOError, OSError):
        return None
    if sector[82:87] == b"FAT32":
        return sector[71:82].decode("ascii", "replace").rstrip()
    if sector[54:57] == b"FAT":
        return sector[43:54].decode("ascii", "replace").rstrip()
    return None


TOOLS = {"mkfs.vfat": "dosfstools", "mcopy": "mtools"}


def require_tool(name):
    """The tool's full path (mkfs.vfat lives in /usr/sbin, which a login PATH may lack); a
    missing tool is a sentence naming its package, not run_command's bare ENOENT."""
    found = shutil.which(name, path=os.environ.get("PATH", os.defpath) + ":/usr/sbin:/sbin")
    if not found:
        raise VmError("%s is missing on this host: install %s (the gridvirt.kvm.hypervisor "
                      "role's packages)." % (name, TOOLS[name]))
    return found


def read_documents(run, path):
    """The documents of the seed image at ``path``, or None when it is not a CIDATA image
    holding all three."""
    if not os.path.isfile(path) or image_label(path) != SEED_LABEL:
        return None
    mcopy = require_tool("mcopy")
    documents = {}
    for name in DOCUMENT_NAMES:
        rc, out, _err = run([mcopy, "-n", "-i", path, "::" + name, "-"])
        if rc != 0:
            return None
        documents[name] = out
    return documents


def build_image(run, seed, path):
    """Write ``seed`` as a CIDATA FAT image to ``path``, atomically (a temporary file in the
    same directory, renamed over it)."""
    mkfs, mcopy = require_tool("mkfs.vfat"), require_tool("mcopy")
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise VmError("The directory %s of the seed image does not exist on this host."
                      % directory)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
    sources = tempfile.mkdtemp()
    try:
        os.ftruncate(fd, SEED_KIB * 1024)
        os.close(fd)
        fd = None
        run_checked(run, [mkfs, "-n", SEED_LABEL, temporary],
                    "Cannot make the seed's FAT filesystem with mkfs.vfat")
        for name in DOCUMENT_NAMES:
            # UTF-8 whatever the locale: key comments may hold any character.
            with io.open(os.path.join(sources, name), "w", encoding="utf-8") as handle:
                handle.write(seed.documents[name])
        run_checked(run, [mcopy, "-i", temporary]
                    + [os.path.join(sources, name) for name in DOCUMENT_NAMES] + ["::"],
                    "Cannot copy the seed documents into the image with mcopy")
        os.chmod(temporary, SEED_MODE)
        os.rename(temporary, path)
        temporary = None
    finally:
        if fd is not None:
            os.close(fd)
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        shutil.rmtree(sources, ignore_errors=True)


def image_bytes(run, seed):
    """The seed image as bytes (built in a temporary directory)."""
    directory = tempfile.mkdtemp()
    try:
        path = os.path.join(directory, "seed.img")
        build_image(run, seed, path)
        with open(path, "rb") as handle:
            return handle.read()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ---- where the image lives -----------------------------------------------------------------

class FileSeedStore(object):
    """The image in a file on the host the module runs on."""

    def __init__(self, run, path):
        self.run = run
        self.path = path

    def current_digest(self):
        documents = read_documents(self.run, self.path)
        return documents_digest(documents) if documents else None

    def write(self, seed):
        build_image(self.run, seed, self.path)

    def exists(self):
        return os.path.lexists(self.path)

    def remove(self):
        os.unlink(self.path)


def seed_file(vm):
    """Where the seed of a standalone VM lives by default (the VM template attaches it)."""
    return "/var/lib/libvirt/images/%s-seed.img" % vm


def seed_sources(vm, pool=None):
    """What a domain's CD-ROM names when it is VM ``vm``'s seed: its default file, and with
    ``pool`` its RBD image as ``<pool>/<image>``."""
    sources = [seed_file(vm)]
    if pool:
        sources.append("%s/%s" % (pool, seed_image(vm)))
    return sources


class RbdSeedStore(object):
    """The image in the RBD image seed_<vm> of the pool, with the documents' digest in its
    metadata. The VM's definition attaches it as an RBD CD-ROM, so QEMU reads it on
    whichever node starts the VM or receives it by live migration; no node keeps a copy.
    ``store``: an rbd_store.RbdStore."""

    def __init__(self, run, store, vm):
        self.run = run
        self.store = store
        self.name = seed_image(vm)

    def _library(self, what):
        return as_sentences("%s the seed image %s" % (what, self.name),
                            "pool %s" % self.store.pool,
                            timed_out=self.store.not_answering)

    def current_digest(self):
        with self._library("read"):
            if not self.store.image_exists(self.name):
                return None
            return self.store.metadata(self.name).get(DIGEST_KEY)

    def write(self, seed):
        data = image_bytes(self.run, seed)
        with self._library("write"):
            if not self.store.image_exists(self.name):
                self.store.create_image(self.name, len(data))
            # The digest goes before the bytes change and comes back after: a write cut
            # short leaves an image without digest, which the next run writes again.
            self.store.remove_metadata(self.name, [DIGEST_KEY])
            self.store.write_pieces(self.name, [("data", data)])
            self.store.set_metadata(self.name, {DIGEST_KEY: seed.digest})

    def exists(self):
        with self._library("read"):
            return self.store.image_exists(self.name)

    def remove(self):
        with self._library("remove"):
            self.store.remove_image(self.name)
