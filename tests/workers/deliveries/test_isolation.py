"""One bad receiver does not slow the others (the delivery process's runner, in-process).

fakeredis, real HTTP receivers on loopback, the runner's real thread pool and
time box (shortened here). The same goal with real processes is in
tests/integration/test_delivery_isolation.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from core.deliveries.dispatch import DELIVERY_LEASE
from core.settings import Settings
from core.store import (
    Store,
    delivery_due_key,
    delivery_queue_key,
    delivery_timers_key,
)
from tests.kit.deliveries import ADMIN, Calls, Pump, deliveries, subscribe
from tests.kit.webhooks import Receiver, always, failing_first
from workers.deliveries import DeliveryRunner

TIME_BOX = 5.0  # the runner's attempt time box in these tests: the healthy
# receiver's deliveries must all be in before it ends, even on a busy machine
HANG = 30.0  # a hanging receiver holds its answer this long (cut short at teardown)


@pytest.fixture
def hanging() -> Iterator[Receiver]:
    """A receiver whose paths starting /hang never answer within the time box."""
    with Receiver(delay=lambda path: HANG if path.startswith("/hang") else 0.0) as running:
        yield running


def runner_for(store: Store, settings: Settings, **options: Any) -> DeliveryRunner:
    return DeliveryRunner(store, settings, timeout=TIME_BOX, **options)


def step_until(runner: DeliveryRunner, done: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "condition not reached"
        runner.step(force=True)
        runner.wait(0.05)


def shown(client: FlaskClient, sub_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/subscriptions/{sub_id}", headers=ADMIN)
    assert answer.status_code == 200
    found: dict[str, Any] = answer.get_json()
    return found


def test_a_hanging_receiver_holds_no_more_than_its_in_flight_limit(
    client: FlaskClient, calls: Calls, pump: Pump, store: Store, settings: Settings,
    hanging: Receiver,
) -> None:
    """With 4 threads and a hanging subscription limited to 2 (6 deliveries due), the
    healthy one's deliveries all arrive while the hanging one holds its 2 attempts."""
    hang = subscribe(client, hanging.url("/hang"), max_in_flight=2)
    for _ in range(6):
        calls.end("missed")
    assert pump.dispatch() == 6
    runner = runner_for(store, settings, threads=4)
    step_until(runner, lambda: hanging.active("/hang") == 2)
    healthy = subscribe(client, hanging.url("/ok"))
    assert hang["max_in_flight"] == 2 and healthy["max_in_flight"] == 4
    for _ in range(6):
        calls.end("answered")
    assert pump.dispatch() == 12  # 6 for each
    step_until(runner, lambda: len(hanging.successes("/ok")) == 6)
    assert hanging.active("/hang") == 2  # still hanging, within their time box
    assert hanging.peak("/hang") == 2
    step_until(runner, lambda: {d["status"] for d in deliveries(client, healthy["id"])} == {
        "succeeded"
    })
    runner.finish(TIME_BOX + 2)


def test_retries_keep_their_schedule_beside_hanging_receivers(
    client: FlaskClient, calls: Calls, store: Store, settings: Settings,
    redis_client: fakeredis.FakeRedis, hanging: Receiver,
) -> None:
    """Three hanging subscriptions take their share of threads; a flaky one's retry
    still goes out DELIVERY_RETRY_SECONDS after its first attempt."""
    settings = replace(settings, delivery_retry_seconds=(1,))
    for n in range(3):
        subscribe(client, hanging.url(f"/hang{n}"), max_in_flight=2)
    with Receiver(failing_first(1)) as flaky:
        subscribe(client, flaky.url("/flaky"))
        for _ in range(3):
            calls.end("missed")
        pump = Pump(store, settings, redis_client)
        assert pump.dispatch() == 12
        runner = runner_for(store, settings, threads=8)
        before_any_attempt = time.time()
        step_until(runner, lambda: len(flaky.successes()) == 3)
        for webhook_id, tries in flaky.by_webhook_id().items():
            assert [t.status for t in tries] == [500, 200], webhook_id
            # Due 1 s after the first attempt began (after before_any_attempt): not
            # retried at once. The first attempt's own arrival is no bound: a busy
            # machine delays it by a variable part of that second.
            assert tries[1].arrived_at - before_any_attempt >= 1.0, webhook_id
            # Not held up behind the hanging receivers, which would keep it waiting
            # for the time box.
            gap = tries[1].arrived_at - tries[0].arrived_at
            assert gap < TIME_BOX - 1.0, (webhook_id, gap)
        assert sum(hanging.active(f"/hang{n}") for n in range(3)) == 6
        runner.finish(TIME_BOX + 2)


