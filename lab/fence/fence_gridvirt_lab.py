"""Fence agent for the gridvirt lab's namespaced nodes.

A lab node is a set of Linux namespaces (mount + UTS + network) owned by a holder process,
every daemon of the node running inside them. Recorded under LAB_DIR/nodes/<node>/:
holder.pid (the holder's PID) and netns (`readlink /proc/<holder>/ns/net` at creation).

- status: ON when holder.pid names a live process whose network namespace is the recorded
  one (so a reused PID does not count), else OFF.
- off: a power cut. Every process of the node's network namespace is frozen (SIGSTOP,
  re-scanned until no new process appears), then all are SIGKILLed at once; returns once
  none is left.
- on: `lab/lab.sh node-on <node>` is launched, detached, in the host's mount and UTS
  namespaces (entered through the bridge holder, LAB_DIR/bridge.pid); fencing.py then polls
  status until the node's new holder is up.
- list: the nodes that have a netns file. monitor: LAB_DIR exists and the bridge holder lives.

Installed as /usr/sbin/fence_gridvirt_lab -> <repo>/lab/fence/fence_gridvirt_lab; the repo
(where lab/lab.sh lives) is found from this file's real path.
"""

import sys
import os
import signal
import shutil
import subprocess
import logging
import time
import atexit
sys.path.append("/usr/share/fence")
from fencing import (all_opt, atexit_handler, check_input, fail, fail_usage, fence_action,  # noqa: E402 pylint: disable=import-error
                     process_input, run_delay, show_docs, EC_STATUS, EC_WAITING_OFF, EC_GENERIC_ERROR)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
LAB_SH = os.path.join(REPO, "lab", "lab.sh")
NODE_ON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

STABLE_ROUNDS_MAX = 100     # SIGSTOP / re-scan rounds before giving up on a stable set
STOP_SETTLE_TIMEOUT = 2.0   # seconds to wait for SIGSTOPped processes to be stopped
KILL_TIMEOUT = 30.0         # seconds to wait for the killed processes to be gone


# ---------------------------------------------------------------- /proc helpers

def read_text(path):
    """The stripped content of a small file, or None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def netns_of(pid):
    """The `net:[inode]` link of a process, or None (gone, zombie, not readable)."""
    try:
        return os.readlink("/proc/%d/ns/net" % pid)
    except OSError:
        return None


def proc_stat(pid):
    """(state, ppid) of a process from /proc/<pid>/stat, or None when it is gone."""
    data = read_text("/proc/%d/stat" % pid)
    if not data:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses
    fields = data.rsplit(")", 1)[-1].split()
    try:
        return fields[0], int(fields[1])
    except (IndexError, ValueError):
        return None


def all_pids():
    try:
        names = os.listdir("/proc")
    except OSError as ex:
        logging.error("Cannot list /proc: %s", ex)
        fail(EC_GENERIC_ERROR)
    return [int(n) for n in names if n.isdigit()]


def pids_in_netns(netns):
    """Every process whose network namespace link is `netns`. Processes whose link cannot
    be read (PermissionError, vanished, zombies) are skipped."""
    found = set()
    for pid in all_pids():
        if netns_of(pid) == netns:
            found.add(pid)
    return found


def protected_pids():
    """This agent's process and all its ancestors: never signalled."""
    pids = set()
    pid = os.getpid()
    while pid > 0 and pid not in pids:
        pids.add(pid)
        stat = proc_stat(pid)
        if stat is None:
            break
        pid = stat[1]
    return pids


