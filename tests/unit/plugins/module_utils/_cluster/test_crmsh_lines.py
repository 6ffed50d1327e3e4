"""The crmsh allow-list of crm_config_cmd: constraints naming the VM, nothing else."""
import shlex

import pytest

from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import crmsh_lines
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

VM = "GUEST1"


@pytest.mark.parametrize("line", [
    # SEAPATH's documented example (cluster_vm EXAMPLES).
    "location ping_test_GUEST1 GUEST1 rule pingd: defined pingd",
    # The forms vm_manager itself writes through crmsh for a VM.
    "location pin-GUEST1-onhv1 GUEST1 resource-discovery=exclusive inf: hv1",
    "colocation colocation-GUEST1-withguest2 700: GUEST1 ( guest2 )",
    "colocation colocation-strong-GUEST1-withguest2-guest3 inf: GUEST1 ( guest2 guest3 )",
    # crmsh's constraint syntax.
    "location l1 GUEST1 100: hv1",
    "location l1 GUEST1 -inf: hv1",
    "location l1 GUEST1 -INFINITY: hv1 role=Started",
    "location l1 GUEST1 rule -inf: not_defined pingd or pingd lte 0",
    "location l1 GUEST1 rule -inf: #uname ne hv1",
    "colocation c1 inf: GUEST1 other",
    "collocation c1 -inf: other:Started GUEST1",
    "colocation c1 inf: GUEST1 other node-attribute=rack",
    "order o1 Mandatory: other GUEST1",
    "order o1 Optional: GUEST1:start other:start symmetrical=false",
    "order o1 inf: other GUEST1",
    "order o1 other GUEST1",
    "order o1 Serialize: [ GUEST1 other sequential=false ]",
    "location 'l1' GUEST1 \"100:\" hv1",
])
def test_constraints_naming_the_vm_are_accepted_as_crmsh_reads_them(line):
    assert crmsh_lines.constraint_words(VM, line, "crm_config_cmd[0]") == shlex.split(line)


REFUSED_COMMAND = ("crm_config_cmd[0] (%r): only location, colocation and order constraints "
                   "that name VM GUEST1 are accepted, not %r (other crmsh commands can run "
                   "programs or change the whole configuration).")


@pytest.mark.parametrize("line,command", [
    ('filter "touch /tmp/hc-marker"', "filter"),
    ("load update /tmp/evil.crm", "load"),
    ("erase", "erase"),
    ("erase nodes", "erase"),
    ("delete GUEST1", "delete"),
    ("edit GUEST1", "edit"),
    ("cib use evil", "cib"),
    ("node standby hv1", "node"),
    ("ra info ocf:heartbeat:Dummy", "ra"),
    ("primitive evil ocf:heartbeat:anything binfile=/bin/sh", "primitive"),
    ("property stonith-enabled=false", "property"),
    ("rsc_defaults target-role=Stopped", "rsc_defaults"),
    ("show", "show"),
    ("!touch /tmp/hc-marker", "!touch"),
    ("-f /tmp/evil.crm", "-f"),
    ("--file=/tmp/evil.crm", "--file=/tmp/evil.crm"),
    ("configure", "configure"),
    ("Location l1 GUEST1 100: hv1", "Location"),
])
def test_other_crmsh_commands_are_refused_with_a_sentence(line, command):
    with pytest.raises(VmError) as err:
        crmsh_lines.constraint_words(VM, line, "crm_config_cmd[0]")
    assert err.value.msg == REFUSED_COMMAND % (line, command)


