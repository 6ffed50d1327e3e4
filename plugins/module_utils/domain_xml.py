# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Domain XML with lxml: parse safely, inject what the modules own, normalize, compare.

No I/O and no string-formatted XML: every element is built with lxml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.deps import lxml_etree
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import xmlutil

# Our metadata element lives in the domain's <metadata> under this namespace.
GV_NS = "https://github.com/gridvirt/kvm/xmlns/vm/1"
GV = "{%s}" % GV_NS
GV_PREFIX = "gridvirt"
# A standalone VM that an import into the cluster stopped carries this element until the
# import ends, so that a rerun after a killed import still knows it was running.
IMPORTING_NS = "https://github.com/gridvirt/kvm/xmlns/importing/1"
IMPORTING_KEY = "gvimporting"

DISK_TARGET_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "ide": "hd"}
MEMORY_ELEMENTS = ("memory", "currentMemory", "maxMemory")
UNIT_TO_KIB = {
    "b": 1.0 / 1024, "bytes": 1.0 / 1024, "k": 1, "kib": 1, "kb": 1000.0 / 1024,
    "m": 1024, "mib": 1024, "mb": 1000.0 ** 2 / 1024, "g": 1024 ** 2, "gib": 1024 ** 2,
    "gb": 1000.0 ** 3 / 1024, "t": 1024 ** 3, "tib": 1024 ** 3, "tb": 1000.0 ** 4 / 1024,
}


def parse(text, what="xml option"):
    if not isinstance(text, (str, bytes)) or not text.strip():
        raise VmError("The %s is empty: give a libvirt domain XML." % what)
    return xmlutil.parse(text, what)


def parse_domain(text, what="xml option"):
    root = parse(text, what)
    if root.tag != "domain":
        raise VmError("The %s must be a libvirt <domain> document, not <%s>."
                      % (what, root.tag))
    return root


def to_string(root):
    return xmlutil.to_string(root)


def owned_disks(root):
    """Disk devices that the modules create themselves (not CD-ROMs or floppies)."""
    return [d for d in root.findall("devices/disk") if d.get("device", "disk") in ("disk", "lun")]


def _describe_disk(disk):
    source, target = disk.find("source"), disk.find("target")
    for el, attrs in ((source, ("file", "dev", "name", "volume")), (target, ("dev",))):
        for attr in attrs:
            if el is not None and el.get(attr):
                return el.get(attr)
    return "a disk"


def reject_owned_disks(root):
    disks = owned_disks(root)
    if disks:
        raise VmError("The xml option must not contain disk devices (found: %s): the module "
                      "creates them from system_image and additional_disks."
                      % ", ".join(_describe_disk(d) for d in disks))


def _child(parent, tag, before=None):
    """The first child named tag, created when missing."""
    etree = lxml_etree()
    node = parent.find(tag)
    if node is None:
        node = etree.Element(tag)
        anchor = parent.find(before) if before else None
        if anchor is not None:
            anchor.addprevious(node)
        else:
            parent.append(node)
    return node


def set_identity(root, name, uuid):
    """Name and UUID; the UUID already in the XML wins when it matches."""
    given = root.findtext("uuid")
    if given and spec.validate_uuid(given) != uuid:
        raise VmError("The domain XML gives UUID %s but VM %s has UUID %s; remove <uuid> "
                      "from the XML or use the VM's UUID." % (given, name, uuid))
    first = root[0] if len(root) else None
    name_el = root.find("name")
    if name_el is None:
        name_el = lxml_etree().Element("name")
        if first is not None:
            first.addprevious(name_el)
        else:
            root.append(name_el)
    name_el.text = name
    uuid_el = root.find("uuid")
    if uuid_el is None:
        uuid_el = lxml_etree().Element("uuid")
        name_el.addnext(uuid_el)
    uuid_el.text = uuid