def pid_alive(pid):
    stat = proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def signal_pids(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        except OSError as ex:
            logging.warning("Cannot send signal %d to PID %d: %s", sig, pid, ex)


# ---------------------------------------------------------------- lab layout

def lab_dir(options):
    return os.path.abspath(options["--lab-dir"])


def node_name(options):
    node = options.get("--plug", "")
    if not node or "/" in node or node in (".", ".."):
        fail_usage("Failed: invalid node name '%s'" % node)
    return node


def node_dir(options, node):
    return os.path.join(lab_dir(options), "nodes", node)


def read_pid(path):
    text = read_text(path)
    try:
        pid = int(text)
    except (TypeError, ValueError):
        return None
    return pid if pid > 0 else None


def holder_state(options, node):
    """(on, recorded netns, holder pid) of a node."""
    ndir = node_dir(options, node)
    if not os.path.isdir(ndir):
        logging.error("Unknown node %s: no directory %s", node, ndir)
        fail(EC_STATUS)
    recorded = read_text(os.path.join(ndir, "netns"))
    holder = read_pid(os.path.join(ndir, "holder.pid"))
    if not recorded or holder is None:
        return False, recorded, holder
    current = netns_of(holder)
    return current == recorded and pid_alive(holder), recorded, holder


def bridge_pid(options):
    """The bridge holder's PID when it is alive, else None."""
    pid = read_pid(os.path.join(lab_dir(options), "bridge.pid"))
    if pid is not None and pid_alive(pid):
        return pid
    return None


# ---------------------------------------------------------------- fencing.py callbacks

def get_power_status(conn, options):
    del conn
    node = node_name(options)
    on, recorded, holder = holder_state(options, node)
    if on:
        logging.debug("Node %s: holder %s is alive in %s: ON", node, holder, recorded)
        return "on"
    if not recorded:
        logging.debug("Node %s: no recorded netns: OFF", node)
    elif holder is None:
        logging.debug("Node %s: no holder.pid: OFF", node)
    else:
        logging.debug("Node %s: holder %s is not alive in %s (its netns: %s): OFF",
                      node, holder, recorded, netns_of(holder))
    return "off"


def set_power_status(conn, options):
    del conn
    node = node_name(options)
    if options["--action"] == "off":
        power_cut(options, node)
    elif options["--action"] == "on":
        power_on(options, node)


def get_list(conn, options):
    del conn
    ldir = lab_dir(options)
    if not os.path.isdir(ldir):
        logging.error("Lab directory %s does not exist", ldir)
        fail(EC_STATUS)
    if options.get("--original-action") == "monitor":
        if bridge_pid(options) is None:
            logging.error("Bridge holder of the lab (%s) is not running",
                          os.path.join(ldir, "bridge.pid"))
            fail(EC_STATUS)
        logging.debug("Lab %s is up", ldir)
    nodes_dir = os.path.join(ldir, "nodes")
    result = {}
    try:
        names = sorted(os.listdir(nodes_dir))
    except FileNotFoundError:
        names = []
    for node in names:
        if os.path.isfile(os.path.join(nodes_dir, node, "netns")):
            on = holder_state(options, node)[0]
            result[node] = ("", "on" if on else "off")
    return result


# ---------------------------------------------------------------- power off

def freeze(netns, protected):
    """SIGSTOP every process of `netns` and re-scan until the set is stable; returns it."""
    stopped = set()
    for _round in range(STABLE_ROUNDS_MAX):
        found = pids_in_netns(netns)
        for pid in sorted(found & protected):
            logging.warning("PID %d (this agent or one of its ancestors) is in %s: left alone",
                            pid, netns)
        new = found - protected - stopped
        if not new:
            return stopped
        logging.debug("SIGSTOP %d processes: %s", len(new), sorted(new))
        signal_pids(new, signal.SIGSTOP)
        stopped |= new
        # SIGSTOP is delivered asynchronously: a process may still fork until it is really
        # stopped, so wait for them to stop before the next scan
        deadline = time.monotonic() + STOP_SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            running = [p for p in new if (proc_stat(p) or ("X",))[0] not in ("T", "t", "Z", "X")]
            if not running:
                break
            time.sleep(0.01)
    logging.warning("Processes of %s kept appearing after %d rounds; killing what was found",
                    netns, STABLE_ROUNDS_MAX)
    return stopped


def power_cut(options, node):
    on, recorded, holder = holder_state(options, node)
    if not recorded:
        logging.error("Node %s has no recorded netns: cannot power it off", node)
        fail(EC_WAITING_OFF)
    protected = protected_pids()
    logging.info("Power cut of node %s (holder %s, %s)", node, holder, recorded)
    frozen = freeze(recorded, protected)
    logging.info("Node %s: %d processes frozen, killing them all", node, len(frozen))
    signal_pids(frozen, signal.SIGKILL)

    killed = set(frozen)
    deadline = time.monotonic() + KILL_TIMEOUT
    while True:
        left = pids_in_netns(recorded) - protected
        if not left:
            break
        # anything that entered the namespace meanwhile (nsenter from outside) goes too
        late = left - killed
        if late:
            logging.warning("Node %s: %d late processes, killing them: %s", node, len(late), sorted(late))
            signal_pids(late, signal.SIGKILL)
            killed |= late
        if time.monotonic() >= deadline:
            logging.error("Node %s: %d processes still in %s after %d s: %s", node, len(left),
                          recorded, KILL_TIMEOUT, sorted(left))
            fail(EC_WAITING_OFF)
        time.sleep(0.1)
    logging.info("Node %s is off: no process left in %s (%d killed)", node, recorded, len(killed))


# ---------------------------------------------------------------- power on

def power_on(options, node):
    ldir = lab_dir(options)
    ndir = node_dir(options, node)
    bridge = bridge_pid(options)
    if bridge is None:
        logging.error("Cannot power on %s: bridge holder (%s) is not running", node,
                      os.path.join(ldir, "bridge.pid"))
        fail(EC_GENERIC_ERROR)
    if not os.access(LAB_SH, os.X_OK):
        logging.error("Cannot power on %s: %s is not executable", node, LAB_SH)
        fail(EC_GENERIC_ERROR)
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    cmd = [nsenter, "--target", str(bridge), "--mount", "--uts", "--",
           "/usr/bin/env", "-i", "PATH=" + NODE_ON_PATH, "HOME=/root", "LAB_DIR=" + ldir,
           "setsid", LAB_SH, "node-on", node]
    log_path = os.path.join(ndir, "power-on.log")
    logging.info("Powering on node %s: %s (log: %s)", node, " ".join(cmd), log_path)
    try:
        with open(log_path, "ab") as log:
            log.write(("--- %s power on: %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"),
                                                  " ".join(cmd))).encode())
            log.flush()
            subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             cwd="/", close_fds=True, start_new_session=True)
    except OSError as ex:
        logging.error("Cannot launch node-on for %s: %s", node, ex)
        fail(EC_GENERIC_ERROR)


