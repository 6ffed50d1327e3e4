# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""cluster_vm command=import: a standalone VM of a libvirt host (``src_uri``) made a VM of
the cluster, SEAPATH's layout in RBD (system_<vm>, data_<vm>_<i>).

Checked before anything changes: the VM is there, its disks are qcow2 or raw volumes of a
pool and self-contained (a linked clone is refused), it has no libvirt snapshots (the
cluster's are RBD group snapshots: they would be lost), and the cluster has no VM, image or
resource of its name. Then the source is stopped (gracefully) if it runs; each disk is
streamed from the source's libvirt into RBD, no copy on the node (raw written straight into
its image; qcow2 written as its file into a staging image, checked like any image the modules
import, and converted by qemu-img from RBD to RBD); the definition is stored with RBD disks,
its UUID, MACs and the rest kept; the source's definition is set aside (the cluster VM may
run on its host: one name, one domain); the resource is created, started if the source ran.
Only once it runs is the source removed (``remove_source``) or defined again, stopped. A
failure on the way removes what the import made in RBD and the CIB, defines the source again
and starts it if it ran."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils import libvirt_transfer as transfer
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils import source_image
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_disks as disks
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import states
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.power import plan_enable
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.view import belongs
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import (
    data_image, system_image)

# A qcow2 file streamed into RBD waits here for its conversion (a name VMs never have).
STREAM_PREFIX = "_gvimport_"
IMPORTABLE = ("qcow2", "raw")
# The source is shut down gracefully, then powered off after this long.
SOURCE_STOP_SECONDS = 120


class Source(object):
    """The standalone VM as read once from its host: ``dom``, ``root`` (its inactive
    definition), ``meta`` (its user metadata), ``running``, ``disks`` [(volume,
    VolumeFacts)], ``host`` (the source host's name)."""

    def __init__(self, hv, name):
        self.hv = hv
        self.name = name
        self.host = hv.hostname()
        self.dom = hv.domain(name)
        # A standalone VM is defined; a transient domain of that name is a cluster VM
        # running there (the source host may be a cluster node) or a migration's guest.
        self.transient = self.dom is not None and not self.dom.isPersistent()
        if self.transient:
            self.dom = None
        self.root = self.meta = None
        self.running = self.was_running = False
        self.disks = []
        if self.dom is not None:
            self.root = hv.xml_root(self.dom)
            self.meta = dx.read_gv_metadata(self.root)[0]
            self.running = hv.is_active(self.dom)
            # Stopped by an import that was killed: it is to run again, here or there.
            self.was_running = dx.has_importing_mark(self.root)

    @property
    def to_run(self):
        return self.running or self.was_running

    @property
    def exists(self):
        return self.dom is not None


def plan_import(ctx, view, source_hv):
    req, vm = ctx.req, view.name
    source = Source(source_hv, req.src_name or vm)
    view = states.plan_leftovers(ctx, view)  # what a killed import left (staged images)
    if view.exists:
        return plan_imported(ctx, view, source)
    check_importable(ctx, source, vm)
    images = [system_image(vm)] + [data_image(vm, i) for i in range(1, len(source.disks))]
    plan_stream_leftovers(ctx, vm)
    present = ctx.store.image_names() - set(view.cleared)
    taken = sorted(name for name in images if name in present
                   or disks.STAGING_PREFIX + name in present)
    if taken:
        raise VmError("The RBD images %s already exist but no VM %s owns them: remove them "
                      "first." % (", ".join(taken), vm))
    if pcib.primitive(ctx.cluster.cib(), vm) is not None:
        raise VmError("A Pacemaker resource named %s exists but no VM %s is in RBD: remove "
                      "that resource first." % (vm, vm))
    metadata, base, bus = import_intent(ctx, vm, source)
    ctx.define(vm, metadata, base, images, bus)
    ctx.check_resource_inputs(metadata, True)
    saved = dx.to_string(source.root)
    ctx.plan.change("imported VM %s from %s" % (vm, source.host),
                    apply=lambda: import_disks(ctx, vm, source, images, metadata),
                    undo=lambda: undo_import(ctx, vm, source, saved, []))
    ctx.diff(vm, {}, metadata)
    view = states.created_view(ctx, vm, metadata, images, None)
    plan_enable(ctx, view, start=source.to_run)
    plan_source_after(ctx, source, saved)
    return view


