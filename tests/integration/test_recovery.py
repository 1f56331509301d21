"""Recovery: a worker killed (SIGKILL) or stopped (SIGTERM) mid-run loses no acknowledged event.

The reaper (workers/housekeeper.py) queues work again for accepted events
whose job died with its worker, once PENDING_CHECK_SECONDS (1 s here) and the
dead worker's heartbeat (5 s) have run out, so recovery takes seconds; the
bound below is 30 s. Workers are killed as a whole process group (the Procfile
``worker`` supervisor and every worker it started).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from callstate_harness import TENANT_A, Api, Launcher, Proc, Response, wait_until
from primevox_bodies import ALICE, BOB, CAROL, Call, Fields

# Every test here runs on one Redis and on a Redis Cluster (conftest.py: backend).
pytestmark = pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)

RECOVERY_TIMEOUT = 30.0


def busy_call(call: Call) -> list[Fields]:
    """Ten distinct events of one answered call, in the order the PBX sends them."""
    return [
        call.inbound(),
        call.queue(),
        call.ring_group(),
        call.ring(ALICE),
        call.ring(BOB),
        call.ring(CAROL),
        call.answered(BOB),
        call.completed(ALICE),
        call.completed(BOB),
        call.hangup(BOB),
    ]


class Poster:
    """Posts bodies from a thread pool and remembers every acknowledged (202) one."""

    def __init__(self, api: Api, threads: int = 8) -> None:
        self.api = api
        self.pool = ThreadPoolExecutor(threads)
        self.lock = threading.Lock()
        self.acked: list[tuple[Fields, dict[str, Any]]] = []
        self.refused: list[tuple[Fields, Response]] = []
        self.futures: list[Future[None]] = []

    def _post(self, fields: Fields) -> None:
        answer = self.api.post_event(fields)
        with self.lock:
            if answer.status == 202:
                self.acked.append((fields, answer.json()))
            else:
                self.refused.append((fields, answer))

    def post(self, bodies: list[Fields]) -> None:
        self.futures += [self.pool.submit(self._post, fields) for fields in bodies]

    def idle(self) -> bool:
        """Everything submitted so far has been answered."""
        return all(f.done() for f in self.futures)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def finish(self) -> None:
        self.pool.shutdown(wait=True)
        assert not self.refused, [(f["eventType"], a.status, a.text) for f, a in self.refused]


def interleave(calls: list[Call]) -> list[Fields]:
    """The calls' events as they would arrive from many calls at once: round-robin."""
    per_call = [busy_call(c) for c in calls]
    return [events[i] for i in range(10) for events in per_call]


def kill_mid_run(
    launcher: Launcher, poster: Poster, victim: Proc, workers: list[Proc], at_least: int
) -> list[str]:
    """SIGKILL ``victim`` while it runs a job and acknowledged events wait.

    Once ``at_least`` events are acknowledged, every worker is frozen (SIGSTOP)
    until as many again are, so a backlog exists whatever the machine's speed;
    then they resume and the victim is killed at a moment it holds a job.
    """
    wait_until(lambda: poster.count() >= at_least, 20, f"{at_least} acknowledged events")
    for proc in workers:
        proc.signal_group(signal.SIGSTOP)
    try:
        wait_until(
            lambda: poster.count() >= 2 * at_least or poster.idle(), 20, "a backlog to build up"
        )
    finally:
        for proc in workers:
            proc.signal_group(signal.SIGCONT)
    return launcher.kill_holding_a_job(victim, TENANT_A)


def assert_all_logged_once(api: Api, launcher: Launcher, acked: list[tuple[Fields, Any]]) -> None:
    """Every acknowledged event is in its call's log exactly once, and nothing is pending."""
    wait_until(
        lambda: launcher.pending(TENANT_A) == 0,
        RECOVERY_TIMEOUT,
        "every acknowledged event to be applied (pending set to drain)",
        interval=0.2,
        detail=lambda: {"pending": launcher.pending(TENANT_A), "queued": launcher.queued()},
    )
    assert api.metric("callstate_events_pending") == 0
    by_call: dict[str, list[Fields]] = {}
    for fields, _ in acked:
        by_call.setdefault(fields["callUuid"], []).append(fields)
    for call_uuid, sent in by_call.items():
        call = api.call(call_uuid)
        assert call is not None, f"call {call_uuid} is missing"
        for fields in sent:
            copies = [e for e in call["events"] if e["fields"] == fields]
            assert len(copies) == 1, f"{fields['eventType']} of {call_uuid}: {len(copies)} copies"
        assert len(call["events"]) == len(sent), call_uuid


