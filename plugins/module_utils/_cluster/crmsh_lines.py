# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The Pacemaker layer's allow-list of crmsh lines (SEAPATH's ``crm_config_cmd``).

crmsh's ``configure`` level can run programs (``filter`` runs one through a shell, ``load``
reads any file, ``erase`` wipes the configuration), and the lines are stored with the VM in
RBD metadata that every node can write. So a line is accepted only when it creates one
constraint naming the VM: ``location``, ``colocation`` (crmsh's alias ``collocation``) or
``order``, written with the few characters such a line needs. The same check runs when the
task is read and again before stored lines are replayed. Pure logic: no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import shlex
import unicodedata

from ansible_collections.gridvirt.kvm.plugins.module_utils._common.errors import VmError

KINDS = ("location", "colocation", "collocation", "order")
# Every character a constraint line needs, besides spaces and quotes (ASCII only: no
# look-alikes). Anything else (; | & ! $ ` / < > \ ...) has no place in one.
ALLOWED_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                          "_.:=+#-()[] '\"")
WORD_RE = re.compile(r"[A-Za-z0-9_.:=+#-]+|[()\[\]]")
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
SCORE_RE = re.compile(r"(?:[+-]?(?:[0-9]+|inf|infinity)|mandatory|advisory):", re.IGNORECASE)
# A location rule's score may also be a node attribute's name (SEAPATH's "rule pingd: ...").
RULE_SCORE_RE = re.compile(r"(?:[+-]?(?:[0-9]+|inf|infinity)|[A-Za-z_][A-Za-z0-9_.-]*):",
                           re.IGNORECASE)
ORDER_KIND_RE = re.compile(r"(?:Mandatory|Optional|Serialize):")
# A resource, with a role (colocation) or an action (order) after a colon.
REFERENCE_RE = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.-]*)(?::[A-Za-z]+)?")
# name=value words a colocation or order line (or one of its resource sets) may carry.
SET_ATTRIBUTES = ("sequential", "require-all", "role", "action", "node-attribute",
                  "symmetrical")
LOCATION_ATTRIBUTES = ("role", "resource-discovery")


def check_lines(vm, lines, where):
    """Each line of ``lines`` (``where``: the option or stored key, for the sentence) is a
    constraint naming ``vm``; -> the lines. Raises VmError with a sentence otherwise."""
    if not isinstance(lines, list):
        raise VmError("%s of VM %s must be a list of crmsh lines." % (where, vm))
    for index, line in enumerate(lines):
        constraint_words(vm, line, "%s[%d]" % (where, index))
    return lines


def constraint_words(vm, line, where):
    """The words crmsh gets for one line (as ``crm configure <words>``), once the line is
    known to create a constraint that names ``vm``."""
    words = _words(vm, line, where)
    kind = words[0]
    if len(words) < 2 or not NAME_RE.fullmatch(words[1]):
        raise VmError("%s (%r): %s line starts with the constraint's id (letters, digits, "
                      "_ . -)." % (where, line, _a(kind)))
    if kind == "location":
        _check_location(vm, line, words, where)
    else:
        _check_pair(vm, line, words, where)
    return words


def _words(vm, line, where):
    """The line split as crmsh splits it (shlex), with nothing but constraint characters."""
    if not isinstance(line, str) or not line.strip():
        raise VmError("%s of VM %s must be a non-empty crmsh line, not %r." % (where, vm, line))
    if any(unicodedata.category(char)[0] in ("C", "Z") and char != " " for char in line):
        raise VmError("%s (%r) contains a control or separator character (such as a "
                      "newline): write one constraint per line." % (where, line))
    # The command first: a refused command gets the reason, whatever its arguments.
    kind = line.split()[0]
    if kind not in KINDS:
        raise VmError("%s (%r): only location, colocation and order constraints that name VM "
                      "%s are accepted, not %r (other crmsh commands can run programs or "
                      "change the whole configuration)." % (where, line, vm, kind))
    for char in line:
        if char not in ALLOWED_CHARS:
            raise VmError("%s (%r) contains %r, which a constraint line does not need (letters, "
                          "digits, spaces and _ . : = + # - ( ) [ ] only)." % (where, line, char))
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise VmError("%s (%r) cannot be read as a crmsh line: %s (an unbalanced quote?)."
                      % (where, line, exc))
    for word in words:
        if not WORD_RE.fullmatch(word):
            raise VmError("%s (%r): %r is not one word of a constraint (no spaces inside quotes, "
                          "no empty words, brackets stand alone)." % (where, line, word))
    return words


