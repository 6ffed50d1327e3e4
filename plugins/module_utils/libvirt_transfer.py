# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The libvirt layer's transfer of a volume between two hypervisors: the bytes of a volume
of one connection's pool streamed into a volume of another connection's pool.

A download stream of the source is pumped into an upload stream of the destination, both
sparse: a hole of the source file is sent as a hole (its length), not as zeros, and nothing
is written anywhere in between. The file is sent as it is on disk: a qcow2 file arrives with
its internal snapshots and its header (its virtual size) unchanged."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import deps
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

CHUNK_BYTES = 1 << 20
# virStreamRecvFlags with VIR_STREAM_RECV_STOP_AT_HOLE: the stream is at a hole.
AT_HOLE = -3


class VolumeFacts(object):
    """What a volume's copy must reproduce: its name, format, capacity (the guest's size),
    allocation (what it takes on disk, for the space check), physical length, and when it
    was last written."""

    def __init__(self, vol):
        root = domain_xml.parse(vol.XMLDesc(0), "volume XML")
        fmt = root.find("target/format")
        self.name = vol.name()
        self.path = vol.path()
        self.format = fmt.get("type") if fmt is not None and fmt.get("type") else "raw"
        self.capacity = int(root.findtext("capacity"))
        self.allocation = int(root.findtext("allocation") or 0)
        # The file's length (a qcow2 file's own size, not the guest's).
        self.physical = int(root.findtext("physical") or self.allocation)
        # When its content last changed (seconds since the epoch).
        self.mtime = float(root.findtext("target/timestamps/mtime") or 0)
        self.backing = root.findtext("backingStore/path") or ""


def create_like(pool, facts, name):
    """A new volume of ``pool`` named ``name`` with the format and exact capacity of the
    volume ``facts`` describes, readable by root only; -> the volume."""
    etree = deps.lxml_etree()
    root = etree.Element("volume")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "capacity", unit="bytes").text = str(facts.capacity)
    etree.SubElement(root, "allocation", unit="bytes").text = "0"
    target = etree.SubElement(root, "target")
    etree.SubElement(target, "format", type=facts.format)
    etree.SubElement(etree.SubElement(target, "permissions"), "mode").text = "0600"
    lv = deps.libvirt()
    try:
        return pool.createXML(domain_xml.to_string(root), 0)
    except lv.libvirtError as exc:
        raise VmError("Cannot create volume %s on the destination: %s."
                      % (name, exc.get_error_message()))


def copy_volume(src_conn, src_vol, dst_conn, dst_vol):
    """Stream ``src_vol`` (of ``src_conn``) into ``dst_vol`` (of ``dst_conn``); -> the bytes
    of data sent (holes not counted). A failure aborts both streams and is a sentence."""
    lv = deps.libvirt()
    down = src_conn.newStream(0)
    up = dst_conn.newStream(0)
    try:
        src_vol.download(down, 0, 0, lv.VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)
        dst_vol.upload(up, 0, 0, lv.VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM)
        sent = pump(down, up)
        down.finish()
        up.finish()
    except lv.libvirtError as exc:
        _abort(down, up)
        raise VmError("Copying volume %s to the destination failed: %s."
                      % (src_vol.name(), exc.get_error_message()))
    except BaseException:
        _abort(down, up)
        raise
    return sent


def pump(down, up):
    """Everything ``down`` receives, sent on ``up``, holes as holes; -> data bytes sent."""
    sent = 0
    for kind, value in chunks(down):
        if kind == "hole":
            up.sendHole(value, 0)
        else:
            _send_all(up, value)
            sent += len(value)
    return sent


def chunks(down):
    """What a sparse download stream carries, in order: ('data', bytes) and ('hole',
    length) pieces, until its end."""
    lv = deps.libvirt()
    while True:
        got = down.recvFlags(CHUNK_BYTES, lv.VIR_STREAM_RECV_STOP_AT_HOLE)
        if got == AT_HOLE:
            yield "hole", down.recvHole()
            continue
        if not got:
            return
        yield "data", got


def download(src_conn, src_vol):
    """A context manager giving chunks() of ``src_vol``'s sparse download; the stream is
    finished when the reader read it all, aborted otherwise. libvirt errors are sentences."""
    return _Download(src_conn, src_vol)


