"""The inventory plugin gridvirt.kvm.vms (plugins/inventory) on answer documents built here,
as the listing run would return them: the plugin parses a real configuration file into a real
InventoryData; only the listing run itself (ansible-playbook) is replaced by the answers."""
import json

import pytest
import yaml

from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.yaml.loader import AnsibleLoader
from ansible.plugins.loader import fragment_loader
from ansible.utils.display import Display
from ansible.utils.plugin_docs import add_fragments

from ansible_collections.gridvirt.kvm.plugins.inventory import vms
import unit_paths

NAME = "gridvirt.kvm.vms"


# ---------------------------------------------------------------- answers, as vm_info gives

def vm(name, kind="standalone", status="Started", node="hv1", **fields):
    record = {"name": name, "kind": kind, "status": status, "node": node,
              "uuid": "uuid-" + name, "vcpus": 2, "memory_mib": 512,
              "disks": [{"target": "vda", "device": "disk", "source": "/v/%s.qcow2" % name}],
              "macs": ["52:54:00:00:00:01"], "snapshots": 1, "addresses": [],
              "metadata": {"role": "web"}}
    record.update(fields)
    return record


def listed(vms_, cluster=False, host="hv1"):
    return {"host": host, "cluster": cluster, "vms": vms_, "changed": False,
            "invocation": {"module_args": {"kinds": ["standalone"]}}}


def unreachable(msg="Failed to connect to the host via ssh: Connection refused"):
    return {"unreachable": True, "failed": False, "changed": False, "msg": msg}


def failed(msg):
    return {"failed": True, "changed": False, "msg": msg}


def address(vm_name, nic, ip, pool="lab"):
    return {"vm": vm_name, "nic": nic, "pool": pool if ip else None,
            "mac": "02:67:76:00:00:%02x" % nic, "ip": ip, "prefix": 24 if ip else None,
            "gateway": None, "dns_servers": [], "domain": None, "fqdn": None, "fixed": False}


def answers(hypervisors, registry=None):
    return {"hypervisors": hypervisors, "registry": registry}


# --------------------------------------------------------------------- the plugin, parsing

@pytest.fixture(scope="module", autouse=True)
def plugin_options_known():
    """What the plugin loader does on loading it: its documented options (with the
    constructed and inventory_cache fragments) become its configuration definitions."""
    doc = yaml.load(vms.DOCUMENTATION, Loader=AnsibleLoader)
    add_fragments(doc, vms.__file__, fragment_loader=fragment_loader, is_module=False,
                  section="DOCUMENTATION")
    C.config.initialize_plugin_configuration_definitions("inventory", NAME, doc["options"])


class Warnings(object):
    """The plugin's display: warnings recorded, the rest Ansible's."""

    def __init__(self):
        self.said, self._display = [], Display()

    def warning(self, msg, *args, **kwargs):
        self.said.append(msg)

    def __getattr__(self, name):
        return getattr(self._display, name)


class Fleet(object):
    """Parses configurations with the plugin; each listing run returns the next answers."""

    def __init__(self, tmp_path, monkeypatch):
        self.tmp_path, self.listings, self.runs = tmp_path, [], []
        monkeypatch.setattr(vms, "run_listing", self._listing)
        self.warnings = Warnings()

    def _listing(self, fleet, hypervisor_vars, host_vars, timeout):
        self.runs.append((fleet, hypervisor_vars, host_vars, timeout))
        return json.loads(json.dumps(self.listings.pop(0)))  # as read from the answers file

    def parse(self, config, *listings, cache=True):
        self.listings.extend(listings)
        path = self.tmp_path / "fleet.gridvirt.yml"
        path.write_text(yaml.safe_dump(dict({"plugin": NAME}, **config)))
        plugin = vms.InventoryModule()
        plugin._load_name = plugin.ansible_name = NAME
        plugin.display = self.warnings
        inventory = InventoryData()
        plugin.parse(inventory, DataLoader(), str(path), cache=cache)
        if plugin.get_option("cache"):
            plugin.update_cache_if_changed()  # as Ansible's InventoryManager does after parse
        return Inventory(inventory)