def test_slow_but_correct_is_not_a_failure(
    client: FlaskClient, calls: Calls, store: Store, settings: Settings,
    redis_client: fakeredis.FakeRedis,
) -> None:
    """A receiver answering 2xx after most of the time box: every delivery succeeds at
    the first attempt and the breaker (opening at 1 failure here) stays closed."""
    settings = replace(settings, delivery_breaker_failures=1)
    with Receiver(delay=TIME_BOX * 0.6) as slow:
        sub = subscribe(client, slow.url())
        for _ in range(3):
            calls.end("answered")
        Pump(store, settings, redis_client).dispatch()
        runner_for(store, settings).run_until_idle()
    assert [(d["status"], d["attempts"]) for d in deliveries(client, sub["id"])] == [
        ("succeeded", 1)
    ] * 3
    assert shown(client, sub["id"])["breaker"]["state"] == "closed"


def test_the_breaker_pauses_a_failing_receiver_shows_it_and_probes_it_back(
    client: FlaskClient, calls: Calls, store: Store, settings: Settings,
    redis_client: fakeredis.FakeRedis, receiver: Receiver,
) -> None:
    """3 failures in a row over 0.5 s open the breaker (shown by the API); due deliveries
    wait uncounted; after the cooldown one probe goes, its 2xx closes the breaker and
    every delivery arrives once."""
    settings = replace(settings, delivery_breaker_failures=3, delivery_breaker_seconds=0.5)
    receiver.plan = always(503)
    receiver.delay = 0.3  # one attempt at a time: the third fails 0.6 s after the first
    sub = subscribe(client, receiver.url(), max_in_flight=1)
    made = [calls.end("missed") for _ in range(4)]
    Pump(store, settings, redis_client).dispatch()
    runner = runner_for(store, settings)
    runner.run_until_idle()
    assert [r.status for r in receiver.received()] == [503] * 3
    state = shown(client, sub["id"])["breaker"]
    assert state["state"] == "open" and state["consecutive_failures"] == 3
    assert state["next_probe_at"] and state["opened_at"]
    assert state["last_error"] is None  # a 503 with an empty body
    listed = client.get("/v1/subscriptions", headers=ADMIN).get_json()["subscriptions"]
    assert [s["breaker"]["state"] for s in listed] == ["open"]
    attempts = sorted(d["attempts"] for d in deliveries(client, sub["id"]))
    assert sum(attempts) == 3 and {d["status"] for d in deliveries(client, sub["id"])} == {
        "pending"
    }

    receiver.plan = always(200)
    runner.run_until_idle()  # still open: nothing goes
    assert len(receiver.received()) == 3
    time.sleep(0.6)
    runner.run_until_idle()
    assert shown(client, sub["id"])["breaker"] == {
        "state": "closed", "consecutive_failures": 0, "opened_at": None,
        "next_probe_at": None, "last_error": None,
    }
    got = receiver.successes()
    assert sorted(json.loads(r.body)["id"] for r in got) == sorted(r["id"] for r in made)
    assert len({r.webhook_id for r in got}) == 4


def test_a_claim_whose_process_died_is_made_again_after_its_lease(
    client: FlaskClient, calls: Calls, pump: Pump, store: Store, settings: Settings,
    receiver: Receiver,
) -> None:
    """Claimed and never recorded (the process killed): after the lease another
    runner makes the attempt, with the same webhook-id."""
    sub = subscribe(client, receiver.url())
    calls.end("missed")
    pump.dispatch()
    subs = store.subscriptions
    now = time.time()
    claimed = subs.claim_deliveries("t1", now, now + DELIVERY_LEASE, [(sub["id"], 10)])
    [delivery_id] = claimed[sub["id"]]
    assert runner_for(store, settings).run_until_idle() == 0  # leased: not due
    later = runner_for(store, settings, clock=lambda: time.time() + DELIVERY_LEASE + 1)
    assert later.run_until_idle() == 1
    [request] = receiver.received()
    [delivery] = deliveries(client, sub["id"])
    assert delivery["id"] == delivery_id and delivery["status"] == "succeeded"
    assert request.webhook_id == delivery["webhook_id"]


def test_timers_of_the_single_timer_set_are_moved_into_the_queues(
    client: FlaskClient, calls: Calls, pump: Pump, store: Store, settings: Settings,
    redis_client: fakeredis.FakeRedis, receiver: Receiver,
) -> None:
    """A delivery armed in the per-tenant timer set of earlier releases is moved into
    its subscription's queue, keeping its time, and delivered."""
    sub = subscribe(client, receiver.url())
    calls.end("missed")
    pump.dispatch()
    queue = delivery_queue_key("t1", sub["id"])
    [(delivery_id, due)] = redis_client.zrange(queue, 0, -1, withscores=True)
    redis_client.delete(queue, delivery_due_key("t1"))
    redis_client.zadd(delivery_timers_key("t1"), {f"{sub['id']}/{delivery_id.decode()}": due})
    assert store.subscriptions.migrate_delivery_timers(["t1"]) == 1
    assert redis_client.zscore(queue, delivery_id) == due
    assert not redis_client.exists(delivery_timers_key("t1"))
    assert runner_for(store, settings).run_until_idle() == 1
    assert len(receiver.successes()) == 1
