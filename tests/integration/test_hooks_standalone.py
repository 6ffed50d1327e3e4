"""The site hooks of standalone VMs, run by standalone_vm on the lab's hypervisor from
/etc/gridvirt/hooks: allocate before a create, start, clone or move (a veto changes
nothing; its NIC changes hold for that boot), preboot before a boot (its XML runs for that
boot only), disallocate after a stop and a removal (a failure is a warning). Check mode runs
none, and a hook a local user could have changed is refused."""
import os
import subprocess
import time

import libvirt

import lab
import site_hooks_lab as hooks

PREFIX = "ihk"
VM = PREFIX + "1"
EXTRA_DISK = os.path.join(lab.POOL_DIR, PREFIX + "-extra.raw")

clean = lab.cleanup_fixture(PREFIX)

# Adds a 1 MiB disk and doubles the memory: for this boot only.
PREBOOT_ADD_DISK = hooks.script("""import xml.etree.ElementTree as ET
doc = json.load(sys.stdin)
root = ET.fromstring(doc["xml"])
for tag in ("memory", "currentMemory"):
    for el in root.findall(tag):
        el.set("unit", "KiB")
        el.text = str(256 * 1024)
disk = ET.SubElement(root.find("devices"), "disk", type="file", device="disk")
ET.SubElement(disk, "driver", name="qemu", type="raw")
ET.SubElement(disk, "source", file=%r)
ET.SubElement(disk, "target", dev="vdz", bus="virtio")
print(ET.tostring(root, encoding="unicode"))
""" % EXTRA_DISK)
ALLOCATE_MAC = hooks.script("""json.load(sys.stdin)
print(json.dumps({"nics": [{"index": 0, "mac": "02:67:76:ee:00:01"}]}))
""")
VETO = hooks.script("""json.load(sys.stdin)
sys.stderr.write("rack 4 has no free slot\\n")
sys.exit(3)
""")
FAIL = hooks.script("""json.load(sys.stdin)
sys.stderr.write("the switch did not answer\\n")
sys.exit(1)
""")
SLEEP = hooks.script("""import time
json.load(sys.stdin)
time.sleep(120)
""")


def vm(**extra):
    args = {"name": VM, "xml": lab.guest_xml(VM), "system_image": lab.GUEST_IMAGE,
            "metadata": {"rack": "r4"},
            "addresses": [{"vm": VM, "nic": 0, "ip": "10.77.0.9", "prefix": 24}]}
    args.update(extra)
    return lab.run_module(args)


def ok(result):
    assert not result["failed"], result
    return result


def stopped():
    return lab.domain_state(VM) == libvirt.VIR_DOMAIN_SHUTOFF


def live_xml():
    return lab.domain_xml(VM, inactive=False)


def memory_kib(root):
    return int(root.findtext("memory"))


def make_extra_disk():
    with open(EXTRA_DISK, "wb") as out:
        out.truncate(1024 * 1024)


def test_preboot_and_allocate_change_one_boot_only():
    make_extra_disk()
    ok(vm(state="stopped"))
    console = lab.Console(VM)
    with hooks.installed({("allocate", "10-mac"): ALLOCATE_MAC,
                          ("allocate", "20-record"): hooks.RECORDER,
                          ("preboot", "10-disk"): PREBOOT_ADD_DISK,
                          ("preboot", "20-record"): hooks.RECORDER,
                          ("disallocate", "10-record"): hooks.RECORDER}):
        result = ok(vm(state="running"))
        assert result["changed"] and result["changes"] == ["started VM %s" % VM]
        boot = console.wait_boot()
        assert boot["disks"] == ["vda", "vdb"]  # the guest sees the preboot's disk
        live, stored = live_xml(), lab.domain_xml(VM)
        assert memory_kib(live) == 256 * 1024 and memory_kib(stored) == 128 * 1024
        assert live.find("devices/interface/mac").get("address") == "02:67:76:ee:00:01"
        assert stored.find("devices/interface/mac").get("address") != "02:67:76:ee:00:01"
        assert len(stored.findall("devices/disk")) == 1
        # What the hooks read: the document, and each preboot the XML of the one before.
        allocate, = hooks.records("allocate")
        assert (allocate["vm"], allocate["kind"], allocate["action"], allocate["node"]) == (
            VM, "standalone", "start", lab.node_name())
        assert allocate["metadata"] == {"rack": "r4"}
        assert allocate["addresses"][0]["ip"] == "10.77.0.9"
        preboot, = hooks.records("preboot")
        assert "02:67:76:ee:00:01" in preboot["xml"] and EXTRA_DISK in preboot["xml"]
        # A rerun starts nothing and runs no hook; the status does not ask for a restart.
        again = ok(vm(state="running"))
        assert not again["changed"] and not again["restart_required"]
        assert len(hooks.records("preboot")) == 1
        ok(vm(state="stopped"))
        stop, = hooks.records("disallocate")
        assert (stop["action"], stop["vm"]) == ("stop", VM)
    # Without the hooks the next start boots the stored definition.
    console.mark()
    ok(vm(state="running"))
    assert console.wait_boot()["disks"] == ["vda"]
    assert memory_kib(live_xml()) == 128 * 1024