class Inventory(object):
    def __init__(self, data):
        self.data = data

    def hosts(self):
        return sorted(self.data.hosts)

    def vars(self, host):
        return dict((k, v) for k, v in self.data.get_host(host).get_vars().items()
                    if k.startswith("gridvirt_") or k.startswith("ansible_"))

    def groups(self, host):
        return sorted(group.name for group in self.data.get_host(host).get_groups()
                      if group.name != "all")


@pytest.fixture()
def fleet(tmp_path, monkeypatch):
    return Fleet(tmp_path, monkeypatch)


CLUSTER = {"clusters": [{"name": "c1", "nodes": ["hv1", "hv2"]}]}


# ------------------------------------------------------------------------------ host vars

def test_cluster_and_standalone_vms_with_their_variables_and_groups(fleet):
    inventory = fleet.parse(dict(CLUSTER, standalone_hosts=["hv3"]), answers({
        "hv1": listed([vm("db1", kind="cluster", node="node-1", metadata={"role": "db"}),
                       vm("web1")], cluster=True),
        "hv2": listed([], cluster=True, host="hv2"),
        "hv3": listed([vm("web2", status="Stopped", node="hv3.example")], host="hv3")}))
    assert inventory.hosts() == ["db1", "web1", "web2"]
    assert inventory.vars("db1") == {
        "gridvirt_kind": "cluster", "gridvirt_status": "Started", "gridvirt_node": "node-1",
        "gridvirt_uuid": "uuid-db1", "gridvirt_vcpus": 2, "gridvirt_memory_mib": 512,
        "gridvirt_disks": [{"target": "vda", "device": "disk", "source": "/v/db1.qcow2"}],
        "gridvirt_macs": ["52:54:00:00:00:01"], "gridvirt_snapshots": 1,
        "gridvirt_metadata": {"role": "db"}, "gridvirt_addresses": [],
        "gridvirt_cluster": "c1"}
    web2 = inventory.vars("web2")
    assert web2["gridvirt_hypervisor"] == "hv3" and "gridvirt_cluster" not in web2
    assert web2["gridvirt_node"] == "hv3.example" and web2["gridvirt_status"] == "Stopped"
    assert inventory.vars("web1")["gridvirt_hypervisor"] == "hv1"
    # Group names made safe: '-' and '.' are not valid in them.
    assert inventory.groups("db1") == ["gridvirt_cluster_c1", "gridvirt_kind_cluster",
                                       "gridvirt_node_node_1", "gridvirt_status_started"]
    assert inventory.groups("web2") == ["gridvirt_kind_standalone", "gridvirt_node_hv3_example",
                                        "gridvirt_status_stopped"]
    assert fleet.warnings.said == []


def test_cluster_vm_that_does_not_run_has_no_node_group(fleet):
    inventory = fleet.parse(CLUSTER, answers({
        "hv1": listed([vm("db1", kind="cluster", status="Disabled", node=None)], cluster=True),
        "hv2": listed([], cluster=True)}))
    assert inventory.vars("db1")["gridvirt_node"] is None
    assert inventory.groups("db1") == ["gridvirt_cluster_c1", "gridvirt_kind_cluster",
                                       "gridvirt_status_disabled"]


def test_a_vm_that_could_not_be_read_keeps_only_what_is_reliable_and_its_error(fleet):
    broken = {"name": "odd", "kind": "standalone", "status": "Stopped", "node": "hv1",
              "error": "Its definition is not valid XML."}
    inventory = fleet.parse({"standalone_hosts": ["hv1"]}, answers({"hv1": listed([broken])}))
    assert inventory.vars("odd") == {
        "gridvirt_kind": "standalone", "gridvirt_status": "Stopped", "gridvirt_node": "hv1",
        "gridvirt_error": "Its definition is not valid XML.", "gridvirt_hypervisor": "hv1"}


# ---------------------------------------------------------------------------- ansible_host