# ---------------------------------------------------------------- main

def main():
    device_opt = ["no_password", "no_login", "port", "lab_dir"]
    # fencing.py names the agent after argv[0]: the installed name, not this file's.
    sys.argv[0] = os.path.splitext(sys.argv[0])[0]

    atexit.register(atexit_handler)

    all_opt["lab_dir"] = {
        "getopt": ":",
        "longopt": "lab-dir",
        "help": "--lab-dir=[path]               Lab state directory (LAB_DIR, holds nodes/NODE/)",
        "required": "1",
        "shortdesc": "Lab state directory (LAB_DIR)",
        "order": 1
    }
    # node-on creates the holder first, but give the launch some slack
    all_opt["power_timeout"]["default"] = "60"

    options = check_input(device_opt, process_input(device_opt))

    docs = {}
    docs["shortdesc"] = "Fence agent for the gridvirt lab's namespaced nodes"
    docs["longdesc"] = "fence_gridvirt_lab fences the nodes of the gridvirt lab, each node " \
        "being a set of Linux namespaces (mount, UTS, network) owned by a holder process on " \
        "one machine. A power cut (off) kills every process of the node at once: all " \
        "processes of the node's network namespace are frozen with SIGSTOP until no new one " \
        "appears, then SIGKILLed, and the agent returns once none is left. Power on restarts " \
        "the node's whole stack (lab/lab.sh node-on NODE, launched detached in the host's " \
        "namespaces) and succeeds once the node's holder is up again. A node is on when its " \
        "recorded holder process is alive in the recorded network namespace."
    docs["vendorurl"] = "https://github.com/gridvirt/kvm"
    show_docs(options, docs)

    if "--lab-dir" not in options or not options["--lab-dir"]:
        fail_usage("Failed: You have to set the lab directory (--lab-dir / lab_dir)")

    run_delay(options)

    result = fence_action(None, options, set_power_status, get_power_status, get_list)
    sys.exit(result)


if __name__ == "__main__":
    main()
