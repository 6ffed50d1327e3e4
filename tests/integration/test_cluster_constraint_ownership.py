"""Constraints that belong to others stay theirs:
- a raw xml constraint whose id the CIB already holds for something the VM does not own (an
  operator's constraint, even one naming the VM) is refused, and nothing changes; the VM's own
  raw constraint is adopted again on a rerun;
- a disable removes, with the VM's resource, the constraints of others that name it (Pacemaker
  keeps none that names a missing resource), and the enable puts them back."""
import subprocess

import cluster_lab as cl
import lab

PREFIX = "ick"
VM1, VM2 = PREFIX + "vm1", PREFIX + "vm2"
OPERATOR_ID = PREFIX + "-operator-location"

clean = cl.cleanup_fixture(PREFIX)


def present(name, **extra):
    return cl.vm_args(name, state="present", **extra)


def raw_location(vm, cid, score="7"):
    return {"type": "xml", "xml": '<rsc_location id="%s" rsc="%s" node="%s" score="%s"/>'
                                  % (cid, vm, lab.node_name(), score)}


def operator_constraint():
    """What an operator added by hand: a location of VM1 with an id of their own."""
    element = '<rsc_location id="%s" rsc="%s" node="%s" score="5"/>' % (
        OPERATOR_ID, VM1, lab.node_name())
    subprocess.run(["cibadmin", "--create", "--scope", "constraints", "--xml-text", element],
                   check=True, capture_output=True)


def constraint_ids():
    return sorted(c.get("id") for c in cl.etree.fromstring(cl.cib_configuration().encode())
                  .find("constraints"))


def test_a_raw_id_held_by_someone_else_is_refused_and_changes_nothing():
    cl.ok(present(VM1))
    operator_constraint()
    before = cl.fingerprint()
    for vm in (VM2, VM1):  # a new VM, and the very VM the operator's constraint names
        result = cl.run_cluster(present(vm, constraints=[raw_location(vm, OPERATOR_ID)]))
        assert result["failed"] is True, result
        assert result["msg"] == (
            "The id %s of an xml constraint of VM %s is already used in the CIB by a "
            "<rsc_location> that is not one of its constraints: give the constraint another "
            "id." % (OPERATOR_ID, vm))
        assert cl.fingerprint() == before


def test_the_vms_own_raw_constraint_is_adopted_on_a_rerun():
    own = [raw_location(VM1, PREFIX + "-own-location")]
    assert cl.ok(present(VM1, constraints=own))["changed"] is True
    assert PREFIX + "-own-location" in constraint_ids()
    again = cl.ok(present(VM1, constraints=own))
    assert again["changed"] is False, again["changes"]
    rescored = [raw_location(VM1, PREFIX + "-own-location", score="9")]
    changed = cl.ok(present(VM1, constraints=rescored))
    assert changed["changed"] is True
    assert 'score="9"' in cl.cib_xpath("//rsc_location[@id='%s-own-location']" % PREFIX)


def test_disable_then_enable_puts_back_the_constraints_of_others():
    cl.ok(present(VM2, colocated_vms=[VM1]))
    theirs = ["colocation-%s-%s-weak" % (VM2, VM1), OPERATOR_ID]
    assert set(theirs) <= set(constraint_ids())
    cl.ok({"name": VM1, "command": "disable"})
    assert not set(theirs) & set(constraint_ids())
    enabled = cl.ok({"name": VM1, "command": "enable", "nostart": True})
    assert enabled["changed"] is True
    assert set(theirs + [PREFIX + "-own-location"]) <= set(constraint_ids())
    assert "_held_constraints" not in cl.image_meta("system_" + VM1)
    # Both VMs converge as they are: nothing left to put right.
    assert cl.ok(present(VM2, colocated_vms=[VM1]))["changed"] is False
    assert cl.ok({"name": VM1, "command": "enable"})["changed"] is False
