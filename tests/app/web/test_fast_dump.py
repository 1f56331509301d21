"""The planned dumps of the hot answers (app/web/fast_dump.py) equal marshmallow's dump
of the same schemas, on records the engine made from realistic webhooks."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from marshmallow import Schema

from app.calls.schemas import (
    CallSchema,
    LiveCallListSchema,
    LiveCallSchema,
    OutcomePageSchema,
    OutcomeRecordSchema,
)
from app.stats.schemas import StatsSchema
from app.web.fast_dump import FastAnswer, compile_dump
from core.store import Store
from tests.conftest import API_KEY, TOKEN
from tests.kit import examples
from workers.engine import Engine

ADMIN = {"Authorization": f"Bearer {API_KEY}"}
ENDED = {
    "answered": examples.ANSWERED_CALL,
    "voicemail": examples.VOICEMAIL_CALL,
    "outbound": ("outboundCall", "HangupCall"),
    "abandoned": ("InboundCall", "queueEntered", "HangupCall.unanswered"),
    "no-answer": ("InboundCall", "ringAttempt.extension", "HangupCall.unanswered"),
}
LIVE = {
    "new": ("InboundCall",),
    "queued": ("InboundCall", "queueEntered"),
    "ringing": ("InboundCall", "ringAttempt.ringGroup", "ringAttempt.extension"),
    "answered": ("InboundCall", "ringAttempt.extension", "ExtensionAnswered"),
    "dialing": ("outboundCall",),
}


@pytest.fixture
def records(client: FlaskClient, drain: Any, engine: Engine, store: Store) -> dict[str, Any]:
    """Outcome records, live calls and calls as the store holds them."""
    for prefix, scenarios in (("ended", ENDED), ("live", LIVE)):
        for name, events in scenarios.items():
            for event in events:
                content_type, body = examples.body_for(event, call_uuid=f"{prefix}-{name}")
                answer = client.post(
                    f"/webhooks/primevox/{TOKEN}", data=body, content_type=content_type
                )
                assert answer.status_code == 202
    drain()
    for name in ENDED:
        engine.decide(examples.TENANT_ID, f"ended-{name}")
    outcomes, _ = store.outcomes.read_outcomes(
        [examples.TENANT_ID], after=None, limit=100, outcome=None
    )
    calls = [store.calls.get_call(examples.TENANT_ID, f"ended-{name}") for name in ENDED]
    return {
        "outcomes": outcomes,
        "live": store.calls.live_calls([examples.TENANT_ID]),
        "calls": calls,
    }


def test_each_planned_dump_equals_marshmallows(records: dict[str, Any]) -> None:
    """Outcome records, live calls and whole calls: the same keys, the same values."""
    assert len(records["outcomes"]) == len(ENDED)
    assert len(records["live"]) == len(LIVE)
    for schema, found in (
        (OutcomeRecordSchema(), records["outcomes"]),
        (LiveCallSchema(), records["live"]),
        (CallSchema(), records["calls"]),
    ):
        planned = compile_dump(schema)
        for record in found:
            assert planned(record) == Schema.dump(schema, record)  # marshmallow's own


def test_the_engines_records_are_what_their_schemas_show(records: dict[str, Any]) -> None:
    """An outcome record or live call with the schema's fields passes as it is: the
    engine's records, nested parties and DIDs included, are exactly those shapes."""
    for schema, found in (
        (OutcomeRecordSchema(), records["outcomes"]),
        (LiveCallSchema(), records["live"]),
    ):
        for record in found:
            assert schema.dump(record) == record
            assert compile_dump(schema)(record) is record


def test_the_fast_answers_dump_as_marshmallow_does(records: dict[str, Any]) -> None:
    """The page and list answers, including an empty one and a last page."""
    for schema, answer in (
        (CallSchema(), records["calls"][0]),
        (OutcomePageSchema(), {"outcomes": records["outcomes"], "next": "1-0"}),
        (OutcomePageSchema(), {"outcomes": [], "next": None}),
        (LiveCallListSchema(), {"calls": records["live"]}),
    ):
        assert isinstance(schema, FastAnswer)
        assert schema.dump(answer) == schema.marshmallow_dump(answer)


def test_a_record_with_fields_missing_and_extra_dumps_alike() -> None:
    """Keys the schema does not name stay out; keys the record lacks are left out; nulls kept."""
    record = {"id": "1-0", "caller": None, "rang": [{"number": "1", "name": "", "x": 1}], "x": 2}
    schema = OutcomeRecordSchema()
    assert compile_dump(schema)(record) == schema.dump(record)


def test_the_stats_answer_keeps_its_order_and_what_marshmallow_dumps(
    client: FlaskClient, records: dict[str, Any]
) -> None:
    """/v1/stats is encoded without sorted keys: the plan keeps the body's own order
    and holds the same keys and values as marshmallow's dump."""
    answer = client.get(
        "/v1/stats?from=2020-01-01&to=2100-01-01&group_by=queue", headers=ADMIN
    ).get_json()
    assert answer["missed_calls"] and answer["groups"]
    planned = compile_dump(StatsSchema())(answer)
    assert planned == StatsSchema().dump(answer) == answer
    assert list(planned["missed_calls"][0]["caller"]) == list(answer["missed_calls"][0]["caller"])
