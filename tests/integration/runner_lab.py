"""Playbooks run as AWX runs a job template: ansible-runner over a private data directory
of the job's own, with
- ``project/``: the collection's playbooks, as a project checkout has them (plus files of
  the test's own project);
- ``inventory/``: a YAML inventory (``hosts.yml``) and its ``group_vars/``;
- ``env/envvars``: ANSIBLE_COLLECTIONS_PATH, where an execution environment has the
  collection installed (here the checkout's .build/ansible_collections/gridvirt/kvm link);
- ``env/extravars``: the job's extra vars, survey answers included (strings);
- ``env/cmdline``: ``--check`` for a check job.
Results come from runner's JSON artifacts only: ``artifacts/<ident>/rc`` and ``status``,
and the events of ``artifacts/<ident>/job_events/*.json`` (playbook_on_stats, runner_on_ok,
...), never from the text Ansible prints.

Jobs run through the ``ansible-runner`` command line, in the tests' environment less every
ANSIBLE_* variable: no setting of this checkout (its ansible.cfg) reaches the job except
through the private data directory, as on an AWX execution node."""
import glob
import json
import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import yaml

import lab

BUILD = os.path.join(lab.REPO, ".build")


def runner_command():
    """ansible-runner of the Python running the tests (the virtualenv's)."""
    here = os.path.join(os.path.dirname(sys.executable), "ansible-runner")
    return here if os.path.exists(here) else shutil.which("ansible-runner")


