"""The lab_node connection plugin (lab/plugins/connection/lab_node.py) against a real, throwaway
node: a holder process in its own mount + UTS + network namespaces, in a temporary LAB_DIR.
ansible-playbook from the venv reaches it (command, copy/slurp/fetch, setup, ip), and a node
that is powered off, before or during a play, or whose holder.pid now names another process,
is UNREACHABLE. Needs root (unshare/nsenter); the real lab is not touched."""
import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(REPO, "lab", "plugins", "connection")
NODE = "testnodeX"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab_node connection needs root"),
    pytest.mark.skipif(not (shutil.which("unshare") and shutil.which("nsenter")), reason="needs util-linux unshare and nsenter"),
]


def ansible_bin(name):
    venv = os.path.join(REPO, ".venv", "bin", name)
    if os.path.exists(venv):
        return venv
    found = shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)
    if not found:
        pytest.skip(f"{name} not found")
    return found


class Holder:
    """a node holder process: started like the lab starts one, killed by PID"""

    def __init__(self, node_dir):
        self.node_dir = node_dir
        self.pidfile = os.path.join(node_dir, "holder.pid")
        self.proc = None
        self.pid = None
        # unshare's own complaints (e.g. on re-raising the holder's SIGKILL) go here, not to the test output
        self.log = open(os.path.join(node_dir, "holder.log"), "ab")

    def start(self):
        for name in ("holder.pid", "netns"):
            if os.path.exists(os.path.join(self.node_dir, name)):
                os.unlink(os.path.join(self.node_dir, name))
        script = f"hostname {NODE}; mount -t tmpfs tmpfs /mnt; echo $$ > {self.pidfile}.new; exec sleep 600"
        # unshare --fork: the forked child is the holder; it writes its own PID ($$) then execs sleep
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--uts", "--net", "--propagation", "private", "--fork", "--", "sh", "-c", script],
            stdin=subprocess.DEVNULL, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.pidfile + ".new"):
            assert self.proc.poll() is None, "unshare exited before the holder wrote its PID: " + self.log_text()
            assert time.monotonic() < deadline, "holder did not write its PID"
            time.sleep(0.05)
        time.sleep(0.1)  # let `echo` finish the line
        with open(self.pidfile + ".new") as f:
            self.pid = int(f.read())
        netns = os.readlink(f"/proc/{self.pid}/ns/net")
        assert netns != os.readlink("/proc/self/ns/net")
        with open(os.path.join(self.node_dir, "netns"), "w") as f:
            f.write(netns + "\n")
        os.rename(self.pidfile + ".new", self.pidfile)
        return self

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def kill(self):
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # the holder is unshare's child; once unshare has reaped it (and exited) the PID is gone
        deadline = time.monotonic() + 10
        while self.pid is not None and os.path.exists(f"/proc/{self.pid}/ns/net") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.log.close()


@pytest.fixture()
def lab(tmp_path):
    lab_dir = tmp_path / "lab"
    node_dir = lab_dir / "nodes" / NODE
    node_dir.mkdir(parents=True)
    holders = []

    def new_holder():
        holder = Holder(str(node_dir)).start()
        holders.append(holder)
        return holder

    new_holder()
    try:
        yield Lab(tmp_path, str(lab_dir), holders, new_holder)
    finally:
        for holder in holders:
            holder.kill()