def expose_name_to_guest(root, name, old_name=None):
    """Give the guest its VM name as SMBIOS system product (as OpenStack does), unless the
    XML brings its own SMBIOS settings. A clone's product entry that still names its source
    (old_name) is renamed."""
    product = root.find("sysinfo[@type='smbios']/system/entry[@name='product']")
    if product is not None:
        if old_name and product.text == old_name:
            product.text = name
        return
    if root.find("sysinfo") is not None or root.find("os/smbios") is not None:
        return
    etree = lxml_etree()
    os_el = root.find("os")
    if os_el is None:
        return
    sysinfo = etree.Element("sysinfo", type="smbios")
    system = etree.SubElement(sysinfo, "system")
    etree.SubElement(system, "entry", name="product").text = name
    os_el.addprevious(sysinfo)
    os_el.append(etree.Element("smbios", mode="sysinfo"))


def uuid_of(root):
    return root.findtext("uuid")


def set_memory(root, memory_mib):
    kib = str(memory_mib * 1024)
    for tag in ("memory", "currentMemory"):
        el = root.find(tag)
        if el is None and tag == "currentMemory":
            continue
        el = _child(root, tag, before="vcpu")
        el.text = kib
        el.set("unit", "KiB")


def set_vcpus(root, vcpus):
    _child(root, "vcpu").text = str(vcpus)


def disk_target(bus, index):
    prefix = DISK_TARGET_PREFIX[bus]
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return prefix + letters


def _insert_disks(root, disks, bus):
    """Put disk elements first among the devices (after <emulator>), in order, with their
    target names, and the controller a SCSI bus needs."""
    etree = lxml_etree()
    devices = _child(root, "devices")
    anchor = devices.find("emulator")
    for index, disk in enumerate(disks):
        etree.SubElement(disk, "target", dev=disk_target(bus, index), bus=bus)
        if anchor is not None:
            anchor.addnext(disk)
        else:
            devices.insert(index, disk)
        anchor = disk
    if disks and bus == "scsi" and devices.find("controller[@type='scsi']") is None:
        anchor.addnext(etree.Element("controller", type="scsi", model="virtio-scsi"))


def add_file_disks(root, paths, bus):
    """qcow2 file disks (pool volumes), system disk first."""
    etree = lxml_etree()
    disks = []
    for path in paths:
        disk = etree.Element("disk", type="file", device="disk")
        etree.SubElement(disk, "driver", name="qemu", type="qcow2", discard="unmap")
        etree.SubElement(disk, "source", file=path)
        disks.append(disk)
    _insert_disks(root, disks, bus)


def add_rbd_disks(root, images, bus, ceph):
    """Network disks on RBD images (system first). ceph: dict with pool, user,
    secret_uuid and monitors [(host, port)] -- what QEMU needs to open the images on any
    node of the cluster."""
    etree = lxml_etree()
    disks = []
    for image in images:
        disk = etree.Element("disk", type="network", device="disk")
        etree.SubElement(disk, "driver", name="qemu", type="raw", cache="writeback",
                         discard="unmap")
        source = etree.SubElement(disk, "source", protocol="rbd",
                                  name="%s/%s" % (ceph["pool"], image))
        _give_ceph_access(disk, source, ceph)
        disks.append(disk)
    _insert_disks(root, disks, bus)


def _give_ceph_access(disk, source, ceph):
    """The libvirt secret and the monitors, unless the disk names its own."""
    etree = lxml_etree()
    if disk.find("auth") is None and source.find("auth") is None:
        auth = etree.Element("auth", username=ceph["user"])
        etree.SubElement(auth, "secret", type="ceph", uuid=ceph["secret_uuid"])
        source.addprevious(auth)
    if source.find("host") is None:
        for host, port in ceph["monitors"]:
            etree.SubElement(source, "host", name=host, port=str(port))


def complete_rbd_cdroms(root, ceph):
    """CD-ROMs on RBD images (a cluster VM's cloud-init seed: the template names only the
    image) get what QEMU needs to open them on any node, as the VM's own disks have."""
    for disk in root.findall("devices/disk[@type='network'][@device='cdrom']"):
        source = disk.find("source[@protocol='rbd']")
        if source is not None:
            _give_ceph_access(disk, source, ceph)


def drop_cdroms(root, sources):
    """Remove the CD-ROMs whose file or RBD image (``<pool>/<image>``) is in ``sources``."""
    for disk in root.findall("devices/disk[@device='cdrom']"):
        source = disk.find("source")
        if source is not None and (source.get("file") in sources or source.get("name") in sources):
            disk.getparent().remove(disk)


