"""What follows a commit (fakeredis): the supervisor's parts and the live steps of
committed calls, written together, each as its own part writes it alone."""

from __future__ import annotations

import fakeredis

from core.store import EVENTS_DUE_KEY, CallPart, Store
from statemachine.live_events import Step

LEG = {"extension": {"number": "101", "name": "Alice"}, "call_uuid": "c1"}
STARTED = Step(0, "call.started", {"type": "call.started", "call_uuid": "c1"})
RINGING = Step(1, "call.ringing:101", {"type": "call.ringing", "call_uuid": "c1"})


def test_parts_and_steps_go_together_and_steps_go_once() -> None:
    redis_client = fakeredis.FakeRedis()
    store = Store(redis_client)
    error = store.call_effects.send(
        "t1", [CallPart("c1", 1, [LEG], None, None)], [("c1", [STARTED])], now=0.0
    )
    assert error is None
    assert store.supervisor.part("t1", "c1") == ([LEG], None, 1)
    assert redis_client.zscore(EVENTS_DUE_KEY, "t1") is not None  # the dispatcher looks
    first, _ = store.live_events.read(["t1"], after=None, limit=10)
    # Sent again with the next step: the first is not sent twice.
    store.call_effects.send("t1", [], [("c1", [STARTED, RINGING])], now=0.0)
    events, _ = store.live_events.read(["t1"], after=None, limit=10)
    assert len(first) == 1 and len(events) == 2


def test_nothing_to_send_sends_nothing() -> None:
    redis_client = fakeredis.FakeRedis()
    assert Store(redis_client).call_effects.send("t1", [], [("c1", [])], now=0.0) is None
    assert redis_client.zcard(EVENTS_DUE_KEY) == 0
