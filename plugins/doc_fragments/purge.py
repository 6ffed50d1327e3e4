# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Which snapshots command=purge_image deletes (same meaning in both modules).
    DOCUMENTATION = r"""
options:
  purge_number:
    description:
      - With O(command=purge_image), delete this many snapshots, oldest first (SEAPATH's
        meaning); a whole number.
    type: raw
  purge_keep:
    description:
      - With O(command=purge_image), keep this many of the newest snapshots and delete the
        rest; a whole number.
    type: raw
  purge_date:
    description:
      - With O(command=purge_image), delete the snapshots taken before this moment.
      - Give C(date) (with an optional C(time)), or C(iso_8601), or C(posix). Without a
        timezone, dates and times are read as UTC (SEAPATH ignores the timezone and reads
        them in the node's local time).
    type: dict
    suboptions:
      date:
        description: Day as C(YYYY-MM-DD).
        type: str
      time:
        description: Time of O(purge_date.date) as C(HH:MM) or C(HH:MM:SS); midnight when
          not given.
        type: str
      iso_8601:
        description: Moment as ISO 8601, for example C(2026-11-21T08:30:00+01:00).
        type: str
      posix:
        description: Moment as seconds since 1970-01-01 UTC (a whole number).
        type: raw
"""
