import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.snapshot_policy import (
    snapshots_to_purge)

SNAPS = [("s1", 100), ("s2", 200), ("s3", 300), ("s4", 400)]


@pytest.mark.parametrize("params,expected", [
    ({}, ["s1", "s2", "s3", "s4"]),
    ({"purge_number": 0}, []),
    ({"purge_number": 2}, ["s1", "s2"]),
    ({"purge_number": 9}, ["s1", "s2", "s3", "s4"]),
    ({"purge_keep": 1}, ["s1", "s2", "s3"]),
    ({"purge_keep": 0}, ["s1", "s2", "s3", "s4"]),
    ({"purge_keep": 9}, []),
    ({"purge_date": {"posix": 250}}, ["s1", "s2"]),
    ({"purge_date": {"posix": 100}}, []),
])
def test_which_snapshots_are_purged(params, expected):
    assert snapshots_to_purge(SNAPS, params) == expected


@pytest.mark.parametrize("params", [{"purge_number": -1}, {"purge_keep": -2},
                                    {"purge_number": 1, "purge_keep": 1}])
def test_purge_rejects(params):
    with pytest.raises(VmError):
        snapshots_to_purge(SNAPS, params)


def test_listing_reports_names_and_utc_times_oldest_first():
    from ansible_collections.gridvirt.kvm.plugins.module_utils._core.snapshot_policy import listing
    assert listing([("a", 0), ("b", 86400)]) == {
        "list_snapshot": ["a", "b"],
        "snapshots": [{"name": "a", "created": "1970-01-01T00:00:00+00:00"},
                      {"name": "b", "created": "1970-01-02T00:00:00+00:00"}]}
