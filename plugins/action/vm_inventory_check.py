# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Licensed under the Apache License 2.0 (see LICENSE), or at your option under the
# GNU General Public License version 3 or later (see https://www.gnu.org/licenses/gpl-3.0.txt).
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""Every VM of the play checked at once, on the controller (see the module of the same name
for the documentation): the deploy roles run it once per play instead of a dozen tasks per
VM. Reads the VMs' variables through ``hostvars``; each problem is a sentence naming the VM."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

ROLES = os.path.join(os.path.dirname(__file__), "..", "..", "roles")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
SIZE_RE = re.compile(r"^[0-9]+ *([KMGT]i?B?|B)?$", re.I)
NIC_KEYS = ("bridges", "ovs", "direct_interfaces")
ARGS = ("vms", "rendered", "host_cpus", "nodes", "colocation_group", "hypervisors", "known_hosts",
        "listings", "plan",
        "copy_disk_images", "role_variables", "role_options")


def role_options(role, entry_point):
    with open(os.path.join(ROLES, role, "meta", "argument_specs.yml")) as handle:
        return yaml.safe_load(handle)["argument_specs"][entry_point]["options"]


def vm_variable_spec(roles=()):
    """The VM variables of the vm_definition role (its main entry point less the role's
    own vm_definition_* options), and the vm_variables entry point of each of ``roles``."""
    spec = dict((k, v) for k, v in role_options("vm_definition", "main").items()
                if not k.startswith("vm_definition_"))
    for role in roles:
        spec.update(role_options(role, "vm_variables"))
    return spec


class VmVars(object):
    """One VM's variables, templated on first use (hostvars are lazy)."""

    def __init__(self, name, hostvars, templar, rendered=None):
        self.name, self._vars, self._templar = name, hostvars[name], templar
        # What vm_render resolved for the VM: state, template, image, disk_copy, cpuset.
        self.rendered = (rendered or {}).get(name) or {}

    def __contains__(self, key):
        return key in self._vars

    def get(self, key, default=None):
        if key not in self._vars:
            return default
        return self._templar.template(self._vars[key])


def variable_problems(vm, spec):
    given = dict((key, vm.get(key)) for key in spec if key in vm)
    result = ArgumentSpecValidator(spec).validate(given)
    return ["%s: %s" % (vm.name, msg) for msg in result.error_messages[:1]]


def number_problems(vm):
    def number(key):
        try:
            return int(vm.get(key))
        except (TypeError, ValueError):
            return None
    memory, cpus, priority = number("memory"), number("nb_cpu"), number("rt_priority")
    bad = (("memory" in vm and (memory is None or memory <= 0))
           or ("nb_cpu" in vm and (cpus is None or cpus <= 0))
           or ("rt_priority" in vm and not (priority is not None and 1 <= priority <= 99))
           or ("cpuset" in vm and not vm.rendered.get("cpuset")))
    if not bad:
        return []
    return ["%s: memory (MiB) and nb_cpu must be positive, rt_priority between 1 and 99, "
            "cpuset not empty (memory=%s, nb_cpu=%s, rt_priority=%s, cpuset=%s)."
            % (vm.name, vm.get("memory", "unset"), vm.get("nb_cpu", "unset"),
               vm.get("rt_priority", "unset"), vm.get("cpuset", "unset"))]


def disk_problems(vm, copy_images):
    disks = vm.get("additional_disks", vm.get("additional_disk", [])) or []
    mappings = [d for d in disks if isinstance(d, dict)]
    texts = [str(d) for d in disks if not isinstance(d, dict)]
    bad_sizes = [t for t in texts if not t.startswith("/") and not SIZE_RE.match(t)]
    bad_maps = [m for m in mappings if ("image" in m) == ("size" in m)]
    copied = [t for t in texts if t.startswith("/")] + [m["image"] for m in mappings
                                                        if "image" in m]
    missing = [p for p in copied if not os.path.isfile(p)] if copy_images and vm.rendered.get(
        "disk_copy") else []
    where = "%s: additional_disk(s) %s:" % (vm.name, disks)
    if bad_sizes:
        return ["%s sizes %s are not sizes like 512M or 10G (images must be absolute paths)."
                % (where, ", ".join(bad_sizes))]
    if bad_maps:
        return ["%s each mapping needs exactly one of image and size." % where]
    if missing:
        return ["%s the images %s do not exist on the controller." % (where, ", ".join(missing))]
    return []


def cpu_problems(vm, host_cpus):
    if not host_cpus:
        return []
    pinned = list(vm.rendered.get("cpuset") or []) + [
        int(n) for n in re.findall(r"[0-9]+", str(vm.get("emulatorpin", "")))]
    outside = sorted(set(cpu for cpu in pinned if int(cpu) >= host_cpus))
    if not outside:
        return []
    return ["%s: cpuset/emulatorpin name CPUs %s, but the hypervisors have CPUs 0-%d."
            % (vm.name, outside, host_cpus - 1)]


def own_macs(vm):
    macs = []
    for key in NIC_KEYS:
        for nic in vm.get(key) or []:
            if isinstance(nic, dict) and nic.get("mac_address"):
                macs.append(str(nic["mac_address"]).lower())
    return macs


def mac_problems(vms):
    """Duplicate MACs, naming both VMs (and a VM listing one twice)."""
    owners, problems = {}, []
    for vm in vms:
        macs = own_macs(vm)
        for mac in macs:
            owners.setdefault(mac, []).append(vm.name)
        if len(set(macs)) != len(macs):
            problems.append("%s: duplicate MAC address in bridges/ovs/direct_interfaces: the "
                            "VM lists one twice (%s)." % (vm.name, macs))
    for mac, names in sorted(owners.items()):
        if len(set(names)) > 1:
            problems.append("%s: duplicate MAC address in bridges/ovs/direct_interfaces: %s is "
                            "also used by %s." % (names[0], mac, ", ".join(sorted(set(names[1:])))))
    return problems


