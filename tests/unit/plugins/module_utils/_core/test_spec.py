import datetime

import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError


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


@pytest.mark.parametrize("item,expected", [
    ("10G", ("size", 10 * 1024 ** 3)), (4096, ("size", 4096)),
    ("/var/lib/images/additional_data.qcow2", ("image", "/var/lib/images/additional_data.qcow2")),
    ({"image": "/srv/d.raw"}, ("image", "/srv/d.raw")), ({"size": "1M"}, ("size", 1024 ** 2)),
    ({"image": "/srv/d.raw", "size": None}, ("image", "/srv/d.raw"))])
def test_additional_disks_are_sizes_or_image_paths(item, expected):
    assert spec.additional_disk_source(item) == expected


@pytest.mark.parametrize("item,message", [
    ("additional_data.qcow2", "Invalid additional disk size"),
    ({"image": "relative.qcow2"}, "give the absolute path"),
    ({"image": "/"}, "give the absolute path"),
    ("/srv/d.qcow2\n", "control character"), ({"image": "/a", "size": "1G"}, "exactly one"),
    ({}, "exactly one"), ({"size": "-1G"}, "Invalid additional disk size")])
def test_additional_disks_refused(item, message):
    with pytest.raises(VmError) as err:
        spec.additional_disk_source(item)
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
    from ansible_collections.gridvirt.kvm.plugins.module_utils._common import deps
    with pytest.raises(VmError) as err:
        deps.require("libvirt_binding_that_is_not_installed")
    assert "is missing on the hypervisor" in err.value.msg
    assert "install" in err.value.msg
    deps.PACKAGES["gridvirt_fake_mod"] = "python3-fake"
    with pytest.raises(VmError) as err:
        deps.require("gridvirt_fake_mod")
    assert "install python3-fake there" in err.value.msg


# ---- names are full matches of an ASCII rule ------------------------------------------------
# Each validator with a value that fills its length limit exactly. A trailing newline slipped
# through re.match + "$" (and landed in RBD names, CIB ids and lock files); the other
# characters are control characters and look-alikes that must never pass either.
VALIDATORS = [
    ("VM name", spec.validate_vm_name, 63),
    ("snapshot name", spec.validate_snapshot_name, 128),
    ("metadata key", spec.validate_metadata_key, 64),
    ("storage pool name", spec.validate_pool_name, 64),
]
HOSTILE_NAMES = [
    "vm1\n", "vm1\r\n", "vm1\r", "vm1\x00", "\nvm1", "vm\n1", "vm1\t", "vm1 ",
    "vm\u0430",        # Cyrillic a, looks like a Latin a
    "\u0441vm",        # Cyrillic es, looks like a Latin c
    "vm\uff11",        # fullwidth digit one
    "vm\u0661",        # Arabic-Indic digit one (\d matches it)
    "vm\u00b2",        # superscript two
    "vm\u200b",        # zero-width space
    "\uff56m1",        # fullwidth v
]


@pytest.mark.parametrize("kind,validate,limit", VALIDATORS, ids=[v[0] for v in VALIDATORS])
def test_names_at_the_length_limit_pass_and_one_more_is_refused(kind, validate, limit):
    assert validate("a" * limit) == "a" * limit
    with pytest.raises(VmError) as err:
        validate("a" * (limit + 1))
    assert err.value.msg.startswith("Invalid %s 'aaa" % kind)


@pytest.mark.parametrize("kind,validate,limit", VALIDATORS, ids=[v[0] for v in VALIDATORS])
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=[ascii(n) for n in HOSTILE_NAMES])
def test_names_with_control_characters_or_look_alikes_are_refused(kind, validate, limit, name):
    with pytest.raises(VmError) as err:
        validate(name)
    assert err.value.msg.startswith("Invalid %s %r: use 1 to %d " % (kind, name, limit))
    assert err.value.msg.endswith(".") and "\n" not in err.value.msg


def test_vm_name_with_a_trailing_newline_gets_the_exact_sentence():
    with pytest.raises(VmError) as err:
        spec.validate_vm_name("vm1\n")
    assert err.value.msg == ("Invalid VM name 'vm1\\n': use 1 to 63 letters, digits, '-' or '_', "
                             "starting with a letter or digit.")


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=[ascii(n) for n in HOSTILE_NAMES])
def test_metadata_mapping_refuses_hostile_keys(name):
    with pytest.raises(VmError) as err:
        spec.validate_metadata({name: "x"})
    assert err.value.msg.startswith("Invalid metadata key %r" % (name,))


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=[ascii(n) for n in HOSTILE_NAMES])
def test_pacemaker_attribute_names_are_full_matches(name):
    from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
    with pytest.raises(VmError) as err:
        ci.validate_pacemaker_dict({name: "1"}, "pacemaker_meta", ())
    assert err.value.msg == "pacemaker_meta: %r is not a valid attribute name." % (name,)


@pytest.mark.parametrize("value", ["\u0661G", "\uff11G", "1\uff10M", "\u00b2K"])
def test_sizes_take_ascii_digits_only(value):
    with pytest.raises(VmError) as err:
        spec.parse_size(value)
    assert err.value.msg == ("Invalid size %r: give a number of bytes or a size like 512M or 10G."
                             % (value,))


def test_data_disks_of_a_vm_are_named_with_ascii_digits_only():
    from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster.view import belongs as _belongs
    assert _belongs("data_vm1_0", "vm1") and _belongs("system_vm1", "vm1")
    for other in ("data_vm1_\u0661", "data_vm1_0\n", "data_vm1_x_0", "data_vm1"):
        assert not _belongs(other, "vm1"), other


@pytest.mark.parametrize("uri", [
    "qemu+ssh://root@hv2.example.com/system", "qemu+tcp://node3/system",
    "qemu+tls://hv2:16514/system", "qemu+ssh://[fd00::2]/system",
    "qemu+ssh://hv2/system?keyfile=/root/.ssh/id_ed25519&no_verify=1"])
def test_a_move_goes_to_another_hosts_qemu_driver(uri):
    assert spec.validate_libvirt_uri(uri, "destination_uri") == uri


@pytest.mark.parametrize("uri", [
    "qemu:///system",                       # this host
    "qemu+unix:///system",                  # this host again
    "xen+ssh://hv2/system", "qemu+ssh://hv2/session", "qemu+ssh://hv2/system\n",
    "qemu+ssh://hv2/system?command=/bin/sh -c id", "qemu+ssh://hv\x002/system",
    "qemu+ssh://hv2\u0430/system", "", None])
def test_any_other_destination_uri_is_a_sentence(uri):
    with pytest.raises(VmError) as err:
        spec.validate_libvirt_uri(uri, "destination_uri")
    assert err.value.msg.startswith("destination_uri %r is not a libvirt URI of another "
                                    "host's QEMU driver" % (uri,))


@pytest.mark.parametrize("uri", ["qemu+ssh://hv2/system?netcat=/tmp/x",
                                 "qemu+ssh://hv2/system?keyfile=/k&socket=/tmp/s"])
def test_a_destination_uri_may_not_pick_what_runs_on_the_other_host(uri):
    with pytest.raises(VmError) as err:
        spec.validate_libvirt_uri(uri, "destination_uri")
    assert "is not accepted" in err.value.msg
