"""An in-memory cluster for the cluster planners: an RBD pool (groups, images, metadata,
snapshots, layered clones, trash) and a one-node Pacemaker (a CIB, resources that run when
their target-role says so, the digest our agent records when it starts a VM). The planners,
the steps and the lifecycle are the real ones; only the drivers' I/O is in memory."""
import contextlib
import copy
import hashlib
import json

from lxml import etree

from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

NODE = "hv1"
EMPTY_CIB = ("<cib><configuration><crm_config/><nodes><node id='1' uname='hv1'/></nodes>"
             "<resources/><constraints/></configuration><status/></cib>")


class FakeStore(object):
    """The pool: ``images`` {name: {meta, size, snaps [(name, time, protected)], parent}},
    ``groups`` {vm: [image]}, ``group_snaps`` {vm: [(name, time)]}, ``trash`` [image]."""

    def __init__(self):
        self.images, self.groups, self.group_snaps, self.trash = {}, {}, {}, []
        self.clock = 100
        self.fail_on = None  # the name of a method that raises when called
        self.snapshots = self  # RbdStore.snapshots: the same in-memory pool here

    def state(self):
        return copy.deepcopy((self.images, self.groups, self.group_snaps, self.trash))

    def _tick(self):
        self.clock += 1
        return self.clock

    def _maybe_fail(self, what):
        if self.fail_on == what:
            raise VmError("Ceph refused %s." % what)

    # ---- the connection -------------------------------------------------------------------

    def monitors(self):
        return [("127.0.0.1", 6789)]

    def not_answering(self, what):
        return VmError("Ceph did not answer (%s)." % what)

    @contextlib.contextmanager
    def lease(self, vm, wait_seconds):
        yield

    def close(self):
        pass

    # ---- registry -------------------------------------------------------------------------

    def vm_names(self):
        return sorted(self.groups)

    def vm_exists(self, vm):
        return vm in self.groups

    def image_names(self):
        return set(self.images)

    def image_exists(self, name):
        return name in self.images

    def images_of(self, vm):
        def order(name):  # as RbdStore orders them
            tail = name.rsplit("_", 1)[-1]
            if name == "system_" + vm:
                return (0, 0)
            return (1, int(tail) if tail.isdigit() else 0)
        return sorted(self.groups[vm], key=order)

    def create_group(self, vm):
        self.groups[vm] = []

    def remove_group(self, vm):
        self.groups.pop(vm, None)

    def add_to_group(self, vm, image):
        self.groups[vm].append(image)

    def remove_from_group(self, vm, image):
        self.groups[vm].remove(image)

    # ---- images ---------------------------------------------------------------------------

    def _new(self, name, size, parent=None):
        if name in self.images:
            raise VmError("image %s exists" % name)
        self.images[name] = {"meta": {}, "size": size, "snaps": [], "parent": parent}

    def create_image(self, name, size_bytes):
        self._new(name, size_bytes)

    def import_image(self, name, source, fmt, virtual_size):
        self._maybe_fail("import_image")
        self._new(name, virtual_size)

    def remove_image(self, name):
        self._maybe_fail("remove_image")
        self.images.pop(name)

    def trash_image(self, name, delay_seconds):
        self.trash.append(name)
        self.images.pop(name)

    def rename_image(self, name, new_name):
        self.images[new_name] = self.images.pop(name)
        for members in self.groups.values():
            if name in members:
                members[members.index(name)] = new_name

    def metadata(self, image):
        return dict(self.images[image]["meta"])

    def set_metadata(self, image, values):
        self.images[image]["meta"].update(values)

    def replace_metadata(self, image, values):
        self.images[image]["meta"] = dict(values)

    def remove_metadata(self, image, keys):
        for key in keys:
            self.images[image]["meta"].pop(key, None)

    # ---- snapshots and clones -------------------------------------------------------------

    def group_snapshots(self, vm):
        return list(self.group_snaps.get(vm, []))

    def create_group_snapshot(self, vm, name):
        self.group_snaps.setdefault(vm, []).append((name, self._tick()))

    def remove_group_snapshot(self, vm, name):
        self.group_snaps[vm] = [s for s in self.group_snaps[vm] if s[0] != name]

    def rollback_group_snapshot(self, vm, name):
        pass  # the disks' bytes are not modelled

    def snapshot_image(self, image, snap, protect=True):
        if snap not in self.user_snapshots(image):
            self.images[image]["snaps"].append((snap, self._tick(), protect))

    def clone_image(self, parent, snap, child):
        self._new(child, self.images[parent]["size"], parent=(parent, snap))

    def copy_image_at_group_snapshot(self, image, vm, group_snap, dest):
        self._new(dest, self.images[image]["size"])

    def user_snapshots(self, image):
        return [s[0] for s in self.images[image]["snaps"]]

    def image_snapshots(self, image):
        return [(s[0], s[1]) for s in self.images[image]["snaps"]]

    def remove_image_snapshot(self, image, snap):
        self.images[image]["snaps"] = [s for s in self.images[image]["snaps"] if s[0] != snap]

    def rollback_image_snapshot(self, image, snap):
        pass

    def parent_of(self, image):
        return self.images[image]["parent"]

    def remove_snapshot_if_unused(self, image, snap, by_id=False):
        if image not in self.images or snap not in self.user_snapshots(image):
            return False
        if any(i["parent"] == (image, snap) for i in self.images.values()):
            return False
        self.remove_image_snapshot(image, snap)
        return True


