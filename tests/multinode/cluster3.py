"""Helpers for tests against the multi-node lab (`make lab-up NODES=3`, lab/nodes.sh).

The nodes are namespaces of this machine: commands enter them with nsenter (as the lab's
connection plugin does), their files are under .lab/nodes/<node>/root, and a node is powered
off by the lab's fence agent (every process of the node killed at once).
"""
import calendar
import json
import os
import re
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import lab  # tests/integration/lab.py: run_module

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_DIR = os.environ.get("LAB_DIR", os.path.join(REPO, ".lab"))
LAB_SH = os.path.join(REPO, "lab", "lab.sh")
FENCE_AGENT = os.path.join(REPO, "lab", "fence", "fence_gridvirt_lab")
INVENTORY = os.path.join(REPO, "inventories", "lab3", "hosts.yml")
NODE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root", "LANG": "C.UTF-8"}
BOOT_RE = re.compile(r"gridvirt-guest: booted name=(\S*) uuid=(\S*) boot=(\d+)")
TICK_RE = re.compile(r"gridvirt-guest: alive tick=(\d+) boot=(\d+)")


def nodes():
    with open(os.path.join(LAB_DIR, "cluster", "nodes")) as handle:
        return handle.read().split()


def _node_file(node, name):
    try:
        with open(os.path.join(LAB_DIR, "nodes", node, name)) as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return ""


def holder(node):
    """PID of the node's holder when the node is on (the recorded network namespace)."""
    pid = _node_file(node, "holder.pid")
    try:
        if pid and os.readlink("/proc/%s/ns/net" % pid) == _node_file(node, "netns"):
            return int(pid)
    except OSError:
        pass
    return None


def alive(node):
    return holder(node) is not None