def disk_paths(root):
    """Source files of the owned disks, in target order."""
    return [d.find("source").get("file") for d in owned_disks(root)
            if d.find("source") is not None and d.find("source").get("file")]


def disk_info(root):
    info = []
    for disk in owned_disks(root):
        source, target = disk.find("source"), disk.find("target")
        info.append({
            "path": source.get("file") if source is not None else None,
            "target": target.get("dev") if target is not None else None,
            "bus": target.get("bus") if target is not None else None,
        })
    return info


def memory_mib(root):
    """The VM's memory (<memory>) in MiB, whatever unit the XML gives it in."""
    kib = _kib(root, "memory")
    return None if kib is None else kib // 1024


def vcpus(root):
    text = (root.findtext("vcpu") or "").strip()
    return int(text) if text.isdigit() else None


def _disk_source(disk):
    """Where a disk's data is: a file path, 'pool/image' of RBD, 'pool/volume', a device."""
    source = disk.find("source")
    if source is None:
        return None
    if source.get("protocol") == "rbd" or disk.get("type") == "network":
        return source.get("name")
    if source.get("pool") and source.get("volume"):
        return "%s/%s" % (source.get("pool"), source.get("volume"))
    return source.get("file") or source.get("dev")


def device_summary(root):
    """What an inventory shows of a definition: uuid, vCPUs, memory, every disk and CD-ROM
    (target, device, source) and the NICs' MACs."""
    disks = []
    for disk in root.findall("devices/disk"):
        target = disk.find("target")
        disks.append({"target": target.get("dev") if target is not None else None,
                      "device": disk.get("device", "disk"), "source": _disk_source(disk)})
    return {"uuid": uuid_of(root), "vcpus": vcpus(root), "memory_mib": memory_mib(root),
            "disks": disks, "macs": macs(root)}


def assign_macs(root, name):
    """Every NIC without a MAC gets the stable MAC for its index, so reruns keep it."""
    etree = lxml_etree()
    for index, nic in enumerate(root.findall("devices/interface")):
        mac = nic.find("mac")
        if mac is None:
            mac = etree.Element("mac")
            nic.insert(0, mac)
        if not mac.get("address"):
            mac.set("address", spec.stable_mac(name, index))


def set_mac(root, index, mac):
    """Give NIC ``index`` (in document order) the MAC ``mac``; False when there is no such NIC
    (a custom template with fewer interfaces)."""
    nics = root.findall("devices/interface")
    if index >= len(nics):
        return False
    element = nics[index].find("mac")
    if element is None:
        element = lxml_etree().Element("mac")
        nics[index].insert(0, element)
    element.set("address", mac)
    return True


def retarget_nic(root, index, network=None, bridge=None, mac=None, vlan=None):
    """NIC ``index`` (in document order) moved to libvirt ``network`` or host ``bridge``,
    given ``mac`` and/or VLAN tag ``vlan`` (an allocate hook's change, values checked by the
    caller); False when there is no such NIC."""
    nics = root.findall("devices/interface")
    if index >= len(nics):
        return False
    nic = nics[index]
    if network or bridge:
        nic.set("type", "network" if network else "bridge")
        source = _child(nic, "source")
        source.attrib.clear()
        source.set("network" if network else "bridge", network or bridge)
    if mac:
        set_mac(root, index, mac)
    if vlan is not None:
        for old in nic.findall("vlan"):
            nic.remove(old)
        _child(nic, "vlan").append(lxml_etree().Element("tag", id=str(vlan)))
    return True


def macs(root):
    return [m.get("address") for m in root.findall("devices/interface/mac")]


def rename_log_files(root, old_name, new_name):
    """Console/serial log files named after the source VM follow the clone's name, so the two
    VMs never write into one file."""
    for el in root.iter("log", "source"):
        for attr in ("file", "path"):
            value = el.get(attr)
            parent = el.getparent()
            if value and old_name in value and parent is not None and parent.tag in (
                    "serial", "console", "channel", "parallel"):
                el.set(attr, value.replace(old_name, new_name))


def strip_macs(root):
    for mac in root.findall("devices/interface/mac"):
        mac.getparent().remove(mac)