def plan_stream_leftovers(ctx, vm):
    """qcow2 files a killed import streamed into RBD and did not convert: removed first."""
    left = sorted(name for name in ctx.store.image_names() if name.startswith(STREAM_PREFIX)
                  and belongs(name[len(STREAM_PREFIX):], vm))
    if left:
        ctx.plan.change("removed what an interrupted import of VM %s left" % vm,
                        apply=lambda: [ctx.store.remove_image(name) for name in left])


def plan_imported(ctx, view, source):
    """The cluster VM exists: an earlier import (or this one, run again). What it may have
    left: the source (the same VM: its UUID) still defined although it was to be removed."""
    if not source.exists or not ctx.req.remove_source or not same_vm(view, source):
        return view
    if source.running:
        raise VmError("VM %s is both a cluster VM and running on %s: stop the one that "
                      "should not run." % (view.name, source.host))
    ctx.plan.change("removed VM %s from %s" % (source.name, source.host),
                    apply=lambda: remove_source(source))
    return view


def same_vm(view, source):
    stored = view.stored.get(ci.KEY_XML)
    return bool(stored) and dx.uuid_of(dx.parse_domain(stored, "stored definition")) == \
        dx.uuid_of(source.root)


def check_importable(ctx, source, vm):
    if source.transient:
        raise VmError("Cannot import VM %s: it runs on %s without a definition there (a "
                      "transient domain), so it is not a standalone VM." % (source.name,
                                                                            source.host))
    if not source.exists:
        raise VmError("Cannot import VM %s: it does not exist on %s."
                      % (source.name, source.host))
    snapshots = snapshot_names(source)
    if snapshots:
        raise VmError("Cannot import VM %s: it has snapshots (%s), which the cluster's RBD "
                      "disks cannot carry. Remove them first (command: purge_image)."
                      % (source.name, ", ".join(snapshots)))
    for path in dx.disk_paths(source.root):
        vol = source.hv.storage.volume_by_path(path)
        if vol is None:
            raise VmError("Cannot import VM %s: its disk %s is not a volume of a libvirt "
                          "storage pool." % (source.name, path))
        facts = transfer.VolumeFacts(vol)
        if facts.backing:
            raise VmError("Cannot import VM %s: its disk %s is a linked clone's overlay on %s. "
                          "Make it a full clone first." % (source.name, path, facts.backing))
        if facts.format not in IMPORTABLE:
            raise VmError("Cannot import VM %s: its disk %s is in %s format (qcow2 or raw "
                          "can be imported)." % (source.name, path, facts.format))
        source.disks.append((vol, facts))
    if not source.disks:
        raise VmError("Cannot import VM %s: it has no disk." % source.name)
    if not ctx.req.remove_source and source.host in ctx.cluster.status()["nodes"]:
        raise VmError("VM %s is on %s, a node of the cluster: its definition there would "
                      "take over the cluster VM when it runs there. Import it with "
                      "remove_source: true." % (source.name, source.host))


def snapshot_names(source):
    return [name for name, _created in source.hv.snapshots(source.dom)]


def import_intent(ctx, vm, source):
    """-> (metadata, base definition, disk bus): the source's definition without its
    disks and our record, its user metadata unless the task gives its own."""
    root = dx.parse_domain(dx.canonical(source.root), "source definition")
    bus = (dx.disk_info(root) or [{"bus": "virtio"}])[0]["bus"]
    dx.remove_gv_metadata(root)
    dx.remove_importing_mark(root)
    dx.remove_owned_disks(root)
    dx.normalize_units(root)
    base = dx.canonical(root)
    inherited = {} if ctx.req.metadata is not None else dict(source.meta or {})
    return ctx.metadata_for_new(vm, base, ctx.req.disk_bus or bus, inherited), base, bus