def test_ansible_host_from_the_registry_first_lowest_nic_with_an_ip(fleet):
    config = {"standalone_hosts": ["hv1"], "address_registry": {"host": "reg"}}
    reported = [address("web1", 0, "10.0.0.9")]
    registry = {"addresses": [address("web1", 2, "10.0.0.22"), address("web1", 0, None),
                              address("web1", 1, "10.0.0.21"), address("web2", 0, "10.0.0.30")]}
    inventory = fleet.parse(config, answers(
        {"hv1": listed([vm("web1", addresses=reported), vm("web2"),
                        vm("web3", addresses=[address("web3", 0, "10.0.0.40")]), vm("web4")])},
        registry))
    # nic 0 has a MAC only: nic 1's IP; the registry beats what the hypervisor reports.
    assert inventory.vars("web1")["ansible_host"] == "10.0.0.21"
    assert [a["nic"] for a in inventory.vars("web1")["gridvirt_addresses"]] == [2, 0, 1]
    assert inventory.vars("web2")["ansible_host"] == "10.0.0.30"
    # Not in the registry: what vm_info reports; known nowhere: not set.
    assert inventory.vars("web3")["ansible_host"] == "10.0.0.40"
    assert "ansible_host" not in inventory.vars("web4")
    assert fleet.warnings.said == []


def test_registry_not_read_is_a_warning_and_vm_info_addresses_are_used(fleet):
    config = {"standalone_hosts": ["hv1"], "address_registry": {"host": "reg",
                                                                "registry": {"path": "/x.db"}}}
    inventory = fleet.parse(config, answers(
        {"hv1": listed([vm("web1", addresses=[address("web1", 0, "10.0.0.9")]), vm("web2")])},
        failed("unable to open database file")))
    assert inventory.hosts() == ["web1", "web2"]
    assert inventory.vars("web1")["ansible_host"] == "10.0.0.9"
    assert "ansible_host" not in inventory.vars("web2")
    assert fleet.warnings.said == [
        "gridvirt.kvm.vms: the address registry on reg could not be read (failed: unable to "
        "open database file); ansible_host comes from the addresses the hypervisors report."]


# ------------------------------------------------------------------ hosts that do not answer

def test_unreachable_or_failed_hypervisor_is_a_warning_and_the_others_are_listed(fleet):
    inventory = fleet.parse({"standalone_hosts": ["hv1", "hv2", "hv3"]}, answers({
        "hv1": listed([vm("web1")]),
        "hv2": unreachable("Failed to connect to the host via ssh: port 2222: Connection refused"),
        "hv3": failed("libvirt on hv3 did not answer within 30 seconds.")}))
    assert inventory.hosts() == ["web1"]
    assert fleet.warnings.said == [
        "gridvirt.kvm.vms: hypervisor hv2 did not list its VMs (unreachable: Failed to connect "
        "to the host via ssh: port 2222: Connection refused); its standalone VMs are not in "
        "the inventory.",
        "gridvirt.kvm.vms: hypervisor hv3 did not list its VMs (failed: libvirt on hv3 did not "
        "answer within 30 seconds.); its standalone VMs are not in the inventory."]


def test_cluster_from_the_first_node_in_order_that_listed_it(fleet):
    config = {"clusters": [{"name": "c1", "nodes": ["hv1", "hv2", "hv3"]}]}
    inventory = fleet.parse(config, answers({
        "hv1": failed("Ceph did not answer on hv1."),
        "hv2": listed([vm("db1", kind="cluster", status="Started", node="hv2")], cluster=True),
        "hv3": listed([vm("db1", kind="cluster", status="Stopping", node="hv3"),
                       vm("db2", kind="cluster")], cluster=True)}))
    # hv2 answered for the cluster: its listing, not hv3's (which a later read would give).
    assert inventory.hosts() == ["db1"]
    assert inventory.vars("db1")["gridvirt_status"] == "Started"
    assert inventory.vars("db1")["gridvirt_node"] == "hv2"
    assert len(fleet.warnings.said) == 1 and "hypervisor hv1" in fleet.warnings.said[0]


