import datetime

import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils.errors import VmError


@pytest.mark.parametrize("name", ["a", "vm1", "VM-01_b", "x" * 63, "7up"])
def test_valid_vm_names(name):
    assert spec.validate_vm_name(name) == name


@pytest.mark.parametrize("name", ["", None, "-a", "_a", "a b", "a;b", "a$(x)", "a<b", "a&b",
                                  "a/b", "a.b", "x" * 64, "é"])
def test_invalid_vm_names(name):
    with pytest.raises(VmError) as err:
        spec.validate_vm_name(name)
    assert err.value.msg.endswith(".")


@pytest.mark.parametrize("value,expected", [
    ("1G", 1024 ** 3), ("512M", 512 * 1024 ** 2), ("512MiB", 512 * 1024 ** 2), ("10k", 10240),
    (4096, 4096), (" 2 G ", 2 * 1024 ** 3), ("3", 3)])
def test_parse_size(value, expected):
    assert spec.parse_size(value) == expected


@pytest.mark.parametrize("value,message", [
    ("-1G", "Invalid size"), ("0", "greater than zero"), (0, "greater than zero"),
    ("1X", "Invalid size"), ("", "Invalid size"), (True, "Invalid size"),
    ("65T", "larger than 64 TiB")])
def test_parse_size_rejects(value, message):
    with pytest.raises(VmError) as err:
        spec.parse_size(value)
    assert message in err.value.msg


def test_metadata_keys():
    assert spec.validate_metadata({"a.b-c_d": 1, "k": None}) == {"a.b-c_d": "1", "k": ""}
    for bad in ({"xml": "x"}, {"": "x"}, {"a b": "x"}, {"a": [1]}):
        with pytest.raises(VmError):
            spec.validate_metadata(bad)


def test_stable_identity_is_deterministic_and_distinct():
    assert spec.stable_uuid("vm1") == spec.stable_uuid("vm1")
    assert spec.stable_uuid("vm1") != spec.stable_uuid("vm2")
    mac = spec.stable_mac("vm1", 0)
    assert mac == spec.stable_mac("vm1", 0) and mac.startswith("52:54:00:")
    assert mac != spec.stable_mac("vm1", 1) != spec.stable_mac("vm2", 0)


UTC = datetime.timezone.utc


@pytest.mark.parametrize("purge_date,expected", [
    ({"date": "2026-11-21"}, datetime.datetime(2026, 11, 21, tzinfo=UTC)),
    ({"date": "2026-11-21", "time": "08:30"}, datetime.datetime(2026, 11, 21, 8, 30, tzinfo=UTC)),
    ({"iso_8601": "2026-11-21T08:30:00+01:00"}, datetime.datetime(2026, 11, 21, 7, 30, tzinfo=UTC)),
    ({"iso_8601": "2026-11-21T08:30:00Z"}, datetime.datetime(2026, 11, 21, 8, 30, tzinfo=UTC)),
    ({"posix": 0}, datetime.datetime(1970, 1, 1, tzinfo=UTC)),
])
def test_purge_dates_are_timezone_aware(purge_date, expected):
    assert spec.parse_purge_date(purge_date) == expected


@pytest.mark.parametrize("purge_date,message", [
    ({}, "needs one of"),
    ({"date": "2026-11-21", "posix": 1}, "exactly one"),
    ({"time": "10:00", "iso_8601": "2026-01-01"}, "only used together"),
    ({"date": "21/11/2026"}, "Invalid purge_date"),
    ({"iso_8601": "yesterday"}, "Invalid purge_date.iso_8601"),
    ({"date": "2026-11-21", "time": "25:00"}, "Invalid purge_date"),
])
def test_purge_date_errors(purge_date, message):
    with pytest.raises(VmError) as err:
        spec.parse_purge_date(purge_date)
    assert message in err.value.msg


def test_missing_binding_is_a_sentence_naming_the_package():
    from ansible_collections.gridvirt.kvm.plugins.module_utils import deps
    with pytest.raises(VmError) as err:
        deps.require("libvirt_binding_that_is_not_installed")
    assert "is missing on the hypervisor" in err.value.msg
    assert "install" in err.value.msg
    deps.PACKAGES["gridvirt_fake_mod"] = "python3-fake"
    with pytest.raises(VmError) as err:
        deps.require("gridvirt_fake_mod")
    assert "install python3-fake there" in err.value.msg
