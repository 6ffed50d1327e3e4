"""Shared pytest setup: the collection is importable as ansible_collections.gridvirt.kvm
through the link tree that `make links` creates in .build/."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, ".build")
link = os.path.join(BUILD, "ansible_collections", "gridvirt", "kvm")
if not os.path.exists(link):
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(os.path.relpath(REPO, os.path.dirname(link)), link)
if BUILD not in sys.path:
    sys.path.insert(0, BUILD)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI set), a skipped test is a failure: a test that did not run proves nothing,
    and a green run must mean every test ran."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = ("%s was skipped in CI (%s): every test must run here; install or "
                           "start what it needs." % (item.nodeid, reason))
