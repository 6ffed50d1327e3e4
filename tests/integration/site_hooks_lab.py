"""Site hooks for the lab's tests: executables written into /etc/gridvirt/hooks/<stage>.d
(root-owned, 0755, as the hypervisor role installs them), a recorder hook that appends the
JSON document it read to a file, and the node's hook log. Every hook a test installs is
removed when the test ends, so the other tests run without them."""
import contextlib
import json
import os
import shutil

HOOKS_DIR = "/etc/gridvirt/hooks"
LOG = "/var/log/gridvirt/hooks.log"
RECORDS = "/var/tmp/gridvirt-test-hooks"  # seen by every lab node (not private)
PY = "#!/usr/bin/python3\nimport json, sys\n"

# Appends the document it read, one JSON line per run, to RECORDS/<stage>.jsonl.
RECORDER = PY + """doc = json.load(sys.stdin)
with open("%s/%%s.jsonl" %% doc["stage"], "a") as out:
    out.write(json.dumps(doc) + "\\n")
""" % RECORDS


def script(body):
    return PY + body


@contextlib.contextmanager
def installed(hooks, root=""):
    """``hooks``: {(stage, name): text}. Written under ROOT/etc/gridvirt/hooks (ROOT: a lab
    node's private root, else this machine's), removed at the end with the records."""
    written = []
    os.makedirs(RECORDS, exist_ok=True)
    try:
        for (stage, name), text in hooks.items():
            directory = os.path.join(root + HOOKS_DIR, "%s.d" % stage)
            os.makedirs(directory, mode=0o755, exist_ok=True)
            path = os.path.join(directory, name)
            with open(path, "w") as out:
                out.write(text)
            os.chmod(path, 0o755)
            written.append(path)
        yield written
    finally:
        for path in written:
            if os.path.exists(path):
                os.unlink(path)
        shutil.rmtree(RECORDS, ignore_errors=True)


def records(stage):
    """The documents the recorder hook of ``stage`` read, in order."""
    path = os.path.join(RECORDS, "%s.jsonl" % stage)
    if not os.path.exists(path):
        return []
    with open(path) as source:
        return [json.loads(line) for line in source]


def log_size(root=""):
    path = root + LOG
    return os.path.getsize(path) if os.path.exists(path) else 0


def log_since(offset, root=""):
    with open(root + LOG) as source:
        source.seek(offset)
        return source.read()
