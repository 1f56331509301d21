"""The engine folds new events into a call's stored facts, within its cap.

Applying one more event reads no record of the call's log (its cost does not
grow with the log), the stored facts always equal the fold of the whole log,
and past MAX_EVENTS_PER_CALL a call's events are kept, unfolded, and counted.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.store import Store, call_key
from statemachine.events import ExtensionRinging, Party
from statemachine.stored_facts import facts_from_json
from tests.conftest import API_KEY
from tests.workers.test_engine import (
    answered,
    apply,
    at,
    decide_all,
    envelope,
    hangup,
    inbound,
    outcomes,
)
from workers.call_fold import view_of
from workers.engine import Engine

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def ring(seconds: float, ext: str, uuid: str = "c1") -> dict[str, Any]:
    event = ExtensionRinging("t1", "box", at(seconds), call_uuid=uuid, extension=Party(ext))
    return envelope(event, {"eventType": "ringAttempt", "at": str(seconds), "ext": ext})


def stored(store: Store, uuid: str = "c1") -> tuple[dict[str, Any], dict[str, Any]]:
    """The call's stored view and facts."""
    meta = store.backend.redis.hgetall(call_key("t1", uuid, store.backend.spread))
    return json.loads(meta[b"view"]), json.loads(meta[b"facts"])


def assert_stored_is_fold_of_log(store: Store, uuid: str = "c1") -> None:
    view, facts = stored(store, uuid)
    whole = view_of("t1", uuid, store.calls.load_call("t1", uuid).records)
    assert facts_from_json("t1", uuid, facts) == whole.facts
    assert view == whole.as_json()


def test_one_more_event_reads_no_record_of_the_log(
    engine: Engine, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With facts stored, applying an event reads the call's head only: the same
    work for its 3rd event as for its 300th."""
    apply(engine, inbound(0), *(ring(1 + i, str(100 + i % 7)) for i in range(300)))

    def no_whole_log(*_: Any) -> Any:
        raise AssertionError("the whole log was read")

    monkeypatch.setattr(store.calls, "load_call", no_whole_log)
    monkeypatch.setattr(store.calls, "load_calls", no_whole_log)
    apply(engine, answered(400, ext="103"), hangup(500, ext="103"))
    monkeypatch.undo()
    assert_stored_is_fold_of_log(store)
    assert stored(store)[0]["answered_by"]["number"] == "103"


def test_an_earlier_copy_of_a_folded_event_refolds_the_whole_log(
    engine: Engine, store: Store
) -> None:
    """A retry received earlier than the copy folded replaces it in the log; the facts
    follow (the later copy's receipt no longer counts as the call's last sign of life)."""
    late = ring(50, "101")
    early = {**late, "received_at": ring(5, "101")["received_at"]}
    apply(engine, inbound(0), late)
    assert stored(store)[0]["last_event_at"] == late["received_at"]
    apply(engine, early)
    assert stored(store)[0]["last_event_at"] == early["received_at"]
    assert_stored_is_fold_of_log(store)


def test_a_call_stored_without_facts_is_refolded_once(engine: Engine, store: Store) -> None:
    """A call committed before facts were stored: its next event refolds the log."""
    apply(engine, inbound(0), ring(1, "101"))
    store.backend.redis.hdel(call_key("t1", "c1", store.backend.spread), "facts")
    apply(engine, answered(3, ext="101"))
    assert_stored_is_fold_of_log(store)


records = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 4)), min_size=1, max_size=25
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=records, seed=st.integers(0, 2**32 - 1))
def test_any_batches_and_retries_leave_facts_equal_to_the_fold_of_the_log(
    engine: Engine, store: Store, drawn: list[tuple[int, int]], seed: int
) -> None:
    """Events and retries (same event, another receipt, earlier or later), in any
    order and batches: what is stored is the fold of what the log keeps."""
    uuid = f"c-{seed}"
    kinds = [
        lambda s: inbound(s, uuid),
        lambda s: answered(s, uuid, "101"),
        lambda s: hangup(s, uuid, "101"),
    ]
    made = []
    for number, receipt in drawn:
        record = (
            kinds[number](number) if number < len(kinds) else ring(number, str(number % 4), uuid)
        )
        # A retry: the same event id received at another moment.
        made.append({**record, "received_at": ring(number + receipt * 0.5, "x")["received_at"]})
    rng = random.Random(seed)
    rng.shuffle(made)
    while made:
        size = rng.randint(1, 4)
        batch, made = made[:size], made[size:]
        engine.apply_batch("t1", 0, [(f"{r['id']}@{i}", r) for i, r in enumerate(batch)])
    assert_stored_is_fold_of_log(store, uuid)


def test_events_past_the_cap_are_kept_counted_and_not_folded(
    engine: Engine, store: Store, client: FlaskClient
) -> None:
    """MAX_EVENTS_PER_CALL=5: the 6th event on is kept apart, unfolded; the call's
    detail says how many; /metrics counts them; rebuild finds nothing to fix;
    and the engine's own timeout still ends the call."""
    engine.settings = replace(engine.settings, max_events_per_call=5, call_timeout_seconds=60)
    apply(engine, inbound(0), *(ring(i, str(100 + i)) for i in range(1, 5)))
    apply(engine, answered(10, ext="101"), ring(11, "200"), ring(11, "200"))
    apply(engine, hangup(20, ext="101"))
    log = store.calls.load_call("t1", "c1")
    assert len(log.records) == 5
    view, _ = stored(store)
    assert view["answered_by"] is None and view["state"] == "ringing"
    assert_stored_is_fold_of_log(store)

    detail = client.get("/v1/calls/c1", headers=AUTH).get_json()
    assert detail["events_not_folded"] == 3
    assert len(detail["events"]) == 5
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "callstate_events_not_folded_total 3.0" in metrics
    assert engine.rebuild_call("t1", "c1", fix=False) == []

    assert decide_all(engine, at(4 + 61).timestamp()) == ["published"]
    [record] = outcomes(store)
    assert record["ended_by"] == "timeout"
    assert len(store.calls.load_call("t1", "c1").records) == 6


def test_rebuild_finds_stored_facts_that_disagree_with_the_log(
    engine: Engine, store: Store
) -> None:
    """Rebuild compares the stored facts too (the next event is folded into them)."""
    apply(engine, inbound(0), ring(1, "101"))
    key = call_key("t1", "c1", store.backend.spread)
    wrong = json.loads(store.backend.redis.hget(key, "facts"))
    wrong["rings"] = {}
    store.backend.redis.hset(key, "facts", json.dumps(wrong))
    assert engine.rebuild_call("t1", "c1", fix=True) == [
        "t1/c1: stored facts differ from the log's fold"
    ]
    assert engine.rebuild_call("t1", "c1", fix=False) == []