def test_a_node_answering_without_the_cluster_does_not_list_it(fleet):
    inventory = fleet.parse(CLUSTER, answers({
        "hv1": listed([vm("web1")], cluster=False),
        "hv2": listed([vm("db1", kind="cluster")], cluster=True)}))
    assert inventory.hosts() == ["db1", "web1"]
    assert inventory.vars("db1")["gridvirt_cluster"] == "c1"


def test_cluster_none_of_whose_nodes_answered_names_each_nodes_reason(fleet):
    inventory = fleet.parse(dict(CLUSTER, standalone_hosts=["hv9"]), answers({
        "hv1": unreachable("timed out"), "hv2": listed([vm("web1")], cluster=False),
        "hv9": listed([vm("web9")])}))
    assert inventory.hosts() == ["web1", "web9"]
    assert ("gridvirt.kvm.vms: cluster c1 is not in the inventory: none of its nodes listed it "
            "(hv1: unreachable: timed out; hv2: it answered without the cluster's VMs)."
            in fleet.warnings.said)


def test_a_host_with_no_registered_answer_is_a_warning_not_a_crash(fleet):
    inventory = fleet.parse({"standalone_hosts": ["hv1", "hv2"]},
                            answers({"hv1": None, "hv2": listed([vm("web2")])}))
    assert inventory.hosts() == ["web2"]
    assert fleet.warnings.said == ["gridvirt.kvm.vms: hypervisor hv1 did not list its VMs (it "
                                   "gave no answer); its standalone VMs are not in the inventory."]


# ------------------------------------------------------------------------------ duplicates

def test_two_standalone_vms_with_one_name_warn_and_the_first_host_wins(fleet):
    inventory = fleet.parse({"standalone_hosts": ["hv1", "hv2"]}, answers({
        "hv1": listed([vm("web1", node="a")], host="a"),
        "hv2": listed([vm("web1", node="b", status="Stopped")], host="b")}))
    assert inventory.hosts() == ["web1"]
    assert inventory.vars("web1")["gridvirt_hypervisor"] == "hv1"
    assert inventory.vars("web1")["gridvirt_status"] == "Started"
    assert fleet.warnings.said == [
        "gridvirt.kvm.vms: two VMs are named web1, on standalone host hv1 and on standalone "
        "host hv2; the one on standalone host hv1 is listed, the other not."]


def test_the_same_machine_under_two_names_is_said(fleet):
    fleet.parse({"standalone_hosts": ["hv1", "alias"]}, answers({
        "hv1": listed([vm("web1")], host="box"), "alias": listed([vm("web1")], host="box")}))
    assert fleet.warnings.said[0].endswith("(hv1 and alias are the same machine, box: list it "
                                           "once.)")


def test_a_cluster_vm_wins_over_a_standalone_vm_of_the_same_name(fleet):
    # The standalone host comes first in the configuration: the cluster still wins.
    config = {"standalone_hosts": ["hv3"], "clusters": [{"name": "c1", "nodes": ["hv1"]}]}
    inventory = fleet.parse(config, answers({
        "hv3": listed([vm("db1")], host="hv3"),
        "hv1": listed([vm("db1", kind="cluster")], cluster=True)}))
    assert inventory.vars("db1")["gridvirt_kind"] == "cluster"
    assert fleet.warnings.said == [
        "gridvirt.kvm.vms: two VMs are named db1, on cluster c1 and on standalone host hv3; "
        "the one on cluster c1 is listed, the other not."]


def test_duplicates_with_strict_fail_the_inventory(fleet):
    with pytest.raises(AnsibleParserError) as raised:
        fleet.parse({"standalone_hosts": ["hv1", "hv2"], "strict": True}, answers({
            "hv1": listed([vm("web1"), vm("web2")]), "hv2": listed([vm("web1")])}))
    assert "two VMs are named web1, on standalone host hv1 and on standalone host hv2" in str(
        raised.value)


# ---------------------------------------------------------------------------- configuration

