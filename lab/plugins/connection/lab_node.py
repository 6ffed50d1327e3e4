# -*- coding: utf-8 -*-
# Copyright (c) gridvirt.kvm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Modelled on the community.general chroot connection plugin.

from __future__ import annotations

DOCUMENTATION = r"""
name: lab_node
author: gridvirt.kvm contributors
short_description: Run tasks inside a node of the local multi-node lab
description:
  - Reaches a "node" of the lab that runs on the Ansible controller itself. A node is a set of
    Linux namespaces (mount, UTS and network; no PID or user namespace) owned by a holder process.
  - The holder is found through C($LAB_DIR/nodes/<node>/holder.pid) and verified against
    C($LAB_DIR/nodes/<node>/netns), the text of C(readlink /proc/<holder>/ns/net) recorded when the
    node was created. It is re-read and re-verified for every command and file transfer, so a node
    that was powered off and recreated is followed, and a node that is down makes the host UNREACHABLE.
  - Commands run through C(nsenter --target <holder> --mount --uts --net) with a clean environment.
  - The controller must run as root. Set C(ansible_python_interpreter=/usr/bin/python3) on these hosts.
options:
  node:
    description:
      - Name of the lab node (the directory under C($LAB_DIR/nodes)).
      - Defaults to the host's address (C(ansible_host), else its inventory name, also when
        a task is delegated to it); C(lab_node_name) wins over it.
    type: string
    vars:
      - name: lab_node_name
  lab_dir:
    description:
      - The lab's state directory (LAB_DIR of C(lab/lab.sh)).
      - When unset, the C(.lab) directory at the root of the repository holding this plugin.
    type: path
    env:
      - name: GRIDVIRT_LAB_DIR
    vars:
      - name: lab_node_dir
  executable:
    description:
      - Shell that runs the commands inside the node.
    type: string
    default: /bin/sh
    ini:
      - section: defaults
        key: executable
    env:
      - name: ANSIBLE_EXECUTABLE
    vars:
      - name: ansible_executable
"""

EXAMPLES = r"""
# inventory
# [lab_nodes]
# node1
# node2 lab_node_name=node2
# [lab_nodes:vars]
# ansible_connection=lab_node
# ansible_python_interpreter=/usr/bin/python3
# lab_node_dir=/path/to/repo/.lab

- name: Run a command inside every lab node
  hosts: lab_nodes
  gather_facts: false
  tasks:
    - name: Show the node's hostname
      ansible.builtin.command: hostname
      changed_when: false
"""

import os
import os.path
import shlex
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import BUFSIZE, ConnectionBase
from ansible.utils.display import Display

display = Display()

NODE_ENV = {
    'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'HOME': '/root',
    'LANG': 'C.UTF-8',
}
NSENTER = '/usr/bin/nsenter'
NSENTER_ERROR = b'nsenter: '


def default_lab_dir():
    """<repo>/.lab, the repository being the one holding lab/plugins/connection/lab_node.py"""
    here = os.path.dirname(os.path.realpath(__file__))
    return os.path.realpath(os.path.join(here, '..', '..', '..', '.lab'))