def clean_environment():
    """The tests' environment less every ANSIBLE_* variable, with the Python's bin directory
    first on PATH (ansible-playbook is found there, as in an execution environment)."""
    env = dict((key, value) for key, value in os.environ.items()
               if not key.startswith("ANSIBLE_"))
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def write_yaml(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write("---\n" + yaml.safe_dump(content, default_flow_style=False))


def survey_answer(value):
    """What a survey gives: a string (text, textarea, integer typed as text, ...) or a list
    of strings (multiple choice, multiple select)."""
    return isinstance(value, str) or (isinstance(value, list)
                                      and all(isinstance(item, str) for item in value))


class Run(object):
    """One job's artifacts: rc, status and the events, as runner wrote them."""

    def __init__(self, artifacts):
        self.path = artifacts
        with open(os.path.join(artifacts, "rc")) as handle:
            self.rc = int(handle.read().strip())
        with open(os.path.join(artifacts, "status")) as handle:
            self.status = handle.read().strip()
        events = []
        for name in glob.glob(os.path.join(artifacts, "job_events", "*.json")):
            with open(name) as handle:
                events.append(json.load(handle))
        self.events = sorted(events, key=lambda event: event["counter"])

    def of(self, kind, task=None, host=None):
        """The event_data of the events of ``kind`` (runner_on_ok, ...), of the task named
        ``task`` and the host ``host`` when given."""
        return [event["event_data"] for event in self.events
                if event.get("event") == kind
                and (task is None or event["event_data"].get("task") == task)
                and (host is None or event["event_data"].get("host") == host)]

    @property
    def stats(self):
        """playbook_on_stats' counts: {"changed": {host: n}, "ok": ..., "failures": ...};
        a host with a count of 0 is not listed under that count."""
        found = self.of("playbook_on_stats")
        assert len(found) == 1, "%s: %d playbook_on_stats events" % (self.path, len(found))
        return found[0]

    def changed(self, host):
        return (self.stats.get("changed") or {}).get(host, 0)

    def hosts(self):
        """The hosts the stats name (each host the play ran for is ok, failed or dark)."""
        names = set()
        for key in ("ok", "changed", "failures", "dark", "skipped"):
            names.update(self.stats.get(key) or {})
        return names

    def results(self, task, host=None):
        """The results (res) of the task's runner_on_ok events."""
        return [data["res"] for data in self.of("runner_on_ok", task, host)]

    def ran(self, task, host=None):
        """The hosts for which the task ran (ok, changed or failed), not skipped."""
        return sorted(data["host"] for kind in ("runner_on_ok", "runner_on_failed")
                      for data in self.of(kind, task, host))

    def skipped(self, task, host=None):
        return sorted(data["host"] for data in self.of("runner_on_skipped", task, host))

    def failures(self):
        """[(host, task, message)] of every failed or unreachable result not ignored."""
        out = []
        for kind in ("runner_on_failed", "runner_on_unreachable"):
            for data in self.of(kind):
                if data.get("ignore_errors"):
                    continue
                res = data.get("res") or {}
                out.append((data.get("host"), data.get("task"),
                            res.get("msg") or res.get("stderr") or res.get("exception")))
        return out

    def explain(self):
        """A short account of the job for an assertion's message."""
        stats = self.of("playbook_on_stats")
        return "%s: rc=%s status=%s failures=%s stats=%s" % (
            self.path, self.rc, self.status, self.failures(),
            dict((key, value) for key, value in stats[0].items()
                 if key in ("ok", "changed", "failures", "dark", "skipped")) if stats else None)

    def succeeded(self):
        assert self.rc == 0 and self.status == "successful", self.explain()
        return self


class Job(object):
    """A job started by Awx.start: wait() -> its Run."""

    def __init__(self, ident, private_data_dir, timeout):
        self.ident, self.private_data_dir, self.timeout = ident, private_data_dir, timeout
        command = [runner_command(), "run", private_data_dir, "-p", ident.playbook,
                   "--ident", ident.name]
        self.proc = subprocess.Popen(command, env=clean_environment(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def wait(self):
        try:
            _out, err = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError("job %s still ran after %ss" % (self.ident.name, self.timeout))
        artifacts = os.path.join(self.private_data_dir, "artifacts", self.ident.name)
        if not os.path.exists(os.path.join(artifacts, "status")):
            raise AssertionError("ansible-runner left no artifacts for %s (rc %d): %s"
                                 % (self.ident.name, self.proc.returncode, err[-3000:]))
        return Run(artifacts)


class _Ident(object):
    def __init__(self, number, playbook, check):
        self.playbook = playbook
        self.name = "%02d-%s%s" % (number, os.path.splitext(playbook)[0],
                                   "-check" if check else "")


class Awx(object):
    """Job templates over one project and one inventory. Every job gets a private data
    directory of its own under ``base`` (as AWX makes one per job): ``project/`` copied from
    the checkout's playbooks/ (with ``project_files``: {name: YAML data}), ``inventory/``
    with ``hosts.yml`` and ``group_vars`` ({group: variables}), ``env/``."""

    def __init__(self, base, inventory, group_vars=None, project_files=None):
        self.base = str(base)
        self.inventory, self.group_vars = inventory, group_vars or {}
        self.project_files = project_files or {}
        self.jobs = 0
        self._numbering = threading.Lock()

    def _private_data_dir(self, ident, extravars, check, envvars):
        path = os.path.join(self.base, ident.name)
        project = os.path.join(path, "project")
        shutil.copytree(os.path.join(lab.REPO, "playbooks"), project)
        for name, content in self.project_files.items():
            write_yaml(os.path.join(project, name), content)
        write_yaml(os.path.join(path, "inventory", "hosts.yml"), self.inventory)
        for group, variables in self.group_vars.items():
            write_yaml(os.path.join(path, "inventory", "group_vars", group + ".yml"), variables)
        write_yaml(os.path.join(path, "env", "envvars"),
                   dict({"ANSIBLE_COLLECTIONS_PATH": BUILD, "ANSIBLE_NOCOLOR": "1"}, **envvars))
        extravars_path = os.path.join(path, "env", "extravars")
        write_yaml(extravars_path, extravars)
        # What ansible-playbook reads back is what was meant: survey answers, strings.
        with open(extravars_path) as handle:
            assert yaml.safe_load(handle) == extravars
        if check:
            with open(os.path.join(path, "env", "cmdline"), "w") as handle:
                handle.write("--check")
        return path

    def start(self, playbook, extravars=None, check=False, envvars=None, timeout=600):
        """Start the job of ``playbook`` (a file of project/) with ``extravars``, in check
        mode with ``check``, with the job's environment variables ``envvars`` besides the
        collection's path (e.g. ANSIBLE_INJECT_INVOCATION: the results then hold the
        arguments the modules got); -> Job (its wait() gives the Run)."""
        extravars = extravars or {}
        for key, value in extravars.items():
            assert survey_answer(value), "extra var %s is no survey answer: %r" % (key, value)
        with self._numbering:
            self.jobs += 1
            ident = _Ident(self.jobs, playbook, check)
        return Job(ident, self._private_data_dir(ident, extravars, check, envvars or {}),
                   timeout)

    def run(self, playbook, extravars=None, check=False, envvars=None, timeout=600):
        """Run the job to its end; -> Run."""
        return self.start(playbook, extravars, check, envvars, timeout).wait()

    def run_all(self, jobs, at_once=4):
        """Several jobs, ``at_once`` of them running at a time (as an AWX instance runs
        jobs side by side): ``jobs`` {key: (playbook, extravars[, options of run])};
        -> {key: Run}."""
        def one(spec):
            playbook, extravars = spec[:2]
            return self.run(playbook, extravars, **(spec[2] if len(spec) > 2 else {}))
        with ThreadPoolExecutor(max_workers=at_once) as pool:
            futures = dict((key, pool.submit(one, spec)) for key, spec in jobs.items())
            return dict((key, future.result()) for key, future in futures.items())