class FakeCluster(pcmk.Cluster):
    """One node, hv1. A primitive runs there when it is managed and its target-role is
    Started (our agent then records the digest of the definition it started); ``failed``
    holds the VMs whose last start failed; ``reads`` counts the CIB and status reads."""

    def __init__(self, store):
        super(FakeCluster, self).__init__(run=None)
        self.store = store
        self.root = etree.fromstring(EMPTY_CIB)
        self.failed = set()
        self.running = {}  # vm -> the digest of the definition it started with
        self.reads = 0
        self.fail_on = None
        self.waits = self  # Cluster.waits: the waits below, which read the state at once

    def state(self):
        self._converge()
        return etree.tostring(self.root), sorted(self.failed), dict(self.running)

    # ---- reading ----------------------------------------------------------------------

    def cib(self):
        self.reads += 1
        self._converge()
        return copy.deepcopy(self.root)

    def status(self):
        self.reads += 1
        self._converge()
        resources, roles = {}, {}
        for prim in self.root.iterfind("configuration/resources/primitive"):
            vm = prim.get("id")
            state = ("Started", NODE) if vm in self.running else ("Stopped", None)
            if vm in self.failed:
                state = ("Failed", None)
            resources[vm], roles[vm] = state, state[0]
        nodes = {NODE: {"online": True, "standby": False, "maintenance": False,
                        "usable": True, "type": "member", "resources_running": 0}}
        return {"nodes": nodes, "resources": resources, "failures": {}, "roles": roles,
                "agents": {}, "dc": NODE, "quorum": True}

    def node_info(self):
        info = self.status()
        return {"local_node": NODE, "quorum": True, "nodes": info["nodes"],
                "usable_nodes": [NODE]}

    def local_node(self):
        return NODE

    def _converge(self):
        """What Pacemaker does between two reads: run what should run, stop the rest."""
        for prim in self.root.iterfind("configuration/resources/primitive"):
            vm = prim.get("id")
            wanted = pcib.meta_value(prim, "target-role") != "Stopped" and \
                pcib.meta_value(prim, "is-managed") != "false"
            if wanted and vm not in self.running and vm not in self.failed:
                self.running[vm] = self._digest(vm)
            elif not wanted and pcib.meta_value(prim, "is-managed") != "false":
                self.running.pop(vm, None)
        known = set(p.get("id") for p in self.root.iterfind("configuration/resources/primitive"))
        for vm in set(self.running) - known:
            del self.running[vm]
        self._record_digests()

    def _digest(self, vm):
        xml = self.store.images["system_" + vm]["meta"]["xml"]
        return hashlib.sha256((xml + "\n").encode("utf-8")).hexdigest()

    def _record_digests(self):
        status = self.root.find("status")
        status.clear()
        state = etree.SubElement(status, "node_state", uname=NODE)
        attrs = etree.SubElement(etree.SubElement(state, "transient_attributes"),
                                 "instance_attributes")
        for vm, digest in sorted(self.running.items()):
            etree.SubElement(attrs, "nvpair", name="gridvirt-xml-" + vm, value=digest)

    # ---- writing ----------------------------------------------------------------------

    def _write(self, what):
        """Refuses the write named by ``fail_on`` once (a passing refusal)."""
        if self.fail_on == what:
            self.fail_on = None
            raise VmError("Pacemaker refused %s." % what)

    def create(self, element, scope):
        self._write("create")
        self.root.find("configuration/" + scope).append(copy.deepcopy(element))

    def replace(self, element, scope):
        self._write("replace")
        parent = self.root.find("configuration/" + scope)
        old = parent.find("*[@id='%s']" % element.get("id"))
        parent.replace(old, copy.deepcopy(element))

    def delete(self, tag, element_id):
        self._write("delete")
        for el in self.root.iter(tag):
            if el.get("id") == element_id:
                el.getparent().remove(el)
                return

    def set_meta(self, vm, name, value):
        self._write("set_meta")
        prim = pcib.primitive(self.root, vm)
        meta = prim.find("meta_attributes")
        pair = meta.find("nvpair[@name='%s']" % name)
        if pair is None:
            pair = etree.SubElement(meta, "nvpair", id="%s-meta_attributes-%s" % (vm, name),
                                    name=name)
        pair.set("value", str(value))

    def cleanup(self, vm):
        self.failed.discard(vm)

    def set_node_attribute(self, node, name, value):
        pass

    def delete_node_attribute(self, node, name):
        pass

    def configure(self, words):
        raise AssertionError("no crmsh line in these tests")

    # ---- waiting ----------------------------------------------------------------------

    def wait_for(self, vm, wanted, timeout):
        return self.status()["resources"].get(vm, ("Disabled", None))

    def settle(self, timeout):
        return True


def run(args, data=None, binary_data=False):
    """The commands the planners run: qemu-img info of an image, virt-xml-validate."""
    if args[0] == "qemu-img":
        return 0, json.dumps({"format": "qcow2", "virtual-size": 64 * 1024 * 1024}), ""
    if args[0] == "virt-xml-validate":
        return (1, "", "bogus element") if "<bogus" in (data or "") else (0, "", "")
    raise AssertionError("unexpected command %s" % args)
