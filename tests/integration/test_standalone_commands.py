"""standalone_vm options and verbs the other files leave out: remove_snapshot, vcpus and an
explicit uri, each with its rerun and its check mode, on the lab's libvirtd."""
import lab

PREFIX = "isc"
VM = PREFIX + "vm1"

clean_lab = lab.cleanup_fixture(PREFIX)


def vm_args(**extra):
    args = {"name": VM, "state": "present", "xml": lab.guest_xml(VM),
            "system_image": lab.GUEST_IMAGE, "uri": lab.URI}
    args.update(extra)
    return args


def snapshot(command, name):
    return lab.run_module({"name": VM, "command": command, "snapshot_name": name})


def test_explicit_uri_creates_the_vm_there_and_reports_the_host():
    result = lab.run_module(vm_args())
    assert not result["failed"], result.get("msg")
    assert result["changed"] is True and result["status"] == "Stopped"
    assert result["node"] == lab.node_name()
    assert VM in lab.domain_names()
    assert lab.run_module(vm_args())["changed"] is False


def test_vcpus_update_in_place_with_check_and_rerun():
    assert lab.domain_xml(VM).findtext("vcpu") == "1"
    before = lab.fingerprint()
    check = lab.run_module(vm_args(vcpus=2), check=True)
    assert check["changed"] is True and lab.fingerprint() == before
    result = lab.run_module(vm_args(vcpus=2))
    assert result["changed"] is True
    assert lab.domain_xml(VM).findtext("vcpu") == "2"
    assert lab.run_module(vm_args(vcpus=2))["changed"] is False
    # Started from the new definition, the guest really gets two vCPUs.
    console = lab.Console(VM)
    started = lab.run_module(vm_args(vcpus=2, state="running"))
    assert started["changed"] is True and started["status"] == "Started"
    console.wait_boot()
    assert lab.domain_xml(VM, inactive=False).findtext("vcpu") == "2"
    assert lab.run_module(vm_args(vcpus=2, state="stopped"))["status"] == "Stopped"


def test_remove_snapshot_removes_only_that_one_and_is_idempotent():
    assert snapshot("create_snapshot", "s1")["changed"] is True
    assert snapshot("create_snapshot", "s2")["list_snapshot"] == ["s1", "s2"]
    before = lab.fingerprint()
    check = lab.run_module({"name": VM, "command": "remove_snapshot", "snapshot_name": "s1"},
                           check=True)
    assert check["changed"] is True and lab.fingerprint() == before
    result = snapshot("remove_snapshot", "s1")
    assert result["changed"] is True and result["list_snapshot"] == ["s2"]
    assert lab.snapshot_names(VM) == ["s2"]
    again = snapshot("remove_snapshot", "s1")
    assert again["failed"] is False and again["changed"] is False
    assert lab.snapshot_names(VM) == ["s2"]
