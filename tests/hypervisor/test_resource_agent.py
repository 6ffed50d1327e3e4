"""The lower cluster layers end to end on the lab: a VM whose disk is imported into RBD, whose
definition is RBD metadata, started by Pacemaker through ocf:gridvirt:VirtualDomain (which
fetches that definition), really boots from RBD; stops gracefully; and the agent fails
cleanly when the definition is missing."""
import subprocess

import pytest

import lab
from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker as pcmk
from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils import rbd_names
from ansible_collections.gridvirt.kvm.plugins.module_utils import rbd_store
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec

VM = "hvra1"
SECRET = "5b1a8d2e-3c4f-4e6a-9b7d-1f0e2c3a4b5d"  # roles/hypervisor defaults


def run(args, data=None, binary_data=False):
    proc = subprocess.run(args, input=data, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture()
def layers():
    store = rbd_store.RbdStore("/etc/ceph/ceph.conf", "libvirt",
                               "/etc/ceph/ceph.client.libvirt.keyring", "rbd", run)
    cluster = pcmk.Cluster(run)
    remove(store, cluster)
    yield store, cluster
    remove(store, cluster)
    store.close()


def remove(store, cluster):
    if pcib.primitive(cluster.cib(), VM) is not None:
        cluster.set_meta(VM, "target-role", "Stopped")
        cluster.waits.wait_for(VM, ("Stopped",), 60)
        cluster.delete("primitive", VM)
    if store.vm_exists(VM):
        for image in store.images_of(VM):
            store.remove_from_group(VM, image)
        store.remove_group(VM)
    store.remove_image(rbd_names.system_image(VM))
    lab.remove_everything(VM)


def define_vm(store):
    info = subprocess.run(["qemu-img", "info", "--output=json", lab.GUEST_IMAGE],
                          capture_output=True, text=True, check=True).stdout
    size = int(info.split('"virtual-size": ')[1].split(",")[0])
    store.create_group(VM)
    store.import_image(rbd_names.system_image(VM), lab.GUEST_IMAGE, "qcow2", size)
    store.add_to_group(VM, rbd_names.system_image(VM))
    root = dx.parse_domain(lab.guest_xml(VM))
    dx.set_identity(root, VM, spec.stable_uuid(VM))
    dx.add_rbd_disks(root, [rbd_names.system_image(VM)], "virtio",
                     {"pool": "rbd", "user": "libvirt", "secret_uuid": SECRET,
                      "monitors": store.monitors()})
    dx.expose_name_to_guest(root, VM)
    store.set_metadata(rbd_names.system_image(VM), {"xml": dx.to_string(root), "vm_name": VM})


def add_resource(cluster):
    prim = pcib.build_primitive(
        VM, {"config": "/var/lib/gridvirt/domains/%s.xml" % VM, "hypervisor": "qemu:///system"},
        {"is-managed": "false", "target-role": "Started"})
    cluster.create(prim, "resources")
    cluster.set_meta(VM, "is-managed", "true")
    return pcib.primitive_timeouts(pcib.primitive(cluster.cib(), VM))


def test_pacemaker_runs_the_vm_from_rbd(layers):
    store, cluster = layers
    console = lab.Console(VM)
    define_vm(store)
    timeouts = add_resource(cluster)
    status, node = cluster.waits.wait_for(VM, ("Started",), timeouts["start"])
    assert status == "Started" and node == lab.node_name()
    boot = console.wait_boot()
    assert boot == {"name": VM, "uuid": spec.stable_uuid(VM), "boot": 1, "disks": ["vda"]}
    disk = lab.domain_xml(VM, inactive=False).find("devices/disk/source")
    assert disk.get("protocol") == "rbd" and disk.get("name") == "rbd/system_" + VM
    cluster.set_meta(VM, "target-role", "Stopped")
    assert cluster.waits.wait_for(VM, ("Stopped",), timeouts["stop"])[0] == "Stopped"
    assert "power button" in console.text()
    console.mark()
    cluster.set_meta(VM, "target-role", "Started")
    assert cluster.waits.wait_for(VM, ("Started",), timeouts["start"])[0] == "Started"
    assert console.wait_boot()["boot"] == 2  # the counter lives on the RBD disk


def test_agent_fails_cleanly_without_a_definition(layers):
    store, cluster = layers
    store.create_group(VM)
    timeouts = add_resource(cluster)
    status, _node = cluster.waits.wait_for(VM, ("Started",), timeouts["start"])
    assert status == "Failed"
    assert cluster.status()["failures"][VM] == [
        "start on %s: cannot read the xml metadata of RBD image rbd/system_%s"
        % (lab.node_name(), VM)]
    cluster.cleanup(VM)