class _Download(object):
    def __init__(self, conn, vol):
        self.conn, self.vol, self.stream = conn, vol, None

    def __enter__(self):
        lv = deps.libvirt()
        self.stream = self.conn.newStream(0)
        try:
            self.vol.download(self.stream, 0, 0, lv.VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)
        except lv.libvirtError as exc:
            _abort(self.stream)
            raise VmError("Cannot read volume %s: %s." % (self.vol.name(),
                                                          exc.get_error_message()))
        return chunks(self.stream)

    def __exit__(self, exc_type, exc, tb):
        lv = deps.libvirt()
        if exc_type is not None:
            _abort(self.stream)
            if issubclass(exc_type, lv.libvirtError):
                raise VmError("Reading volume %s failed: %s." % (self.vol.name(),
                                                                 exc.get_error_message()))
            return False
        self.stream.finish()
        return False


def _send_all(up, data):
    """virStreamSend may take part of the buffer: the rest is sent until none is left."""
    view = memoryview(data)
    while view:
        view = view[up.send(bytes(view)):]


def _abort(*streams):
    """Cancel the streams of a copy that failed; the first error is the one reported."""
    lv = deps.libvirt()
    for stream in streams:
        try:
            stream.abort()
        except lv.libvirtError:
            pass  # already finished or broken by the error being reported


# ---- a running guest and its disks ----------------------------------------------------------

def migrate_with_disks(dom, dst_conn, disk_targets, paths, persist_root):
    """Live migration of ``dom`` to ``dst_conn`` with a copy of the disks ``disk_targets``
    (their volumes made there already, the same sizes, at ``paths`` {path here: path
    there}): the guest runs on, paused only for the last pass. Defined there from
    ``persist_root``, undefined here once it runs there. -> the destination's domain and
    completed_figures(). A failure leaves the guest running here, and is a sentence."""
    lv = deps.libvirt()
    flags = (lv.VIR_MIGRATE_LIVE | lv.VIR_MIGRATE_PERSIST_DEST | lv.VIR_MIGRATE_UNDEFINE_SOURCE
             | lv.VIR_MIGRATE_NON_SHARED_DISK)
    running = domain_xml.parse(dom.XMLDesc(lv.VIR_DOMAIN_XML_MIGRATABLE), "migratable XML")
    for source in running.iter("source"):
        if source.get("file") in paths:
            source.set("file", paths[source.get("file")])
    params = {lv.VIR_MIGRATE_PARAM_MIGRATE_DISKS: list(disk_targets),
              lv.VIR_MIGRATE_PARAM_DEST_XML: domain_xml.to_string(running),
              lv.VIR_MIGRATE_PARAM_PERSIST_XML: domain_xml.to_string(persist_root)}
    try:
        moved = dom.migrate3(dst_conn, params, flags)
    except lv.libvirtError as exc:
        raise VmError("Live migration of VM %s failed (it runs on here): %s."
                      % (dom.name(), exc.get_error_message()))
    return moved, completed_figures(moved)


def completed_figures(dom):
    """(seconds the guest was paused at the end of its migration, disk bytes copied), as
    libvirt counted them (None when it did not)."""
    lv = deps.libvirt()
    try:
        stats = dom.jobStats(lv.VIR_DOMAIN_JOB_STATS_COMPLETED)
    except lv.libvirtError:
        return None, None
    downtime = stats.get(lv.VIR_DOMAIN_JOB_DOWNTIME)
    return (None if downtime is None else downtime / 1000.0,
            stats.get(lv.VIR_DOMAIN_JOB_DISK_PROCESSED))


# ---- a small record kept in a pool of the other host -----------------------------------------

RECORD_BYTES = 4096


def create_record(conn, pool, name, data):
    """A raw volume ``name`` in ``pool`` holding ``data`` (bytes, at most RECORD_BYTES);
    -> the volume. libvirt refuses a name that exists: two runs cannot both create it."""
    if len(data) > RECORD_BYTES:
        raise VmError("A record of %d bytes does not fit in volume %s." % (len(data), name))
    vol = create_like(pool, _RecordFacts(), name)
    try:
        stream = conn.newStream(0)
        vol.upload(stream, 0, len(data), 0)
        _send_all(stream, data)
        stream.finish()
    except BaseException:
        vol.delete(0)
        raise
    return vol


def read_record(conn, vol):
    """The bytes create_record wrote into ``vol`` (the volume's zero padding left out)."""
    stream = conn.newStream(0)
    vol.download(stream, 0, RECORD_BYTES, 0)
    chunks = []
    while True:
        got = stream.recv(RECORD_BYTES)
        if not got:
            break
        chunks.append(got)
    stream.finish()
    return b"".join(chunks).rstrip(b"\0")


class _RecordFacts(object):
    """A record volume: raw, RECORD_BYTES long."""
    format = "raw"
    capacity = RECORD_BYTES