class Connection(ConnectionBase):
    """Commands and files inside a namespaced node of the local lab"""

    transport = 'lab_node'
    has_pipelining = True
    has_tty = False
    default_user = 'root'

    def __init__(self, play_context, new_stdin, *args, **kwargs):
        super(Connection, self).__init__(play_context, new_stdin, *args, **kwargs)
        self._nsenter = None

    # the node ---------------------------------------------------------------------------------

    def _node(self):
        node = self.get_option('node') or self._play_context.remote_addr
        if not node or '/' in node or node.startswith('.'):
            raise AnsibleConnectionFailure(f"invalid lab node name {node!r}")
        return node

    def _node_dir(self, node):
        lab_dir = self.get_option('lab_dir') or default_lab_dir()
        return os.path.join(lab_dir, 'nodes', node)

    def _holder(self):
        """PID of the node's live holder process; AnsibleConnectionFailure when the node is down"""
        node = self._node()
        node_dir = self._node_dir(node)
        if not os.path.isdir(node_dir):
            raise AnsibleConnectionFailure(f"lab node {node} does not exist (no directory {node_dir})")
        try:
            with open(os.path.join(node_dir, 'netns')) as f:
                recorded = f.read().strip()
        except OSError:
            raise AnsibleConnectionFailure(f"lab node {node} is powered off (no netns file in {node_dir})")
        try:
            with open(os.path.join(node_dir, 'holder.pid')) as f:
                text = f.read().strip()
        except OSError:
            raise AnsibleConnectionFailure(f"lab node {node} is powered off (no holder process)")
        try:
            pid = int(text)
        except ValueError:
            raise AnsibleConnectionFailure(f"lab node {node} is powered off (no holder process; holder.pid holds {text!r})")
        if pid <= 1:
            raise AnsibleConnectionFailure(f"lab node {node} is powered off (no holder process; holder.pid holds {pid})")
        try:
            current = os.readlink(f'/proc/{pid}/ns/net')
        except OSError:
            # no such process, or a zombie (its namespaces are gone)
            raise AnsibleConnectionFailure(f"lab node {node} is powered off (no holder process)")
        if current != recorded:
            raise AnsibleConnectionFailure(
                f"lab node {node} is powered off (no holder process: PID {pid} from holder.pid is another process, "
                f"its network namespace is {current}, the node's was {recorded})")
        return pid

    # connection -------------------------------------------------------------------------------

    def _connect(self):
        if os.geteuid() != 0:
            raise AnsibleError("the lab_node connection must run as root on the controller (it enters namespaces with nsenter)")
        if self._nsenter is None:
            self._nsenter = NSENTER if os.access(NSENTER, os.X_OK) else 'nsenter'
        super(Connection, self)._connect()
        if not self._connected:
            pid = self._holder()
            display.vvv(f"LAB NODE {self._node()} HOLDER PID {pid}", host=self._node())
            self._connected = True
        return self

    def _popen(self, cmd, stdin=subprocess.PIPE):
        """start cmd in the node's namespaces; the holder is re-read and verified first"""
        if not self._connected:
            self._connect()
        pid = self._holder()
        local_cmd = [self._nsenter, '--target', str(pid), '--mount', '--uts', '--net', '--',
                     self.get_option('executable'), '-c', cmd]
        display.vvv(f"EXEC {local_cmd}", host=self._node())
        local_cmd = [to_bytes(i, errors='surrogate_or_strict') for i in local_cmd]
        try:
            return subprocess.Popen(local_cmd, shell=False, cwd='/', env=dict(NODE_ENV), stdin=stdin,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            raise AnsibleError(f"cannot run nsenter for lab node {self._node()}: {e}")

    def _check_after(self, returncode, stderr):
        """nsenter failing because the node went down after the check is the node being down, not the command failing"""
        if returncode != 0 and stderr.startswith(NSENTER_ERROR):
            self._holder()

    def exec_command(self, cmd, in_data=None, sudoable=False):
        """run a command in the node"""
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        p = self._popen(cmd)
        stdout, stderr = p.communicate(in_data)
        self._check_after(p.returncode, stderr)
        return p.returncode, stdout, stderr

    @staticmethod
    def _absolute(remote_path):
        """relative remote paths are taken from / (the cwd of every command)"""
        if not remote_path.startswith(os.path.sep):
            remote_path = os.path.join(os.path.sep, remote_path)
        return os.path.normpath(remote_path)

    def put_file(self, in_path, out_path):
        """copy a controller file into the node"""
        super(Connection, self).put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._node())
        remote = shlex.quote(self._absolute(out_path))
        try:
            in_file = open(to_bytes(in_path, errors='surrogate_or_strict'), 'rb')
        except OSError as e:
            raise AnsibleError(f"file or module does not exist at: {in_path} ({e})")
        with in_file:
            count = '' if os.fstat(in_file.fileno()).st_size else ' count=0'
            p = self._popen(f'dd of={remote} bs={BUFSIZE}{count}', stdin=in_file)
            stdout, stderr = p.communicate()
        self._check_after(p.returncode, stderr)
        if p.returncode != 0:
            raise AnsibleError(f"failed to transfer file {in_path} to {out_path} in lab node {self._node()}: "
                               f"{to_text(stderr, errors='surrogate_or_replace').strip()}")

    def fetch_file(self, in_path, out_path):
        """copy a node file to the controller"""
        super(Connection, self).fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._node())
        remote = shlex.quote(self._absolute(in_path))
        p = self._popen(f'dd if={remote} bs={BUFSIZE}', stdin=subprocess.DEVNULL)
        try:
            with open(to_bytes(out_path, errors='surrogate_or_strict'), 'wb+') as out_file:
                chunk = p.stdout.read(BUFSIZE)
                while chunk:
                    out_file.write(chunk)
                    chunk = p.stdout.read(BUFSIZE)
        except OSError as e:
            p.kill()
            p.communicate()
            raise AnsibleError(f"failed to transfer file {in_path} from lab node {self._node()} to {out_path}: {e}")
        stdout, stderr = p.communicate()
        self._check_after(p.returncode, stderr)
        if p.returncode != 0:
            raise AnsibleError(f"failed to transfer file {in_path} from lab node {self._node()} to {out_path}: "
                               f"{to_text(stderr, errors='surrogate_or_replace').strip()}")

    def close(self):
        """nothing is kept open between commands"""
        super(Connection, self).close()
        self._connected = False
