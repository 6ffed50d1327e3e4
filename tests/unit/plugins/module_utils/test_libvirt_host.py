"""Listings that outlive their entries (issue 11): another run undefines a domain or deletes a
volume between our listing and our read of that entry. Real libvirt, its test driver
(test:///default, in-process, nothing outside this process changes)."""
import libvirt
import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils import libvirt_host
from ansible_collections.gridvirt.kvm.plugins.module_utils._common import library_errors
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils.libvirt_host import (
    Hypervisor, still_there)

URI = "test:///default"
DOMAIN_XML = ("<domain type='test'><name>%s</name><memory>1024</memory>"
              "<os><type>hvm</type></os></domain>")
VOLUME_XML = "<volume><name>%s</name><capacity>1048576</capacity></volume>"


@pytest.fixture()
def hv():
    hypervisor = Hypervisor(URI, run=None)
    yield hypervisor
    for dom in hypervisor.conn.listAllDomains():
        if dom.name().startswith("hlu"):
            dom.undefine()
    hypervisor.close()


@pytest.fixture()
def pool(hv):
    test_pool = hv.conn.storagePoolLookupByName("default-pool")
    yield test_pool
    for vol in test_pool.listAllVolumes(0):
        if vol.name().startswith("hlu"):
            vol.delete(0)


def define(hv, *names):
    return [hv.conn.defineXML(DOMAIN_XML % name) for name in names]


def test_a_domain_undefined_while_the_others_are_read_is_skipped(hv):
    define(hv, "hlu1", "hlu2", "hlu3")
    first = []

    def read_removing_the_others(dom):
        # Our first read of one of them comes after the listing: another run undefines
        # the other two right then.
        if dom.name().startswith("hlu") and not first:
            first.append(dom.name())
            for other in ("hlu1", "hlu2", "hlu3"):
                if other != dom.name():
                    hv.conn.lookupByName(other).undefine()
        return dom.name(), len(hv.xml_root(dom))

    names = [name for name, children in hv.read_domains(read_removing_the_others)]
    assert sorted(names) == sorted(["test"] + first)


def test_a_listing_entry_gone_before_its_read_is_skipped(hv):
    define(hv, "hlu1", "hlu2")
    listing = hv.domains()
    hv.conn.lookupByName("hlu1").undefine()
    names = still_there(listing, lambda dom: dom.XMLDesc(0) and dom.name(),
                        libvirt.VIR_ERR_NO_DOMAIN)
    assert "hlu2" in names and "hlu1" not in names


def test_a_volume_deleted_after_the_listing_is_skipped(hv, pool):
    pool.createXML(VOLUME_XML % "hlu-a", 0)
    pool.createXML(VOLUME_XML % "hlu-b", 0)
    listing = pool.listAllVolumes(0)
    pool.storageVolLookupByName("hlu-a").delete(0)
    names = still_there(listing, lambda vol: vol.XMLDesc(0) and vol.name(),
                        libvirt.VIR_ERR_NO_STORAGE_VOL)
    assert "hlu-b" in names and "hlu-a" not in names


def test_another_error_of_a_read_is_not_hidden(hv):
    define(hv, "hlu1")
    listing = [hv.conn.lookupByName("hlu1")]
    with pytest.raises(libvirt.libvirtError) as raised:
        still_there(listing, lambda dom: dom.snapshotLookupByName("nosuch", 0),
                    libvirt.VIR_ERR_NO_DOMAIN)
    assert raised.value.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT


def test_a_volume_is_not_mistaken_for_a_vanished_domain(pool):
    """Each listing skips only its own kind of disappearance."""
    vol = pool.createXML(VOLUME_XML % "hlu-c", 0)
    vol.delete(0)
    with pytest.raises(libvirt.libvirtError):
        still_there([vol], lambda entry: entry.XMLDesc(0), libvirt.VIR_ERR_NO_DOMAIN)


def test_a_libvirt_refusal_becomes_a_sentence_naming_request_and_host(hv):
    with pytest.raises(libvirt.libvirtError) as raised:
        hv.conn.lookupByName("hlu-nosuch")
    with pytest.raises(VmError) as sentence:
        with library_errors.as_sentences("make VM hlu-nosuch present", URI):
            raise raised.value
    error = sentence.value
    assert error.msg == "Cannot make VM hlu-nosuch present on test:///default: Domain not found."


def test_an_unreachable_host_is_a_sentence():
    hypervisor = libvirt_host.Hypervisor("qemu+tcp://127.0.0.1:1/system", run=None)
    with pytest.raises(libvirt_host.VmError) as raised:
        hypervisor.domains()
    assert raised.value.msg.startswith(
        "Cannot connect to libvirt at qemu+tcp://127.0.0.1:1/system: ")
