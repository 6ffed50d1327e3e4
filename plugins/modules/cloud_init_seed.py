#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Licensed under the Apache License 2.0 (see LICENSE), or at your option under the
# GNU General Public License version 3 or later (see https://www.gnu.org/licenses/gpl-3.0.txt).
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cloud_init_seed
short_description: Give a VM its addresses and hostname through a cloud-init NoCloud seed
version_added: 0.2.0
description:
  - Builds the cloud-init NoCloud seed of a VM from the addresses the address registry
    allocated to its NICs, and writes it as a FAT image labelled C(CIDATA) (the NoCloud
    data source reads C(meta-data), C(network-config) and C(user-data) from it).
  - C(network-config) is version 2; each NIC is matched by its MAC address and named
    C(eth<nic>); a NIC with an IP address gets it statically with its gateway
    (C(gateway4)/C(gateway6)), DNS servers and the pool's domain as search domain; a NIC with
    only a MAC address gets DHCPv4.
  - C(user-data) sets the hostname, the FQDN and, when given, the SSH keys of the default user.
  - The instance-id changes exactly when a document changes. cloud-init applies the network
    configuration and its per-instance settings again only then, at the next boot; a new
    instance-id also makes cloud-init regenerate the guest's SSH host keys (its C(ssh_deletekeys)
    default).
  - Whether the seed is current is decided on its documents, not on the image bytes, so a
    second run with the same inputs reports no change.
  - To attach the seed to a VM, set the VM's C(cloud_init_seed) variable to O(path); the VM
    template (C(templates/vm/domain.xml.j2)) attaches that file as a read-only SATA CD-ROM.
  - Cluster VMs may start on any node, so give them O(store=rbd). The image then goes into the
    RBD image C(seed_<vm>) of O(pool), and the VM's definition attaches it as an RBD CD-ROM
    (the VM template does with the VM's C(cloud_init_seed_rbd) variable set to RV(image)).
    QEMU reads it over RBD on whichever node starts the VM or receives it by live
    migration; nothing is written on the nodes.
author:
  - gridvirt.kvm contributors (@gridvirt)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - gridvirt.kvm.ceph
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  vm:
    description:
      - Name of the VM. With no O(hostname) it is the guest's hostname too, so it must then
        be a valid hostname (no C(_)).
    type: str
    required: true
  addresses:
    description:
      - The VM's addresses, one per NIC, as the address registry returns them. Keys other
        than those below are not used.
    type: list
    elements: dict
    default: []
    suboptions:
      vm:
        description: VM the address belongs to; when given it must be O(vm).
        type: str
      nic:
        description:
          - Index of the NIC in the VM definition (0 for the first); the guest names it
            C(eth<nic>). Defaults to the address's position in the list.
        type: int
      pool:
        description: Address pool the address comes from (not used in the seed).
        type: str
      mac:
        description: MAC address of the NIC; cloud-init finds the NIC by it.
        type: str
        required: true
      ip:
        description: IPv4 or IPv6 address of the NIC; none for a NIC configured by DHCPv4.
        type: str
      prefix:
        description: Prefix length of O(addresses[].ip) (required with it).
        type: int
      gateway:
        description: Default gateway through this NIC, of the same IP version as the address.
        type: str
      dns_servers:
        description: DNS servers.
        type: list
        elements: str
      domain:
        description:
          - DNS domain of the pool; the search domain, and the first NIC's domain makes the
            guest's FQDN.
        type: str
      fqdn:
        description: FQDN the registry gives the NIC (not used in the seed; see O(hostname)).
        type: str
      fixed:
        description: Whether the registry holds a fixed MAC or IP for the NIC (not used in the seed).
        type: bool
  hostname:
    description:
      - Hostname of the guest. A name with dots is taken as the FQDN and its first label as
        hostname; otherwise the FQDN is C(<hostname>.<domain>) with the domain of the first
        NIC that has one. Defaults to O(vm).
    type: str
  ssh_authorized_keys:
    description:
      - OpenSSH public keys (one line each) installed for the guest's default user.
    type: list
    elements: str
    default: []
  path:
    description:
      - Seed image on the hypervisor; its directory must exist.
      - Defaults to C(/var/lib/libvirt/images/<vm>-seed.img).
    type: path
  store:
    description:
      - C(file) writes the image to O(path) on the host the task runs on.
      - C(rbd) writes it into the RBD image C(seed_<vm>) of O(pool), for cluster VMs
        (O(path) is not used then).
    type: str
    choices: [file, rbd]
    default: file
  state:
    description:
      - C(present) writes the seed when its documents differ; C(absent) removes the file at
        O(path), or with O(store=rbd) the image (a VM still running with it attached keeps
        it busy; remove the VM first).
    type: str
    choices: [present, absent]
    default: present
requirements:
  - C(mkfs.vfat) and C(mcopy) on the host (Debian packages C(dosfstools) and C(mtools)).
  - With O(store=rbd), the librados and librbd Python bindings (Debian packages
    C(python3-rados) and C(python3-rbd)).
notes:
  - The seed image is mode 0644; it holds no secret (public keys, addresses).
"""

EXAMPLES = r"""
- name: Seed of a standalone VM from its allocated addresses
  gridvirt.kvm.cloud_init_seed:
    vm: web1
    addresses: "{{ allocation.addresses }}"
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMn1R0ZQv8pJ0Fh0cZ4xgJmW8wXQw3b6dE2nYt3kK2rQ ops@example.org
  register: seed

- name: Seed of a cluster VM, available on whichever node Pacemaker starts it
  gridvirt.kvm.cloud_init_seed:
    vm: db1
    addresses: "{{ allocation.addresses }}"
    store: rbd
    pool: rbd
  register: cluster_seed
# Then give the VM the variable cloud_init_seed: "{{ seed.path }}", or for the cluster VM
# cloud_init_seed_rbd: "{{ cluster_seed.image }}".
"""

RETURN = r"""
path:
  description: Seed image path on the hypervisor (for the VM's C(cloud_init_seed) variable).
  returned: when O(store=file)
  type: str
  sample: /var/lib/libvirt/images/web1-seed.img
image:
  description: The seed's RBD image as C(<pool>/<image>) (for the VM's C(cloud_init_seed_rbd) variable).
  returned: when O(store=rbd)
  type: str
  sample: rbd/seed_db1
instance_id:
  description: The seed's instance-id; it changes when any document changes.
  returned: when O(state=present)
  type: str
  sample: web1-3f9a1c0d2b7e
network_config:
  description: The network-config document (version 2).
  returned: when O(state=present)
  type: dict
  sample:
    version: 2
    ethernets:
      eth0:
        match: {macaddress: "02:67:76:12:34:56"}
        set-name: eth0
        addresses: [192.0.2.10/24]
        gateway4: 192.0.2.1
        nameservers: {addresses: [192.0.2.53], search: [example.org]}
hostname:
  description: Hostname of the guest.
  returned: when O(state=present)
  type: str
  sample: web1
fqdn:
  description: FQDN of the guest.
  returned: when O(state=present)
  type: str
  sample: web1.example.org
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gridvirt.kvm.plugins.module_utils import cloud_init_seed as cis
from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError
from ansible_collections.gridvirt.kvm.plugins.module_utils._core import spec
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_names import seed_image
from ansible_collections.gridvirt.kvm.plugins.module_utils.rbd_store import RbdStore

ADDRESS_OPTIONS = dict(
    vm=dict(type="str"),
    nic=dict(type="int"),
    pool=dict(type="str"),
    mac=dict(type="str", required=True),
    ip=dict(type="str"),
    prefix=dict(type="int"),
    gateway=dict(type="str"),
    dns_servers=dict(type="list", elements="str"),
    domain=dict(type="str"),
    fqdn=dict(type="str"),
    fixed=dict(type="bool"),
)


def argument_spec():
    args = dict(
        vm=dict(type="str", required=True),
        addresses=dict(type="list", elements="dict", default=[], options=ADDRESS_OPTIONS),
        hostname=dict(type="str"),
        ssh_authorized_keys=dict(type="list", elements="str", default=[], no_log=False),
        path=dict(type="path"),
        store=dict(type="str", choices=["file", "rbd"], default="file"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    args.update(spec.ceph_argument_spec())
    return args


def seed_store(params, run, path):
    if params["store"] == "file":
        return cis.FileSeedStore(run, path), None
    spec.validate_pool_name(params["pool"])
    connection = RbdStore(params["ceph_conf"], params["ceph_user"], params["keyring"],
                          params["pool"], run,
                          timeout=spec.validate_connect_timeout(params["connect_timeout"]))
    return cis.RbdSeedStore(run, connection, params["vm"]), connection


def ensure_present(seed, store, check_mode):
    changed = store.current_digest() != seed.digest
    if changed and not check_mode:
        store.write(seed)
    return dict(changed=changed, instance_id=seed.instance_id,
                network_config=seed.network_config, hostname=seed.hostname, fqdn=seed.fqdn)


def ensure_absent(store, check_mode):
    present = store.exists()
    if present and not check_mode:
        store.remove()
    return dict(changed=present)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    connection = None
    try:
        spec.validate_vm_name(params["vm"])
        path = cis.check_path(params["path"] or cis.seed_file(params["vm"]))
        # Every input is checked before any I/O: bad input changes nothing.
        seed = cis.Seed(params["vm"], params["addresses"], params["hostname"],
                        params["ssh_authorized_keys"]) if params["state"] == "present" else None
        store, connection = seed_store(params, module.run_command, path)
        if seed is not None:
            result = ensure_present(seed, store, module.check_mode)
        else:
            result = ensure_absent(store, module.check_mode)
    except VmError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    finally:
        if connection is not None:
            connection.close()
    where = dict(path=path) if params["store"] == "file" else dict(
        image="%s/%s" % (params["pool"], seed_image(params["vm"])))
    module.exit_json(**dict(where, **result))


if __name__ == "__main__":
    main()
