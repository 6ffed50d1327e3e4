"""Every playbook run as an AWX job template runs it: ansible-runner over a private data
directory of the job's own (runner_lab.py), the playbooks in ``project/`` as a project
checkout has them, the collection through ``env/envvars`` ANSIBLE_COLLECTIONS_PATH (as an
execution environment has it installed), a YAML inventory in ``inventory/``, and the extra
vars in ``env/extravars`` as a survey gives them: strings ("true", "1", "vm1,vm2"). Every
result is read from runner's artifacts (rc, status, the JSON job events), never from text.

On the one-node lab, one cluster VM and one standalone VM (prefix iawx):
1. the first deploy of each kind (two jobs at once) changes something; the cluster VM is
   Started;
2. then, side by side, jobs that must find the VMs as deployed and leave them so:
   - the rerun of each deploy reports changed=0 for every host; a --check with force "true"
     takes the forced path and still changes nothing (with "false" it is not taken);
   - vm_status.yaml's table ("Show the status table") lists both VMs, Started, on the node;
   - update_vm_with_rollback.yaml --check with update_vms "iawxcl1" acts on that VM only;
     "iawxcl1, iawx9" is refused by its first play, naming iawx9;
   - node_maintenance.yaml: maintenance_wait "true"/"false" and maintenance_timeout
     "30"/"45" reach the module as a boolean and a number (online for real, which changes
     nothing on the online node; standby only under --check);
   - address_services.yaml: list options given as strings ("iawx0, iawx1", lines) become one
     dnsmasq line each (written into a directory of the test; no dnsmasq runs);
   - prepare_hypervisors.yaml --check: hypervisor_install_packages "false",
     hypervisor_cluster "true", hypervisor_guests_shutdown_timeout "300";
   and the guests have booted (their console's marker);
3. update_vm_with_rollback.yaml for real with update_vms "iawxcl1,iawxsa1" updates both VMs
   (a no-op update of the test's project), update_check_connection and
   update_keep_snapshot "false" read as false: no snapshot is left;
4. removal, the deploy playbooks' documented way (vm_state "absent"): both VMs are gone; a
   rerun of it reports changed=0."""
import os

import pytest

import cluster_lab as cl
import lab
import runner_lab

PREFIX = "iawx"
CLUSTER_VM, STANDALONE_VM = PREFIX + "cl1", PREFIX + "sa1"
CLUSTER_GROUP, STANDALONE_GROUP = "awx_cluster_vms", "awx_standalone_vms"
STATUS_TASK = "Show the status table"
FORCED_CHECKSUM = "Checksum the image a forced VM would be re-created from"
TYPO_TASK = "Refuse names that are no host or group of the inventory (a typo updates nothing)"
# ansible-core >= 2.21 puts the arguments a module got in its result only when asked.
INVOCATION = {"ANSIBLE_INJECT_INVOCATION": "1"}

clean = cl.cleanup_fixture(PREFIX)

# Modelled on inventories/lab: the lab's hypervisor, the VMs in groups of their own (named by
# the deploy_vms_group survey answer), what every lab guest shares in group_vars/lab_guests.yml
# with absolute paths.
INVENTORY = {"all": {"children": {
    "hypervisors": {"hosts": {lab.HOST: {
        "ansible_connection": "local",
        "ansible_python_interpreter": "/usr/bin/python3",
        "hypervisor_libvirtd_restart_command": [os.path.join(lab.REPO, "lab", "lab.sh"),
                                                "libvirtd-restart"]}}},
    "address_servers": {"hosts": {lab.HOST: {}}},
    CLUSTER_GROUP: {"hosts": {CLUSTER_VM: {"metadata": {"role": "awx"}}}},
    STANDALONE_GROUP: {"hosts": {STANDALONE_VM: {"metadata": {"role": "awx"}}}},
    "lab_guests": {"children": {CLUSTER_GROUP: {}, STANDALONE_GROUP: {}}},
}}}
LAB_GUESTS = {
    "vm_disk": lab.GUEST_IMAGE,
    "domain_type": "qemu",
    "memory": 128,
    "serial_log": "/var/log/libvirt/qemu/{{ inventory_hostname }}-serial.log",
    "kvm_device_1": '<interface type="user"><model type="virtio"/></interface>',
    # VM hosts are never contacted; were one ever, it would be this machine.
    "ansible_host": "127.0.0.1",
}
# An update of the test's own project: it changes nothing, it says which VM it ran for.
UPDATE_TASKS = [{"name": "Apply the update",
                 "ansible.builtin.debug": {"msg": "updating {{ inventory_hostname }}"}}]

