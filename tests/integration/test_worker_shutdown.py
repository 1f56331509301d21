"""A worker asked to stop (SIGTERM) leaves promptly from every state it can be in.

The platform SIGKILLs what outlives SIGTERM by 30 s, and our test harness fails
a test whose processes need SIGKILL after 10 s (conftest.py). These tests put a
worker in each state a slow stop was traced to and check it leaves in time.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from callstate_harness import TENANT_A, Launcher, RedisServer, wait_until
from primevox_bodies import ALICE, Call

from core.queue import events_queue
from workers.__main__ import PUBSUB_STOP_SECONDS, EngineWorker


@pytest.fixture
def worker(redis_server: RedisServer) -> Iterator[EngineWorker]:
    client = redis_server.client()
    client.flushall()
    subject = EngineWorker([events_queue(client)], connection=client)
    try:
        yield subject
    finally:
        client.close()


def test_rq_pubsub_thread_stops_even_when_it_reads_the_unsubscribe_first(
    worker: EngineWorker,
) -> None:
    """The pubsub thread reading UNSUBSCRIBE's confirmation before it is told to
    stop (seen under load: RQ's teardown then waited up to 60 s) holds the
    worker's teardown up no longer than PUBSUB_STOP_SECONDS."""
    worker.subscribe()
    pubsub, thread = worker.pubsub, worker.pubsub_thread
    assert pubsub is not None and thread is not None
    wait_until(lambda: pubsub.subscribed, 5, "the pubsub thread to subscribe")
    send_unsubscribe = pubsub.unsubscribe

    def confirmation_read_first() -> None:
        # The interleaving that hung: the thread reads and handles the
        # confirmation before the tearing-down thread runs another line.
        send_unsubscribe()
        wait_until(lambda: not pubsub.subscribed, 5, "the thread to read the confirmation")

    pubsub.unsubscribe = confirmation_read_first  # type: ignore[method-assign]
    began = time.monotonic()
    worker.unsubscribe()
    took = time.monotonic() - began
    assert took < PUBSUB_STOP_SECONDS + 1.0, f"teardown held up {took:.1f} s"
    thread.join(PUBSUB_STOP_SECONDS)
    assert not thread.is_alive(), "the pubsub thread is still waiting"


def test_rq_pubsub_thread_stops_at_once_when_idle(worker: EngineWorker) -> None:
    """The usual order (confirmation read after the stop flag is up): the thread
    leaves with the confirmation, well inside the bound."""
    worker.subscribe()
    pubsub, thread = worker.pubsub, worker.pubsub_thread
    assert pubsub is not None and thread is not None
    wait_until(lambda: pubsub.subscribed, 5, "the pubsub thread to subscribe")
    began = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - began < 1.0
    assert not thread.is_alive()


@pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)
def test_idle_worker_stops_within_seconds_of_sigterm_every_time(launcher: Launcher) -> None:
    """An idle worker (events applied, nothing queued) SIGTERMed again and again
    leaves within 5 s each time with status 0, its RQ worker deregistered."""
    api = launcher.start_service()
    call = Call(TENANT_A)
    for fields in (call.inbound(), call.ring(ALICE), call.answered(ALICE), call.hangup(ALICE)):
        assert api.post_event(fields).status == 202
    for round_ in range(5):
        proc = launcher.start_worker()
        wait_until(lambda: launcher.quiet(TENANT_A), 30, "the events to be applied")
        began = time.monotonic()
        proc.signal_group(signal.SIGTERM)
        wait_until(lambda p=proc: not p.running(), 10, f"round {round_}: the worker to exit")
        took = time.monotonic() - began
        assert proc.returncode == 0, proc.tails()
        assert took < 5.0, f"round {round_}: {took:.1f} s after SIGTERM"
        assert launcher.workers_of(proc) == []


