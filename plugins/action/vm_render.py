# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Licensed under the Apache License 2.0 (see LICENSE), or at your option under the
# GNU General Public License version 3 or later (see https://www.gnu.org/licenses/gpl-3.0.txt).
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""Every VM of the play rendered at once, on the controller (see the module of the same name
for the documentation). One task in one process instead of a task per VM: a per-VM task
forks a worker per VM, and each worker compiled the template again and copied every
variable before rendering it. Reads the VMs' variables through ``hostvars``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from collections import ChainMap

from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

try:  # ansible-core >= 2.19 templates only data it is told to trust.
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover - older ansible-core trusts every string
    def trust_as_template(value):
        return value

ARGS = ("vms", "disks_directory", "disk_copy", "seed_rbd_pool", "default_template",
        "addresses")
SEED_DIR = "/var/lib/libvirt/images"
# The template is named by a variable, never pasted into template text.
INCLUDE = "{% include _gridvirt_template %}"


def vm_state(variables):
    """vm_state, else SEAPATH's switches: enable: false keeps the VM out of Pacemaker,
    nostart: true deploys it without starting it."""
    if "vm_state" in variables:
        return variables.get("vm_state")
    if not boolean(variables.get("enable", True), strict=False):
        return "disabled"
    return "present" if boolean(variables.get("nostart", False), strict=False) else "running"


def relative_to(path, variables, playbook_dir):
    """A relative path from the inventory's directory when the file is there (SEAPATH keeps
    inventories/ beside playbooks/), else from the playbook's."""
    if not path or os.path.isabs(os.path.expanduser(path)):
        return path
    beside_inventory = "%s/%s" % (variables.get("inventory_dir"), path)
    if os.path.exists(os.path.expanduser(beside_inventory)):
        return beside_inventory
    return "%s/%s" % (playbook_dir, path)


def cpuset(variables):
    """cpuset as a list of CPU numbers: a list or SEAPATH's "2,3" string."""
    value = variables.get("cpuset")
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    try:
        return [int(item) for item in items]
    except (TypeError, ValueError):
        return []  # vm_inventory_check refuses a cpuset that gives no CPU, in a sentence


def image(name, variables, options, playbook_dir):
    disks_dir = options["disks_directory"] or ""
    if "vm_disk" in variables:
        path = variables.get("vm_disk") or ""
    else:
        path = "%s/%s.qcow2" % (disks_dir, name) if disks_dir else ""
    if not options["disk_copy"]:
        return path
    return relative_to(path, variables, playbook_dir)


def seeds(name, variables, pool):
    """The cloud-init seed vm_definition's after_plan builds when cloud_init is true: a file
    on the hypervisor, or for cluster VMs (a pool given) the RBD image seed_<vm>."""
    if not boolean(variables.get("cloud_init", False), strict=False):
        return "", ""
    if pool:
        return "", "%s/seed_%s" % (pool, name)
    return "%s/%s-seed.img" % (SEED_DIR, name), ""


def template_of(variables):
    """xml_path (a finished XML file) wins over vm_template; -> (path, is_xml_file)."""
    if variables.get("xml_path"):
        return variables.get("xml_path"), True
    return variables.get("vm_template") or "", False


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGS)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        options = dict((key, self._task.args.get(key)) for key in ARGS)
        options["disk_copy"] = boolean(options["disk_copy"]
                                       if options["disk_copy"] is not None else True,
                                       strict=False)
        self._sources, self._templars = {}, {}
        hostvars, playbook_dir = task_vars["hostvars"], task_vars.get("playbook_dir", "")
        vms = {}
        for name in options["vms"] or []:
            try:
                vms[name] = self._resolve(name, hostvars, options, playbook_dir)
            except AnsibleError as error:
                result.update(failed=True, msg="%s: its domain XML could not be rendered: %s"
                              % (name, error))
                return result
        result.update(changed=False, vms=vms)
        return result

    def _resolve(self, name, hostvars, options, playbook_dir):
        # hostvars[name] is a mapping that templates each variable when it is read.
        host_vars = variables = hostvars[name]
        state = vm_state(variables)
        template, is_xml_file = template_of(variables)
        template = relative_to(template, variables, playbook_dir)
        rendered = {"state": state, "cpuset": cpuset(variables), "template": template,
                    "image": image(name, variables, options, playbook_dir),
                    "disk_copy": options["disk_copy"], "xml": ""}
        # A template that does not exist renders nothing: vm_inventory_check names it.
        if state == "absent" or (template and not os.path.isfile(os.path.expanduser(template))):
            return rendered
        if is_xml_file:
            rendered["xml"] = self._source(template).rstrip()
            return rendered
        seed, seed_rbd = seeds(name, variables, options["seed_rbd_pool"])
        addresses = [a for a in options["addresses"] or [] if a.get("vm") == name]
        extra = {"vm": host_vars, "addresses": addresses, "cloud_init_seed": seed,
                 "cloud_init_seed_rbd": seed_rbd}
        rendered["xml"] = self._render(template or options["default_template"], extra,
                                       hostvars.raw_get(name))
        return rendered

    def _source(self, path):
        """A template's text, read once per run whichever VM uses it."""
        path = os.path.expanduser(path)
        if path not in self._sources:
            try:
                self._sources[path] = self._loader.get_text_file_contents(path)
            except AnsibleError as error:
                raise AnsibleError("could not read the template %s: %s" % (path, error))
        return self._sources[path]

    def _render(self, path, extra, raw_vars):
        """The template with the VM's variables, as the template lookup would render it
        running for that VM: ``vm`` and the extra names first, then all its variables
        (``raw_vars``, untemplated: Jinja templates them on use, as it does for a task).
        Through an include, so that Jinja compiles each template once for the whole run
        (its environment caches what it loads; a template string is compiled at every call)."""
        path = os.path.expanduser(path)
        directory, name = os.path.split(path)
        if directory not in self._templars:
            self._templars[directory] = self._templar.copy_with_new_env(searchpath=[directory])
        templar = self._templars[directory]
        templar.available_variables = ChainMap(dict(extra, _gridvirt_template=name), raw_vars)
        xml = templar.template(trust_as_template(INCLUDE), escape_backslashes=False,
                               preserve_trailing_newlines=True)
        # Jinja drops a template's last newline where it is included; the template lookup
        # keeps it, and so does this (the XML stays byte for byte what it was).
        return xml + "\n" if self._source(path).endswith("\n") else xml