def test_check_mode_runs_no_hook():
    ok(vm(state="stopped"))
    with hooks.installed({("allocate", "10-record"): hooks.RECORDER,
                          ("preboot", "10-record"): hooks.RECORDER,
                          ("disallocate", "10-record"): hooks.RECORDER}):
        offset = hooks.log_size()
        args = {"name": VM, "state": "running"}
        result = lab.run_module(args, check=True)
        assert result["changed"] and not result["failed"]
        assert stopped()
        assert hooks.records("allocate") == hooks.records("preboot") == []
        assert hooks.log_size() == offset


def test_allocate_veto_changes_nothing():
    ok(vm(state="stopped"))
    before = lab.fingerprint()
    with hooks.installed({("allocate", "10-veto"): VETO}):
        result = vm(state="running")
        assert result["failed"] and lab.NO_TRACEBACK not in result.get("msg", "")
        assert result["msg"] == ("The allocate hook 10-veto refused start of VM %s: rack 4 "
                                 "has no free slot." % VM)
        assert not result["changed"]
        assert lab.fingerprint() == before and stopped()
        new = PREFIX + "2"
        created = lab.run_module({"name": new, "xml": lab.guest_xml(new),
                                  "system_image": lab.GUEST_IMAGE, "state": "running"})
        assert created["failed"] and "refused create of VM %s" % new in created["msg"]
        assert lab.fingerprint() == before  # no domain, no volume


def test_a_failing_preboot_fails_the_start():
    with hooks.installed({("preboot", "10-fail"): FAIL}):
        result = vm(state="running")
        assert result["failed"] and result["msg"] == (
            "The preboot hook 10-fail refused start of VM %s: the switch did not answer." % VM)
        assert stopped()


def test_disallocate_runs_after_removal_and_its_failure_is_a_warning():
    ok(vm(state="running"))
    with hooks.installed({("disallocate", "10-fail"): FAIL,
                          ("disallocate", "20-record"): hooks.RECORDER}):
        result = ok(vm(state="absent"))
        assert result["changed"] and VM not in lab.domain_names()
        warning = ("The disallocate hook 10-fail failed after remove of VM %s: the switch did "
                   "not answer." % VM)
        assert warning in " ".join(result["_stderr"].split())
        removal, = hooks.records("disallocate")
        assert removal["action"] == "remove" and "<name>%s</name>" % VM in removal["xml"]


def test_hooks_a_local_user_could_change_are_refused():
    ok(vm(state="stopped"))
    with hooks.installed({("preboot", "10-record"): hooks.RECORDER}) as (path,):
        cases = [
            (lambda: os.chown(path, 65534, 0), "it is not owned by root"),
            (lambda: os.chmod(path, 0o757), "users other than root may write it"),
            (lambda: os.chmod(path, 0o644), "it is not executable"),
        ]
        for make_unsafe, reason in cases:
            os.chown(path, 0, 0)
            os.chmod(path, 0o755)
            make_unsafe()
            result = vm(state="running")
            assert result["failed"] and result["msg"] == "Refused preboot hook %s: %s." % (
                path, reason)
            assert stopped() and hooks.records("preboot") == []


def test_a_hook_past_its_timeout_is_killed():
    with hooks.installed({("allocate", "10-sleep"): SLEEP}) as (path,):
        started = time.monotonic()
        result = vm(state="running", hook_timeout=2)
        assert result["failed"] and result["msg"] == (
            "The allocate hook 10-sleep refused start of VM %s: did not finish within 2 "
            "seconds." % VM)
        assert time.monotonic() - started < 60
        left = subprocess.run(["pgrep", "-f", path], capture_output=True, text=True, check=False)
        assert left.stdout == ""  # the hook was killed, not left behind
        assert stopped()