@pytest.mark.parametrize("config, sentence", [
    ({}, "Nothing to list: give clusters, standalone_hosts or both."),
    ({"clusters": [{"name": "c1", "nodes": ["hv1"]}, {"name": "c2", "nodes": ["hv2", "hv1"]}]},
     "Hypervisor hv1 is a node of two clusters, c1 and c2."),
    ({"clusters": [{"name": "c1", "nodes": ["hv1"]}, {"name": "c1", "nodes": ["hv2"]}]},
     "Two clusters are named c1."),
    ({"clusters": [{"nodes": ["hv1"]}]}, "clusters[0] needs a name and its nodes."),
    ({"clusters": [{"name": "c1", "nodes": []}]}, "Cluster c1 has no nodes."),
    ({"clusters": [{"name": "c1", "nodes": ["hv1"], "option": {}}]},
     "clusters[0] has unknown keys option; it takes name, nodes, options."),
    ({"clusters": [{"name": "c1", "nodes": ["hv1"], "options": {"poool": "x"}}]},
     "The options of cluster c1 has unknown keys poool; it takes pool, ceph_conf, ceph_user, "
     "keyring, connect_timeout."),
    ({"clusters": [{"name": "c1", "nodes": "hv1"}]},
     "The nodes of cluster c1 must be a list of names, not 'hv1'."),
    ({"standalone_hosts": ["hv1", ""]}, "standalone_hosts entry '': a name must be a non-empty "
                                        "string."),
    ({"standalone_hosts": ["hv1\n"]}, "standalone_hosts entry 'hv1\\n': a name may not contain "
                                      "control characters."),
    ({"standalone_hosts": [7]}, "standalone_hosts entry 7: a name must be a non-empty string."),
    ({"clusters": [{"name": "c\x00", "nodes": ["hv1"]}]},
     "Cluster name 'c\\x00': a name may not contain control characters."),
    ({"standalone_hosts": ["hv1", "hv1"]}, "standalone_hosts lists hv1 twice."),
    ({"standalone_hosts": ["hv1"], "host_vars": {"hv1": "ssh"}},
     "host_vars of hv1 must be a dictionary, not 'ssh'."),
    ({"standalone_hosts": ["hv1"], "address_registry": {"registry": {}}},
     "address_registry needs the host its registry is read on."),
    ({"standalone_hosts": ["hv1"], "address_registry": {"host": "hv1", "path": "/x"}},
     "address_registry has unknown keys path; it takes host, registry."),
    ({"standalone_hosts": ["hv1"], "timeout": 0},
     "timeout must be a whole number of seconds, at least 1, not 0."),
])
def test_configuration_mistakes_are_one_sentence_and_nothing_is_listed(fleet, config, sentence):
    with pytest.raises(AnsibleParserError) as raised:
        fleet.parse(config, answers({}))
    assert str(raised.value) == sentence
    assert fleet.runs == []


def test_a_host_both_cluster_node_and_standalone_host_is_asked_once(fleet):
    fleet.parse(dict(CLUSTER, standalone_hosts=["hv2", "hv3"]), answers({
        "hv1": listed([], cluster=True), "hv2": listed([]), "hv3": listed([])}))
    assert fleet.runs[0][0].hypervisors == ["hv1", "hv2", "hv3"]


def test_host_vars_of_an_unknown_host_are_a_warning(fleet):
    fleet.parse({"standalone_hosts": ["hv1"], "host_vars": {"hv9": {"ansible_port": 22}}},
                answers({"hv1": listed([])}))
    assert fleet.warnings.said == ["gridvirt.kvm.vms: host_vars names hv9, which is neither a "
                                   "hypervisor nor the address registry's host."]


def test_only_gridvirt_config_files_are_taken(tmp_path):
    plugin = vms.InventoryModule()
    for name, taken in (("fleet.gridvirt.yml", True), ("gridvirt.yaml", True),
                        ("hosts.yml", False), ("fleet.gridvirt.json", False)):
        (tmp_path / name).write_text("plugin: %s\n" % NAME)
        assert plugin.verify_file(str(tmp_path / name)) is taken, name
    assert plugin.verify_file(str(tmp_path / "missing.gridvirt.yml")) is False


