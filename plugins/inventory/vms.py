# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Licensed under the Apache License 2.0 (see LICENSE), or at your option under the
# GNU General Public License version 3 or later (see https://www.gnu.org/licenses/gpl-3.0.txt).
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""Every VM of the fleet as an inventory host. The hypervisors are asked through a generated
ansible-playbook run (the controller has no Ceph key, and hypervisors are reached the way the
operator's inventory reaches them); the answers are turned into hosts by pure functions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: vms
short_description: Every VM of the clusters and standalone KVM hosts, with its address
version_added: 0.8.0
description:
  - One inventory host per VM of the O(clusters) (cluster VMs, disks in Ceph RBD, run by
    Pacemaker) and of the O(standalone_hosts) (libvirt VMs), named by the VM's name, with its
    kind, status, node, definition figures and the address to reach it (C(ansible_host)).
  - The hypervisors are asked with M(gridvirt.kvm.vm_info), all at once, by an
    C(ansible-playbook) run over a temporary inventory of the hypervisors with the variables of
    O(hypervisor_vars) and O(host_vars), so they are reached the way playbooks reach them (SSH
    or any connection plugin) and the controller needs no Ceph key.
  - A cluster's VMs come from the first of its O(clusters[].nodes) (in that order) that
    answered for the cluster. Standalone VMs come from every hypervisor, the cluster nodes too.
  - A hypervisor that does not answer (unreachable, or its listing failed) is a warning naming
    it and saying why; the VMs of the others are listed. So is a cluster none of whose nodes
    answered, naming each node's reason.
  - Two VMs with one name (on two standalone hosts, or a standalone VM named like a cluster
    VM) are a warning naming the VM and both places, or an error with O(strict=true). They are
    never merged; the first is kept (cluster VMs before standalone VMs, clusters, their nodes
    and then O(standalone_hosts) in the order of the configuration) and the other skipped.
  - Host variables of each VM - C(gridvirt_kind) (C(cluster) or C(standalone)),
    C(gridvirt_status) (C(Disabled), C(Starting), C(Started), C(Stopping), C(Stopped) or
    C(Failed) for a cluster VM, C(Started), C(Paused), C(Stopping), C(Stopped) or C(Failed)
    for a standalone VM), C(gridvirt_node) (where it runs, null for a cluster VM that does
    not run), C(gridvirt_uuid), C(gridvirt_vcpus), C(gridvirt_memory_mib), C(gridvirt_disks)
    (C(target), C(device), C(source) of each), C(gridvirt_macs), C(gridvirt_snapshots) (their
    number), C(gridvirt_metadata), C(gridvirt_addresses), C(gridvirt_cluster) (cluster VMs, the
    cluster's O(clusters[].name)), C(gridvirt_hypervisor) (standalone VMs, the hypervisor's
    name in this configuration), C(gridvirt_error) (only for a VM that could not be read; of
    its description, only its kind, status and node are set then).
  - C(ansible_host) is the IP of the VM's lowest-numbered NIC that has one in the address
    registry (O(address_registry)), else in the addresses M(gridvirt.kvm.vm_info) reports; it
    is not set when neither knows one. C(gridvirt_addresses) holds the registry's addresses of
    the VM when it has any, else those M(gridvirt.kvm.vm_info) reports.
  - Groups C(gridvirt_kind_cluster), C(gridvirt_kind_standalone), C(gridvirt_node_<node>),
    C(gridvirt_status_<status in lower case>) and C(gridvirt_cluster_<cluster name>) (names
    with characters invalid in a group name replaced by C(_)), then those of O(groups) and
    O(keyed_groups).
  - The configuration file's name must end in C(gridvirt.yml) or C(gridvirt.yaml).
author:
  - gridvirt.kvm contributors (@gridvirt)
requirements:
  - C(ansible-core) with this collection on the controller (the listing runs with the same
    Python and ansible-core as the inventory, and this copy of the collection)
  - On the hypervisors, the requirements of M(gridvirt.kvm.vm_info); on the address registry's
    host, those of M(gridvirt.kvm.address_info)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description:
      - The name of this plugin; marks the file as its configuration.
    type: str
    required: true
    choices: [gridvirt.kvm.vms]
  clusters:
    description:
      - The clusters whose VMs are listed. A hypervisor may be a node of one cluster only.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The cluster's name (any text without control characters), the value of
            C(gridvirt_cluster) and the suffix of the group C(gridvirt_cluster_<name>).
        type: str
        required: true
      nodes:
        description:
          - Its nodes, as named in O(hypervisor_vars) and O(host_vars). All are asked at once;
            the first in this order whose answer lists the cluster gives its VMs.
        type: list
        elements: str
        required: true
      options:
        description:
          - Where the cluster's VMs live, passed to M(gridvirt.kvm.vm_info) on its nodes; what
            is not given takes that module's default.
        type: dict
        default: {}
        suboptions:
          pool:
            description: RBD pool of the VMs' images.
            type: str
          ceph_conf:
            description: Ceph configuration file on the nodes.
            type: path
          ceph_user:
            description: Ceph client id, without C(client.).
            type: str
          keyring:
            description: Keyring of O(clusters[].options.ceph_user) on the nodes.
            type: path
          connect_timeout:
            description: Seconds M(gridvirt.kvm.vm_info) waits for Ceph, Pacemaker and libvirt.
            type: int
  standalone_hosts:
    description:
      - Standalone hypervisors whose libvirt VMs are listed. A cluster node may be listed here
        too; it is asked once.
    type: list
    elements: str
    default: []
  hypervisor_vars:
    description:
      - Variables of every hypervisor (and of the O(address_registry.host)) in the inventory of
        the listing run, typically connection variables (C(ansible_connection), C(ansible_host),
        C(ansible_user), C(ansible_port), C(ansible_python_interpreter), C(ansible_become),
        ...). They may be templates, evaluated in the listing run.
      - Values written to the temporary inventory are plain text (vaulted ones decrypted), in a
        file only the user running the inventory can read, removed after the listing.
    type: dict
    default: {}
  host_vars:
    description:
      - Variables of single hosts (keyed by hypervisor name, or the O(address_registry.host)),
        each a dictionary overriding O(hypervisor_vars) for that host, for example its
        C(ansible_host). A key that names no host of the listing is a warning.
    type: dict
    default: {}
  address_registry:
    description:
      - The address registry the deploy roles allocate the VMs' addresses in. When given, its
        addresses are read with M(gridvirt.kvm.address_info) and give C(ansible_host). If it
        cannot be read, that is a warning and the VMs are listed with the addresses
        M(gridvirt.kvm.vm_info) reports.
    type: dict
    suboptions:
      host:
        description:
          - Where M(gridvirt.kvm.address_info) runs - the roles' C(address_registry_host) for
            the C(sqlite) backend, any cluster node for C(rados). A hypervisor or another host;
            it gets O(hypervisor_vars) and its O(host_vars) too.
        type: str
        required: true
      registry:
        description:
          - The registry, as the option O(gridvirt.kvm.address_info#module:registry) of
            M(gridvirt.kvm.address_info) takes it (the roles' C(address_registry) variable).
        type: dict
        default: {}
  timeout:
    description:
      - Seconds the whole listing (the C(ansible-playbook) run) may take; then it is stopped
        and the inventory fails.
    type: int
    default: 120
"""

EXAMPLES = r"""
# fleet.gridvirt.yml: two clusters' VMs and those of two standalone hosts, reached over SSH
plugin: gridvirt.kvm.vms
clusters:
  - name: substation-a
    nodes: [hv-a1, hv-a2, hv-a3]
  - name: substation-b
    nodes: [hv-b1, hv-b2]
    options:
      pool: vms
      connect_timeout: 15
standalone_hosts: [kvm-lab1, kvm-lab2]
hypervisor_vars:
  ansible_user: admin
  ansible_become: true
  ansible_python_interpreter: /usr/bin/python3
host_vars:
  kvm-lab2:
    ansible_host: 192.0.2.42
address_registry:
  host: hv-a1
  registry:
    backend: rados
    pool: rbd
keyed_groups:
  # role_web, role_db... from the VMs' metadata
  - key: gridvirt_metadata.role | default('')
    prefix: role
groups:
  running: gridvirt_status == 'Started'

# The listing read from Ansible's inventory cache for an hour (ansible-inventory
# --flush-cache, or a job with "update on launch", asks the hypervisors again)
# plugin: gridvirt.kvm.vms
# standalone_hosts: [kvm-lab1]
# cache: true
# cache_plugin: ansible.builtin.jsonfile
# cache_connection: /var/cache/ansible-inventory
# cache_timeout: 3600
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

PLUGIN = "gridvirt.kvm.vms"
CONFIG_SUFFIXES = ("gridvirt.yml", "gridvirt.yaml")
CEPH_OPTIONS = ("pool", "ceph_conf", "ceph_user", "keyring", "connect_timeout")
CLUSTER_KEYS = ("name", "nodes", "options")
REGISTRY_KEYS = ("host", "registry")
CONTROL_CHARACTER = re.compile(u"[\x00-\x1f\x7f-\x9f]")
# The generated inventory's groups and the variables the listing run registers its answers in.
HYPERVISORS_GROUP = "gridvirt_hypervisors"
REGISTRY_GROUP = "gridvirt_address_registry"
VM_INFO_ARGS = "gridvirt_inventory_vm_info"
VMS_ANSWER = "gridvirt_inventory_vms"
ADDRESSES_ANSWER = "gridvirt_inventory_addresses"
# What an answer keeps (the rest - invocation, changed - is noise in the cache).
KEPT_ANSWER_KEYS = ("failed", "unreachable", "skipped", "msg", "host", "cluster", "vms",
                    "addresses")
# Fields of a VM that vm_info could not read which are still reliable.
RELIABLE_WHEN_UNREADABLE = ("kind", "status", "node")
VM_FIELDS = ("kind", "status", "node", "uuid", "vcpus", "memory_mib", "disks", "macs",
             "snapshots", "metadata")
STDERR_TAIL = 3000
# Seconds a listing run past its timeout has to end after SIGINT, then SIGTERM.
STOP_PATIENCE = 5


# ---------------------------------------------------------------------------- configuration

class Cluster(object):
    def __init__(self, name, nodes, ceph):
        self.name, self.nodes, self.ceph = name, nodes, ceph


class Fleet(object):
    """The validated configuration: what to ask where.

    ``hypervisors``: every hypervisor name, cluster nodes first (clusters, then nodes in
    order), then the standalone hosts: the order duplicates are decided in."""

    def __init__(self, clusters, standalone_hosts, registry_host, registry):
        self.clusters = clusters
        self.node_cluster = dict((node, cluster) for cluster in clusters
                                 for node in cluster.nodes)
        self.hypervisors = unique([node for cluster in clusters for node in cluster.nodes]
                                  + standalone_hosts)
        self.registry_host, self.registry = registry_host, registry

    def hosts(self):
        """Every host of the listing run's inventory."""
        return unique(self.hypervisors + ([self.registry_host] if self.registry_host else []))

    def vm_info_args(self, hypervisor):
        cluster = self.node_cluster.get(hypervisor)
        if cluster is None:
            return {"kinds": ["standalone"]}
        return dict(cluster.ceph, kinds=["cluster", "standalone"])


def unique(names):
    seen = set()
    return [name for name in names if not (name in seen or seen.add(name))]


def check_name(name, what):
    if not isinstance(name, str) or not name.strip():
        raise AnsibleParserError("%s %r: a name must be a non-empty string." % (what, name))
    if CONTROL_CHARACTER.search(name):
        raise AnsibleParserError("%s %r: a name may not contain control characters."
                                 % (what, name))
    return name


def check_mapping(value, what):
    if not isinstance(value, dict):
        raise AnsibleParserError("%s must be a dictionary, not %r." % (what, value))
    return value


def check_keys(value, allowed, what):
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise AnsibleParserError("%s has unknown keys %s; it takes %s."
                                 % (what, ", ".join(unknown), ", ".join(allowed)))


def check_name_list(names, what):
    if not isinstance(names, list):
        raise AnsibleParserError("%s must be a list of names, not %r." % (what, names))
    for name in names:
        check_name(name, what + " entry")
        if names.count(name) > 1:
            raise AnsibleParserError("%s lists %s twice." % (what, name))
    return list(names)


def check_cluster(index, entry):
    what = "clusters[%d]" % index
    check_keys(check_mapping(entry, what), CLUSTER_KEYS, what)
    if "name" not in entry or "nodes" not in entry:
        raise AnsibleParserError("%s needs a name and its nodes." % what)
    name = check_name(entry["name"], "Cluster name")
    nodes = check_name_list(entry["nodes"], "The nodes of cluster %s" % name)
    if not nodes:
        raise AnsibleParserError("Cluster %s has no nodes." % name)
    ceph = check_mapping(entry.get("options") or {}, "The options of cluster %s" % name)
    check_keys(ceph, CEPH_OPTIONS, "The options of cluster %s" % name)
    return Cluster(name, nodes, dict(ceph))


def check_clusters(entries):
    if not isinstance(entries, list):
        raise AnsibleParserError("clusters must be a list of clusters, not %r." % (entries,))
    clusters = [check_cluster(index, entry) for index, entry in enumerate(entries)]
    owner = {}
    for cluster in clusters:
        if any(other.name == cluster.name for other in clusters if other is not cluster):
            raise AnsibleParserError("Two clusters are named %s." % cluster.name)
        for node in cluster.nodes:
            if node in owner:
                raise AnsibleParserError("Hypervisor %s is a node of two clusters, %s and %s."
                                         % (node, owner[node], cluster.name))
            owner[node] = cluster.name
    return clusters


def check_registry(entry):
    if entry is None:
        return None, None
    check_keys(check_mapping(entry, "address_registry"), REGISTRY_KEYS, "address_registry")
    if "host" not in entry:
        raise AnsibleParserError("address_registry needs the host its registry is read on.")
    registry = check_mapping(entry.get("registry") or {}, "address_registry.registry")
    return check_name(entry["host"], "address_registry.host"), dict(registry)


def check_fleet(options):
    """The configuration's options -> Fleet; a mistake is an AnsibleParserError sentence."""
    clusters = check_clusters(options.get("clusters") or [])
    standalone_hosts = check_name_list(options.get("standalone_hosts") or [], "standalone_hosts")
    if not clusters and not standalone_hosts:
        raise AnsibleParserError("Nothing to list: give clusters, standalone_hosts or both.")
    check_mapping(options.get("hypervisor_vars") or {}, "hypervisor_vars")
    for host, variables in check_mapping(options.get("host_vars") or {}, "host_vars").items():
        check_mapping(variables, "host_vars of %s" % check_name(host, "host_vars key"))
    timeout = options.get("timeout")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
        raise AnsibleParserError("timeout must be a whole number of seconds, at least 1, not %r."
                                 % (timeout,))
    return Fleet(clusters, standalone_hosts, *check_registry(options.get("address_registry")))


def unused_host_vars(fleet, host_vars):
    """host_vars keys that name no host of the listing (a typo's variables would be lost)."""
    hosts = set(fleet.hosts())
    return sorted(name for name in host_vars if name not in hosts)


# ------------------------------------------------------------------- the listing run's files

def listing_inventory(fleet, hypervisor_vars, host_vars):
    """The inventory of the listing run: every host with its variables (those of the
    configuration, then what to ask it), grouped by what it is asked."""
    hosts = {}
    for name in fleet.hosts():
        variables = dict(hypervisor_vars)
        variables.update(host_vars.get(name) or {})
        # Defined before the run so that a host that never answered reads as null, not as an
        # undefined variable that would fail the play collecting the answers.
        variables[VMS_ANSWER] = None
        variables[ADDRESSES_ANSWER] = None
        if name in fleet.hypervisors:
            variables[VM_INFO_ARGS] = fleet.vm_info_args(name)
        hosts[name] = variables
    children = {HYPERVISORS_GROUP: {"hosts": dict((name, None) for name in fleet.hypervisors)},
                REGISTRY_GROUP: {"hosts": {fleet.registry_host: None} if fleet.registry_host
                                 else {}}}
    return {"all": {"hosts": hosts, "children": children}}


def vm_info_task():
    args = dict((option, "{{ %s.%s | default(omit) }}" % (VM_INFO_ARGS, option))
                for option in CEPH_OPTIONS)
    args["kinds"] = "{{ %s.kinds }}" % VM_INFO_ARGS
    return {"name": "List the hypervisor's VMs", "gridvirt.kvm.vm_info": args,
            "when": "inventory_hostname in groups['%s']" % HYPERVISORS_GROUP,
            "register": VMS_ANSWER, "ignore_unreachable": True, "ignore_errors": True}


def address_info_task(registry):
    return {"name": "Read the address registry",
            "gridvirt.kvm.address_info": {"registry": registry},
            "when": "inventory_hostname in groups['%s']" % REGISTRY_GROUP,
            "register": ADDRESSES_ANSWER, "ignore_unreachable": True, "ignore_errors": True}


def answers_task(answers_path):
    def by_host(group, variable):
        return ("{{ dict(groups['%s'] | zip(groups['%s'] | map('extract', hostvars, '%s'))) }}"
                % (group, group, variable))
    return {
        "name": "Hand the answers to the inventory plugin",
        "ansible.builtin.copy": {"content": "{{ gridvirt_inventory_answers | to_json }}",
                                 "dest": answers_path, "mode": "0600"},
        "vars": {
            # Task variables beat the inventory's: this runs here, even when a hypervisor is
            # named localhost and has its own connection variables.
            "ansible_connection": "local", "ansible_become": False,
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "gridvirt_inventory_answers": {
                "hypervisors": by_host(HYPERVISORS_GROUP, VMS_ANSWER),
                "registry": by_host(REGISTRY_GROUP, ADDRESSES_ANSWER)}}}


def listing_playbook(fleet, answers_path):
    """One play on every host (each task only where it belongs, so the registry is read
    while the hypervisors list), then one on the controller writing all answers."""
    tasks = [vm_info_task()]
    if fleet.registry_host:
        tasks.append(address_info_task(fleet.registry))
    return [{"name": "List the VMs", "hosts": "all", "gather_facts": False, "tasks": tasks},
            {"name": "Collect the answers", "hosts": "localhost", "connection": "local",
             "gather_facts": False, "tasks": [answers_task(answers_path)]}]


def plain(value):
    """json.dumps fallback: a vaulted value as its text (the listing run has no vault
    password); anything else Ansible's YAML gives is a str, int, list or dict already."""
    return to_text(value)


# -------------------------------------------------------------------------- the listing run

def collections_root():
    """The directory holding the ansible_collections directory this file was loaded from
    (not its real path: the collection may be a link into a checkout), or None."""
    here = os.path.abspath(__file__)
    for _level in range(5):  # .../ansible_collections/gridvirt/kvm/plugins/inventory/vms.py
        here = os.path.dirname(here)
    if os.path.basename(here) != "ansible_collections":
        return None
    return os.path.dirname(here)


def listing_environment(environ):
    env = dict(environ)
    root = collections_root()
    if root:
        # The configured paths (environment or ansible.cfg), behind this copy of the collection.
        paths = [root] + [path for path in C.COLLECTIONS_PATHS if path != root]
        env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join(paths)
    env.update({
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
        "ANSIBLE_DISPLAY_OK_HOSTS": "0",
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "0",
        "ANSIBLE_NOCOLOR": "1",
        # The generated inventory is JSON for the yaml plugin, whatever the operator (or AWX,
        # for an inventory update) enabled; one that does not parse is an error, not empty.
        "ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.yaml",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
    })
    return env


def run_bounded(command, env, timeout, output_path):
    """-> (exit code, the tail of its output). Its own process group, so that a run past
    ``timeout`` is stopped with every worker and connection it started. Its output (stderr,
    and stdout where the quiet callback still reports failures) goes to a file, so that no
    process it leaves behind can hold a pipe, and this call, open."""
    with open(output_path, "wb") as output:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            raise AnsibleParserError("Listing the VMs took longer than %d seconds (option "
                                     "timeout) and was stopped. %s"
                                     % (timeout, tail(output_path)))
        except BaseException:  # interrupted (Ctrl-C, a job cancelled): leave nothing running
            stop_group(proc)
            raise
    return code, tail(output_path)


def stop_group(proc):
    """Stop the run as Ctrl-C would (ansible-playbook passes SIGINT on to its workers, which
    run in sessions of their own, and removes its temporary files); then SIGTERM, then
    SIGKILL for whatever is left of it."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal_group(proc.pid, sig)
        try:
            proc.wait(timeout=STOP_PATIENCE)
            break
        except subprocess.TimeoutExpired:
            continue
    signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def signal_group(group, sig):
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass  # nothing of it is left


def tail(path):
    with open(path, "rb") as handle:
        text = to_text(handle.read(), errors="surrogate_or_replace").strip()
    return "ansible-playbook said: %s" % text[-STDERR_TAIL:] if text else ""


def run_listing(fleet, hypervisor_vars, host_vars, timeout):
    """Ask every host; -> the answers as the listing run registered them."""
    work = tempfile.mkdtemp(prefix="gridvirt-inventory-")
    try:
        inventory, playbook = os.path.join(work, "hosts.json"), os.path.join(work, "list.json")
        answers = os.path.join(work, "answers.json")
        with open(inventory, "w") as handle:
            json.dump(listing_inventory(fleet, hypervisor_vars, host_vars), handle, default=plain)
        with open(playbook, "w") as handle:
            json.dump(listing_playbook(fleet, answers), handle, default=plain)
        # The Python and ansible-core of this inventory run, not whichever is first on PATH.
        command = [sys.executable, "-m", "ansible", "playbook", "-i", inventory,
                   "--forks", str(len(fleet.hosts())), playbook]
        code, said = run_bounded(command, listing_environment(os.environ), timeout,
                                 os.path.join(work, "output"))
        if not os.path.exists(answers):
            raise AnsibleParserError("Listing the VMs failed (ansible-playbook exit code %d). %s"
                                     % (code, said))
        with open(answers) as handle:
            return trimmed(json.load(handle))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def trimmed(answers):
    def keep(answer):
        if not isinstance(answer, dict):
            return None
        return dict((key, answer[key]) for key in KEPT_ANSWER_KEYS if key in answer)
    hypervisors = answers.get("hypervisors") or {}
    registry = list((answers.get("registry") or {}).values())
    return {"hypervisors": dict((name, keep(answer)) for name, answer in hypervisors.items()),
            "registry": keep(registry[0]) if registry else None}


# ------------------------------------------------------------------- answers -> VM records

def failure(answer, listing="vms"):
    """Why an answer holds no ``listing`` (a sentence), or None when it does."""
    if not isinstance(answer, dict):
        return "it gave no answer"
    msg = answer.get("msg") or "no reason given"
    if answer.get("unreachable"):
        return "unreachable: %s" % msg
    if answer.get("failed"):
        return "failed: %s" % msg
    if answer.get("skipped") or not isinstance(answer.get(listing), list):
        return "it gave no listing"
    return None


class VmRecord(object):
    """One VM as the inventory will hold it, and where it was found."""

    def __init__(self, vm, hypervisor, cluster=None):
        self.vm, self.hypervisor, self.cluster = vm, hypervisor, cluster
        self.name = vm.get("name")

    def place(self):
        if self.cluster is not None:
            return "cluster %s" % self.cluster
        return "standalone host %s" % self.hypervisor

    def libvirt_host(self, answers):
        return (answers["hypervisors"].get(self.hypervisor) or {}).get("host")


class Listing(object):
    """records: the VMs to add, in order; warnings: sentences; duplicates: sentences, one per
    VM skipped because its name was taken."""

    def __init__(self):
        self.records, self.warnings, self.duplicates = [], [], []


def hypervisor_warnings(fleet, answers):
    out = []
    for name in fleet.hypervisors:
        reason = failure(answers["hypervisors"].get(name))
        if reason:
            out.append("gridvirt.kvm.vms: hypervisor %s did not list its VMs (%s); its "
                       "standalone VMs are not in the inventory." % (name, reason))
    return out


def cluster_records(cluster, answers):
    """-> (records of the cluster's VMs from the first node that listed it, or a warning)."""
    reasons = []
    for node in cluster.nodes:
        answer = answers["hypervisors"].get(node)
        reason = failure(answer)
        if reason is None and not answer.get("cluster"):
            reason = "it answered without the cluster's VMs"
        if reason is None:
            return [VmRecord(vm, node, cluster.name) for vm in vms_of(answer, "cluster")], None
        reasons.append("%s: %s" % (node, reason))
    return [], ("gridvirt.kvm.vms: cluster %s is not in the inventory: none of its nodes listed "
                "it (%s)." % (cluster.name, "; ".join(reasons)))


def standalone_records(fleet, answers):
    records = []
    for name in fleet.hypervisors:
        answer = answers["hypervisors"].get(name)
        if failure(answer) is None:
            records += [VmRecord(vm, name) for vm in vms_of(answer, "standalone")]
    return records


def vms_of(answer, kind):
    return [vm for vm in answer["vms"] if isinstance(vm, dict) and vm.get("kind") == kind
            and isinstance(vm.get("name"), str) and vm["name"]]


def duplicate_sentence(record, first, answers):
    sentence = ("gridvirt.kvm.vms: two VMs are named %s, on %s and on %s; the one on %s is "
                "listed, the other not." % (record.name, first.place(), record.place(),
                                            first.place()))
    same = first.libvirt_host(answers)
    if same and same == record.libvirt_host(answers) and first.cluster is None:
        sentence += (" (%s and %s are the same machine, %s: list it once.)"
                     % (first.hypervisor, record.hypervisor, same))
    return sentence


def fleet_listing(fleet, answers):
    """The answers of a listing run (or the cache) -> Listing. No I/O."""
    listing = Listing()
    listing.warnings += hypervisor_warnings(fleet, answers)
    candidates = []
    for cluster in fleet.clusters:
        records, warning = cluster_records(cluster, answers)
        candidates += records
        listing.warnings += [warning] if warning else []
    candidates += standalone_records(fleet, answers)
    kept = {}
    for record in candidates:
        if record.name in kept:
            listing.duplicates.append(duplicate_sentence(record, kept[record.name], answers))
            continue
        kept[record.name] = record
        listing.records.append(record)
    return listing


def registry_addresses(fleet, answers):
    """-> ({vm: [its addresses]} from the registry, or {}; a warning or None)."""
    if not fleet.registry_host:
        return {}, None
    answer = answers.get("registry")
    reason = failure(answer, "addresses")
    if reason:
        return {}, ("gridvirt.kvm.vms: the address registry on %s could not be read (%s); "
                    "ansible_host comes from the addresses the hypervisors report."
                    % (fleet.registry_host, reason))
    by_vm = {}
    for address in answer["addresses"]:
        by_vm.setdefault(address.get("vm"), []).append(address)
    return by_vm, None


def first_ip(addresses):
    """The IP of the lowest-numbered NIC that has one, or None."""
    with_ip = [a for a in addresses or [] if isinstance(a, dict) and a.get("ip")]
    if not with_ip:
        return None
    return min(with_ip, key=lambda address: address.get("nic") or 0)["ip"]


def host_vars_of(record, registered):
    """The inventory variables of a VM; ``registered``: its addresses in the registry."""
    vm = record.vm
    fields = RELIABLE_WHEN_UNREADABLE if "error" in vm else VM_FIELDS
    variables = dict(("gridvirt_%s" % key, vm.get(key)) for key in fields)
    if "error" in vm:
        variables["gridvirt_error"] = vm["error"]
    else:
        variables["gridvirt_addresses"] = registered or vm.get("addresses") or []
    if record.cluster is not None:
        variables["gridvirt_cluster"] = record.cluster
    else:
        variables["gridvirt_hypervisor"] = record.hypervisor
    address = first_ip(registered) or first_ip(vm.get("addresses"))
    if address:
        variables["ansible_host"] = address
    return variables


def group_names(variables):
    """The plugin's own groups of a VM, before group-name sanitising."""
    names = ["gridvirt_kind_%s" % variables["gridvirt_kind"]]
    if variables.get("gridvirt_node"):
        names.append("gridvirt_node_%s" % variables["gridvirt_node"])
    if variables.get("gridvirt_status"):
        names.append("gridvirt_status_%s" % str(variables["gridvirt_status"]).lower())
    if variables.get("gridvirt_cluster") is not None:
        names.append("gridvirt_cluster_%s" % variables["gridvirt_cluster"])
    return names


# ------------------------------------------------------------------------------ the plugin

class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = PLUGIN

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(CONFIG_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        fleet = check_fleet(self._options)
        for name in unused_host_vars(fleet, self.get_option("host_vars")):
            self.display.warning("gridvirt.kvm.vms: host_vars names %s, which is neither a "
                                 "hypervisor nor the address registry's host." % name)
        self.populate(fleet, self.answers(fleet, path, cache))

    def answers(self, fleet, path, cache):
        """From the inventory cache when enabled and not flushed, else by a listing run
        (stored in the cache when enabled)."""
        use_cache = self.get_option("cache")
        key = self.get_cache_key(path)
        if use_cache and cache:
            try:
                cached = self._cache[key]
            except KeyError:
                cached = None  # not cached yet, or expired
            if isinstance(cached, dict) and isinstance(cached.get("hypervisors"), dict):
                return cached
        answers = run_listing(fleet, self.get_option("hypervisor_vars"),
                              self.get_option("host_vars"), self.get_option("timeout"))
        if use_cache:
            self._cache[key] = answers
        return answers

    def populate(self, fleet, answers):
        listing = fleet_listing(fleet, answers)
        registered, registry_warning = registry_addresses(fleet, answers)
        for warning in listing.warnings + ([registry_warning] if registry_warning else []):
            self.display.warning(warning)
        if listing.duplicates and self.get_option("strict"):
            raise AnsibleParserError(" ".join(listing.duplicates))
        for warning in listing.duplicates:
            self.display.warning(warning)
        for record in listing.records:
            self.add_vm(record, host_vars_of(record, registered.get(record.name)))

    def add_vm(self, record, variables):
        name = self.inventory.add_host(record.name)
        for key, value in variables.items():
            self.inventory.set_variable(name, key, value)
        for group in group_names(variables):
            self.inventory.add_child(self.inventory.add_group(self._sanitize_group_name(group)),
                                     name)
        self.construct(name)

    def construct(self, name):
        """compose, groups and keyed_groups, as Ansible's constructed plugins apply them."""
        strict = self.get_option("strict")
        self._set_composite_vars(self.get_option("compose"),
                                 self.inventory.get_host(name).get_vars(), name, strict=strict)
        variables = self.inventory.get_host(name).get_vars()
        self._add_host_to_composed_groups(self.get_option("groups"), variables, name,
                                          strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, name,
                                       strict=strict)
