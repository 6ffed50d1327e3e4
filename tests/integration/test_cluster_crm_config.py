"""crm_config_cmd runs no shell, and a bad duration stores nothing, on the lab's Ceph +
Pacemaker (crmsh installed).

crmsh's `configure filter <prog>` runs <prog> through a shell and the lines are replayed from
RBD metadata at every enable: only constraints naming the VM pass, when the task is read and
again when stored lines are replayed. A duration that is not finite and bounded is refused
before anything of the task is stored."""
import json
import os
import subprocess

import pytest
from lxml import etree

import cluster_lab as cl
import lab

PREFIX = "hc"
NEW = PREFIX + "crm1"   # never created: the refused creates
VM = PREFIX + "crm2"    # an existing VM with a good crm_config_cmd line
MARKER = "/tmp/hc-marker"
FILTER = 'filter "touch %s"' % MARKER
REFUSED = ("%s (%r): only location, colocation and order constraints that name VM %s are "
           "accepted, not %r (other crmsh commands can run programs or change the whole "
           "configuration).")
DURATION = ("%s must be a positive duration of at most 24 h (seconds, or a number with ms, s, "
            "min or h), not %r.")

clean = cl.cleanup_fixture(PREFIX)


def good_line():
    return "location %s-crm %s 15: %s" % (VM, VM, lab.node_name())


def constraint():
    return cl.cib_xpath("//rsc_location[@id='%s-crm']" % VM)


def ours(text):
    """Is this (a name, an id) one of this file's objects? Both VMs' names start so."""
    return PREFIX + "crm" in text


def scoped_fingerprint():
    """What cluster_lab's fingerprint covers, for this file's objects only (other tests may
    use the lab at the same time, and their objects come and go), plus the CIB's
    cluster-wide settings (crm_config, rsc_defaults, op_defaults) that a crmsh property or
    erase line would change."""
    cib = etree.fromstring(cl.cib_configuration().encode())
    mine = [etree.tostring(e) for e in cib.iter()
            if any(ours(e.get(a) or "") for a in ("id", "rsc", "with-rsc", "first", "then"))]
    shared = [etree.tostring(e) for tag in ("crm_config", "rsc_defaults", "op_defaults")
              for e in cib.iter(tag)]
    images = {}
    for name in filter(ours, cl.images()):
        info = cl.image_info(name)
        snaps = sorted((s["name"], s.get("protected")) for s in cl.rbd("snap", "ls", "--all", name))
        images[name] = (info["id"], info["size"], snaps, cl.image_meta(name))
    groups = dict((g, (sorted(i["image"] for i in cl.rbd("group", "image", "list", g)),
                       sorted(s["snapshot"] for s in cl.rbd("group", "snap", "ls", g))))
                  for g in filter(ours, cl.groups()))
    listing = subprocess.run(cl.RADOS + ["ls"], capture_output=True, text=True, check=True)
    locks = dict((name, subprocess.run(cl.RADOS + ["lock", "list", name], capture_output=True,
                                       text=True, check=True).stdout)
                 for name in sorted(listing.stdout.split())
                 if name.startswith(cl.LOCK_PREFIX + PREFIX))
    conn = lab.conn()
    try:
        domains = dict((d.name(), d.XMLDesc(0)) for d in conn.listAllDomains()
                       if ours(d.name()))
    finally:
        conn.close()
    return {"cib": (sorted(mine), shared), "images": images, "groups": groups,
            "trash": [t for t in cl.trash() if ours(t)], "locks": locks, "domains": domains,
            "node_attributes": [a for a in cl.node_attributes() if ours(a[1])]}


@pytest.fixture(autouse=True)
def no_marker():
    if os.path.exists(MARKER):
        os.remove(MARKER)
    yield
    if os.path.exists(MARKER):
        os.remove(MARKER)


@pytest.fixture(scope="module")
def existing_vm():
    """VM, enabled (stopped) with a good crm_config_cmd line, whose constraint crmsh made."""
    args = {"name": VM, "state": "present", "xml": lab.guest_xml(VM),
            "system_image": lab.GUEST_IMAGE, "crm_config_cmd": [good_line()]}
    assert cl.ok(args)["changed"]
    assert 'score="15"' in constraint()
    return VM


def set_stored_lines(lines):
    cl.rbd_change("image-meta", "set", "system_" + VM, "_crm_config_cmd", json.dumps(lines))