def import_disks(ctx, vm, source, images, metadata):
    """The source stopped, its disks streamed into RBD under staged names, the VM
    registered (the images take their names and join its group), its definition set aside
    there; a failure takes back all of it (the plan's undo then restarts the source)."""
    created = []
    try:
        if source.running:
            source.hv.mark_importing(source.dom, dx.importing_mark())
            source.hv.stop(source.dom, SOURCE_STOP_SECONDS)
        for (vol, _facts), name in zip(source.disks, images):
            import_one(ctx, source, vol, disks.STAGING_PREFIX + name, created)
        ctx.images.register(vm, created, metadata)
        source.hv.undefine(source.dom)
    except BaseException:
        undo_import(ctx, vm, source, dx.to_string(source.root), created)
        raise


def import_one(ctx, source, vol, name, created):
    """One disk into RBD image ``name``, straight from the source's stream. Its facts are
    read again: the guest, now stopped, may have grown its file since the plan."""
    store, facts = ctx.store, transfer.VolumeFacts(vol)
    if facts.format == "raw":
        store.create_image(name, facts.capacity)
        created.append(name)
        with transfer.download(source.hv.conn, vol) as pieces:
            store.write_pieces(name, pieces)
        return
    container = STREAM_PREFIX + name[len(disks.STAGING_PREFIX):]
    store.create_image(container, facts.physical)
    try:
        with transfer.download(source.hv.conn, vol) as pieces:
            store.write_pieces(container, pieces)
        check_streamed(ctx, container, facts)
        store.convert_image(container, "qcow2", name, facts.capacity)
        created.append(name)
    finally:
        store.remove_image(container)


def check_streamed(ctx, staging, facts):
    """The qcow2 file as it arrived, refused like any image the modules import: a backing
    file or an external data file would make qemu-img read a file of this node."""
    details = source_image.info(ctx.run, ctx.store.qemu_target(staging), fmt="qcow2")
    reason = source_image.refusal(facts.path, details)
    if reason:
        raise VmError(reason)


def undo_import(ctx, vm, source, saved, created):
    """What the import made in the CIB and RBD removed, the source defined again and
    started if it ran: each step tried whatever the one before did (the first error is
    raised at the end; the source comes back before the images go)."""
    errors = []
    for step in (lambda: ctx.resource.delete_if_present(vm),
                 lambda: restore_source(source, saved),
                 lambda: ctx.images.remove_group_and_members(vm),
                 lambda: [ctx.store.remove_image(name) for name in created]):
        try:
            step()
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)
    if errors:
        raise errors[0]


def source_definition(saved):
    """The source's definition as it was, without the importing mark."""
    root = dx.parse_domain(saved, "source definition")
    dx.remove_importing_mark(root)
    return root


def restore_source(source, saved):
    dom = source.hv.domain(source.name)
    if dom is None:
        dom = source.hv.define(source_definition(saved))
    else:
        source.hv.mark_importing(dom, None)
    if source.to_run and not source.hv.is_active(dom):
        source.hv.start(dom)


def plan_source_after(ctx, source, saved):
    """Once the cluster VM runs (or is defined, stopped): the source removed, or defined
    again, stopped, on a host outside the cluster. The VM is the cluster's by then: a
    failure here is a warning, never a reason to take the import back."""
    def after():
        try:
            if ctx.req.remove_source:
                delete_source_disks(source)
            else:
                source.hv.define(source_definition(saved))
        except Exception as exc:  # pylint: disable=broad-except
            ctx.warn("VM %s is a cluster VM now, but its source on %s could not be %s: %s"
                     % (source.name, source.host, "removed" if ctx.req.remove_source
                        else "defined again", exc))
    if ctx.req.remove_source:
        ctx.plan.change("removed VM %s from %s" % (source.name, source.host), apply=after)
    else:
        ctx.plan.act(after)


def remove_source(source):
    source.hv.undefine(source.dom)
    delete_source_disks(source)


def delete_source_disks(source):
    source.hv.delete_disks_of(source.name, dx.disk_paths(source.root))
