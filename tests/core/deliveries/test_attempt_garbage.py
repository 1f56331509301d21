"""Delivery attempts leave nothing behind for the cyclic garbage collector.

A long-lived process runs its full collection rarely (CPython waits until the
oldest generation has grown by a quarter), so an object kept alive only by a
reference cycle stays in memory until then: a cycle made per attempt grew the
delivery process's memory with the traffic (bench/soak.py). Here the collector
is off while attempts are made; afterwards it must find none of their objects
unreachable, i.e. reference counting freed them all.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager

from flask.testing import FlaskClient

from core.deliveries import webhooks
from core.deliveries.dispatch import Prepared
from core.settings import Settings
from core.store import Store
from tests.kit.deliveries import Calls, Pump, deliveries, subscribe
from tests.kit.webhooks import Receiver
from workers.deliveries import DeliveryRunner

ATTEMPTS = 20


@contextmanager
def unreachable() -> Iterator[list[object]]:
    """Collect garbage, then make none until the block ends; the list then holds
    what the collector finds unreachable (made inside the block)."""
    gc.collect()
    found: list[object] = []
    gc.disable()
    try:
        yield found
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            found.extend(gc.garbage)
        finally:
            gc.garbage.clear()
            gc.set_debug(0)
            gc.enable()


def wait_for_timers_to_end(deadline: float = 10.0) -> None:
    """A cancelled attempt timer's thread ends a moment later (till then it is alive,
    so not garbage either way)."""
    until = time.monotonic() + deadline
    while any(isinstance(t, threading.Timer) for t in threading.enumerate()):
        assert time.monotonic() < until, "an attempt timer is still running"
        time.sleep(0.01)


def kinds(objects: list[object], *types: type) -> list[str]:
    return sorted({type(o).__name__ for o in objects if isinstance(o, types)})


def test_an_attempt_leaves_no_reference_cycle(receiver: Receiver) -> None:
    with unreachable() as garbage:
        for n in range(ATTEMPTS):
            attempt = webhooks.send(
                receiver.url(), b"{}", {"webhook-id": f"msg_{n}"}, allow_private=True
            )
            assert attempt.ok, attempt
        wait_for_timers_to_end()
    assert len(receiver.successes()) == ATTEMPTS
    assert kinds(garbage, threading.Timer, webhooks._Cutoff) == []


def test_the_runner_leaves_no_reference_cycle_per_attempt(
    client: FlaskClient, calls: Calls, pump: Pump, store: Store, settings: Settings,
    receiver: Receiver,
) -> None:
    sub = subscribe(client, receiver.url())
    for _ in range(ATTEMPTS):
        calls.end("missed")
    assert pump.dispatch() == ATTEMPTS
    runner = DeliveryRunner(store, settings, threads=4)
    with unreachable() as garbage:
        assert runner.run_until_idle() == ATTEMPTS
        wait_for_timers_to_end()
    runner.pool.shutdown()
    assert {d["status"] for d in deliveries(client, sub["id"])} == {"succeeded"}
    assert kinds(garbage, Future, Prepared, threading.Timer) == []