def test_sigterm_while_redis_does_not_answer_ends_the_worker_by_its_deadline(
    launcher: Launcher, redis_server: RedisServer
) -> None:
    """A worker whose Redis stopped answering (frozen, not closed) cannot stop
    cleanly (its teardown writes wait for Redis); its watchdog ends it within
    10 s of SIGTERM, saying so, with every thread's stack in its log."""
    launcher.start_service()
    workers = [p for p in launcher.procs if p.name.startswith("worker")]
    server = redis_server.process
    assert server is not None
    launcher.forced_exit_expected = True
    server.send_signal(signal.SIGSTOP)  # Redis takes connections and never answers
    try:
        time.sleep(0.5)
        began = time.monotonic()
        for proc in workers:
            proc.signal_group(signal.SIGTERM)
        for proc in workers:
            wait_until(lambda p=proc: not p.running(), 15, "the worker to exit with Redis frozen")
        took = time.monotonic() - began
    finally:
        server.send_signal(signal.SIGCONT)
    assert took < 10.0, f"{took:.1f} s after SIGTERM"
    assert launcher.forced_exits() == [p.name for p in workers]
    assert "most recent call first" in workers[0].output()  # faulthandler's stacks


@pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)
def test_sigterm_as_the_worker_registers_stops_it_cleanly(launcher: Launcher) -> None:
    """SIGTERM the moment RQ has registered the worker (before RQ's own signal
    handlers are in place): the worker deregisters and leaves with status 0,
    not killed by the signal."""
    launcher.start_web()
    for round_ in range(3):
        proc = launcher.start("worker", {"WORKER_CONCURRENCY": "1"})
        wait_until(lambda p=proc: launcher.workers_of(p), 30, "the worker to register",
                   interval=0.001)  # fmt: skip
        (name,) = launcher.workers_of(proc)
        # Frozen as soon as it is seen registered, signalled, thawed: the signal
        # lands where it stood, before RQ installs its handlers.
        proc.signal_group(signal.SIGSTOP)
        began = time.monotonic()
        proc.signal_group(signal.SIGTERM)
        proc.signal_group(signal.SIGCONT)
        wait_until(lambda p=proc: not p.running(), 10, f"round {round_}: the worker to exit")
        assert time.monotonic() - began < 5.0
        assert proc.returncode == 0, proc.tails()
        # Killed by the signal, it would have left its registration behind.
        assert name not in launcher.rq_workers(), f"round {round_}: {name} still registered"


def test_sigterm_while_starting_up_ends_the_worker_at_once(launcher: Launcher) -> None:
    """SIGTERM at any moment of start-up (importing, connecting) ends the whole
    group within 5 s."""
    launcher.start_web()
    for delay in (0.05, 0.3, 0.8, 1.5):
        proc = launcher.start("worker", {"WORKER_CONCURRENCY": "1"})
        time.sleep(delay)
        began = time.monotonic()
        proc.signal_group(signal.SIGTERM)
        wait_until(lambda p=proc: not p.running(), 10, f"the worker to exit ({delay} s in)")
        assert time.monotonic() - began < 5.0, f"{delay} s in"
        assert proc.returncode in (0, -signal.SIGTERM), proc.tails()


@pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)
def test_sigterm_to_a_group_held_past_its_waits_stops_every_process(launcher: Launcher) -> None:
    """The group frozen past every short wait (SIGSTOP, as a busy machine or a
    debugger does), SIGTERMed, thawed: every process, the delivery one included,
    leaves within 5 s with status 0. (A wait that a signal interrupts after its
    deadline once blocked for ever: CPython 3.11's SimpleQueue.get.)"""
    launcher.start_web()
    for round_ in range(3):
        proc = launcher.start_worker()
        time.sleep(1.0)  # every process of the group in its loop
        proc.signal_group(signal.SIGSTOP)
        time.sleep(0.5)  # past every wait's deadline
        began = time.monotonic()
        proc.signal_group(signal.SIGTERM)
        proc.signal_group(signal.SIGCONT)
        wait_until(lambda p=proc: not p.running(), 10, f"round {round_}: the group to exit")
        assert time.monotonic() - began < 5.0
        assert proc.returncode == 0, proc.tails()
