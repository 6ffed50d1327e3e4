# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The site hooks of a cluster VM, as our resource agent (ocf:gridvirt:VirtualDomain) runs
them on the node where Pacemaker starts or stops it -- also after a failover, when no Ansible
runs. The hooks themselves are run by the collection's hooks layer (hooks.py, installed
beside this file by the hypervisor role).

    python3 gridvirt_hooks.py preboot|disallocate --vm NAME --node NODE --action ACTION --xml FILE
                              [--image-meta FILE] [--timeout SECONDS]
    python3 gridvirt_hooks.py migrate-in --vm NAME [--ceph-conf FILE --ceph-user ID
                              --ceph-keyring FILE]    (the domain XML on stdin)

preboot (action "start" becomes "failover" when the image's metadata says the VM's last run,
on another node, never stopped): the XML a hook printed, once checked (the same domain, libvirt's schema), replaces
FILE for this boot and the exit status is 0; 3 when no hook printed one; 1 with the
sentence on stderr when a hook refused or printed something unusable. disallocate: exit 0,
its failures on stderr. migrate-in (libvirt's qemu hook on a live migration's target, any
kind of VM): the preboot hooks with action "migrate", with a cluster VM's metadata and
addresses read from its image when a Ceph client is given; the XML one printed goes to
stdout (libvirt receives the guest with it), nothing when none did; a refusal exits 1."""

import argparse
import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hooks  # noqa: E402  pylint: disable=wrong-import-position


def run(argv, data=None):
    """The hooks layer's command runner: an argument list, text in and out."""
    proc = subprocess.run(argv, input=data, capture_output=True, text=True, errors="replace",
                          check=False)
    return proc.returncode, proc.stdout, proc.stderr


def boot_xml_refusal(stored_xml, boot_xml, vm):
    """Why the XML a preboot hook printed cannot boot the VM (None: it can): it must be the
    same domain (name and UUID) and pass libvirt's schema."""
    from lxml import etree

    try:
        stored = parse(stored_xml)
        boot = parse(boot_xml)
    except etree.XMLSyntaxError as exc:
        return "The preboot XML of VM %s is not well-formed XML: %s." % (vm, exc)
    for field in ("name", "uuid"):
        if boot.findtext(field) != stored.findtext(field):
            return "The preboot XML of VM %s names another domain (its %s differs)." % (
                vm, field)
    rc, out, err = run(["virt-xml-validate", "-", "domain"], data=boot_xml)
    if rc != 0:
        said = (err.strip() or out.strip()).splitlines()
        return "The preboot XML of VM %s does not pass libvirt's schema: %s." % (
            vm, said[0] if said else "exit status %d" % rc)
    return None


def arguments(argv):
    parser = argparse.ArgumentParser(prog="gridvirt_hooks.py")
    parser.add_argument("stage", choices=("preboot", "disallocate", "migrate-in"))
    parser.add_argument("--vm", required=True)
    for option in ("--node", "--action", "--xml"):
        parser.add_argument(option)
    parser.add_argument("--kind", default="cluster")
    parser.add_argument("--image-meta")
    parser.add_argument("--timeout", type=int, default=hooks.DEFAULT_TIMEOUT)
    # migrate-in on a cluster node: the Ceph client that reads a cluster VM's image metadata.
    parser.add_argument("--ceph-conf", default="/etc/ceph/ceph.conf")
    parser.add_argument("--ceph-user")
    parser.add_argument("--ceph-keyring")
    args = parser.parse_args(argv)
    if args.stage != "migrate-in" and not (args.node and args.action and args.xml):
        parser.error("%s needs --node, --action and --xml" % args.stage)
    return args


def read_text(path, default=""):
    """A file's text; ``default`` when it is gone (a stop after the node restarted)."""
    if not path or not os.path.exists(path):
        return default
    with open(path) as source:
        return source.read()


def parse(text):
    """lxml with the hardened parser of the collection (no entities, no network)."""
    from lxml import etree  # Debian's python3-lxml, a package of every hypervisor

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    return etree.fromstring(text.encode(), parser)


def system_image_of(xml, vm):
    """A cluster VM's RBD image <pool>/system_<vm>, among its disks; None for any other VM,
    a standalone one (a live move between hosts)."""
    for source in parse(xml).iterfind("devices/disk/source[@protocol='rbd']"):
        if source.get("name", "").endswith("/system_%s" % vm):
            return source.get("name")
    return None


# libvirtd waits for its hook: a Ceph cluster that does not answer must not hold the
# migration for long, it only leaves the document without the VM's metadata.
CEPH_READ_TIMEOUT = 10


def image_metadata(args, image):
    """The metadata of a cluster VM's image, read with this node's Ceph client; {} when it
    cannot be read (the hooks then run without the VM's metadata and addresses)."""
    if not args.ceph_user:
        return {}
    client = ["--conf", args.ceph_conf, "--id", args.ceph_user]
    if args.ceph_keyring:
        client += ["--keyring", args.ceph_keyring]
    rc, out, _err = run(["timeout", str(CEPH_READ_TIMEOUT), "rbd"] + client
                        + ["image-meta", "list", image, "--format", "json"])
    try:
        meta = json.loads(out) if rc == 0 else {}
    except ValueError:
        meta = {}
    return meta if isinstance(meta, dict) else {}


def migrate_in(args):
    """libvirt's qemu hook, "migrate begin" on the target."""
    xml = sys.stdin.read()
    image = system_image_of(xml, args.vm)
    meta = image_metadata(args, image) if image else {}
    document = hooks.document_for(args.vm, "cluster" if image else "standalone",
                                  socket.gethostname(), "migrate", xml,
                                  hooks.user_metadata(meta), hooks.stored_addresses(meta))
    try:
        boot_xml = hooks.Hooks(run, timeout=args.timeout).preboot(document)
    except hooks.HookError as exc:
        sys.stderr.write(str(exc) + "\n")
        return 1
    if boot_xml is not None:
        refusal = boot_xml_refusal(xml, boot_xml, args.vm)
        if refusal:
            sys.stderr.write(refusal + "\n")
            return 1
        sys.stdout.write(boot_xml)
    return 0


def main(argv=None):
    args = arguments(argv)
    if args.stage == "migrate-in":
        return migrate_in(args)
    image_meta = json.loads(read_text(args.image_meta, "{}") or "{}")
    xml = read_text(args.xml)
    action = args.action
    if args.stage == "preboot" and action == "start":
        action = hooks.start_action(image_meta, args.node)
    document = hooks.document_for(args.vm, args.kind, args.node, action, xml,
                                  hooks.user_metadata(image_meta),
                                  hooks.stored_addresses(image_meta))
    runner = hooks.Hooks(run, timeout=args.timeout)
    if args.stage == "disallocate":
        for warning in runner.disallocate(document):
            sys.stderr.write(warning + "\n")
        return 0
    try:
        boot_xml = runner.preboot(document)
    except hooks.HookError as exc:
        sys.stderr.write(str(exc) + "\n")
        return 1
    if boot_xml is None:
        return 3
    refusal = boot_xml_refusal(xml, boot_xml, args.vm)
    if refusal:
        sys.stderr.write(refusal + "\n")
        return 1
    with open(args.xml, "w") as target:
        target.write(boot_xml)
    return 0


if __name__ == "__main__":
    sys.exit(main())