class Lab:
    def __init__(self, tmp_path, lab_dir, holders, new_holder):
        self.tmp = tmp_path
        self.lab_dir = lab_dir
        self.holders = holders
        self.new_holder = new_holder
        self.inventory = tmp_path / "hosts.ini"
        self.inventory.write_text(
            "[nodes]\n"
            f"{NODE} ansible_connection=lab_node lab_node_name={NODE} lab_node_dir={lab_dir}"
            " ansible_python_interpreter=/usr/bin/python3\n")
        cfg = tmp_path / "ansible.cfg"
        cfg.write_text("[defaults]\nretry_files_enabled = false\nstdout_callback = default\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        self.env.update({
            "ANSIBLE_CONFIG": str(cfg),
            "ANSIBLE_CONNECTION_PLUGINS": PLUGINS,
            "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        })

    @property
    def holder(self):
        return self.holders[-1]

    def playbook(self, text, *extra, pipelining=False):
        path = self.tmp / "play.yml"
        path.write_text(textwrap.dedent(text))
        env = dict(self.env, ANSIBLE_PIPELINING=str(pipelining))
        proc = subprocess.run([ansible_bin("ansible-playbook"), "-i", str(self.inventory), str(path), *extra],
                              cwd=str(self.tmp), env=env, capture_output=True, text=True, timeout=300, check=False)
        print(proc.stdout)
        print(proc.stderr)
        return proc


IN_NODE = """\
- hosts: nodes
  gather_facts: false
  tasks:
    - name: hostname is the node's (UTS namespace)
      ansible.builtin.command: hostname
      register: h
    - ansible.builtin.assert:
        that: h.stdout == 'testnodeX'
    - name: small file into the node's /mnt (a tmpfs of its mount namespace)
      ansible.builtin.copy:
        content: "hello from the controller\\n"
        dest: /mnt/x
        mode: "0600"
    - name: larger file, several BUFSIZE chunks
      ansible.builtin.copy:
        src: "{{ big }}"
        dest: /mnt/big
    - ansible.builtin.slurp:
        src: /mnt/x
      register: s
    - ansible.builtin.assert:
        that: (s.content | b64decode) == 'hello from the controller\\n'
    - ansible.builtin.fetch:
        src: /mnt/x
        dest: "{{ out }}/x"
        flat: true
    - ansible.builtin.fetch:
        src: /mnt/big
        dest: "{{ out }}/big"
        flat: true
    - name: python modules work (facts)
      ansible.builtin.setup:
        gather_subset: min
    - ansible.builtin.assert:
        that: ansible_facts.hostname == 'testnodeX'
    - name: network namespace has only lo
      ansible.builtin.command: ip -j addr
      register: ip
    - ansible.builtin.assert:
        that: (ip.stdout | from_json | map(attribute='ifname') | list) == ['lo']
"""


@pytest.mark.parametrize("pipelining", [False, True], ids=["put_file", "pipelining"])
def test_tasks_run_inside_the_node(lab, pipelining):
    assert not os.path.exists("/mnt/x") and not os.path.exists("/mnt/big"), "host /mnt already has the test files"
    out = lab.tmp / "out"
    out.mkdir()
    big = lab.tmp / "big.bin"
    big.write_bytes(os.urandom(300 * 1024 + 17))
    proc = lab.playbook(IN_NODE, "-e", f"out={out}", "-e", f"big={big}", pipelining=pipelining)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failed=0" in proc.stdout and "unreachable=0" in proc.stdout
    assert (out / "x").read_text() == "hello from the controller\n"
    assert hashlib.sha256((out / "big").read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()
    # the files went to the node's own tmpfs, not to the host
    assert not os.path.exists("/mnt/x") and not os.path.exists("/mnt/big")


HOSTNAME = """\
- hosts: nodes
  gather_facts: false
  tasks:
    - ansible.builtin.command: hostname
      register: h
    - ansible.builtin.assert:
        that: h.stdout == 'testnodeX'
"""


def test_powered_off_node_is_unreachable(lab):
    lab.holder.kill()
    proc = lab.playbook(HOSTNAME)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "UNREACHABLE!" in proc.stdout
    assert f"lab node {NODE} is powered off (no holder process)" in proc.stdout


def test_power_off_during_a_play_then_recreated(lab):
    play = """\
    - hosts: nodes
      gather_facts: false
      tasks:
        - ansible.builtin.command: hostname
          register: h
        - ansible.builtin.assert:
            that: h.stdout == 'testnodeX'
        - name: power the node off from the controller
          ansible.builtin.command: kill -9 {{ holder }}
          delegate_to: localhost
          vars:
            ansible_connection: local
            ansible_python_interpreter: "{{ ansible_playbook_python }}"
        - name: the next task finds it down
          ansible.builtin.command: hostname
    """
    proc = lab.playbook(play, "-e", f"holder={lab.holder.pid}")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"lab node {NODE} is powered off (no holder process)" in proc.stdout
    assert "ok=3" in proc.stdout and "unreachable=1" in proc.stdout
    # recreated: a new holder (new PID, new namespaces) is followed
    lab.holder.kill()
    old_pid = lab.holder.pid
    lab.new_holder()
    assert lab.holder.pid != old_pid
    proc = lab.playbook(HOSTNAME)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_reused_pid_is_not_the_node(lab):
    # holder.pid now names a live process that is not the holder (our own: host network namespace)
    with open(lab.holder.pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    proc = lab.playbook(HOSTNAME)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "UNREACHABLE!" in proc.stdout
    assert f"lab node {NODE} is powered off" in proc.stdout
    assert f"PID {os.getpid()} from holder.pid is another process" in proc.stdout


def test_missing_pidfile_and_unknown_node(lab):
    os.unlink(lab.holder.pidfile)
    proc = lab.playbook(HOSTNAME)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"lab node {NODE} is powered off (no holder process)" in proc.stdout
    proc = lab.playbook(HOSTNAME, "-e", "lab_node_name=nosuchnode")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "lab node nosuchnode does not exist" in proc.stdout


def test_defaults_inventory_hostname_and_env_lab_dir(lab):
    lab.inventory.write_text(f"{NODE} ansible_connection=lab_node ansible_python_interpreter=/usr/bin/python3\n")
    lab.env["GRIDVIRT_LAB_DIR"] = lab.lab_dir
    proc = lab.playbook(HOSTNAME.replace("hosts: nodes", "hosts: all"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_lab_dir_is_the_repository_lab():
    spec = importlib.util.spec_from_file_location("lab_node_plugin", os.path.join(PLUGINS, "lab_node.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.default_lab_dir() == os.path.realpath(os.path.join(REPO, ".lab"))
