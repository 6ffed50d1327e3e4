"""The address_services role against real daemons: a registry address becomes a DHCP lease a
booted guest really gets, and a DNS name dnsmasq really answers; releasing it removes both.
The same for an IPv6 pool over DHCPv6: the client is ISC dhclient in a namespace of its own
on the same bridge (the lab guest's busybox has no DHCPv6 client), and the name's AAAA record.

The lab's `dhcp` component (lab/components/dhcp.sh) runs dnsmasq, with the configuration the
role wrote, in a network namespace behind the bridge gvaddr0, where this machine has no
address: the guest's NIC sits on that bridge, DNS queries are sent from inside the namespace.
The steps run in file order and share one registry, one guest and one dnsmasq.
"""
import json
import os
import random
import re
import socket
import struct
import subprocess
import threading
import time

import pytest
from lxml import etree

import lab

PREFIX = "ias"
VM = PREFIX + "vm1"
POOL = "gvtest"
DOMAIN = "gvlab.test"
NETNS = "gvdhcp"
BRIDGE = "gvaddr0"
SERVER = "10.213.77.1"  # the namespace side of the lab's DHCP network (lab/components/dhcp.sh)
INSTANCE = "gvlab"
NODE_DIR = os.path.join(os.environ.get("LAB_DIR", os.path.join(lab.REPO, ".lab")), "nodes", "local")
PID_FILE = os.path.join(NODE_DIR, "run", "dnsmasq-dhcp.pid")  # the lab's record of dnsmasq
DISK = os.path.join(lab.POOL_DIR, VM + ".disk0.qcow2")
DHCP_RE = r"gridvirt-guest: dhcp ip=(\S+) hostname=(\S*)"
POOL6 = "gvtest6"
DOMAIN6 = "gv6lab.test"
VM6 = PREFIX + "vm6"
SERVER6 = "fd77:213:77::1"  # the namespace's IPv6 address (lab/components/dhcp.sh)
CLIENT_NETNS = "gvdhcpc"
CLIENT_VETH = "gvdhcpc-br"
A, AAAA = 1, 28


# ---- a DNS client without dnspython: one A or AAAA query over UDP ----------------------------

def dns_query(name, qid, qtype=A):
    """The bytes of a recursive A/IN (or AAAA/IN) query for ``name``."""
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    labels = b"".join(struct.pack("B", len(p)) + p.encode() for p in name.split("."))
    return header + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def _skip_name(data, offset):
    """Offset after the (possibly compressed) name at ``offset``."""
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:  # a pointer ends the name
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def dns_answer(data, qid):
    """-> (rcode, [addresses of the A and AAAA records]) of a reply to query ``qid``."""
    rid, flags, qdcount, ancount = struct.unpack("!HHHH", data[:8])
    assert rid == qid, "a reply to another query"
    offset = 12
    for _index in range(qdcount):
        offset = _skip_name(data, offset) + 4
    addresses = []
    for _index in range(ancount):
        offset = _skip_name(data, offset)
        rtype, _rclass, _ttl, rdlength = struct.unpack("!HHIH", data[offset:offset + 10])
        offset += 10
        if rtype == A:
            addresses.append(socket.inet_ntoa(data[offset:offset + rdlength]))
        elif rtype == AAAA:
            addresses.append(socket.inet_ntop(socket.AF_INET6, data[offset:offset + rdlength]))
        offset += rdlength
    return flags & 0x000F, addresses


def netns_udp_socket(netns):
    """A UDP socket of network namespace ``netns``: made by a thread that entered it (setns
    changes only the calling thread), so this process stays where it is."""
    made = {}

    def enter():
        with open("/run/netns/%s" % netns) as handle:
            os.setns(handle.fileno(), os.CLONE_NEWNET)
        made["socket"] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    return made["socket"]


def resolve(name, server=SERVER, qtype=A):
    """Ask the lab's dnsmasq, from inside its namespace -> (rcode, addresses)."""
    sock = netns_udp_socket(NETNS)
    try:
        sock.settimeout(5)
        qid = random.randint(1, 0xFFFF)
        sock.sendto(dns_query(name, qid, qtype), (server, 53))
        return dns_answer(sock.recv(4096), qid)
    finally:
        sock.close()


# ---- the lab around the test ------------------------------------------------------------------

