"""What the workers keep of the supervisor's view is the fold of the calls' logs: after
realistic calls posted in shuffled order, with duplicates and drains at random points,
the board and the callbacks the API answers equal the pure model's over the stored logs."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from core.store import Store
from core.supervisor import callback_json, day_start
from devtools.simulator import Post, generate_call, generate_call_back, wants_call_back
from statemachine import CallEvent, from_record
from statemachine.callbacks import tenant_callbacks
from statemachine.extensions import tenant_board
from statemachine.tenant import fold_tenant
from tests.conftest import TENANT_KEY, TOKEN

T1 = {"Authorization": f"Bearer {TENANT_KEY}"}


def traffic(rng: random.Random) -> list[Post]:
    posts: list[Post] = []
    missed = generate_call(rng, "t1", kind="queue_abandoned", speed=1000)
    while not wants_call_back(missed):
        missed = generate_call(rng, "t1", kind="queue_abandoned", speed=1000)
    posts += missed.posts
    if rng.random() < 0.5:
        posts += generate_call_back(rng, missed, speed=1000).posts
    for _ in range(8):
        call = generate_call(rng, "t1", duplicate_rate=0.3, speed=1000)
        posts += call.posts
        if wants_call_back(call) and rng.random() < 0.7:
            posts += generate_call_back(rng, call, speed=1000).posts
    rng.shuffle(posts)
    return posts


def logged_events(store: Store) -> list[CallEvent]:
    events: list[CallEvent] = []
    for call_uuid in store.calls.scan_calls("t1"):
        for record in store.calls.load_call("t1", call_uuid).records:
            event = from_record(record)
            if isinstance(event, CallEvent):
                events.append(event)
    return events


@pytest.mark.parametrize("seed", range(6))
def test_stored_view_is_the_fold_of_the_logs(
    client: FlaskClient, drain: Any, store: Store, seed: int
) -> None:
    """Board and callbacks from the stored parts equal the pure model's over the logs."""
    rng = random.Random(seed)
    for post in traffic(rng):
        body, content_type = post.body()
        answer = client.post(f"/webhooks/primevox/{TOKEN}", data=body, content_type=content_type)
        assert answer.status_code == 202
        if rng.random() < 0.2:
            drain()
    drain()
    now = datetime.now(UTC)
    facts = fold_tenant("t1", logged_events(store))
    expected_board = [s.as_json() for s in tenant_board(facts, day_start(now)).values()]
    answered = client.get("/v1/extensions/live", headers=T1).get_json()["extensions"]
    assert [{k: v for k, v in e.items() if k != "tenant_id"} for e in answered] == expected_board
    expected_items = [callback_json(i, "t1") for i in tenant_callbacks(facts, "1")]
    assert client.get("/v1/callbacks", headers=T1).get_json()["callbacks"] == expected_items
    assert expected_board and expected_items, "the traffic showed no extension or no miss"
