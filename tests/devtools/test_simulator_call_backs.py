"""The simulator dials some missed callers back, and the callbacks follow (in-process)."""

from __future__ import annotations

import random
from typing import Any

from flask.testing import FlaskClient

from devtools.simulator import (
    Post,
    SimulatedCall,
    generate_call,
    generate_call_back,
    wants_call_back,
)
from statemachine.phone_numbers import e164
from tests.conftest import TENANT_KEY, TOKEN


def missed_calls(count: int) -> list[SimulatedCall]:
    rng = random.Random(7)
    found: list[SimulatedCall] = []
    while len(found) < count:
        call = generate_call(rng, "t1", kind="queue_abandoned", duplicate_rate=0.0, speed=100)
        if wants_call_back(call):
            found.append(call)
    return found


def test_a_call_back_dials_the_missed_number_written_another_way() -> None:
    """numberDialed reads as the caller's E.164 number, though written otherwise at times."""
    rng = random.Random(1)
    written = set()
    for call in missed_calls(40):
        back = generate_call_back(rng, call)
        placed = back.posts[0].fields
        assert placed["eventType"] == "outboundCall" and back.tenant_id == "t1"
        assert e164(placed["numberDialed"], "1") == e164(call.caller_number, "1") is not None
        written.add(placed["numberDialed"] != call.caller_number)
    assert True in written


def test_only_missed_callers_with_a_number_are_called_back() -> None:
    """Answered, unrouted and anonymous calls are never dialled back."""
    rng = random.Random(3)
    for _ in range(300):
        call = generate_call(rng, "t1", duplicate_rate=0.0)
        if wants_call_back(call):
            assert call.outcome == "missed" and call.missed_reason != "unrouted"
            assert any(ch.isdigit() for ch in call.caller_number)


def post(client: FlaskClient, posts: list[Post]) -> None:
    for item in sorted(posts, key=lambda p: p.at):
        body, content_type = item.body()
        answer = client.post(f"/webhooks/primevox/{TOKEN}", data=body, content_type=content_type)
        assert answer.status_code == 202


def test_a_simulated_call_back_resolves_the_callback(client: FlaskClient, drain: Any) -> None:
    """The missed caller opens a callback; the simulated call back resolves it."""
    (call,) = missed_calls(1)
    post(client, call.posts)
    drain()
    headers = {"Authorization": f"Bearer {TENANT_KEY}"}
    (item,) = client.get("/v1/callbacks?status=open", headers=headers).get_json()["callbacks"]
    assert item["missed_call_uuid"] == call.call_uuid
    back = generate_call_back(random.Random(2), call)
    post(client, back.posts)
    drain()
    assert client.get("/v1/callbacks?status=open", headers=headers).get_json()["callbacks"] == []
    (done,) = client.get("/v1/callbacks?status=resolved", headers=headers).get_json()["callbacks"]
    assert done["resolved_by"] == back.call_uuid
