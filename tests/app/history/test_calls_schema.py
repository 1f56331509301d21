"""GET /v1/calls answers the archived records as stored, without dumping them again:
each must be what OutcomeRecordSchema dumps, for records the engine decided from
realistic webhooks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import fakeredis
import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.calls.schemas import OutcomeRecordSchema
from app.history.routes import EXTENSION
from core.history import writer
from core.history.database import upgrade
from core.settings import Settings
from core.store import Store
from tests.conftest import API_KEY, TOKEN
from tests.kit import examples
from workers.engine import Engine

ADMIN = {"Authorization": f"Bearer {API_KEY}"}
CALLS = {
    "answered": examples.ANSWERED_CALL,
    "voicemail": examples.VOICEMAIL_CALL,
    "outbound": ("outboundCall", "HangupCall"),
    "abandoned": ("InboundCall", "queueEntered", "HangupCall.unanswered"),
}


def test_each_archived_record_is_answered_as_the_schema_dumps_it(
    redis_client: fakeredis.FakeRedis, settings: Settings, sqlite_url: str, store: Store, drain: Any
) -> None:
    app: Flask = create_app(
        {
            "TESTING": True,
            "REDIS_CLIENT": redis_client,
            "CALLSTATE_SETTINGS": replace(settings, database_url=sqlite_url),
        }
    )
    client = app.test_client()
    for name, events in CALLS.items():
        for event in events:
            content_type, body = examples.body_for(event, call_uuid=name)
            posted = client.post(
                f"/webhooks/primevox/{TOKEN}", data=body, content_type=content_type
            )
            assert posted.status_code == 202
    drain()
    engine = Engine(store, settings)
    for name in CALLS:
        engine.decide(examples.TENANT_ID, name)
    records, _ = store.outcomes.read_outcomes(
        [examples.TENANT_ID], after=None, limit=100, outcome=None
    )
    history: sa.Engine = app.extensions[EXTENSION]
    upgrade(history)
    with history.connect() as connection:
        cursor = writer.read_cursor(connection)
    writer.archive(history, records, cursor)

    answered = client.get("/v1/calls", headers=ADMIN).get_json()["calls"]
    schema = OutcomeRecordSchema()
    assert len(answered) == len(CALLS)
    for record in answered:
        assert record == schema.dump(record)
        assert set(record) == set(schema.fields)