# Survey answers: strings only.
CLUSTER_DEPLOY = {"deploy_vms_group": CLUSTER_GROUP, "cluster_nodes_group": "hypervisors",
                  "deploy_parallelism": "2", "prune_unlisted": "false",
                  "prune_unlisted_match": "^" + PREFIX, "force": "false",
                  # SEAPATH's switches: a "false" read as true would not start the VM.
                  "enable": "true", "nostart": "false"}
STANDALONE_DEPLOY = {"deploy_vms_group": STANDALONE_GROUP, "standalone_hosts_group": "hypervisors",
                     "deploy_parallelism": "1", "prune_unlisted": "false",
                     "prune_unlisted_match": "^" + PREFIX, "force": "false", "nostart": "false"}
UPDATE = {"update_tasks": "awx_update.yml", "cluster_vms_group": CLUSTER_GROUP,
          "update_keep_snapshot": "false", "update_check_connection": "false",
          "update_connection_timeout": "5"}


@pytest.fixture(scope="module")
def awx(tmp_path_factory):
    base = tmp_path_factory.mktemp("awx")
    # The address servers read an SQLite registry of the test's (none of the lab's VMs).
    servers = {"address_services_registry": {"backend": "sqlite",
                                             "path": str(base / "addresses.db")}}
    return runner_lab.Awx(base / "jobs", INVENTORY,
                          group_vars={"lab_guests": LAB_GUESTS, "address_servers": servers},
                          project_files={"awx_update.yml": UPDATE_TASKS})


@pytest.fixture(scope="module")
def consoles(clean):
    return dict((vm, lab.Console(vm)) for vm in (CLUSTER_VM, STANDALONE_VM))


@pytest.fixture(scope="module")
def deployed(clean, consoles, awx):
    """The first deploy of both kinds, two jobs at once."""
    return awx.run_all({"cluster": ("deploy_vms_cluster.yaml", CLUSTER_DEPLOY),
                        "standalone": ("deploy_vms_standalone.yaml", STANDALONE_DEPLOY)})


@pytest.fixture(scope="module")
def dnsmasq_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("dnsmasq")


@pytest.fixture(scope="module")
def side_by_side(deployed, awx, dnsmasq_dir):
    """The jobs that find the VMs as deployed and leave them so, four at a time."""
    node = lab.node_name()
    return awx.run_all({
        "cluster rerun": ("deploy_vms_cluster.yaml", CLUSTER_DEPLOY),
        "standalone rerun": ("deploy_vms_standalone.yaml", STANDALONE_DEPLOY),
        "forced check": ("deploy_vms_cluster.yaml", dict(CLUSTER_DEPLOY, force="true"),
                         {"check": True}),
        "status": ("vm_status.yaml", {"cluster_nodes_group": "hypervisors",
                                      "standalone_hosts_group": "hypervisors"}),
        "update one": ("update_vm_with_rollback.yaml", dict(UPDATE, update_vms=CLUSTER_VM),
                       {"check": True}),
        "update typo": ("update_vm_with_rollback.yaml",
                        dict(UPDATE, update_vms="%s, %s9" % (CLUSTER_VM, PREFIX))),
        "online": ("node_maintenance.yaml", {
            "maintenance_node": node, "maintenance_state": "online",
            "maintenance_wait": "true", "maintenance_timeout": "30"}, {"envvars": INVOCATION}),
        "standby check": ("node_maintenance.yaml", {
            "maintenance_node": node, "maintenance_state": "standby",
            "maintenance_wait": "false", "maintenance_timeout": "45"},
            {"check": True, "envvars": INVOCATION}),
        "address services": ("address_services.yaml", {
            "address_services_hosts_pattern": "address_servers",
            "address_services_mode": "dnsmasq",
            "address_services_dnsmasq_service": "unmanaged",
            "address_services_instance": PREFIX,
            "address_services_config_dir": str(dnsmasq_dir / "conf"),
            "address_services_pid_file": str(dnsmasq_dir / "dnsmasq.pid"),
            "address_services_lease_file": str(dnsmasq_dir / "leases" / "dnsmasq.leases"),
            # A survey's text and textarea answers; a blank one is the default.
            "address_services_interfaces": "%s0, %s1\n%s2" % (PREFIX, PREFIX, PREFIX),
            "address_services_upstream_servers": "127.0.0.53",
            "address_services_dnsmasq_extra_options":
                "log-dhcp\r\ndhcp-option=option:ntp-server,127.0.0.1\n",
            "address_services_pools": ""}),
        "prepare check": ("prepare_hypervisors.yaml", {
            "hypervisor_hosts": "hypervisors", "hypervisor_install_packages": "false",
            "hypervisor_cluster": "true", "hypervisor_guests_on_shutdown": "save",
            "hypervisor_guests_shutdown_timeout": "300"}, {"check": True}),
    })


