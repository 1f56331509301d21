"""A cluster master lost for good under traffic (``bench.chaos --no-restart``).

One master is killed with ``kill -9`` and not restarted while traffic flows,
as when a cloud machine is lost: its replica takes over with no replica of
its own. After ``restore_after`` seconds the lost node is started again and
rejoins as the new master's replica. Meanwhile ``/readyz`` is watched for
the degraded master, and the sender's answers are kept: how many 503s, over
what window after the kill, and how long any webhook waited to be taken.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from bench.redis_cluster import ClusterNode
from bench.service import Service


@dataclass
class Takes:
    """The sender's answers, from every sending thread."""

    refused: list[float] = field(default_factory=list)  # monotonic time of each 503
    taken: list[tuple[float, float]] = field(default_factory=list)  # (first sent, 2xx)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refused_now(self) -> None:
        with self.lock:
            self.refused.append(time.monotonic())

    def taken_now(self, first_sent: float) -> None:
        with self.lock:
            self.taken.append((first_sent, time.monotonic()))


@dataclass
class LostMaster:
    """Which master to lose (``victim``: "redis_url", the node REDIS_URL names, or
    "other"), when, and what followed."""

    victim: str = "other"
    kill_at: float = 4.0
    restore_after: float = 15.0
    killed: str = ""
    killed_at: float = 0.0
    failed_over_at: float = 0.0
    restored_at: float = 0.0
    degraded_first: float = 0.0  # when /readyz first named a degraded master
    degraded_last: float = 0.0  # the last /readyz that still did
    recovered_at: float = 0.0  # the first /readyz without one after the restore
    problems: list[str] = field(default_factory=list)

    def choose(self, service: Service) -> ClusterNode:
        assert service.cluster is not None
        masters = service.cluster.master_nodes()
        named = [n for n in masters if n.url == service.env["REDIS_URL"]]
        if self.victim == "redis_url":
            if not named:
                raise RuntimeError("the node REDIS_URL names is not a master")
            return named[0]
        return next(n for n in masters if n not in named)

    def run(self, service: Service, started: float, stop: threading.Event) -> None:
        """Kill, watch, restore; returns once /readyz recovered (or ``stop`` is set
        after the restore)."""
        cluster = service.cluster
        assert cluster is not None
        if stop.wait(max(0.0, started + self.kill_at - time.monotonic())):
            return
        node = self.choose(service)
        self.killed = node.address
        cluster.kill9(node)
        self.killed_at = time.monotonic()
        cluster.wait_failover(60)
        self.failed_over_at = time.monotonic()
        while time.monotonic() < self.killed_at + self.restore_after:
            self._look(service)
            time.sleep(0.5)
        cluster.restart(node)  # back as the promoted master's replica
        cluster.wait_ok(60)
        self.restored_at = time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self._look(service):
                self.recovered_at = time.monotonic()
                return
            time.sleep(0.5)
        self.problems.append("/readyz still says degraded 60 s after the replica came back")

    def _look(self, service: Service) -> bool:
        """Whether /readyz names a degraded master now."""
        try:
            with urllib.request.urlopen(f"{service.base_url}/readyz", timeout=10) as answer:
                ready = json.load(answer)
        except (urllib.error.URLError, OSError, ValueError):
            return True  # not ready at all: not recovered either
        degraded = bool(ready.get("durability", {}).get("degraded"))
        if degraded:
            now = time.monotonic()
            self.degraded_first = self.degraded_first or now
            self.degraded_last = now
        return degraded

    def summary(self, takes: Takes) -> str:
        refused = len([t for t in takes.refused if t >= self.killed_at])
        degraded = (
            f"from {self.degraded_first - self.killed_at:.1f} s to "
            f"{self.degraded_last - self.killed_at:.1f} s after the kill"
            if self.degraded_first
            else "never"
        )
        recovered = (
            f"recovered {self.recovered_at - self.restored_at:.1f} s after the replica came back"
            if self.recovered_at
            else "not recovered"
        )
        return (
            f"lost master {self.killed} ({self.victim}): failover in "
            f"{self.failed_over_at - self.killed_at:.1f} s; {refused} answers 503 after the "
            f"kill, the last {self.window_503(takes):.1f} s after it; longest wait to be "
            f"taken after the failover {self.longest_wait(takes):.1f} s; "
            f"/readyz degraded {degraded}, {recovered}"
        )

    def window_503(self, takes: Takes) -> float:
        after = [t for t in takes.refused if t >= self.killed_at]
        return (max(after) - self.killed_at) if after else 0.0

    def longest_wait(self, takes: Takes) -> float:
        """Longest a webhook waited to be taken, counted from the failover for
        those sent before it."""
        waits = [
            accepted - max(first, self.failed_over_at)
            for first, accepted in takes.taken
            if accepted >= self.failed_over_at
        ]
        return max(waits, default=0.0)
