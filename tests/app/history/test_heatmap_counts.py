"""The heatmap read from the history database, where the database counts the calls
(core/history/reports.py), against the heatmap folded from the outcome records in
Redis (and /v1/stats read from both): every metric, in zones of whole, half and
quarter hours, for windows that end before some calls' revision 2, and with the
archive behind Redis (a call's newer revision only in Redis). On SQLite and
PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import fakeredis
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app import create_app
from app.stats.from_history import _local_cell
from bench.history_data import outcome_records
from core.history import writer
from core.history.database import create_engine, upgrade
from core.history.records import call_row, decided_us, figure_columns
from core.history.reports import QUARTER_US
from core.history.schema import calls
from core.settings import Settings
from core.store import TENANTS_KEY, dumps, outcomes_key
from statemachine.events import isoformat
from tests.conftest import API_KEY

Record = dict[str, Any]
TENANTS = ("t1", "t2")
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
METRICS = ("offered", "answered", "missed", "service_level")
ZONES = ("Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns")
SETTINGS = Settings(api_keys={API_KEY: "*"}, default_timezone="Europe/Berlin")


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return list(outcome_records(1200, tenants=TENANTS, seed=7, spacing_seconds=40))


def redis_with(records: list[Record]) -> fakeredis.FakeRedis:
    client = fakeredis.FakeRedis()
    for r in records:
        body = {k: v for k, v in r.items() if k != "id"}
        client.xadd(outcomes_key(r["tenant_id"]), {"record": dumps(body)}, id=r["id"])
    client.sadd(TENANTS_KEY, *TENANTS)
    return client


def client_of(settings: Settings, redis: fakeredis.FakeRedis) -> FlaskClient:
    app = create_app({"TESTING": True, "REDIS_CLIENT": redis, "CALLSTATE_SETTINGS": settings})
    return app.test_client()


def cells(client: FlaskClient, query: str) -> Any:
    answer = client.get(f"/v1/stats/heatmap?{query}", headers=HEADERS)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()["cells"]


def revision_twos(records: list[Record]) -> list[Record]:
    return [r for r in records if r["revision"] == 2]


def compare(history: FlaskClient, redis: FlaskClient, windows: list[str]) -> None:
    for window in windows:
        for zone in ZONES:
            for metric in METRICS:
                query = (
                    f"{window}&tz={quote(zone)}&metric={metric}"
                    "&service_level_seconds=20,45&sl_abandons=exclude_short"
                )
                assert cells(history, query) == cells(redis, query), query
        query = f"/v1/stats?{window}&group_by=queue&missed_limit=5"
        read = [client.get(query, headers=HEADERS).get_json() for client in (history, redis)]
        assert read[0]["window"]["source"] == "history"
        for field in ("groups", "totals", "missed_calls"):
            assert read[0][field] == read[1][field], (query, field)


def test_counted_by_the_database_it_equals_the_calls_folded(
    history_url: str, records: list[Record]
) -> None:
    """Every call archived; windows ending just before a revision 2 count that call
    at its revision 1, as Redis does."""
    engine = create_engine(history_url)
    upgrade(engine)
    writer.archive(engine, records, None)
    redis = redis_with(records)
    history = client_of(replace(SETTINGS, database_url=history_url), redis)
    from_redis = client_of(SETTINGS, redis)
    revised = revision_twos(records)
    assert len(revised) >= 10
    ends = [revised[3], revised[len(revised) // 2], revised[-1]]
    windows = ["from=2026-01-01&to=2026-03-01"] + [
        f"from=2026-01-01&to={moment(decided_us(r))}" for r in ends
    ]
    compare(history, from_redis, windows)
    engine.dispose()


def moment(us: int) -> str:
    """A query's time: the window ends before this microsecond."""
    return quote(isoformat(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)))


def test_calls_newer_in_redis_are_taken_back_from_the_counts(
    history_url: str, records: list[Record]
) -> None:
    """The archive stops between revisions 1 and 2 of several calls: the heatmap
    counts their revision 2, from Redis, once."""
    engine = create_engine(history_url)
    upgrade(engine)
    revised = revision_twos(records)
    cut = records.index(revised[len(revised) // 2])
    behind = [r for r in records[cut:] if r["revision"] == 2]
    assert any(
        (r["tenant_id"], r["call_uuid"]) == (s["tenant_id"], s["call_uuid"])
        for r in behind
        for s in records[:cut]
    ), "a call's revision 1 archived, its revision 2 only in Redis"
    writer.archive(engine, records[:cut], None)
    redis = redis_with(records)
    history = client_of(replace(SETTINGS, database_url=history_url), redis)
    compare(history, client_of(SETTINGS, redis), ["from=2026-01-01&to=2026-03-01"])
    engine.dispose()


def test_a_quarter_hour_is_one_local_hour_only_in_whole_quarter_hour_zones() -> None:
    """Monrovia kept -0:44:30 until 1972: its quarter hours straddle local hours
    (12:30 UTC was 11:45:30 there, 12:44:59 was 12:00:29),
    and the heatmap then folds the calls themselves."""
    quarter = int(datetime(2026, 3, 29, 0, 45, tzinfo=UTC).timestamp() * 1_000_000) // QUARTER_US
    assert _local_cell(quarter, ZoneInfo("Europe/Berlin")) == (6, 1)
    assert _local_cell(quarter + 1, ZoneInfo("Europe/Berlin")) == (6, 3)  # 02:00 skipped
    assert _local_cell(quarter, ZoneInfo("Asia/Kathmandu")) == (6, 6)
    old = int(datetime(1971, 6, 1, 12, 30, tzinfo=UTC).timestamp() * 1_000_000) // QUARTER_US
    assert _local_cell(old, ZoneInfo("Africa/Monrovia")) is None


def test_migration_0005_copies_each_archived_records_wait_and_short_abandon(
    empty_engine: sa.Engine, records: list[Record]
) -> None:
    """Rows archived before 0005 get the record's wait_seconds and short_abandon."""
    upgrade(empty_engine, "0004")
    latest = {(r["tenant_id"], r["call_uuid"]): r for r in records}
    unknown = next(iter(latest))
    latest[unknown] = {**latest[unknown], "wait_seconds": None}  # a wait not known
    old_rows = []
    for record in latest.values():
        row = call_row(record)
        del row["wait_seconds"], row["short_abandon"]
        for name in figure_columns({}, ""):  # 0006's
            del row[name]
        old_rows.append(row)
    old_calls = sa.table("history_calls", *(sa.column(name) for name in old_rows[0]))
    with empty_engine.begin() as connection:
        connection.execute(sa.insert(old_calls), old_rows)
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        found = connection.execute(
            sa.select(
                calls.c.tenant_id, calls.c.call_uuid, calls.c.wait_seconds, calls.c.short_abandon
            )
        ).all()
    copied = {(t, c): (wait, short) for t, c, wait, short in found}
    wanted = {key: (r["wait_seconds"], bool(r["short_abandon"])) for key, r in latest.items()}
    assert copied == wanted
    assert any(short for _, short in wanted.values()) and any(
        wait is None for wait, _ in wanted.values()
    ), "the sample has short abandons and unknown waits"