@pytest.mark.parametrize("line,message", [
    ("location l1 GUEST1 100: hv1; erase", "contains ';', which a constraint line does not need"),
    ("location l1 GUEST1 100: hv1 | sh", "contains '|', which a constraint line does not need"),
    ("location l1 GUEST1 100: hv1 && sh", "contains '&'"),
    ("location l1 GUEST1 100: $(touch x)", "contains '$'"),
    ("location l1 GUEST1 100: `touch x`", "contains '`'"),
    ("location l1 GUEST1 100: hv1 > /tmp/x", "contains '>'"),
    ("location l1 GUEST1 100: hv1\\", "contains '\\\\'"),
    ("location l1 GUEST\uff11 100: hv1", "contains '\uff11'"),
    ("location l1 GUEST1 100: hv1\nerase", "contains a control or separator character"),
    ("location l1 GUEST1 100: hv1\rerase", "contains a control or separator character"),
    ("location l1 GUEST1 100: hv1\x00", "contains a control or separator character"),
    ("location\tl1 GUEST1 100: hv1", "contains a control or separator character"),
    ("location l1 GUEST1 100: hv1\u00a0", "contains a control or separator character"),
    ("location l1 GUEST1 100: hv1\u2028erase", "contains a control or separator character"),
    ("location l1 GUEST1 100: 'hv1", "cannot be read as a crmsh line: No closing quotation "
                                     "(an unbalanced quote?)"),
    ('colocation c1 inf: GUEST1 "other', "cannot be read as a crmsh line"),
    ("location l1 GUEST1 'a b': hv1", "'a b:' is not one word of a constraint"),
    ("location l1 GUEST1 100: ''", "'' is not one word of a constraint"),
    ("location l1 other 100: hv1", "the location must be of VM GUEST1 itself"),
    ("location l1 GUEST 100: hv1", "the location must be of VM GUEST1 itself"),
    ("location l1 GUEST1", "a location line is 'location <id> GUEST1 <score>: <node>'"),
    ("location l1 GUEST1 100: hv1 hv2", "a location line is"),
    ("location l1 GUEST1 rule defined pingd", "a location line is"),
    ("location l1 GUEST1 fast: hv1", "a location line is"),
    ("location", "a location line starts with the constraint's id"),
    ("order", "an order line starts with the constraint's id"),
    ("colocation c1 inf: other third", "a colocation line must name VM GUEST1 and at least one "
                                       "other resource"),
    ("colocation c1 inf: GUEST1", "a colocation line must name VM GUEST1"),
    ("colocation c1 GUEST1 other", "a colocation line is 'colocation <id> <score>: GUEST1"),
    ("colocation c1 inf: GUEST1 ( other", "its brackets do not pair up"),
    ("colocation c1 inf: GUEST1 other ) (", "its brackets do not pair up"),
    ("colocation c1 inf: GUEST1 (other)", "'(other)' is not one word of a constraint"),
    ("colocation c1 inf: GUEST1 other 100:", "'100:' is not a resource name"),
    ("order o1 Mandatory: GUEST1", "an order line must name VM GUEST1"),
    ("order o1 GUEST1 other evil=1", "'evil=1' is not an attribute of an order constraint"),
    ("", "crm_config_cmd[0] of VM GUEST1 must be a non-empty crmsh line, not ''."),
    ("   ", "must be a non-empty crmsh line"),
    (None, "must be a non-empty crmsh line, not None."),
])
def test_malformed_or_hostile_lines_are_sentences(line, message):
    with pytest.raises(VmError) as err:
        crmsh_lines.constraint_words(VM, line, "crm_config_cmd[0]")
    assert message in err.value.msg
    assert err.value.msg.startswith("crm_config_cmd[0]")


def test_check_lines_names_the_refused_line_by_its_index():
    good = "location l1 GUEST1 100: hv1"
    assert crmsh_lines.check_lines(VM, [good], "crm_config_cmd") == [good]
    assert crmsh_lines.check_lines(VM, [], "crm_config_cmd") == []
    with pytest.raises(VmError) as err:
        crmsh_lines.check_lines(VM, [good, "erase"], "crm_config_cmd")
    assert err.value.msg.startswith("crm_config_cmd[1] ('erase'): only location")
    with pytest.raises(VmError) as err:
        crmsh_lines.check_lines(VM, "erase", "crm_config_cmd")
    assert err.value.msg == "crm_config_cmd of VM GUEST1 must be a list of crmsh lines."