def _check_location(vm, line, words, where):
    """location <id> <vm> [role=..|resource-discovery=..] <score>: <node> [role=..]
    location <id> <vm> [attributes] rule [<score>:] <expression> [rule ...]"""
    usage = ("%s (%r): a location line is 'location <id> %s <score>: <node>' or 'location "
             "<id> %s rule <score>: <expression>'." % (where, line, vm, vm))
    if len(words) < 3 or words[2] != vm:
        raise VmError("%s (%r): the location must be of VM %s itself (location <id> %s ...), "
                      "not of %r." % (where, line, vm, vm, words[2] if len(words) > 2 else None))
    rest = words[3:]
    while rest and rest[0].split("=", 1)[0] in LOCATION_ATTRIBUTES and "=" in rest[0]:
        rest = rest[1:]
    if rest and rest[0] == "rule":
        if not any(RULE_SCORE_RE.fullmatch(word) for word in rest) or any(
                word in "()[]" for word in rest):
            raise VmError(usage)
        return
    if len(rest) not in (2, 3) or not SCORE_RE.fullmatch(rest[0]) or \
            not NAME_RE.fullmatch(rest[1]):
        raise VmError(usage)
    if len(rest) == 3 and not re.fullmatch(r"role=[A-Za-z]+", rest[2]):
        raise VmError(usage)


def _check_pair(vm, line, words, where):
    """colocation <id> <score>: <rsc>[:<role>] <with-rsc>[:<role>] [node-attribute=..]
    order <id> [<kind>:|<score>:] <first>[:<action>] <then>[:<action>] [symmetrical=..]
    (either with resource sets in ( ) or [ ]): the resources must include the VM."""
    kind, rest = words[0], words[2:]
    if kind == "order":
        if rest and (ORDER_KIND_RE.fullmatch(rest[0]) or SCORE_RE.fullmatch(rest[0])):
            rest = rest[1:]
    elif rest and SCORE_RE.fullmatch(rest[0]):
        rest = rest[1:]
    else:
        raise VmError("%s (%r): a colocation line is 'colocation <id> <score>: %s <other>' "
                      "(score: a number, inf or -inf)." % (where, line, vm))
    resources = _resources(line, kind, rest, where)
    if len(resources) < 2 or vm not in resources:
        raise VmError("%s (%r): %s line must name VM %s and at least one other resource."
                      % (where, line, _a(kind), vm))


def _resources(line, kind, words, where):
    """The resources a colocation or order names (sets flattened), attributes checked."""
    resources, depth = [], 0
    for word in words:
        if word in ("(", "["):
            depth += 1
        elif word in (")", "]"):
            depth -= 1
        elif "=" in word:
            name, value = word.split("=", 1)
            if name not in SET_ATTRIBUTES or not NAME_RE.fullmatch(value):
                raise VmError("%s (%r): %r is not an attribute of %s constraint (%s)."
                              % (where, line, word, _a(kind), ", ".join(SET_ATTRIBUTES)))
        elif REFERENCE_RE.fullmatch(word):
            resources.append(REFERENCE_RE.fullmatch(word).group(1))
        else:
            raise VmError("%s (%r): %r is not a resource name." % (where, line, word))
        if depth < 0:
            break
    if depth != 0:
        raise VmError("%s (%r): its brackets do not pair up." % (where, line))
    return resources


def _a(kind):
    return ("an " if kind == "order" else "a ") + kind