@pytest.mark.parametrize("line,message", [
    (FILTER, REFUSED % ("crm_config_cmd[0]", FILTER, NEW, "filter")),
    ("erase", REFUSED % ("crm_config_cmd[0]", "erase", NEW, "erase")),
    ("location %s-crm %s 15: 'hv1" % (NEW, NEW),
     "crm_config_cmd[0] (%r) cannot be read as a crmsh line: No closing quotation (an "
     "unbalanced quote?)." % ("location %s-crm %s 15: 'hv1" % (NEW, NEW))),
    ("location %s-crm %s 15: hv1; %s" % (NEW, NEW, FILTER),
     "crm_config_cmd[0] (%r) contains ';', which a constraint line does not need (letters, "
     "digits, spaces and _ . : = + # - ( ) [ ] only)." % ("location %s-crm %s 15: hv1; %s"
                                                          % (NEW, NEW, FILTER))),
    ("!touch " + MARKER, REFUSED % ("crm_config_cmd[0]", "!touch " + MARKER, NEW, "!touch")),
], ids=["filter", "erase", "unbalanced quote", "semicolon", "shell escape"])
def test_a_hostile_line_is_refused_before_anything_runs(line, message):
    before = scoped_fingerprint()
    good = "location %s-ok %s 10: %s" % (NEW, NEW, lab.node_name())
    result = cl.run_cluster({"name": NEW, "state": "running", "xml": lab.guest_xml(NEW),
                             "system_image": lab.GUEST_IMAGE, "crm_config_cmd": [line, good]})
    assert result["failed"], result
    assert result["msg"] == message
    assert "Traceback" not in result["msg"] and "exception" not in result
    assert not os.path.exists(MARKER)
    assert scoped_fingerprint() == before


def test_a_tampered_stored_line_fails_the_enable_and_runs_nothing(existing_vm):
    assert cl.ok({"name": VM, "state": "disabled"})["changed"]
    assert not constraint()
    set_stored_lines([good_line(), FILTER])
    before = scoped_fingerprint()
    result = cl.run_cluster({"name": VM, "command": "enable", "nostart": True})
    assert result["failed"], result
    assert result["msg"] == REFUSED % ("Stored crm_config_cmd[1] of VM %s" % VM, FILTER, VM,
                                       "filter")
    assert not os.path.exists(MARKER)
    assert scoped_fingerprint() == before
    assert cl.status(VM)[0] == "Disabled"
    # The good path still works: the good line alone enables the VM with its constraint.
    set_stored_lines([good_line()])
    assert cl.ok({"name": VM, "command": "enable", "nostart": True})["changed"]
    assert 'score="15"' in constraint()
    assert not os.path.exists(MARKER)


@pytest.mark.parametrize("args,message", [
    ({"state": "present", "stop_timeout": "inf"}, DURATION % ("stop_timeout", "inf")),
    ({"state": "present", "migrate_to_timeout": "1e400"},
     DURATION % ("migrate_to_timeout", "1e400")),
    ({"state": "present", "stop_timeout": "nan"}, DURATION % ("stop_timeout", "nan")),
    ({"state": "present", "migration_downtime": "1e400"},
     "migration_downtime must be a whole number of at least 0 and at most 86400000, not "
     "'1e400'."),
    ({"command": "add_pacemaker_remote", "remote_name": PREFIX + "crmr",
      "remote_timeout": "25h"}, DURATION % ("remote_timeout", "25h")),
], ids=["stop_timeout inf", "migrate_to_timeout 1e400", "stop_timeout nan",
        "migration_downtime 1e400", "remote_timeout 25h"])
def test_a_bad_duration_on_an_existing_vm_stores_nothing(existing_vm, args, message):
    meta = cl.image_meta("system_" + VM)
    before = scoped_fingerprint()
    result = cl.run_cluster(dict(args, name=VM))
    assert result["failed"], result
    assert result["msg"] == message
    assert cl.image_meta("system_" + VM) == meta
    assert scoped_fingerprint() == before
    # Later tasks on the VM still work.
    assert cl.ok({"name": VM, "command": "status"})["status"] == "Stopped"
    assert not cl.ok({"name": VM, "state": "present"})["changed"]


def test_a_bad_stored_duration_is_a_sentence_and_a_good_one_replaces_it(existing_vm):
    """What an earlier version left on the lab: 'inf' stored as the VM's stop_timeout."""
    cl.rbd_change("image-meta", "set", "system_" + VM, "_stop_timeout", "inf")
    before = scoped_fingerprint()
    result = cl.run_cluster({"name": VM, "state": "present"})
    assert result["failed"], result
    assert result["msg"] == ("The stored stop_timeout of VM %s is 'inf', not a positive "
                             "duration of at most 24 h: give stop_timeout again to replace it."
                             % VM)
    assert scoped_fingerprint() == before
    assert cl.ok({"name": VM, "state": "present", "stop_timeout": "45s"})["changed"]
    assert cl.image_meta("system_" + VM)["_stop_timeout"] == "45s"
    assert 'timeout="45s"' in cl.cib_xpath("//primitive[@id='%s']//op[@name='stop']" % VM)
    assert not cl.ok({"name": VM, "state": "present", "stop_timeout": "45s"})["changed"]
