# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""Many VMs of one kind planned in one call, read only (deploy_plan): each VM's options go
through its module's argument spec and request, then through the one lifecycle in check
mode, all over one connection. A VM that does not exist yet and has no image is only checked
(its definition against libvirt's schema) and said to need its image: the deploy roles stage
images for those VMs alone. A problem with one VM is that VM's ``error``, never the call's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gridvirt.kvm.plugins.module_utils import domain_xml as dx
from ansible_collections.gridvirt.kvm.plugins.module_utils._address import registry
from ansible_collections.gridvirt.kvm.plugins.module_utils._address.request import (
    batch_request, open_store)
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import (
    InvalidDefinition, VmError)
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import lifecycle
from ansible_collections.gridvirt.kvm.plugins.module_utils._core.request import (
    validated_params)


class Kind(object):
    """One kind of VM as the planner needs it: its module's ``argument_spec``, its request
    class, its backend class (``backend(request, run, warn, shared=None)``, with
    ``list_vms()`` and ``check_new_definition(request)``), and whether its ``metadata``
    option merges into the VM's metadata (then keys it does not set are kept anyway)."""

    def __init__(self, argument_spec, request, backend, metadata_merges=False):
        self.argument_spec = argument_spec
        self.request = request
        self.backend = backend
        self.metadata_merges = metadata_merges


class Planner(object):
    """Plans VMs over one connection, opened by the listing of the VMs there are."""

    def __init__(self, kind, common, run, warn):
        self.kind, self.common, self.run, self.warn = kind, common, run, warn
        request = self.request(command="list_vms")
        self.connection = kind.backend(request, run, warn)
        try:
            listed = lifecycle.run(request, self.shared_backend(request), check_mode=True)
        except BaseException:
            self.close()
            raise
        self.listed = listed["vms"]
        self.existing = set(listed["list_vms"])

    def request(self, **options):
        """The kind's request for ``options`` (over the common ones), as its module would
        build it."""
        return self.kind.request(validated_params(self.kind.argument_spec,
                                                  dict(self.common, **options)))

    def shared_backend(self, request):
        return self.kind.backend(request, self.run, self.warn, shared=self.connection)

    def verdict(self, options):
        """What converging one VM with ``options`` would do: the check-mode result of its
        module (``changed``, ``changes``, the VM's report), with ``exists`` and
        ``image_needed``; or ``error`` (and ``xml_invalid`` when it is its definition)."""
        options = dict(options)
        kept = options.pop("keep_metadata", None) or []
        try:
            parse_check(options.get("xml"))
            exists = options.get("name") in self.existing
            if kept and exists and not self.kind.metadata_merges:
                options["metadata"] = self.with_kept_metadata(options, kept)
            request = self.request(**options)
            if not exists and not request.system_image and request.state not in (None, "absent"):
                return self.new_without_image(request, options)
            result = lifecycle.run(request, self.shared_backend(request), check_mode=True)
        except InvalidDefinition as exc:
            return {"error": exc.msg, "xml_invalid": True}
        except VmError as exc:
            return {"error": exc.msg}
        result.pop("diff", None)
        result.update(exists=exists, image_needed=False, options=options)
        return result

    def with_kept_metadata(self, options, kept):
        """The options' metadata with the ``kept`` keys it does not set at their current
        values (the deploy roles' deployed_image_sha1, which only they change)."""
        status = self.request(name=options["name"], command="status")
        current = lifecycle.run(status, self.shared_backend(status), check_mode=True)
        metadata = dict((k, v) for k, v in (current.get("metadata") or {}).items()
                        if k in kept)
        metadata.update(options.get("metadata") or {})
        return metadata

    def new_without_image(self, request, options):
        """A VM to create whose image is not staged yet: its definition is checked, the
        rest waits for the image."""
        self.shared_backend(request).check_new_definition(request)
        return {"name": request.name, "status": "Undefined", "exists": False,
                "changed": True, "changes": ["created VM %s" % request.name],
                "image_needed": True, "options": options}

    def close(self):
        self.connection.close()


def parse_check(xml_text):
    """A definition that is not a well-formed <domain> is said so as a definition problem
    (the request would only name the option)."""
    if xml_text:
        try:
            dx.parse_domain(xml_text)
        except VmError as exc:
            raise InvalidDefinition(exc.msg)


def plan_all(kind, common, vms, run, warn, describe=None):
    """-> {"vms": {name: verdict}, "listed": [list_vms' vms]} for ``vms`` (each VM's
    options; ``common``: the options every VM shares, its connection's among them), plus
    what ``describe(backend)`` returns of the place the VMs were planned on."""
    planner = Planner(kind, common, run, warn)
    try:
        verdicts = dict((str(options.get("name")), planner.verdict(options)) for options in vms)
        result = {"vms": verdicts, "listed": planner.listed}
        if describe is not None:
            result.update(describe(planner.connection))
        return result
    finally:
        planner.close()


def predicted_addresses(spec, run):
    """(changed, [address]) the address module's batch would give the play's pools and NICs
    (``spec``: its registry, pools and nics), read without writing: the deploy roles plan with
    these MACs and run the real batch only when it changes something."""
    pools, asks = batch_request(dict(spec, state="present"))
    store = open_store(spec["registry"], run)
    try:
        return store.read(lambda state: registry.converge(state, pools, asks))
    finally:
        store.close()


def addresses_by_vm(addresses):
    by_vm = {}
    for address in addresses:
        by_vm.setdefault(address["vm"], []).append(address)
    return by_vm


def with_registry_macs(vms, addresses):
    """Each VM's options with its NICs' registry MACs set in its definition. A definition that
    does not parse is left as it is: planning it reports it, for that VM."""
    by_vm = addresses_by_vm(addresses)
    return [_with_macs(options, by_vm.get(str(options.get("name")), [])) for options in vms]


def with_kept_addresses(vms, addresses):
    """Each VM's options with its own addresses as its ``addresses`` option (cluster VMs keep
    them for the hooks their resource agent runs); a VM to remove, or with none, unchanged."""
    by_vm = addresses_by_vm(addresses)
    planned = []
    for options in vms:
        own = by_vm.get(str(options.get("name")))
        keeps = own and options.get("state") != "absent"
        planned.append(dict(options, addresses=own) if keeps else options)
    return planned


def _with_macs(options, addresses):
    if not addresses or not options.get("xml"):
        return options
    try:
        root = dx.parse_domain(options["xml"])
    except VmError:
        return options
    for address in addresses:
        dx.set_mac(root, address["nic"], address["mac"])
    return dict(options, xml=dx.to_string(root))