# ----------------------------------------------------------------------------- constructed

def test_compose_groups_and_keyed_groups_as_constructed_plugins_do(fleet):
    config = {"standalone_hosts": ["hv1"],
              "compose": {"ansible_port": "2222", "ansible_user": "gridvirt_metadata.owner"},
              "groups": {"running": "gridvirt_status == 'Started'"},
              "keyed_groups": [{"key": "gridvirt_metadata.role", "prefix": "role"},
                               {"key": "gridvirt_vcpus | string", "prefix": "cpus"}]}
    inventory = fleet.parse(config, answers({"hv1": listed([
        vm("web1", metadata={"role": "web", "owner": "ops"}),
        vm("db1", status="Stopped", metadata={"role": "db-main"})])}))
    assert inventory.vars("web1")["ansible_port"] == 2222
    assert inventory.vars("web1")["ansible_user"] == "ops"
    assert "ansible_user" not in inventory.vars("db1")  # no owner: skipped, not strict
    assert "running" in inventory.groups("web1") and "running" not in inventory.groups("db1")
    assert "role_web" in inventory.groups("web1") and "role_db_main" in inventory.groups("db1")
    assert "cpus_2" in inventory.groups("db1")


def test_compose_errors_fail_with_strict(fleet):
    config = {"standalone_hosts": ["hv1"], "strict": True,
              "compose": {"ansible_user": "gridvirt_metadata.owner"}}
    with pytest.raises(AnsibleError) as raised:
        fleet.parse(config, answers({"hv1": listed([vm("web1")])}))
    assert "Could not set ansible_user for host web1" in str(raised.value)


def test_keyed_group_without_prefix_and_leading_separator(fleet):
    config = {"standalone_hosts": ["hv1"], "leading_separator": False,
              "keyed_groups": [{"key": "gridvirt_metadata.role"}]}
    inventory = fleet.parse(config, answers({"hv1": listed([vm("web1")])}))
    assert "web" in inventory.groups("web1")


# ----------------------------------------------------------------------------------- cache

def test_cache_is_read_until_flushed(fleet, tmp_path):
    config = {"standalone_hosts": ["hv1"], "cache": True, "cache_plugin": "jsonfile",
              "cache_connection": str(tmp_path / "cache")}
    first = answers({"hv1": listed([vm("web1"), vm("web2")])})
    later = answers({"hv1": listed([vm("web1")])})
    assert fleet.parse(config, first).hosts() == ["web1", "web2"]
    # From the cache: web2, removed since, is still there, and nothing was asked.
    assert fleet.parse(config, later).hosts() == ["web1", "web2"]
    assert len(fleet.runs) == 1
    # --flush-cache: asked again, and the cache now holds the new answers.
    assert fleet.parse(config, cache=False).hosts() == ["web1"]
    assert len(fleet.runs) == 2
    assert fleet.parse(config).hosts() == ["web1"]
    assert len(fleet.runs) == 2


def test_without_cache_every_parse_asks(fleet):
    config = {"standalone_hosts": ["hv1"]}
    fleet.parse(config, answers({"hv1": listed([vm("web1")])}))
    fleet.parse(config, answers({"hv1": listed([vm("web1")])}))
    assert len(fleet.runs) == 2


# --------------------------------------------------------------- the listing run's contents

def fleet_of(**options):
    defaults = {"clusters": [], "standalone_hosts": [], "hypervisor_vars": {}, "host_vars": {},
                "address_registry": None, "timeout": 120}
    defaults.update(options)
    return vms.check_fleet(defaults)


