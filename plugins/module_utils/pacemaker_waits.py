# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gridvirt.kvm contributors
# Apache License 2.0 (see LICENSE)
"""The Pacemaker layer's waits: until a VM's resource reaches a state, until it runs on a
node, until the controller has no transition left. Each is bounded by the timeout the caller
derives from the resource's operation timeouts, longer only while the controller is still
working (a loaded cluster queues our actions behind others)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

POLL_SECONDS = 0.5
# A wait may last this many times its timeout while the controller is still busy.
BUSY_FACTOR = 3
# A wait for a placement ends early when, this long after the change, the controller is idle
# and the resource is settled elsewhere: Pacemaker decided not to place it there.
SETTLE_SECONDS = 10


class Waits(object):
    """The waits of one Cluster (``Cluster.waits``): they read its status afresh."""

    def __init__(self, cluster):
        self.cluster = cluster

    def wait_for(self, vm, wanted, timeout):
        """Poll the status until the VM's resource is in one of ``wanted`` states; -> (status,
        node). The timeout comes from the resource's operation timeouts. Failures recorded
        earlier (a monitor failure Pacemaker recovered from, say) do not end the wait: a
        stopped resource is Stopped whatever its history, and a start may still succeed
        on another node. A wait for a start is over early once Pacemaker has given up on it:
        SETTLE_SECONDS after the change the VM is Stopped or Failed and the controller idle
        (its start failed wherever it could run)."""
        start = time.monotonic()
        while True:
            current = self.cluster.fresh_status()
            status, node = current["resources"].get(vm, ("Disabled", None))
            if current["roles"].get(vm) == "Stopped" and "Stopped" in wanted:
                status, node = "Stopped", None
            if status in wanted and not self._may_still_start(status, current.get("dc")):
                return status, node
            if "Started" in wanted and self._given_up(status, start, current.get("dc")):
                return status, node
            if self._wait_over(start, timeout, current.get("dc")):
                return status, node
            time.sleep(POLL_SECONDS)

    def _given_up(self, status, start, dc):
        return status in ("Stopped", "Failed") and \
            time.monotonic() - start >= SETTLE_SECONDS and not self.cluster.controller_busy(dc)

    def _may_still_start(self, status, dc):
        """A resource seen Stopped (or gone) while the controller runs a transition may be
        between the stop and the start of a restart, or an orphan not stopped yet: it is
        stopped for good only once the controller is idle."""
        return status in ("Stopped", "Disabled") and self.cluster.controller_busy(dc)

    def wait_on(self, vm, node, timeout):
        """Poll until the VM is Started on ``node``; -> (status, node it is on). Bounded like
        wait_for, and over early when, SETTLE_SECONDS after the change, the controller is
        idle and the VM is Started, Stopped or Failed elsewhere (nothing left to do for it)."""
        start = time.monotonic()
        while True:
            current = self.cluster.fresh_status()
            status, where = current["resources"].get(vm, ("Disabled", None))
            if status == "Started" and where == node:
                return status, where
            settled = status in ("Started", "Stopped", "Failed") and \
                time.monotonic() - start >= SETTLE_SECONDS
            if settled and not self.cluster.controller_busy(current.get("dc")):
                return status, where
            if self._wait_over(start, timeout, current.get("dc")):
                return status, where
            time.sleep(POLL_SECONDS)

    def settle(self, timeout):
        """Wait, at most ``timeout`` seconds, until the controller has no transition left to
        run; -> whether it got there."""
        time.sleep(POLL_SECONDS)  # the controller notices the last change
        dc = self.cluster.fresh_status().get("dc")
        deadline = time.monotonic() + timeout
        try:
            while self.cluster.controller_busy(dc):
                if time.monotonic() >= deadline:
                    return False
                time.sleep(POLL_SECONDS)
            return True
        finally:
            self.cluster.forget()

    def _wait_over(self, start, timeout, dc):
        """Past the timeout, and the cluster has nothing left to do for it. Under load the
        controller throttles its actions and queues ours behind others: while it is still
        running a transition, the wait goes on, up to BUSY_FACTOR times the timeout."""
        elapsed = time.monotonic() - start
        if elapsed < timeout:
            return False
        return elapsed >= timeout * BUSY_FACTOR or not self.cluster.controller_busy(dc)