def assert_no_change(run, hosts):
    """A successful job that changed nothing, run for (at least) ``hosts``."""
    run.succeeded()
    assert set(hosts) <= run.hosts(), run.explain()
    assert all(run.changed(host) == 0 for host in run.hosts()), run.explain()


def module_args(data):
    """The arguments the module got (in the result of a job with INVOCATION)."""
    return data["res"]["invocation"]["module_args"]


def test_first_deploy_changes_and_starts_the_vms(deployed):
    for kind, vm in (("cluster", CLUSTER_VM), ("standalone", STANDALONE_VM)):
        run = deployed[kind].succeeded()
        assert run.changed(vm) > 0, run.explain()
        converged = run.results("Converge the VM", vm)
        assert len(converged) == 1 and converged[0]["changed"], run.explain()
        assert converged[0]["status"] == "Started", converged[0]
        assert converged[0]["node"] == lab.node_name()


def test_rerun_changes_nothing_and_force_is_read_as_a_boolean(side_by_side):
    cluster, forced = side_by_side["cluster rerun"], side_by_side["forced check"]
    assert_no_change(cluster, [CLUSTER_VM])
    assert_no_change(side_by_side["standalone rerun"], [STANDALONE_VM])
    # force "false": the plan alone, no VM converged; force "true": the forced path (the image
    # is checksummed against the one deployed: the same, so nothing is re-created).
    assert cluster.ran(FORCED_CHECKSUM) == [] and cluster.skipped(FORCED_CHECKSUM) == []
    assert_no_change(forced, [CLUSTER_VM])
    assert forced.ran(FORCED_CHECKSUM) == [CLUSTER_VM], forced.explain()


def test_the_guests_boot(side_by_side, consoles):
    for vm, console in consoles.items():
        boot = console.wait_boot()
        assert (boot["name"], boot["boot"]) == (vm, 1)


def test_status_table_lists_both_vms(side_by_side):
    run = side_by_side["status"].succeeded()
    tables = run.results(STATUS_TASK)
    assert len(tables) == 1, "no %r result: %s" % (STATUS_TASK, run.explain())
    lines = tables[0]["msg"]
    assert lines[0].split() == ["NAME", "KIND", "STATUS", "NODE"], lines
    # (Other VMs of the lab may be listed: only ours are judged.)
    ours = [tuple(line.split()) for line in lines[1:] if line.split()[0].startswith(PREFIX)]
    node = lab.node_name()
    assert sorted(ours) == [(CLUSTER_VM, "cluster", "Started", node),
                            (STANDALONE_VM, "standalone", "Started", node)], lines


def test_update_of_one_vm_and_a_refused_typo(side_by_side):
    one, typo = side_by_side["update one"], side_by_side["update typo"]
    assert_no_change(one, [CLUSTER_VM])
    assert one.hosts() == {"localhost", CLUSTER_VM}
    assert one.ran("Apply the update") == [CLUSTER_VM]
    assert one.ran("Snapshot the cluster VM before the update") == [CLUSTER_VM]
    # A name that is no host: refused by the first play, no VM touched.
    assert typo.rc != 0 and typo.status == "failed"
    assert typo.failures() == [("localhost", TYPO_TASK, (
        "update_vms %s, %s9: %s9 is no host or group of the inventory; nothing was "
        "updated." % (CLUSTER_VM, PREFIX, PREFIX)))]
    assert typo.hosts() == {"localhost"}