def remove_owned_disks(root):
    for disk in owned_disks(root):
        disk.getparent().remove(disk)
    for ctl in root.findall("devices/controller[@model='virtio-scsi']"):
        ctl.getparent().remove(ctl)


def normalize_units(root):
    """Memory sizes in KiB, as libvirt stores them, so '128 MiB' and '131072 KiB' compare equal."""
    for tag in MEMORY_ELEMENTS:
        kib = _kib(root, tag)
        if kib is not None:
            el = root.find(tag)
            el.text = str(kib)
            el.set("unit", "KiB")


def _kib(root, tag):
    """The size of element ``tag`` (memory, currentMemory...) in KiB, or None when absent."""
    el = root.find(tag)
    if el is None or not (el.text or "").strip():
        return None
    unit = (el.get("unit") or "KiB").lower()
    if unit not in UNIT_TO_KIB:
        raise VmError("Unknown memory unit %r in <%s>." % (el.get("unit"), tag))
    try:
        value = int(el.text.strip())
    except ValueError:
        raise VmError("Invalid <%s> value %r: give a whole number." % (tag, el.text))
    return int(value * UNIT_TO_KIB[unit])


# ---- our metadata ----------------------------------------------------------------------

def gv_metadata(root):
    """Our metadata element (or None)."""
    return root.find("metadata/%svm" % GV)


def remove_gv_metadata(root):
    node = gv_metadata(root)
    if node is not None:
        parent = node.getparent()
        parent.remove(node)
        if len(parent) == 0 and not (parent.text or "").strip():
            root.remove(parent)


def build_gv_metadata(user_metadata, definition, defined_digest=None):
    """<gridvirt:vm>: user key/values, the definition we last asked for (for --diff and
    change detection) and the digest of what libvirt made of it (to notice edits made
    behind our back)."""
    etree = lxml_etree()
    node = etree.Element(GV + "vm", nsmap={GV_PREFIX: GV_NS})
    for key in sorted(user_metadata):
        etree.SubElement(node, GV + "meta", name=key).text = user_metadata[key]
    etree.SubElement(node, GV + "definition").text = definition
    if defined_digest:
        etree.SubElement(node, GV + "defined-digest").text = defined_digest
    return node


def set_gv_metadata(root, node):
    remove_gv_metadata(root)
    _child(root, "metadata", before="memory").append(node)


def importing_mark():
    """The element an import sets on the source it stops (libvirt's metadata API adds it
    under IMPORTING_NS)."""
    return to_string(lxml_etree().Element("importing", attrib={"was-running": "yes"}))


def has_importing_mark(root):
    return root.find("metadata/{%s}importing" % IMPORTING_NS) is not None


def remove_importing_mark(root):
    for node in root.findall("metadata/{%s}importing" % IMPORTING_NS):
        node.getparent().remove(node)


def read_gv_metadata(root):
    """-> (user metadata dict, stored definition or None, stored digest or None)."""
    node = gv_metadata(root)
    if node is None:
        return {}, None, None
    meta = dict((m.get("name"), m.text or "") for m in node.findall(GV + "meta"))
    return meta, node.findtext(GV + "definition"), node.findtext(GV + "defined-digest")


# ---- comparison ------------------------------------------------------------------------

VOLATILE_TAGS = ("alias", "address")


def canonical(root):
    """Stable text of a domain for comparison: our metadata, aliases and device addresses
    (which libvirt assigns itself) removed, whitespace and attribute order normalized."""
    etree = lxml_etree()
    work = copy.deepcopy(root)
    remove_gv_metadata(work)
    for tag in VOLATILE_TAGS:
        for el in list(work.iter(tag)):
            if el.getparent() is not None and el.getparent().tag != "domain":
                el.getparent().remove(el)
    for el in work.iter():
        if el.text is not None and not el.text.strip():
            el.text = None
        elif el.text is not None:
            el.text = el.text.strip()
        el.tail = None
    return etree.tostring(work, method="c14n").decode("utf-8")


def digest(root):
    return hashlib.sha256(canonical(root).encode("utf-8")).hexdigest()


def pretty(text):
    """Indent canonical text for a readable --diff."""
    if not text:
        return ""
    return to_string(parse(text, "stored definition"))