def test_listing_inventory_gives_each_host_its_variables_and_what_to_ask():
    fleet = fleet_of(clusters=[{"name": "c1", "nodes": ["hv1", "hv2"],
                                "options": {"pool": "vms", "connect_timeout": 10}}],
                     standalone_hosts=["hv3", "hv1"], address_registry={"host": "reg"})
    inventory = vms.listing_inventory(
        fleet, {"ansible_user": "admin", "ansible_port": 22},
        {"hv3": {"ansible_port": 2222}, "reg": {"ansible_connection": "local"}})
    hosts = inventory["all"]["hosts"]
    assert sorted(hosts) == ["hv1", "hv2", "hv3", "reg"]
    assert hosts["hv1"]["gridvirt_inventory_vm_info"] == {
        "kinds": ["cluster", "standalone"], "pool": "vms", "connect_timeout": 10}
    assert hosts["hv3"]["gridvirt_inventory_vm_info"] == {"kinds": ["standalone"]}
    assert hosts["hv3"]["ansible_port"] == 2222 and hosts["hv3"]["ansible_user"] == "admin"
    assert hosts["hv2"]["ansible_port"] == 22
    assert "gridvirt_inventory_vm_info" not in hosts["reg"]
    assert hosts["reg"]["ansible_connection"] == "local"
    # Null before the run: a host that never answers reads as null.
    assert all(h["gridvirt_inventory_vms"] is None for h in hosts.values())
    groups = inventory["all"]["children"]
    assert list(groups["gridvirt_hypervisors"]["hosts"]) == ["hv1", "hv2", "hv3"]
    assert list(groups["gridvirt_address_registry"]["hosts"]) == ["reg"]


def test_listing_playbook_keeps_going_on_failures_and_writes_a_private_file():
    fleet = fleet_of(standalone_hosts=["hv1"],
                     address_registry={"host": "reg", "registry": {"backend": "rados"}})
    listing, collect = vms.listing_playbook(fleet, "/private/answers.json")
    vm_info, address_info = listing["tasks"]
    assert listing["hosts"] == "all" and listing["gather_facts"] is False
    for task in (vm_info, address_info):
        assert task["ignore_unreachable"] is True and task["ignore_errors"] is True
    assert address_info["gridvirt.kvm.address_info"] == {"registry": {"backend": "rados"}}
    assert set(vm_info["gridvirt.kvm.vm_info"]) == set(
        ["kinds", "pool", "ceph_conf", "ceph_user", "keyring", "connect_timeout"])
    assert collect["hosts"] == "localhost" and collect["connection"] == "local"
    write = collect["tasks"][0]
    assert write["ansible.builtin.copy"]["mode"] == "0600"
    assert write["ansible.builtin.copy"]["dest"] == "/private/answers.json"
    # Without a registry, no task reads one.
    no_registry, _collect = vms.listing_playbook(fleet_of(standalone_hosts=["hv1"]), "/a")
    assert [t["register"] for t in no_registry["tasks"]] == ["gridvirt_inventory_vms"]


def test_listing_run_uses_this_collection_first_and_its_own_settings(monkeypatch):
    monkeypatch.setattr(C, "COLLECTIONS_PATHS", ["/usr/share/ansible/collections"])
    env = vms.listing_environment({"PATH": "/bin", "ANSIBLE_INVENTORY_ENABLED": "auto"})
    build = unit_paths.REPO + "/.build"
    assert env["ANSIBLE_COLLECTIONS_PATH"] == build + ":/usr/share/ansible/collections"
    assert env["PATH"] == "/bin"
    assert env["ANSIBLE_RETRY_FILES_ENABLED"] == "0"
    assert env["ANSIBLE_INVENTORY_ENABLED"] == "ansible.builtin.yaml"


def test_answers_trimmed_to_what_the_plugin_reads():
    raw = {"hypervisors": {"hv1": dict(listed([vm("web1")]), invocation={"x": 1}),
                           "hv2": unreachable("no"), "hv3": None},
           "registry": {"reg": {"addresses": [], "changed": False, "pools": [{}]}}}
    kept = vms.trimmed(raw)
    assert kept["hypervisors"]["hv1"] == {"host": "hv1", "cluster": False,
                                          "vms": [vm("web1")]}
    assert kept["hypervisors"]["hv2"] == {"unreachable": True, "failed": False, "msg": "no"}
    assert kept["hypervisors"]["hv3"] is None
    assert kept["registry"] == {"addresses": []}
    assert vms.trimmed({"hypervisors": {}, "registry": {}})["registry"] is None
