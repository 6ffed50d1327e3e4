# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""A cluster VM as one read finds it, and as a plan leaves it: its RBD group and images,
its stored intent, its Pacemaker primitive and status. The lifecycle reads the VM once; each
planned step updates the view, so the next step is planned against the VM as it will be
(check mode then predicts what a real run does)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

from ansible_collections.gridvirt.kvm.plugins.module_utils import pacemaker_cib as pcib
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_disks as disks
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import cluster_intent as ci
from ansible_collections.gridvirt.kvm.plugins.module_utils._cluster import seapath_layout as seapath
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import system_image

# Transient node attribute the resource agent sets when it starts a VM: the sha256 of the
# definition it started with (restart_required compares it with the stored one).
STARTED_DIGEST_ATTR = "gridvirt-xml-%s"


def xml_digest(xml_text):
    """What the resource agent records: sha256 of the file `rbd image-meta get` writes."""
    return hashlib.sha256((xml_text + "\n").encode("utf-8")).hexdigest()


class ClusterView(object):
    """``exists``: the VM's group holds its system image; ``stored``: the metadata as stored,
    ``intent``: read our way (a vm_manager VM's too); ``images``: system first;
    ``primitive``: its Pacemaker primitive (None: disabled); ``status``, ``node``: from
    crm_mon; ``restart_pending``: it runs another definition than the stored one;
    ``leftovers``: what an interrupted run left (staged, retired images, incomplete group)."""

    def __init__(self, name):
        self.name = name
        self.exists = False
        self.stored = {}
        self.intent = {}
        self.images = []
        self.primitive = None
        self.status = "Undefined"
        self.node = None
        self.restart_pending = False
        self.starting = False  # the plan starts it: the node it will run on is not known
        self.leftovers = Leftovers()
        self.cleared = set()  # image names a step of the plan deletes before the next ones

    @property
    def enabled(self):
        return self.primitive is not None

    @property
    def target_role(self):
        return pcib.meta_value(self.primitive, "target-role") if self.enabled else None


class Leftovers(object):
    """What a killed run left of a VM: ``staged`` images (a create or re-create cut short),
    ``retired`` ones (a swap cut short), an ``incomplete`` group (its system image never
    joined)."""

    def __init__(self, staged=(), retired=(), incomplete=False, members=()):
        self.staged = list(staged)
        self.retired = list(retired)
        self.incomplete = incomplete
        self.members = list(members) if incomplete else []

    def __bool__(self):
        return bool(self.staged or self.retired or self.incomplete)

    __nonzero__ = __bool__

    def names(self):
        return self.staged + self.retired

    def removed(self):
        """The image names the clearing deletes (a new VM may take them)."""
        return set(self.staged) | set(self.members)


def read_view(store, cluster, name):
    """The VM ``name``: one RBD read of its group and metadata, the cached CIB and status."""
    view = ClusterView(name)
    if not name:
        return view
    grouped = store.vm_exists(name)
    members = store.images_of(name) if grouped else []
    view.leftovers = _leftovers(store, name, grouped, members)
    system = _system_member(name, members)
    if system is None:
        return view
    view.exists = True
    view.images = [_final_name(image) for image in members]
    view.stored = store.metadata(system)
    view.intent = seapath.adopted(view.stored)
    view.primitive = pcib.primitive(cluster.cib(), name)
    view.status, view.node = cluster.status()["resources"].get(name, ("Disabled", None))
    view.restart_pending = _restart_pending(cluster, view)
    return view


def _leftovers(store, name, grouped, members):
    retired = [n for n in members if n.startswith(disks.RETIRED_PREFIX)]
    staged = sorted(n for n in store.image_names() if n.startswith(disks.STAGING_PREFIX)
                    and belongs(n[len(disks.STAGING_PREFIX):], name))
    incomplete = grouped and system_image(name) not in members and not retired
    return Leftovers(staged, retired, incomplete, members)


def _system_member(name, members):
    """The member that holds the VM's definition: its system image, or that image renamed
    aside by a swap cut short (the clearing of leftovers gives it its name back)."""
    for candidate in (system_image(name), disks.RETIRED_PREFIX + system_image(name)):
        if candidate in members:
            return candidate
    return None


def _final_name(image):
    return image[len(disks.RETIRED_PREFIX):] if image.startswith(
        disks.RETIRED_PREFIX) else image


def _restart_pending(cluster, view):
    """The running guest started from another definition than the stored one: the resource
    agent records the digest of what it started on the node's attributes."""
    if view.status != "Started" or not view.node or ci.KEY_XML not in view.intent:
        return False
    started = pcib.node_attribute(cluster.cib(), view.node, STARTED_DIGEST_ATTR % view.name)
    return started is not None and started != xml_digest(view.intent[ci.KEY_XML])


def belongs(image, vm):
    """Is this one of the VM's image names (not those of a VM whose name extends it)?"""
    return image == system_image(vm) or re.fullmatch(r"data_%s_[0-9]+" % re.escape(vm),
                                                     image) is not None
