"""standalone_vm's request, read once before any connection: options normalized, the
XML parsed and checked, the state a command converges to, and the first bad option named."""
import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone.request import (
    StandaloneRequest)
from ansible_collections.gridvirt.kvm.plugins.modules import standalone_vm

XML = "<domain type='kvm'><name>x</name><memory unit='MiB'>256</memory></domain>"


def params(**given):
    values = dict((k, v.get("default")) for k, v in standalone_vm.argument_spec().items())
    values.update(name="vm1", state="running")
    values.update(given)
    return values


@pytest.mark.parametrize("given,state", [
    ({"state": "started"}, "running"),
    ({"state": None, "command": "create"}, "running"),
    ({"state": None, "command": "create", "nostart": True}, "present"),
    ({"state": None, "command": "remove"}, "absent"),
    ({"state": None, "command": "stop"}, "stopped"),
    ({"state": None, "command": "status"}, None),
])
def test_the_state_a_request_converges_to(given, state):
    assert StandaloneRequest(params(**given)).state == state


def test_numbers_are_normalized_and_the_xml_parsed_once():
    request = StandaloneRequest(params(memory="1024", vcpus=2, stop_timeout="30", xml=XML,
                                       additional_disks=["16M", "/images/d.qcow2"]))
    assert (request.memory, request.vcpus, request.stop_timeout) == (1024, 2, 30)
    assert request.user_root.tag == "domain"
    assert request.additional_disks == [("size", 16 * 1024 * 1024),
                                        ("image", "/images/d.qcow2")]


@pytest.mark.parametrize("given,message", [
    ({"stop_timeout": "inf", "memory": "x"},
     "stop_timeout must be zero or more and at most"),
    ({"name": "bad name", "memory": 4}, "Invalid VM name"),
    ({"memory": 4}, "Invalid memory 4 MiB"),
    ({"xml": XML.replace("</domain>", "<devices><disk type='file'/></devices></domain>")},
     "The xml option must not contain disk devices"),
    ({"state": None, "command": "clone"}, "src_name is required when command is clone."),
    ({"state": None, "command": "get_metadata", "metadata_name": "bad key"},
     "Invalid metadata key 'bad key'"),
])
def test_the_first_bad_option_is_named_before_any_connection(given, message):
    with pytest.raises(VmError) as err:
        StandaloneRequest(params(**given))
    assert message in err.value.msg


def test_a_clone_locks_its_source_too_and_reads_take_no_lock():
    clone = StandaloneRequest(params(state=None, command="clone", src_name="base"))
    assert clone.locked_names == ["vm1", "base"] and not clone.read_only
    assert StandaloneRequest(params(state=None, command="status")).read_only