def lab_sh(*args, env_extra=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([os.path.join(lab.REPO, "lab", "lab.sh")] + list(args), env=env,
                          capture_output=True, text=True, check=True, timeout=120)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The registry, the inventory and the role's variables of this test."""
    base = tmp_path_factory.mktemp("address_services")
    registry = {"backend": "sqlite", "path": str(base / "addr.db")}
    inventory = base / "hosts.yml"
    host = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
    inventory.write_text(json.dumps({"all": {"children": {
        "hypervisors": {"hosts": {lab.HOST: host}},
        "address_servers": {"hosts": {lab.HOST: host}}}}}))
    role_vars = {
        "address_registry": registry,
        "address_services_instance": INSTANCE,
        "address_services_config_dir": str(base / "dnsmasq"),
        "address_services_interfaces": ["gvdhcp0"],
        "address_services_pid_file": PID_FILE,
        "address_services_lease_file": str(base / "leases" / "gvlab.leases"),
        "address_services_dnsmasq_service": "unmanaged",
    }
    vars_file = base / "vars.json"
    vars_file.write_text(json.dumps(role_vars))
    return {"base": base, "registry": registry, "inventory": str(inventory),
            "vars": str(vars_file), "conf": base / "dnsmasq" / (INSTANCE + ".conf"),
            "hosts": base / "dnsmasq" / (INSTANCE + ".dhcp-hosts"),
            "names": base / "dnsmasq" / (INSTANCE + ".addn-hosts")}


@pytest.fixture(scope="module", autouse=True)
def clean_lab(work):
    """No guest of this test and no lab dnsmasq before; both stopped and gone after."""
    lab.remove_everything(PREFIX)
    undefine_network()
    yield
    lab.remove_everything(PREFIX)  # the guest leaves the bridge before the bridge goes
    lab_sh("down", "dhcp")
    undefine_network()


def run_role(work, check=False, extra_vars=None, fails=False):
    """ansible-playbook playbooks/address_services.yaml -> (changed count, output); with
    ``fails``, the run must fail -> its output."""
    env = dict(lab.ansible_env(), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    cmd = ["ansible-playbook", "-i", work["inventory"], "-e", "@" + work["vars"],
           "-e", json.dumps(extra_vars or {}),
           os.path.join(lab.REPO, "playbooks", "address_services.yaml")]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, cwd=lab.REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    if fails:
        assert proc.returncode != 0, proc.stdout[-4000:]
        return proc.stdout
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    recap = re.search(r"^%s\s+:\s+ok=\d+\s+changed=(\d+)" % lab.HOST, proc.stdout, re.M)
    assert recap, proc.stdout[-4000:]
    return int(recap.group(1)), proc.stdout


def module(work, name, args):
    args = dict(args, registry=work["registry"])
    result = lab.run_module(args, module="gridvirt.kvm." + name, inventory=work["inventory"])
    assert not result["failed"], result
    return result


def guest_xml(mac):
    """The lab guest with one virtio NIC on the DHCP test bridge, with the registry's MAC."""
    nic = etree.Element("interface", type="bridge")
    etree.SubElement(nic, "mac", address=mac)
    etree.SubElement(nic, "source", bridge=BRIDGE)
    etree.SubElement(nic, "model", type="virtio")
    disk = etree.Element("disk", type="file", device="disk")
    etree.SubElement(disk, "driver", name="qemu", type="qcow2")
    etree.SubElement(disk, "source", file=DISK)
    etree.SubElement(disk, "target", dev="vda", bus="virtio")
    root = etree.fromstring(lab.guest_xml(VM, nics=0, extra_devices=[disk, nic]))
    etree.SubElement(root, "name").text = VM
    return etree.tostring(root, encoding="unicode")


def boot_guest(mac):
    # A copy, not an overlay: the lab image may be rebuilt while the guest runs.
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", lab.GUEST_IMAGE, DISK], check=True)
    c = lab.conn()
    try:
        c.defineXML(guest_xml(mac)).create()
    finally:
        c.close()


def wait_until(what, predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("%s: not within %ss" % (what, timeout))


# ---- the steps --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def allocated(work):
    """VM's IPv4 address; VM6's IPv6 one is allocated too, so that dnsmasq starts with both."""
    module(work, "address_pool", {
        "name": POOL, "cidr": "10.213.77.0/24", "ranges": ["10.213.77.100-10.213.77.199"],
        "gateway": SERVER, "dns_servers": [SERVER], "domain": DOMAIN})
    module(work, "address_pool", {
        "name": POOL6, "cidr": "fd77:213:77::/64", "ranges": ["fd77:213:77::100-fd77:213:77::1ff"],
        "dns_servers": [SERVER6], "domain": DOMAIN6})
    module(work, "address", {"vm": VM6, "nic": 0, "pool": POOL6})
    return module(work, "address", {"vm": VM, "nic": 0, "pool": POOL})["address"]


@pytest.fixture(scope="module")
def allocated6(work, allocated):
    return module(work, "address", {"vm": VM6, "nic": 0, "pool": POOL6})["address"]


def test_role_writes_the_registry_reservation(work, allocated):
    changed, _out = run_role(work)
    assert changed > 0
    assert "%s,%s,%s" % (allocated["mac"], allocated["ip"], VM) in \
        work["hosts"].read_text().splitlines()
    assert "%s %s.%s %s" % (allocated["ip"], VM, DOMAIN, VM) in \
        work["names"].read_text().splitlines()
    conf = work["conf"].read_text().splitlines()
    assert "dhcp-range=set:pool-%s,10.213.77.0,static,255.255.255.0,12h" % POOL in conf
    assert "dhcp-range=set:pool-%s,fd77:213:77::,static,64,12h" % POOL6 in conf
    assert "local=/%s/" % DOMAIN in conf


def test_guest_gets_its_registry_address_over_dhcp(work, allocated):
    lab_sh("up", "dhcp", env_extra={"LAB_DHCP_CONF": str(work["conf"])})
    console = lab.Console(VM)
    started = time.monotonic()
    boot_guest(allocated["mac"])
    lease = console.wait_for(DHCP_RE, timeout=120)
    print("DHCP lease on the console %.1f s after the guest started"
          % (time.monotonic() - started))
    assert lease.group(1) == allocated["ip"]
    assert lease.group(2) == VM


def test_dns_answers_the_vm_name(allocated):
    assert resolve("%s.%s" % (VM, DOMAIN)) == (0, [allocated["ip"]])
    assert resolve(VM) == (0, [allocated["ip"]])


# ---- DHCPv6: ISC dhclient in a namespace of its own, on the guests' bridge -----------------

def client_ns(*args):
    return subprocess.run(["ip", "netns", "exec", CLIENT_NETNS] + list(args),
                          capture_output=True, text=True, check=True, timeout=30)


@pytest.fixture
def dhcpv6_client(work, allocated6):
    """A namespace whose NIC has VM6's MAC, plugged into the bridge: -> the NIC's name. Its
    root side has no address (IPv6 off), like the bridge."""
    subprocess.run(["ip", "netns", "add", CLIENT_NETNS], check=True)
    try:
        subprocess.run(["ip", "link", "add", CLIENT_VETH, "type", "veth", "peer", "name", "eth0",
                        "netns", CLIENT_NETNS], check=True)
        with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % CLIENT_VETH, "w") as handle:
            handle.write("1")
        subprocess.run(["ip", "link", "set", CLIENT_VETH, "master", BRIDGE, "up"], check=True)
        # No duplicate address detection: the link-local address dhclient sends from is
        # usable at once.
        client_ns("sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0")
        client_ns("ip", "link", "set", "eth0", "address", allocated6["mac"], "up")
        yield "eth0"
    finally:
        subprocess.run(["ip", "link", "del", CLIENT_VETH], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", CLIENT_NETNS], check=True)


def dhcpv6_lease(directory, interface):
    """Run dhclient -6 until it is bound -> the address the server gave. Its script only
    writes what it got (never /etc/resolv.conf); dhclient is stopped by its PID after."""
    script = directory / "record.sh"
    got = directory / "bound"
    script.write_text('#!/bin/sh\n[ "$reason" = BOUND6 ] && echo "$new_ip6_address" > %s\nexit 0\n'
                      % got)
    script.chmod(0o755)
    (directory / "dhclient.conf").write_text("")
    # -D LL: a DUID made of the MAC, which dnsmasq matches with the reservation.
    client = subprocess.Popen(
        ["ip", "netns", "exec", CLIENT_NETNS, "dhclient", "-6", "-d", "-D", "LL",
         "-cf", str(directory / "dhclient.conf"), "-lf", str(directory / "leases"),
         "-pf", str(directory / "pid"), "-sf", str(script), interface],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return wait_until("a DHCPv6 lease", lambda: got.exists() and got.read_text().strip(),
                          timeout=60)
    finally:
        client.terminate()
        client.wait(timeout=10)


def test_dhcpv6_client_gets_its_registry_address_and_aaaa(work, allocated6, dhcpv6_client,
                                                          tmp_path):
    assert "%s,[%s],%s" % (allocated6["mac"], allocated6["ip"], VM6) in \
        work["hosts"].read_text().splitlines()
    assert dhcpv6_lease(tmp_path, dhcpv6_client) == allocated6["ip"]
    assert resolve("%s.%s" % (VM6, DOMAIN6), qtype=AAAA) == (0, [allocated6["ip"]])
    # Released: out of DHCPv6 and DNS alike.
    module(work, "address", {"vm": VM6, "nic": 0, "state": "absent"})
    changed, _out = run_role(work)
    assert changed > 0 and allocated6["mac"] not in work["hosts"].read_text()
    wait_until("dnsmasq forgets %s" % VM6,
               lambda: resolve("%s.%s" % (VM6, DOMAIN6), qtype=AAAA) == (3, []))


def test_release_checked_changes_nothing(work, allocated):
    module(work, "address", {"vm": VM, "nic": 0, "state": "absent"})
    before = work["hosts"].read_text(), work["names"].read_text()
    changed, _out = run_role(work, check=True)
    assert changed > 0
    assert (work["hosts"].read_text(), work["names"].read_text()) == before
    assert resolve("%s.%s" % (VM, DOMAIN)) == (0, [allocated["ip"]])


def test_released_address_leaves_dhcp_and_dns(work, allocated):
    with open(PID_FILE) as handle:
        pid = handle.read().strip()
    changed, _out = run_role(work)
    assert changed > 0
    assert allocated["mac"] not in work["hosts"].read_text()
    assert allocated["ip"] not in work["names"].read_text()
    # SIGHUP, not a restart: the same dnsmasq now answers "no such name" (NXDOMAIN), although
    # the guest still holds its lease.
    wait_until("dnsmasq forgets %s" % VM, lambda: resolve("%s.%s" % (VM, DOMAIN)) == (3, []))
    assert resolve(VM)[1] == []
    with open(PID_FILE) as handle:
        assert handle.read().strip() == pid


def test_unknown_pool_is_refused_and_changes_nothing(work):
    files = [work["conf"], work["hosts"], work["names"]]
    before = [f.read_text() for f in files]
    out = run_role(work, extra_vars={"address_services_pools": [POOL, "nosuch"]}, fails=True)
    assert "The address registry has no pool nosuch (it holds: %s, %s); fix " \
        "address_services_pools." % (POOL, POOL6) in " ".join(out.split())
    assert [f.read_text() for f in files] == before


def test_rerun_changes_nothing(work):
    before = work["conf"].read_text(), work["hosts"].read_text(), work["names"].read_text()
    changed, out = run_role(work)
    assert changed == 0, out[-4000:]
    assert (work["conf"].read_text(), work["hosts"].read_text(),
            work["names"].read_text()) == before


# ---- libvirt_network mode: the same reservations in a libvirt network's definition ----------
# The network is defined, not started: starting it would give this machine an address on its
# bridge. The running-network path (the same update API with AFFECT_LIVE) is covered by
# tests/unit/plugins/module_utils/test_libvirt_network.py on libvirt's test driver.

NETWORK = PREFIX + "net"
VM2 = PREFIX + "vm2"


def undefine_network():
    c = lab.conn()
    try:
        if NETWORK in c.listDefinedNetworks() + c.listNetworks():
            net = c.networkLookupByName(NETWORK)
            if net.isActive():
                net.destroy()
            net.undefine()
    finally:
        c.close()


def network_hosts():
    """(DHCP hosts, DNS hosts) of the network's definition, as attribute tuples."""
    root = etree.fromstring(subprocess.run(
        ["virsh", "-c", lab.URI, "net-dumpxml", "--inactive", NETWORK],
        capture_output=True, text=True, check=True).stdout.encode())
    dhcp = [(h.get("mac"), h.get("ip"), h.get("name")) for h in root.findall("ip/dhcp/host")]
    dns = [(h.get("ip"), [n.text for n in h.findall("hostname")]) for h in root.findall("dns/host")]
    return dhcp, dns


@pytest.fixture(scope="module")
def network_mode(work):
    net = etree.Element("network")
    etree.SubElement(net, "name").text = NETWORK
    etree.SubElement(net, "bridge", name="gvaddrnet0")
    etree.SubElement(net, "ip", address=SERVER, netmask="255.255.255.0")
    c = lab.conn()
    try:
        c.networkDefineXML(etree.tostring(net, encoding="unicode"))
    finally:
        c.close()
    return {"address_services_mode": "libvirt_network", "address_services_libvirt_network": NETWORK}


def test_libvirt_network_gets_the_reservation(work, allocated, network_mode):
    address = module(work, "address", {"vm": VM2, "nic": 0, "pool": POOL})["address"]
    changed, _out = run_role(work, extra_vars=network_mode)
    assert changed > 0
    dhcp, dns = network_hosts()
    assert (address["mac"], address["ip"], VM2) in dhcp
    assert (address["ip"], ["%s.%s" % (VM2, DOMAIN), VM2]) in dns
    changed, out = run_role(work, extra_vars=network_mode)
    assert changed == 0, out[-4000:]


def test_libvirt_network_loses_the_released_reservation(work, network_mode):
    module(work, "address", {"vm": VM2, "nic": 0, "state": "absent"})
    before = network_hosts()
    changed, _out = run_role(work, check=True, extra_vars=network_mode)
    assert changed > 0
    assert network_hosts() == before
    changed, _out = run_role(work, extra_vars=network_mode)
    assert changed > 0
    dhcp, dns = network_hosts()
    assert VM2 not in [name for _mac, _ip, name in dhcp]
    assert VM2 not in [name for _ip, names in dns for name in names]
    changed, out = run_role(work, extra_vars=network_mode)
    assert changed == 0, out[-4000:]
