"""lab/fence/fence_gridvirt_lab against a fake lab made of real namespaces: two fake nodes
(holder + extra processes, one of them forking) and a bridge holder in a temporary LAB_DIR.
The agent runs as a subprocess, fed key=value lines on stdin as Pacemaker does, and from the
command line. `on` runs a copy of the agent in a fake repo whose lab/lab.sh is a stub that
recreates the node's holder, so the launching/detaching is tested, not the real node-on."""
import os
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT = os.path.join(REPO, "lab", "fence", "fence_gridvirt_lab")
NODE_ON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, kill)")

HOLDER = ["unshare", "--mount", "--uts", "--net", "--propagation", "private", "--fork", "--",
          "sh", "-c", 'echo $$ > "$1"; exec sleep 600', "holder"]

STUB_LAB_SH = r"""#!/bin/sh
# Stub of lab/lab.sh: `node-on NODE` recreates the node's holder like the test does.
set -e
[ "$1" = node-on ] || exit 2
dir="$LAB_DIR/nodes/$2"
echo $$ > "$LAB_DIR/stub.pid"
echo "$@" > "$LAB_DIR/stub.args"
env > "$LAB_DIR/stub.env"
readlink /proc/self/ns/mnt > "$LAB_DIR/stub.mntns"
readlink /proc/self/ns/uts > "$LAB_DIR/stub.utsns"
echo "stub node-on $2: starting"
sleep 2
rm -f "$dir/holder.pid"
unshare --mount --uts --net --propagation private --fork -- \
    sh -c 'echo $$ > "$1"; exec sleep 600' holder "$dir/holder.pid" &
while [ ! -s "$dir/holder.pid" ]; do sleep 0.05; done
readlink "/proc/$(cat "$dir/holder.pid")/ns/net" > "$dir/netns.tmp"
mv "$dir/netns.tmp" "$dir/netns"
echo "stub node-on $2: holder up"
# the rest of the stack would take a while: the agent must not wait for it
exec sleep 30
"""


# ------------------------------------------------------------------ /proc helpers

def netns_of(pid):
    try:
        return os.readlink("/proc/%d/ns/net" % pid)
    except OSError:
        return None


def pids_in(netns):
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit() and netns_of(int(name)) == netns:
            found.add(int(name))
    return found


def stat_fields(pid):
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def alive(pid):
    try:
        return stat_fields(pid)[0] not in ("Z", "X")
    except OSError:
        return False