def latest_outcomes(api: Api) -> Mapping[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for record in api.outcomes(query=f"tenant_id={TENANT_A}"):
        known = latest.get(record["call_uuid"])
        if known is None or record["revision"] > known["revision"]:
            latest[record["call_uuid"]] = record
    return latest


def test_worker_killed_mid_run_loses_no_acknowledged_event(launcher: Launcher) -> None:
    """SIGKILL the only worker holding a job amid 300 events; a fresh worker applies them all."""
    launcher.start_web()
    (worker,) = launcher.start_workers(1)
    api = launcher.api
    calls = [Call(TENANT_A) for _ in range(30)]
    poster = Poster(api)
    poster.post(interleave(calls))
    kill_mid_run(launcher, poster, worker, [worker], at_least=60)
    poster.finish()
    assert poster.count() == 300

    launcher.start_workers(1)
    assert_all_logged_once(api, launcher, poster.acked)

    # Every call ends up decided as what happened, whatever the outage did to the timing.
    wait_until(lambda: launcher.quiet(TENANT_A), RECOVERY_TIMEOUT, "all outcomes decided")
    latest = latest_outcomes(api)
    assert set(latest) == {c.uuid for c in calls}
    assert {r["outcome"] for r in latest.values()} == {"answered"}
    assert all(r["answered_by"]["number"] == BOB.number for r in latest.values())


def test_worker_killed_while_idle_then_backlog_is_applied_by_a_new_worker(
    launcher: Launcher,
) -> None:
    """SIGKILL an idle worker, queue a backlog with no worker; a restarted worker applies it."""
    launcher.start_web()
    (worker,) = launcher.start_workers(1)
    api = launcher.api
    worker.kill9()

    calls = [Call(TENANT_A) for _ in range(10)]
    poster = Poster(api)
    poster.post(interleave(calls))
    poster.finish()
    assert poster.count() == 100
    assert launcher.pending(TENANT_A) == 100
    assert api.metric("callstate_events_pending") == 100
    assert (api.metric("callstate_queue_depth") or 0) >= 1, "no job is queued for the backlog"
    assert api.call(calls[0].uuid) is None, "an event was applied with no worker running"

    launcher.start_workers(1)
    assert_all_logged_once(api, launcher, poster.acked)


def test_one_of_two_workers_killed_mid_run_the_survivor_recovers(launcher: Launcher) -> None:
    """Two worker processes, one SIGKILLed holding a job: the survivor's reaper rescues it."""
    launcher.start_web()
    victim, survivor = launcher.start_workers(2)
    api = launcher.api
    calls = [Call(TENANT_A) for _ in range(20)]
    poster = Poster(api)
    poster.post(interleave(calls))
    kill_mid_run(launcher, poster, victim, [victim, survivor], at_least=40)
    poster.finish()
    assert_all_logged_once(api, launcher, poster.acked)

    # More workers can join later and share the work.
    launcher.start_workers(2)
    more = [Call(TENANT_A) for _ in range(10)]
    poster = Poster(api)
    poster.post(interleave(more))
    poster.finish()
    assert_all_logged_once(api, launcher, poster.acked)


def test_worker_killed_during_the_grace_period_a_new_worker_decides_the_outcome(
    launcher: Launcher,
) -> None:
    """SIGKILL the only worker after a call ended, before its outcome; a new worker decides it."""
    launcher.env_overrides["OUTCOME_GRACE_SECONDS"] = "2"
    launcher.start_web()
    (worker,) = launcher.start_workers(1)
    api = launcher.api
    call = Call(TENANT_A)
    for fields in busy_call(call):
        api.accept(fields)
    wait_until(
        lambda: launcher.pending(TENANT_A) == 0 and launcher.timers(TENANT_A) == 1,
        RECOVERY_TIMEOUT,
        "the call's events applied and its outcome timer set",
        interval=0.01,
    )
    worker.kill9()
    assert latest_outcomes(api) == {}, "decided before the grace period (2 s) ran out"
    time.sleep(2.5)  # the grace runs out with no worker alive
    assert latest_outcomes(api) == {}

    launcher.start_workers(1)
    wait_until(lambda: launcher.quiet(TENANT_A), RECOVERY_TIMEOUT, "the outcome to be decided")
    records = api.outcomes(query=f"tenant_id={TENANT_A}")
    assert [(r["call_uuid"], r["outcome"], r["revision"]) for r in records] == [
        (call.uuid, "answered", 1)
    ]


def test_worker_sigterm_mid_run_stops_promptly_and_a_new_worker_finishes(
    launcher: Launcher,
) -> None:
    """SIGTERM (a platform restart) mid-run: the worker exits within 20 s and nothing is lost."""
    launcher.start_web()
    (worker,) = launcher.start_workers(1)
    api = launcher.api
    # 1,000 events: more than one pass of the drain takes (200 a partition), so a
    # thawed moment of the worker cannot apply them all before it is caught holding
    # a job with events still pending (200 once were, on a busy machine).
    calls = [Call(TENANT_A) for _ in range(100)]
    poster = Poster(api)
    worker.signal_group(signal.SIGSTOP)  # a backlog, so SIGTERM lands mid-drain
    poster.post(interleave(calls))
    poster.finish()
    launcher.kill_holding_a_job(worker, TENANT_A, signum=signal.SIGTERM)
    wait_until(lambda: not worker.running(), 20, "the worker to exit after SIGTERM")
    assert worker.popen.returncode == 0, worker.tails()

    launcher.start_workers(1)
    assert_all_logged_once(api, launcher, poster.acked)
