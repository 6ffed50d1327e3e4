"""Helpers for integration tests against the lab's real daemons (started by `make lab-up`).

Modules run through ansible itself (ad-hoc, the `tree` callback writes each result as JSON),
so every test exercises the same path a playbook does.
"""
import hashlib
import json
import os
import random
import re
import subprocess
import tempfile
import time

import libvirt
import pytest
from lxml import etree

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = os.path.join(REPO, ".lab", "images")
GUEST_IMAGE = os.path.join(IMAGES, "guest.qcow2")
GUEST_RAW = os.path.join(IMAGES, "guest.raw")
POOL_DIR = "/var/lib/libvirt/images"
SERIAL_LOG = "/var/log/libvirt/qemu/%s-serial.log"
URI = "qemu:///system"
BOOT_RE = re.compile(r"gridvirt-guest: booted name=(\S*) uuid=(\S*) boot=(\d+) disks=(\S*)")
HOST = "lab-hv1"
NO_TRACEBACK = "(traceback unavailable)"


def ansible_env():
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = os.path.join(REPO, "ansible.cfg")
    env["ANSIBLE_LOAD_CALLBACK_PLUGINS"] = "1"
    env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.builtin.tree"
    env["ANSIBLE_NOCOLOR"] = "1"
    return env


def without_unsafe_markers(value):
    """ansible-inventory's JSON with the untrusted-text markers (what an inventory plugin
    reports from hypervisors is never templated) taken off."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return dict((key, without_unsafe_markers(item)) for key, item in value.items())
    if isinstance(value, list):
        return [without_unsafe_markers(item) for item in value]
    return value


def run_module(args, module="gridvirt.kvm.standalone_vm", check=False, diff=False, host=HOST,
               inventory=None, timeout=900, env_extra=None):
    """Run one module task through ansible on HOST (of INVENTORY, else ansible.cfg's);
    returns its result dict. A task still running after ``timeout`` seconds is an error.
    ``env_extra``: environment variables of that run (the module inherits them)."""
    with tempfile.TemporaryDirectory() as tree:
        env = ansible_env()
        env.update(env_extra or {})
        env["ANSIBLE_CALLBACK_TREE_DIR"] = tree
        cmd = ["ansible", host, "-m", module, "-a", json.dumps(args)]
        if inventory:
            cmd += ["-i", inventory]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        path = os.path.join(tree, host)
        if not os.path.exists(path):
            raise AssertionError("ansible wrote no result:\n%s\n%s" % (proc.stdout, proc.stderr))
        with open(path) as handle:
            result = json.load(handle)
        result["_stdout"] = proc.stdout
        result["_stderr"] = proc.stderr  # ansible prints module warnings there
        # The tree callback leaves out "failed"; ansible's exit code tells it.
        result.setdefault("failed", proc.returncode != 0)
        return result


def run_batch(cases, module="gridvirt.kvm.standalone_vm", host=HOST, check=False,
              timeout=1800):
    """Run one task per argument dict of ``cases``, in order, in one ansible-playbook run on
    HOST (a failed task does not stop the others), in check mode with ``check``; returns
    their results in that order. For tables of refusals: one play instead of one ansible
    start per row."""
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "results.json")
        tasks = [{"name": "case %d" % index, module: args, "register": "case_%d" % index,
                  "ignore_errors": True, "check_mode": check}
                 for index, args in enumerate(cases)]
        everything = "[%s]" % ", ".join("case_%d" % index for index in range(len(cases)))
        tasks.append({"name": "results", "delegate_to": "localhost",
                      "ansible.builtin.copy": {"content": "{{ %s | to_json }}" % everything,
                                               "dest": out, "mode": "0600"}})
        playbook = os.path.join(work, "batch.json")
        with open(playbook, "w") as handle:
            json.dump([{"hosts": host, "gather_facts": False, "tasks": tasks}], handle)
        proc = subprocess.run(["ansible-playbook", playbook], cwd=REPO, env=ansible_env(),
                              capture_output=True, text=True, timeout=timeout, check=False)
        if not os.path.exists(out):
            raise AssertionError("the batch wrote no results:\n%s\n%s"
                                 % (proc.stdout[-3000:], proc.stderr[-3000:]))
        with open(out) as handle:
            return json.load(handle)


def run_refusals(cases, fingerprint, module="gridvirt.kvm.standalone_vm"):
    """A table of refusals ((id, arguments, expected), arguments of None left out) run in
    one batch: ({id: result}, fingerprint before, fingerprint after). None of them may
    change anything: the fingerprints must be equal."""
    before = fingerprint()
    results = run_batch([dict((k, v) for k, v in args.items() if v is not None)
                         for _id, args, _expected in cases], module=module)
    return dict(zip([case[0] for case in cases], results)), before, fingerprint()


def refusal_table(cases, fingerprint, module="gridvirt.kvm.standalone_vm"):
    """A module-scoped fixture giving run_refusals' result for ``cases``."""
    @pytest.fixture(scope="module")
    def table():
        return run_refusals(cases, fingerprint, module)
    return table


def assert_refused(table, case, expected):
    """The row ``case`` of a refusal_table failed with ``expected`` in its sentence, no
    traceback, and the table changed nothing."""
    results, before, after = table
    result = results[case]
    assert result.get("failed") is True, result
    assert expected in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"]
    # A registered failure carries this placeholder when the module raised nothing.
    assert result.get("exception", NO_TRACEBACK) == NO_TRACEBACK, result["exception"]
    assert after == before, "a refused request changed the lab"


def node_name():
    """This machine's name as Pacemaker knows it."""
    return os.uname().nodename


def conn():
    return libvirt.open(URI)


def domain_names():
    c = conn()
    try:
        return sorted(d.name() for d in c.listAllDomains())
    finally:
        c.close()


def domain_xml(name, inactive=True):
    c = conn()
    try:
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return etree.fromstring(c.lookupByName(name).XMLDesc(flags).encode())
    finally:
        c.close()


def domain_state(name):
    c = conn()
    try:
        return c.lookupByName(name).state()[0]
    finally:
        c.close()


def snapshot_names(name):
    """The VM's snapshots as libvirt holds them."""
    c = conn()
    try:
        return sorted(s.getName() for s in c.lookupByName(name).listAllSnapshots())
    finally:
        c.close()


def pool_files():
    return sorted(os.listdir(POOL_DIR)) if os.path.isdir(POOL_DIR) else []


def definitions():
    """Every libvirt domain with its definition (not only its name)."""
    c = conn()
    try:
        return dict((d.name(), d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
                    for d in c.listAllDomains())
    finally:
        c.close()


def fingerprint():
    """Everything a module call could change on the hypervisor: every definition with its
    snapshots, the pools, each pool file's size, mode and content (content only where no
    running guest writes to it), and the lock directory."""
    c = conn()
    try:
        doms, in_use = {}, set()
        for d in c.listAllDomains():
            doms[d.name()] = (d.isActive(), d.autostart(),
                              d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE),
                              sorted(s.getName() for s in d.listAllSnapshots()))
            if d.isActive():  # a running guest writes to these: their content may change
                in_use.update(disk_sources(etree.fromstring(d.XMLDesc(0))))
        pools = sorted(c.listStoragePools() + c.listDefinedStoragePools())
    finally:
        c.close()
    files = {}
    for f in pool_files():
        path = os.path.join(POOL_DIR, f)
        st = os.lstat(path)
        files[f] = (st.st_size, oct(st.st_mode), None if path in in_use else file_digest(path))
    return {"domains": doms, "pools": pools, "files": files, "locks": lock_entries()}


def disk_sources(root):
    return [s.get("file") for s in root.findall("./devices/disk/source") if s.get("file")]


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lock_entries():
    """The per-VM lock files of this host, with their modes (a run that was refused before
    any change must not even have taken a lock)."""
    from ansible_collections.gridvirt.kvm.plugins.module_utils._standalone import host_lock

    if not os.path.lexists(host_lock.LOCK_DIR) or not os.listdir(host_lock.LOCK_DIR):
        return None  # the first run of a host makes the directory: it is empty between runs
    entries = {}
    for name in sorted(os.listdir(host_lock.LOCK_DIR)):
        entries[name] = oct(os.lstat(os.path.join(host_lock.LOCK_DIR, name)).st_mode)
    return oct(os.lstat(host_lock.LOCK_DIR).st_mode), entries


def backing_file(path):
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", path],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out).get("backing-filename")


class Console(object):
    """The guest's serial console, as logged by virtlogd."""

    def __init__(self, name):
        self.path = SERIAL_LOG % name
        self.offset = self._size()

    def _size(self):
        return os.path.getsize(self.path) if os.path.exists(self.path) else 0

    def mark(self):
        """Only lines printed after this call count for the next wait."""
        self.offset = self._size()

    def text(self):
        if not os.path.exists(self.path):
            return ""
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode("utf-8", "replace")

    def wait_for(self, pattern, timeout=120):
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = regex.search(self.text())
            if match:
                return match
            time.sleep(0.2)
        raise AssertionError("no %r on the console of %s within %ss; it shows:\n%s"
                             % (pattern, self.path, timeout, self.text()[-2000:]))

    def wait_boot(self, timeout=120):
        """-> dict(name, uuid, boot, disks) of the next boot marker."""
        match = self.wait_for(BOOT_RE.pattern, timeout)
        # The guest prints a tick once it is up: ACPI is then handled, a stop is graceful.
        self.wait_for(r"alive tick=1 ", timeout)
        return {"name": match.group(1), "uuid": match.group(2), "boot": int(match.group(3)),
                "disks": match.group(4).split(",")}


def corrupt_image(path):
    """A compressed qcow2 whose headers are sound but whose data half-way is garbage:
    qemu-img info accepts it, an import fails part-way through with an I/O error."""
    subprocess.run(["qemu-img", "convert", "-c", "-O", "qcow2", GUEST_RAW, str(path)],
                   check=True)
    size = os.path.getsize(str(path))
    with open(str(path), "r+b") as handle:
        handle.seek(size // 2)
        handle.write(random.Random(7).randbytes(256 * 1024))


def guest_xml(name, memory_mib=128, nics=1, extra_devices=None):
    """Domain XML for the lab's test guest (TCG, serial console logged to a file)."""
    root = etree.Element("domain", type="qemu")
    etree.SubElement(root, "memory", unit="MiB").text = str(memory_mib)
    etree.SubElement(root, "vcpu").text = "1"
    os_el = etree.SubElement(root, "os")
    etree.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    etree.SubElement(os_el, "boot", dev="hd")
    features = etree.SubElement(root, "features")
    etree.SubElement(features, "acpi")
    etree.SubElement(root, "on_poweroff").text = "destroy"
    devices = etree.SubElement(root, "devices")
    for _index in range(nics):
        nic = etree.SubElement(devices, "interface", type="user")
        etree.SubElement(nic, "model", type="virtio")
    serial = etree.SubElement(devices, "serial", type="pty")
    etree.SubElement(serial, "log", file=SERIAL_LOG % name, append="on")
    etree.SubElement(devices, "console", type="pty")
    for dev in extra_devices or []:
        devices.append(dev)
    return etree.tostring(root, encoding="unicode")


def remove_everything(prefix):
    """Test cleanup: destroy and undefine every lab domain with the prefix, drop their files."""
    c = conn()
    try:
        for d in c.listAllDomains():
            if d.name().startswith(prefix):
                persistent = d.isPersistent()  # a transient domain is gone once destroyed
                if d.isActive():
                    d.destroy()
                if persistent:
                    d.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                                    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                                    | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
    finally:
        c.close()
    for f in pool_files():
        if f.startswith(prefix + "") and "." in f:
            os.unlink(os.path.join(POOL_DIR, f))
    for f in os.listdir(os.path.dirname(SERIAL_LOG)):
        if f.startswith(prefix) and f.endswith("-serial.log"):
            os.unlink(os.path.join(os.path.dirname(SERIAL_LOG), f))
    c = conn()
    try:
        if "default" in c.listStoragePools():
            c.storagePoolLookupByName("default").refresh(0)
        left = [d.name() for d in c.listAllDomains() if d.name().startswith(prefix)]
    finally:
        c.close()
    left += [f for f in pool_files() if f.startswith(prefix) and "." in f]
    if left:
        raise AssertionError("Test cleanup left %s behind." % left)


def control_character_cases(vm, create):
    """Bad-input rows common to both modules: names with a control character at the end
    (a trailing newline passed a regex's "$"), each refused with its exact sentence.
    ``create``: the table's builder of a create request."""
    rule = "use 1 to 63 letters, digits, '-' or '_', starting with a letter or digit."
    return [
        ("name ending in a newline", create(name=vm + "\n"),
         "Invalid VM name %r: %s" % (vm + "\n", rule)),
        ("name with NUL", create(name=vm + "\x00"), "Invalid VM name %r: %s" % (vm + "\x00", rule)),
        ("snapshot name with newline", {"name": vm, "command": "create_snapshot",
                                        "snapshot_name": "s1\n"},
         "Invalid snapshot name 's1\\n': use 1 to 128 letters, digits, '-', '_', '.' or ':', "
         "starting with a letter or digit."),
        ("metadata key with newline", create(metadata={"k\n": "x"}),
         "Invalid metadata key 'k\\n': use 1 to 64 letters, digits, '-', '_' or '.', starting "
         "with a letter or digit."),
    ]


def cleanup_fixture(prefix):
    """A module-wide autouse fixture removing the test's VMs (names starting with prefix)
    before and after the module's tests."""
    @pytest.fixture(scope="module", autouse=True)
    def clean_lab():
        remove_everything(prefix)
        yield
        remove_everything(prefix)
    return clean_lab