def node_run(node, *cmd, timeout=120, check=True):
    pid = holder(node)
    if pid is None:
        raise AssertionError("%s is powered off" % node)
    proc = subprocess.run(["nsenter", "--target", str(pid), "--mount", "--uts", "--net", "--"]
                          + list(cmd), env=NODE_ENV, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("%s on %s: rc %d\n%s%s" % (" ".join(cmd), node, proc.returncode,
                                                        proc.stdout, proc.stderr))
    return proc


def any_node(exclude=()):
    for node in nodes():
        if node not in exclude and alive(node):
            return node
    raise AssertionError("no lab node is on")


def crm_mon(via=None):
    via = via or any_node()
    return ET.fromstring(node_run(via, "crm_mon", "--one-shot", "--inactive",
                                  "--output-as=xml", timeout=60).stdout)


def resources(via=None):
    """{resource: node it is Started on, or None}."""
    out = {}
    for res in crm_mon(via).iter("resource"):
        where = [n.get("name") for n in res.findall("node")]
        started = res.get("role") == "Started" and res.get("active") == "true"
        out[res.get("id")] = where[0] if started and len(where) == 1 else None
    return out


def node_states(via=None):
    return dict((n.get("name"), n.attrib) for n in crm_mon(via).iter("node")
                if n.get("type") == "member")


def online(node, via=None):
    state = node_states(via).get(node, {})
    return state.get("online") == "true" and state.get("pending") == "false"


def wait(predicate, timeout, what, interval=0.5):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (AssertionError, ET.ParseError, subprocess.TimeoutExpired) as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError("%s: not after %ds (last error: %s)" % (what, timeout, last_error))


def serial_path(node, vm):
    return os.path.join(LAB_DIR, "nodes", node, "root", "var", "log", "libvirt", "qemu",
                        "%s-serial.log" % vm)


def serial_lines(node, vm):
    try:
        with open(serial_path(node, vm), errors="replace") as handle:
            return handle.read().splitlines()
    except FileNotFoundError:
        return []


def boot_count(vm):
    """The highest boot number the VM printed on any node (its counter lives on its disk)."""
    numbers = [int(m.group(3)) for node in nodes() for line in serial_lines(node, vm)
               for m in [BOOT_RE.search(line)] if m]
    return max(numbers) if numbers else 0


def boots_on(node, vm):
    return [int(m.group(3)) for line in serial_lines(node, vm) for m in [BOOT_RE.search(line)] if m]


def last_tick(node, vm):
    for line in reversed(serial_lines(node, vm)):
        match = TICK_RE.search(line)
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def qemu_nodes(vm):
    """Nodes where a QEMU process of the VM exists now, found from /proc: a powered-off or
    cut-off node counts as long as any of its processes lives."""
    netns_to_node = dict((_node_file(n, "netns"), n) for n in nodes())
    found = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                argv = handle.read().split(b"\0")
            if not argv[0].endswith(b"qemu-system-x86_64") or \
                    ("guest=%s," % vm).encode() not in b" ".join(argv):
                continue
            found.add(netns_to_node.get(os.readlink("/proc/%s/ns/net" % pid), "?"))
        except OSError:
            continue
    return found


def power_off(node):
    subprocess.run([FENCE_AGENT, "--action=off", "--plug=%s" % node, "--lab-dir=%s" % LAB_DIR],
                   check=True, capture_output=True, timeout=120)


def power_on(node):
    """The node's stack restarted (lab.sh node-on), then it is back as an online member."""
    subprocess.run([LAB_SH, "node-on", node], check=True, capture_output=True, timeout=600,
                   env=dict(os.environ, LAB_DIR=LAB_DIR))
    wait(lambda: online(node, via=any_node(exclude=[node])), 300, "%s online again" % node)


def every_node_online():
    """A test's cleanup: every node powered on again, then an online member."""
    for node in nodes():
        if not alive(node):
            power_on(node)
    for node in nodes():
        wait(lambda n=node: online(n), 300, "%s online" % node)


def cut(node):
    subprocess.run([LAB_SH, "node-cut", node], check=True, capture_output=True, timeout=30)


def fenced_since(node, since, via=None):
    """The cluster has fenced NODE successfully at or after SINCE (time.time(); the history
    has whole seconds)."""
    for event in fence_events(node, via):
        if event.get("status") == "success" and event.get("completed"):
            completed = calendar.timegm(time.strptime(event["completed"], "%Y-%m-%d %H:%M:%SZ"))
            if completed >= int(since):
                return True
    return False


def fence_events(node, via=None):
    """Fencing of NODE recorded by the cluster: [{action, status, executioner, completed}]."""
    via = via or any_node(exclude=[node])
    # Without --verbose, stonith_admin shows one event per node, not always the latest.
    root = ET.fromstring(node_run(via, "stonith_admin", "--history", node, "--verbose",
                                  "--output-as=xml").stdout)
    return [dict(e.attrib) for e in root.iter("fence_event")]


def ansible_env():
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = os.path.join(REPO, "ansible.cfg")
    # The inventory's ansible_connection: lab_node lives with the lab, not the collection.
    env["ANSIBLE_CONNECTION_PLUGINS"] = os.path.join(REPO, "lab", "plugins", "connection")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["LAB_DIR"] = LAB_DIR
    return env


def playbook(name, *extra, timeout=1800):
    """ansible-playbook on the lab3 inventory: (returncode, output)."""
    proc = subprocess.run(["ansible-playbook", "-i", INVENTORY,
                           os.path.join(REPO, "playbooks", name)] + list(extra),
                          cwd=REPO, env=ansible_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr


FLEET = os.path.join(REPO, "inventories", "fleet", "lab3.gridvirt.yml")


def fleet_inventory():
    """ansible-inventory --list through the gridvirt.kvm.vms plugin: ({vm: its variables,
    the untrusted-text markers taken off}, what it warned)."""
    proc = subprocess.run(["ansible-inventory", "-i", FLEET, "--list"], cwd=REPO,
                          env=ansible_env(), capture_output=True, text=True, timeout=300,
                          check=True)
    hostvars = json.loads(proc.stdout)["_meta"]["hostvars"]
    return lab.without_unsafe_markers(hostvars), proc.stderr


def recap(output):
    """{host: {ok, changed, unreachable, failed, ...}} from a play recap."""
    out = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        out[host] = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", counts))
    return out


def module(node, name, args, check=False):
    """One module task on a node (the integration tests' ad-hoc runner, lab3 inventory)."""
    return lab.run_module(args, module=name, check=check, host=node, inventory=INVENTORY)


def cib_constraints(via=None):
    via = via or any_node()
    return ET.fromstring(node_run(via, "cibadmin", "--query", "--scope", "constraints").stdout)


def observe_failover(vm, dead, boot_before, since, timeout=300):
    # since: time.time() just before the failure.
    """Watch a failover of VM away from node DEAD until its guest prints its next boot marker
    on another node. Returns the seconds (from now) at which the survivors saw DEAD gone, the
    cluster fenced it, Pacemaker reported the VM Started elsewhere and the guest booted; and
    every set of nodes that had a QEMU of the VM at once (to prove no double start)."""
    start = time.monotonic()
    seen = {}
    qemu_sets = []
    while time.monotonic() - start < timeout:
        now = time.monotonic() - start
        qemu_sets.append(sorted(qemu_nodes(vm)))
        try:
            via = any_node(exclude=[dead])
            if "detected" not in seen and not online(dead, via):
                seen["detected"] = now
            if "fenced" not in seen and fenced_since(dead, since, via):
                seen["fenced"] = now
            where = resources(via).get(vm)
            if "started" not in seen and where and where != dead:
                seen["started"], seen["node"] = now, where
        except (AssertionError, ET.ParseError, subprocess.TimeoutExpired):
            pass
        if "node" in seen and boot_before + 1 in boots_on(seen["node"], vm):
            seen["marker"] = time.monotonic() - start
            seen["qemu_sets"] = qemu_sets
            return seen
        time.sleep(0.2)
    raise AssertionError("failover of %s away from %s incomplete after %ds: %s"
                         % (vm, dead, timeout, seen))


class TickWatcher(threading.Thread):
    """Records when each new serial tick of a VM's current boot shows up, on whichever node
    logs it, from the tick it is at on the node it runs on (other nodes may keep logs of its
    earlier boots, or older ticks of this one)."""

    def __init__(self, vm, node):
        super().__init__(daemon=True)
        self.vm, self.node, self.arrivals, self.stopped = vm, node, [], threading.Event()

    def run(self):
        last = last_tick(self.node, self.vm)
        while not self.stopped.is_set():
            for node in nodes():
                tick = last_tick(node, self.vm)
                if tick and last and tick[1] == last[1] and tick[0] > last[0]:
                    last = tick
                    self.arrivals.append((time.monotonic(), tick[0], tick[1], node))
            time.sleep(0.05)

    def longest_gap(self):
        times = [a[0] for a in self.arrivals]
        return max(b - a for a, b in zip(times, times[1:]))