def file_problems(vm):
    state, template = vm.rendered.get("state"), vm.rendered.get("template")
    if template and not os.path.isfile(template):
        option = "xml_path" if "xml_path" in vm else "vm_template"
        return ["%s: %s %s does not exist on the controller." % (vm.name, option, template)]
    if state == "absent":
        return []
    image = vm.rendered.get("image")
    if not image:
        return ["%s: vm_disk is not set (nor vms_disks_directory)." % vm.name]
    if vm.rendered.get("disk_copy") and not os.path.isfile(image):
        return ["%s: vm_disk %s does not exist on the controller." % (vm.name, image)]
    return []


def placement_problems(vm, nodes, group):
    problems = []
    if nodes is not None:
        named = [vm.get(k) for k in ("preferred_host", "pinned_host") if vm.get(k)]
        unknown = [n for n in named if n not in nodes]
        if unknown:
            problems.append("%s: preferred_host/pinned_host %s is not a node of the cluster (%s)."
                            % (vm.name, ", ".join(unknown), ", ".join(sorted(nodes))))
    if group is not None:
        unknown = [n for n in vm.get("colocated_vms") or [] if n not in group]
        if unknown:
            problems.append("%s: colocated_vms names %s, not VMs of the play."
                            % (vm.name, ", ".join(unknown)))
    return problems


def plan_problems(vm, verdict):
    if not verdict or not verdict.get("error"):
        return []
    if verdict.get("xml_invalid"):
        return ["%s: the domain XML rendered from %s is not a valid libvirt domain: %s"
                % (vm.name, vm.rendered.get("template") or "the default template",
                   verdict["error"])]
    return ["%s: %s" % (vm.name, verdict["error"])]


def cpus_of(host_cpus, name):
    """host_cpus: one number for every VM (one cluster node), or one per VM (0: unknown)."""
    if isinstance(host_cpus, dict):
        return int(host_cpus.get(name) or 0)
    return int(host_cpus or 0)


def vm_problems(vm, spec, args):
    """The first problem of each kind the VM has, in the order the roles always checked."""
    problems = variable_problems(vm, spec)
    if problems:
        return problems
    if not NAME_RE.fullmatch(vm.name):
        return ["%s: a VM's inventory name is its name: 1 to 63 letters, digits, - or _, "
                "starting with a letter or digit." % vm.name]
    target = (args["hypervisors"] or {}).get(vm.name)
    if args["known_hosts"] is not None and target not in args["known_hosts"]:
        return ["%s: %s." % (vm.name, "hypervisor %s is not a host of the inventory" % target
                             if target else "no hypervisor, and the hypervisors group is empty")]
    for found in (number_problems(vm), disk_problems(vm, args["copy_disk_images"]),
                  cpu_problems(vm, cpus_of(args["host_cpus"], vm.name)),
                  file_problems(vm),
                  placement_problems(vm, args["nodes"], args["colocation_group"]),
                  plan_problems(vm, (args["plan"] or {}).get(vm.name))):
        if found:
            return found
    return []


def placements(vms, hypervisors, listings):
    """-> (moves {VM: the hypervisor it is on}, problems) of the VMs to deploy, from where
    the plans found them (``listings``: {hypervisor: [its VMs]}): a VM on another hypervisor
    than its own is moved there; one on two hypervisors is a problem, naming both."""
    moves, problems = {}, []
    for vm in vms:
        if vm.rendered.get("state") == "absent":
            continue
        found = sorted(host for host, names in listings.items() if vm.name in names)
        target = hypervisors.get(vm.name)
        if len(found) > 1:
            problems.append("%s: it is defined on %s: remove the copy that should not be "
                            "there, then deploy again." % (vm.name, " and ".join(found)))
        elif found and found[0] != target:
            moves[vm.name] = found[0]
    return moves, problems


def role_option_problems(role, task_vars, templar):
    """The options of ``role`` (its main entry point) as the task sees them, checked once for
    the play, as Ansible checks them per host when the role runs as a role."""
    spec = role_options(role, "main")
    given = dict((key, templar.template(task_vars[key])) for key in spec if key in task_vars)
    result = ArgumentSpecValidator(spec).validate(given)
    return ["%s: %s" % (role, msg) for msg in result.error_messages[:1]]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGS)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict((key, self._task.args.get(key)) for key in ARGS)
        hostvars = task_vars["hostvars"]
        vms = [VmVars(name, hostvars, self._templar, args["rendered"])
               for name in args["vms"] or []]
        spec = vm_variable_spec(args["role_variables"] or ())
        problems = []
        for role in args["role_options"] or ():
            problems += role_option_problems(role, task_vars, self._templar)
        for vm in vms:
            problems += vm_problems(vm, spec, args)
        problems += mac_problems(vms)
        moves, found = placements(vms, args["hypervisors"] or {}, args["listings"] or {})
        problems += found
        result["changed"] = False
        result["moves"] = moves
        # The VMs whose seed the deploy roles build, found here where every VM's variables
        # are read anyway (a task's loop over hostvars costs more than this whole check).
        result["cloud_init_vms"] = [vm.name for vm in vms
                                    if boolean(vm.get("cloud_init", False), strict=False)]
        if problems:
            result["failed"] = True
            result["msg"] = " ".join(problems)
        return result
