"""History finds a number however the PBX wrote it (SQLite and PostgreSQL).

The archive keeps each caller's and extension's number as received and, beside
it, its searchable form (E.164 when it reads as a full number); the ``caller``
and ``extension`` filters are read the same way. Migration 0003 fills that
form in for calls archived before it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from bench.history_data import outcome_records
from core.history import records as rows
from core.history.database import upgrade
from core.history.numbers import searchable
from core.history.schema import calls, extensions
from tests.app.history.test_calls_api import archive_all, every_page
from tests.conftest import API_KEY

ADMIN = {"Authorization": f"Bearer {API_KEY}"}
Record = dict[str, Any]


def inbound(caller: str, *, rang: list[str] | None = None, at: int = 0) -> Record:
    """An answered inbound call of tenant t1 from ``caller``, ringing ``rang``."""
    started = f"2026-03-01T10:{at:02d}:00Z"
    parties = [{"number": n, "name": ""} for n in rang or ["101"]]
    return {
        "id": f"{1_772_359_200_000_000 + at * 60_000_000}-0",
        "revision": 1,
        "tenant_id": "t1",
        "call_uuid": str(uuid.uuid4()),
        "direction": "inbound",
        "outcome": "answered",
        "missed_reason": None,
        "caller": {"number": caller, "name": "Ana"},
        "did": None,
        "queue": None,
        "ring_group": None,
        "extension": None,
        "number_dialed": None,
        "rang": parties,
        "answered_by": parties[-1],
        "voicemail_box": None,
        "started_at": started,
        "answered_at": started,
        "ended_at": started,
        "wait_seconds": 0.0,
        "talk_seconds": 0.0,
        "ended_by": "hangup",
    }


def callers(api: FlaskClient, **query: str) -> list[str]:
    """The raw caller numbers of every call the search finds."""
    return [c["caller"]["number"] for c in every_page(api, query, ADMIN)]


@pytest.fixture
def national_and_international(history_engine: sa.Engine) -> None:
    archive_all(
        history_engine,
        [
            inbound("7615557843", at=1),  # as a carrier passes a national number
            inbound("+17805553149", at=2),
            inbound("1 (780) 555-3149", at=3),
            inbound("anonymous", at=4),
            inbound("+15550001111", rang=["101", "+1 761 555 0000"], at=5),
        ],
    )


@pytest.mark.usefixtures("national_and_international")
def test_a_caller_is_found_however_the_pbx_wrote_the_number(api: FlaskClient) -> None:
    """+17615557843 finds the call sent as 7615557843, and the reverse; raw numbers answered."""
    assert callers(api, caller="+17615557843") == ["7615557843"]
    assert callers(api, caller="(761) 555-7843") == ["7615557843"]
    assert callers(api, caller="7805553149") == ["1 (780) 555-3149", "+17805553149"]
    assert callers(api, caller="+17805553149", tenant_id="t1") == [
        "1 (780) 555-3149",
        "+17805553149",
    ]


@pytest.mark.usefixtures("national_and_international")
def test_part_of_a_number_still_finds_the_callers_starting_with_it(api: FlaskClient) -> None:
    assert callers(api, caller="+1780") == ["1 (780) 555-3149", "+17805553149"]
    assert callers(api, caller="761") == ["7615557843"]  # as written
    assert callers(api, caller="anon") == ["anonymous"]
    assert callers(api, caller="+1999") == []


@pytest.mark.usefixtures("national_and_international")
def test_an_extension_filter_reads_a_number_outside_however_written(api: FlaskClient) -> None:
    """A ring to a mobile (written with spaces) is found by the mobile's number in any form."""
    assert callers(api, extension="7615550000") == ["+15550001111"]
    assert callers(api, extension="+17615550000") == ["+15550001111"]
    assert len(callers(api, extension="101")) == 5


def _archived_before_0003(engine: sa.Engine, records: list[Record]) -> None:
    """Rows as revision 0002 wrote them: no searchable numbers."""
    latest = {(r["tenant_id"], r["call_uuid"]): r for r in records}
    call_rows = [rows.call_row(r) for r in latest.values()]
    extension_rows = [row for r in latest.values() for row in rows.extension_rows(r)]
    for row in call_rows:
        del row["caller_key"], row["wait_seconds"], row["short_abandon"]  # 0005's
        for name in rows.figure_columns({}, ""):  # 0006's
            del row[name]
    for row in extension_rows:
        del row["extension_key"], row["rang"]
    old_calls = sa.table("history_calls", *(sa.column(name) for name in call_rows[0]))
    old_extensions = sa.table("history_extensions", *(sa.column(n) for n in extension_rows[0]))
    with engine.begin() as connection:
        connection.execute(sa.insert(old_calls), call_rows)
        connection.execute(sa.insert(old_extensions), extension_rows)


def test_migration_0003_fills_in_the_searchable_numbers_of_archived_calls(
    empty_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More rows than one backfill batch: every row gets its key, read in DEFAULT_COUNTRY."""
    monkeypatch.setenv("DEFAULT_COUNTRY", "US")
    upgrade(empty_engine, "0002")
    records = [*outcome_records(2300, tenants=("t1", "t2"), seed=3), inbound("7615557843")]
    _archived_before_0003(empty_engine, records)
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        call_keys = connection.execute(sa.select(calls.c.caller_number, calls.c.caller_key)).all()
        extension_keys = connection.execute(
            sa.select(extensions.c.extension, extensions.c.extension_key)
        ).all()
    assert len(call_keys) > 2000 and len(extension_keys) > 2000
    assert all(key == searchable(raw, "1") for raw, key in call_keys)
    assert all(key == raw for raw, key in extension_keys)  # extensions such as 104
    assert ("7615557843", "+17615557843") in call_keys
    national = [raw for raw, key in call_keys if raw and key and raw != key]
    assert national, "the sample has national numbers the backfill read as E.164"