def test_node_maintenance_booleans_and_numbers_as_strings(side_by_side):
    online, standby = side_by_side["online"], side_by_side["standby check"]
    assert_no_change(online, ["localhost"])
    (done,) = online.of("runner_on_ok", "Set the node's state")
    assert (module_args(done)["wait"], module_args(done)["timeout"]) == (True, 30)
    assert done["res"]["node"]["online"] and not done["res"]["node"]["standby"]
    # Under --check: refused on a one-node cluster that runs VMs (ours among them), or
    # predicted on a cluster with another node; the module got false and 45 either way.
    refused = standby.of("runner_on_failed", "Set the node's state")
    (asked,) = refused + standby.of("runner_on_ok", "Set the node's state")
    assert (module_args(asked)["wait"], module_args(asked)["timeout"]) == (False, 45)
    if refused:
        assert CLUSTER_VM in asked["res"]["msg"] and "nowhere to go" in asked["res"]["msg"]
    else:
        assert asked["res"]["changed"], standby.explain()


def test_address_services_lists_as_strings(side_by_side, dnsmasq_dir):
    # (The test's registry has no pool: the configuration serves no range.)
    side_by_side["address services"].succeeded()
    with open(str(dnsmasq_dir / "conf" / (PREFIX + ".conf"))) as handle:
        lines = handle.read().splitlines()
    assert [line for line in lines if line.startswith(("interface=", "server="))] == [
        "interface=%s0" % PREFIX, "interface=%s1" % PREFIX, "interface=%s2" % PREFIX,
        "server=127.0.0.53"]
    assert lines[-2:] == ["log-dhcp", "dhcp-option=option:ntp-server,127.0.0.1"]


def test_prepare_hypervisors_check_with_strings(side_by_side):
    run = side_by_side["prepare check"].succeeded()
    assert run.skipped("Install the hypervisor's packages") == [lab.HOST]
    assert run.ran("Install the resource agent ocf:gridvirt:VirtualDomain") == [lab.HOST]
    # "300" renders as the lab's 300 did.
    (guests,) = run.results("Configure libvirt-guests", lab.HOST)
    assert not guests["changed"], guests


def snapshots():
    """The snapshots an update could leave: the cluster VM's group snapshots and its system
    image's, the standalone VM's libvirt snapshots."""
    return (cl.rbd("group", "snap", "ls", CLUSTER_VM),
            cl.rbd("snap", "ls", "--all", "system_" + CLUSTER_VM),
            lab.snapshot_names(STANDALONE_VM))


def test_update_of_both_vms_as_one_string(side_by_side, awx):
    assert snapshots() == ([], [], [])
    both = awx.run("update_vm_with_rollback.yaml",
                   dict(UPDATE, update_vms="%s,%s" % (CLUSTER_VM, STANDALONE_VM)))
    assert_no_change(both, [CLUSTER_VM, STANDALONE_VM])
    for vm in (CLUSTER_VM, STANDALONE_VM):
        assert [res["msg"] for res in both.results("Apply the update", vm)] == ["updating " + vm]
        # "false" is false: no connection check, the snapshot not kept.
        assert both.skipped("Check that the VM still answers", vm) == [vm]
    assert both.ran("Snapshot the cluster VM before the update") == [CLUSTER_VM]
    assert both.ran("Snapshot the standalone VM before the update") == [STANDALONE_VM]
    assert both.ran("Remove the cluster VM's snapshot") == [CLUSTER_VM]
    assert both.ran("Remove the standalone VM's snapshot") == [STANDALONE_VM]
    assert snapshots() == ([], [], [])


def test_removal_with_vm_state_absent(side_by_side, awx):
    removal = {"cluster": ("deploy_vms_cluster.yaml", dict(CLUSTER_DEPLOY, vm_state="absent")),
               "standalone": ("deploy_vms_standalone.yaml",
                              dict(STANDALONE_DEPLOY, vm_state="absent"))}
    removed = awx.run_all(removal)
    for kind, vm in (("cluster", CLUSTER_VM), ("standalone", STANDALONE_VM)):
        assert removed[kind].succeeded().changed(vm) > 0, removed[kind].explain()
    assert CLUSTER_VM not in cl.groups()
    assert cl.cib_xpath("//primitive[@id='%s']" % CLUSTER_VM) == ""
    assert not [name for name in lab.domain_names() if name.startswith(PREFIX)]
    assert not [name for name in lab.pool_files() if name.startswith(PREFIX)]
    again = awx.run_all(removal)
    assert_no_change(again["cluster"], [CLUSTER_VM])
    assert_no_change(again["standalone"], [STANDALONE_VM])