def wait_for(predicate, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def read(path):
    with open(path) as f:
        return f.read().strip()


# ------------------------------------------------------------------ the fake lab

class FakeLab:
    def __init__(self, root):
        self.root = root
        self.dir = os.path.join(root, "lab")
        os.makedirs(os.path.join(self.dir, "nodes"))
        self.procs = []         # every Popen started here
        self.namespaces = set()  # every netns created here
        self.extras = {}        # node -> PIDs of its extra processes
        self.own_netns = netns_of(os.getpid())

    def spawn(self, args):
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start_holder(self, pid_file, args):
        self.spawn(args + [pid_file])
        wait_for(lambda: os.path.exists(pid_file) and read(pid_file).isdigit(),
                 what=pid_file)
        pid = int(read(pid_file))
        wait_for(lambda: netns_of(pid) not in (None, self.own_netns), what="netns of %d" % pid)
        netns = netns_of(pid)
        self.namespaces.add(netns)
        return pid, netns

    def add_bridge(self):
        pid = self.start_holder(
            os.path.join(self.dir, "bridge.pid"),
            ["unshare", "--net", "--fork", "--", "sh", "-c", 'echo $$ > "$1"; exec sleep 600',
             "bridge"])[0]
        self.bridge = pid

    def add_node(self, node):
        ndir = os.path.join(self.dir, "nodes", node)
        os.makedirs(ndir)
        holder, netns = self.start_holder(os.path.join(ndir, "holder.pid"), HOLDER)
        with open(os.path.join(ndir, "netns"), "w") as f:
            f.write(netns + "\n")
        inside = ["nsenter", "-t", str(holder), "-n", "--"]
        extras = [self.spawn(inside + ["sleep", "600"]).pid,
                  # forks a sleep every second
                  self.spawn(inside + ["sh", "-c", "while :; do sleep 1; done"]).pid,
                  # forks as fast as it can
                  self.spawn(inside + ["sh", "-c", "while :; do /bin/true; done"]).pid]
        for pid in extras:
            wait_for(lambda: netns_of(pid) == netns, what="extra %d in %s" % (pid, netns))
        self.extras[node] = extras
        return holder, netns

    def holder(self, node):
        return int(read(os.path.join(self.dir, "nodes", node, "holder.pid")))

    def netns(self, node):
        return read(os.path.join(self.dir, "nodes", node, "netns"))

    def cleanup(self):
        protected = {os.getpid(), os.getppid()}
        # the stub node-on's last process lives in the host netns: by its PID
        stub_pid_file = os.path.join(self.dir, "stub.pid")
        if os.path.exists(stub_pid_file):
            pid = int(read(stub_pid_file))
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmdline = f.read()
            except OSError:
                cmdline = b""
            if cmdline.startswith(b"sleep\0") and pid not in protected:
                os.kill(pid, signal.SIGKILL)
        # namespaces recreated by `on` are ours too
        anchors = {p.pid for p in self.procs}
        for node in self.extras:
            try:
                self.namespaces.add(self.netns(node))
                anchors.add(self.holder(node))
            except (OSError, ValueError):
                pass
        for netns in self.namespaces - {self.own_netns, None}:
            # a namespace whose processes are all gone may have its inode reused: kill only
            # while one of our own processes still holds it
            if any(netns_of(pid) == netns for pid in anchors):
                for pid in pids_in(netns) - protected:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture()
def fake_lab(tmp_path):
    lab = FakeLab(str(tmp_path))
    try:
        lab.add_bridge()
        lab.add_node("node1")
        lab.add_node("node2")
        yield lab
    finally:
        lab.cleanup()


@pytest.fixture()
def fake_repo_agent(tmp_path):
    """A copy of the agent in a fake repo with a stub lab/lab.sh, reached through a symlink
    like /usr/sbin/fence_gridvirt_lab."""
    repo = tmp_path / "repo"
    (repo / "lab" / "fence").mkdir(parents=True)
    agent = repo / "lab" / "fence" / "fence_gridvirt_lab"
    shutil.copy2(AGENT, agent)
    shutil.copy2(AGENT + ".py", str(agent) + ".py")
    lab_sh = repo / "lab" / "lab.sh"
    lab_sh.write_text(STUB_LAB_SH)
    lab_sh.chmod(0o755)
    (tmp_path / "sbin").mkdir()
    link = tmp_path / "sbin" / "fence_gridvirt_lab"
    link.symlink_to(agent)
    return str(link)


# ------------------------------------------------------------------ running the agent

def run_agent(agent, args=(), stdin=None, timeout=120):
    env = dict(os.environ, FENCE_TEST_LEAK="1")
    env.pop("PCMK_service", None)
    proc = subprocess.run([agent] + list(args), input=stdin if stdin is not None else "",
                          capture_output=True, text=True, timeout=timeout, env=env, check=False)
    print("$ %s %s\n%s%s-> %d" % (agent, " ".join(args), proc.stdout, proc.stderr,
                                  proc.returncode))
    return proc


def pacemaker(agent, lab, action, node=None):
    """As pacemaker-fenced does: no arguments, key=value lines on stdin."""
    lines = ["action=" + action, "lab_dir=" + lab.dir]
    if node:
        lines += ["port=" + node, "nodename=" + node]
    return run_agent(agent, stdin="\n".join(lines) + "\n")


def cli(agent, lab, action, node=None):
    args = ["-o", action, "--lab-dir", lab.dir]
    if node:
        args += ["-n", node]
    return run_agent(agent, args)


# ------------------------------------------------------------------ tests

def test_status_list_monitor_metadata(fake_lab):
    assert pacemaker(AGENT, fake_lab, "status", "node1").returncode == 0
    res = cli(AGENT, fake_lab, "status", "node2")
    assert res.returncode == 0 and "Status: ON" in res.stdout

    res = pacemaker(AGENT, fake_lab, "list")
    assert res.returncode == 0
    assert sorted(line.split(",")[0] for line in res.stdout.split()) == ["node1", "node2"]

    assert pacemaker(AGENT, fake_lab, "monitor").returncode == 0

    res = cli(AGENT, fake_lab, "metadata")
    assert res.returncode == 0
    root = ET.fromstring(res.stdout)
    assert root.tag == "resource-agent" and root.get("name") == "fence_gridvirt_lab"
    assert root.get("shortdesc") == "Fence agent for the gridvirt lab's namespaced nodes"
    params = {p.get("name"): p for p in root.iter("parameter")}
    assert params["lab_dir"].get("required") == "1"
    assert "port" in params
    assert params["power_timeout"].find("content").get("default") == "60"
    actions = {a.get("name") for a in root.iter("action")}
    assert {"on", "off", "reboot", "status", "list", "monitor", "metadata"} <= actions


def test_monitor_fails_without_bridge_or_lab(fake_lab, tmp_path):
    os.kill(fake_lab.bridge, signal.SIGKILL)
    wait_for(lambda: not alive(fake_lab.bridge), what="bridge gone")
    assert pacemaker(AGENT, fake_lab, "monitor").returncode != 0
    res = run_agent(AGENT, ["-o", "monitor", "--lab-dir", str(tmp_path / "nowhere")])
    assert res.returncode != 0


def test_unknown_node_and_missing_lab_dir(fake_lab):
    assert cli(AGENT, fake_lab, "status", "node9").returncode not in (0, 2)
    assert run_agent(AGENT, ["-o", "status", "-n", "node1"]).returncode not in (0, 2)


def test_off_kills_every_process_of_that_node_only(fake_lab):
    netns1, netns2 = fake_lab.netns("node1"), fake_lab.netns("node2")
    node2_before = [fake_lab.holder("node2")] + fake_lab.extras["node2"]
    assert len(pids_in(netns1)) >= 5   # unshare, holder, 3 extras

    # How long a power cut takes is a figure of `make bench` (section ha: node fenced).
    res = pacemaker(AGENT, fake_lab, "off", "node1")
    assert res.returncode == 0, res.stderr
    assert "Success: Powered OFF" in res.stdout

    assert pids_in(netns1) == set()
    for pid in node2_before:
        assert alive(pid) and netns_of(pid) == netns2, pid
        assert stat_fields(pid)[0] != "T", "node2 process %d left stopped" % pid

    res = cli(AGENT, fake_lab, "status", "node1")
    assert res.returncode == 2 and "Status: OFF" in res.stdout
    assert pacemaker(AGENT, fake_lab, "status", "node2").returncode == 0

    # already off: nothing to do
    res = cli(AGENT, fake_lab, "off", "node1")
    assert res.returncode == 0 and "Already OFF" in res.stdout


def test_reused_holder_pid_is_off(fake_lab):
    with open(os.path.join(fake_lab.dir, "nodes", "node1", "holder.pid"), "w") as f:
        f.write("%d\n" % os.getpid())
    res = pacemaker(AGENT, fake_lab, "status", "node1")
    assert res.returncode == 2 and "Status: OFF" in res.stdout
    assert pacemaker(AGENT, fake_lab, "status", "node2").returncode == 0


def check_stub_launch(lab, node):
    """The stub node-on ran detached, in the bridge's mount/UTS namespaces, with a clean
    environment, its output in the node's power-on.log."""
    assert read(os.path.join(lab.dir, "stub.args")) == "node-on " + node
    env = dict(line.split("=", 1) for line in read(os.path.join(lab.dir, "stub.env")).splitlines())
    assert env["PATH"] == NODE_ON_PATH and env["HOME"] == "/root" and env["LAB_DIR"] == lab.dir
    assert "FENCE_TEST_LEAK" not in env
    assert read(os.path.join(lab.dir, "stub.mntns")) == os.readlink("/proc/%d/ns/mnt" % lab.bridge)
    assert read(os.path.join(lab.dir, "stub.utsns")) == os.readlink("/proc/%d/ns/uts" % lab.bridge)

    stub = int(read(os.path.join(lab.dir, "stub.pid")))
    assert alive(stub), "the launched node-on must outlive the agent"
    assert int(stat_fields(stub)[3]) != os.getsid(0), "node-on must run in its own session"
    log = os.path.join(lab.dir, "nodes", node, "power-on.log")
    assert os.readlink("/proc/%d/fd/0" % stub) == "/dev/null"
    assert os.readlink("/proc/%d/fd/1" % stub) == log
    assert os.readlink("/proc/%d/fd/2" % stub) == log
    wait_for(lambda: "holder up" in read(log), what="stub output in " + log)


def test_on_launches_node_on_detached(fake_lab, fake_repo_agent):
    old_holder = fake_lab.holder("node1")
    assert cli(fake_repo_agent, fake_lab, "off", "node1").returncode == 0

    res = pacemaker(fake_repo_agent, fake_lab, "on", "node1")
    assert res.returncode == 0, res.stderr
    assert "Success: Powered ON" in res.stdout
    # The stub waits 2 s before creating the holder: "on" succeeded only once the new holder
    # was up (the order is what counts; its duration is a figure of `make bench`).

    holder = fake_lab.holder("node1")
    assert holder != old_holder and alive(holder)
    assert netns_of(holder) == fake_lab.netns("node1")
    assert cli(fake_repo_agent, fake_lab, "status", "node1").returncode == 0
    check_stub_launch(fake_lab, "node1")

    # already on: nothing launched
    os.unlink(os.path.join(fake_lab.dir, "stub.args"))
    res = cli(fake_repo_agent, fake_lab, "on", "node1")
    assert res.returncode == 0 and "Already ON" in res.stdout
    assert not os.path.exists(os.path.join(fake_lab.dir, "stub.args"))


def test_reboot_is_off_then_on(fake_lab, fake_repo_agent):
    old_netns = fake_lab.netns("node1")
    old_pids = pids_in(old_netns)
    res = pacemaker(fake_repo_agent, fake_lab, "reboot", "node1")
    assert res.returncode == 0, res.stderr
    assert "Success: Rebooted" in res.stdout
    assert not any(alive(pid) and netns_of(pid) == old_netns for pid in old_pids)
    assert alive(fake_lab.holder("node1"))
    assert cli(fake_repo_agent, fake_lab, "status", "node1").returncode == 0
    check_stub_launch(fake_lab, "node1")
