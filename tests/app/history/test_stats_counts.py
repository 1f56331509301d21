"""/v1/stats read from the history database, where the database counts the calls
(app/stats/counted.py over core/history/stat_counts.py), against the same window
folded from every call (``summarize_folded``) and against /v1/stats read from
Redis: every grouping, several service-level thresholds under each sl_abandons
mode, short abandons at the threshold's edge, callbacks from callers who call
again, DST days in two zones and zones of half and quarter hours, windows that end
before some calls' revision 2, and calls newer in Redis than in the archive. On
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import fakeredis
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

import app.stats.counted as counted_module
from app import create_app
from app.stats.counted import local_key, summarize_counted
from app.stats.figure_rules import AbandonsInServiceLevel, FigureRules
from app.stats.from_history import HistoryWindow, summarize_folded
from bench.history_data import outcome_records
from core.history import writer
from core.history.database import create_engine, upgrade
from core.history.numbers import one_country
from core.history.records import call_row, decided_us, figure_columns
from core.history.reports import QUARTER_US
from core.history.schema import calls, extensions
from core.settings import Settings
from core.store import TENANTS_KEY, Store, dumps, outcomes_key
from statemachine.events import isoformat, micros
from tests.conftest import API_KEY

Record = dict[str, Any]
TENANTS = ("t1", "t2")
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
GROUPINGS = (None, "day", "hour", "queue", "extension", "tenant", "did")
ZONES = ("Europe/Berlin", "America/St_Johns", "Asia/Kathmandu", "UTC")
SETTINGS = Settings(api_keys={API_KEY: "*"}, default_timezone="Europe/Berlin")
# North America springs forward on 8 March 2026, Europe on 29 March: both in the window.
START = datetime(2026, 3, 7, 12, tzinfo=UTC)
WHOLE = "from=2026-03-01&to=2026-05-01"
# A few callers, written in several ways, who call again and are called back.
CALLERS = [f"555{n:07d}" for n in range(1_000_000, 1_000_040)]


def _pick(call_uuid: str, salt: str, count: int) -> int:
    return int(hashlib.sha256(f"{salt}{call_uuid}".encode()).hexdigest(), 16) % count


def _again(record: Record) -> Record:
    """The record with a caller (or a number dialled) from the few CALLERS, written
    in one of several ways; waits at the short abandons' and the thresholds' edges."""
    uuid = record["call_uuid"]
    digits = CALLERS[_pick(uuid, "caller", len(CALLERS))]
    written = [f"+1{digits}", digits, f"1-{digits[:3]}-{digits[3:6]}-{digits[6:]}"]
    number = written[_pick(uuid, "form", len(written))]
    changed = dict(record)
    if record["direction"] == "outbound":
        changed["number_dialed"] = number
    elif record.get("caller") is not None:
        changed["caller"] = {**record["caller"], "number": number}
    if record["outcome"] in ("answered", "voicemail") and _pick(uuid, "who", 12) < 2:
        # Answered (or a message left) and nobody named: in every extension's
        # group it is elsewhere; with nothing rung either, in no extension's.
        changed["answered_by" if record["outcome"] == "answered" else "voicemail_box"] = None
        if _pick(uuid, "who", 12) == 0:
            changed["rang"] = []
    edge = _pick(uuid, "wait", 6)
    if edge < 3 and record["revision"] == 1:
        wait = (5.0, 20.0, 45.0)[edge]
        changed["wait_seconds"] = wait
        changed["short_abandon"] = record.get("missed_reason") == "abandoned" and wait <= 5.0
    return changed


@pytest.fixture(scope="module")
def records() -> list[Record]:
    made = outcome_records(1200, tenants=TENANTS, seed=11, start=START, spacing_seconds=1700)
    found = [_again(record) for record in made]
    # A revision 2 keeps its call's wait (as the generator's own do).
    first = {(r["tenant_id"], r["call_uuid"]): r for r in found if r["revision"] == 1}
    return [
        {
            **r,
            "wait_seconds": first[(r["tenant_id"], r["call_uuid"])]["wait_seconds"],
        }
        if r["revision"] == 2
        else r
        for r in found
    ]


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


def moment(us: int) -> str:
    """A query's time: the window ends before this microsecond."""
    return quote(isoformat(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)))


def windows(records: list[Record]) -> list[str]:
    """The whole range, and ranges ending just before a revision 2 (that call is
    counted at its revision 1)."""
    revised = [r for r in records if r["revision"] == 2]
    assert len(revised) >= 10
    ends = [revised[2], revised[len(revised) // 2]]
    return [WHOLE] + [f"from=2026-03-01&to={moment(decided_us(r))}" for r in ends]


def stats(client: FlaskClient, query: str) -> dict[str, Any]:
    answer = client.get(f"/v1/stats?{query}", headers=HEADERS)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    found: dict[str, Any] = answer.get_json()
    return found


def compare(history: FlaskClient, redis: FlaskClient, window: str) -> None:
    rules = [
        "service_level_seconds=20,45&sl_abandons=exclude_short",
        "service_level_seconds=5,20&sl_abandons=exclude&callback_minutes=15,60,1440",
        "sl_abandons=count",
    ]
    for group_by in GROUPINGS:
        for zone in ZONES:
            query = f"{window}&tz={quote(zone)}&missed_limit=7&{rules[len(zone) % 3]}"
            if group_by is not None:
                query += f"&group_by={group_by}"
            read = [stats(client, query) for client in (history, redis)]
            assert read[0]["window"]["source"] == "history"
            for field in ("groups", "totals", "missed_calls"):
                assert read[0][field] == read[1][field], (query, field)


def test_counted_by_the_database_it_equals_the_calls_folded(
    history_url: str, records: list[Record]
) -> None:
    """Every call archived: /v1/stats from the counts is /v1/stats from Redis."""
    engine = create_engine(history_url)
    upgrade(engine)
    writer.archive(engine, records, None)
    redis = redis_with(records)
    history = client_of(replace(SETTINGS, database_url=history_url), redis)
    from_redis = client_of(SETTINGS, redis)
    for window in windows(records):
        compare(history, from_redis, window)
    whole = stats(history, f"{WHOLE}&group_by=queue&missed_limit=7")["totals"]
    assert whole["short_abandoned"] > 0 and whole["callbacks"]["called_back"] > 0
    assert 0 < whole["callbacks"]["called_back"] < whole["callbacks"]["missed_callers"]
    engine.dispose()


def test_calls_newer_in_redis_are_left_out_of_the_counts(
    history_url: str, records: list[Record]
) -> None:
    """The archive stops between revisions 1 and 2 of several calls: /v1/stats counts
    their revision 2, from Redis, once, and the calls Redis adds after the archive."""
    engine = create_engine(history_url)
    upgrade(engine)
    revised = [r for r in records if r["revision"] == 2]
    cut = records.index(revised[len(revised) // 2])
    writer.archive(engine, records[:cut], None)
    redis = redis_with(records)
    history = client_of(replace(SETTINGS, database_url=history_url), redis)
    compare(history, client_of(SETTINGS, redis), WHOLE)
    engine.dispose()


def window_of(
    engine: sa.Engine, records: list[Record], end: str, tenants: tuple[str, ...] = TENANTS
) -> HistoryWindow:
    store = Store(redis_with(records))
    end_us = micros(datetime.fromisoformat(end)) - 1
    return HistoryWindow(
        engine, store, list(tenants), micros(START), end_us, max_later_records=100_000
    )


def test_every_grouping_but_did_is_counted_not_folded(
    history_url: str, records: list[Record]
) -> None:
    """The counts answer (not the fold they fall back to), and answer the same."""
    engine = create_engine(history_url)
    upgrade(engine)
    writer.archive(engine, records[: len(records) * 2 // 3], None)
    window = window_of(engine, records, "2026-05-01T00:00:00+00:00")
    rules = FigureRules((20.0, 45.0), AbandonsInServiceLevel.EXCLUDE_SHORT)
    country = one_country("1")
    one = window_of(engine, records, "2026-05-01T00:00:00+00:00", TENANTS[:1])
    for group_by in GROUPINGS:
        zone = ZoneInfo("Europe/Berlin")
        alone = summarize_counted(one, group_by, rules, 5, country, zone)
        assert alone == (
            None if group_by == "did" else summarize_folded(one, group_by, rules, 5, country, zone)
        )
        counted = summarize_counted(window, group_by, rules, 5, country, zone)
        folded = summarize_folded(window, group_by, rules, 5, country, zone)
        if group_by == "did":
            assert counted is None
        else:
            assert counted == folded, group_by
    engine.dispose()


def test_a_tenant_read_in_another_country_now_is_folded(
    history_url: str, records: list[Record]
) -> None:
    """Numbers archived as read in the NANP, the tenant now in the UK: the missed
    callers the counts hold are not those of today's reading, so every call is folded."""
    engine = create_engine(history_url)
    upgrade(engine)
    writer.archive(engine, records, None)
    rules = FigureRules()
    zone = ZoneInfo("UTC")
    for tenants in (TENANTS, TENANTS[:1]):  # asked of the database; said by the counts
        window = window_of(engine, records, "2026-05-01T00:00:00+00:00", tenants)
        for group_by in ("queue", "extension"):
            uk = summarize_counted(window, group_by, rules, 5, one_country("44"), zone)
            assert uk is None
            us = summarize_counted(window, group_by, rules, 5, one_country("1"), zone)
            assert us is not None
    engine.dispose()


def test_a_quarter_hour_is_one_local_day_or_hour_only_in_whole_quarter_hour_zones() -> None:
    """Berlin's 01:45 UTC quarter on 29 March 2026 is 03:45 CEST, after the skipped
    02:00; Monrovia's -0:44:30 of 1971 straddles local hours and days."""
    quarter = int(datetime(2026, 3, 29, 1, 45, tzinfo=UTC).timestamp() * 1_000_000) // QUARTER_US
    berlin = ZoneInfo("Europe/Berlin")
    assert local_key(quarter, "hour", berlin) == "2026-03-29T03:00:00+02:00"
    assert local_key(quarter, "day", berlin) == "2026-03-29"
    old = int(datetime(1971, 6, 1, 0, 30, tzinfo=UTC).timestamp() * 1_000_000) // QUARTER_US
    assert local_key(old, "day", ZoneInfo("Africa/Monrovia")) is None
    assert local_key(old, "hour", ZoneInfo("Africa/Monrovia")) is None


def test_migration_0006_fills_the_counted_columns_as_the_archive_writes_them(
    empty_engine: sa.Engine, records: list[Record]
) -> None:
    """Rows archived before 0006 get what the archive now writes beside each record."""
    upgrade(empty_engine, "0005")
    latest = {(r["tenant_id"], r["call_uuid"]): r for r in records}
    new = list(figure_columns({}, ""))
    old_rows = []
    for record in latest.values():
        row = call_row(record)
        for name in new:
            del row[name]
        old_rows.append(row)
    from core.history.records import extension_rows

    old_extensions = [
        {k: v for k, v in row.items() if k != "rang"}
        for record in latest.values()
        for row in extension_rows(record)
    ]
    old_calls = sa.table("history_calls", *(sa.column(name) for name in old_rows[0]))
    old_ext = sa.table("history_extensions", *(sa.column(name) for name in old_extensions[0]))
    with empty_engine.begin() as connection:
        connection.execute(sa.insert(old_calls), old_rows)
        connection.execute(sa.insert(old_ext), old_extensions)
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        found = connection.execute(
            sa.select(calls.c.tenant_id, calls.c.call_uuid, *(calls.c[n] for n in new))
        ).all()
        rang = connection.execute(
            sa.select(
                extensions.c.tenant_id,
                extensions.c.call_uuid,
                extensions.c.extension,
                extensions.c.rang,
            )
        ).all()
    filled = {(row[0], row[1]): dict(zip(new, row[2:], strict=True)) for row in found}
    wanted = {key: figure_columns(r, "1") for key, r in latest.items()}
    assert filled == wanted
    wanted_rang = {
        (row["tenant_id"], row["call_uuid"], row["extension"]): row["rang"]
        for record in latest.values()
        for row in extension_rows(record)
    }
    assert {(t, c, e): bool(r) for t, c, e, r in rang} == wanted_rang
    assert any(wanted_rang.values()) and not all(wanted_rang.values())


def test_an_offset_changing_by_half_an_hour_inside_the_window_is_counted_by_quarter_hour(
    history_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lord Howe Island is UTC+11 in March and October but +10:30 from 5 April
    to 4 October 2026: the window's ends are whole hours, so day and hour are first counted
    per UTC hour; the calls after the change straddle two local hours, so they
    are counted again per quarter hour, and the answer is the fold's."""
    zone = ZoneInfo("Australia/Lord_Howe")
    start = datetime(2026, 3, 30, tzinfo=UTC)
    # Every ~8 h until past 4 October (+11 again): the archive's end, like the
    # window's start, is a whole hour.
    made = list(outcome_records(600, tenants=TENANTS, seed=3, start=start, spacing_seconds=28_000))
    assert decided_us(made[-1]) > micros(datetime(2026, 10, 5, tzinfo=UTC))
    engine = create_engine(history_url)
    upgrade(engine)
    writer.archive(engine, made, None)
    window = HistoryWindow(
        engine,
        Store(redis_with(made)),
        list(TENANTS),
        micros(datetime(2026, 3, 1, tzinfo=UTC)),
        micros(datetime(2026, 11, 1, tzinfo=UTC)) - 1,
        max_later_records=100_000,
    )
    tried: list[str] = []
    count = counted_module.figure_counts

    def recorded(connection: Any, conditions: Any, grouping: str, *rest: Any) -> Any:
        tried.append(grouping)
        return count(connection, conditions, grouping, *rest)

    monkeypatch.setattr(counted_module, "figure_counts", recorded)
    rules = FigureRules((20.0,), AbandonsInServiceLevel.COUNT)
    country = one_country("1")
    for group_by in ("day", "hour"):
        tried.clear()
        counted = summarize_counted(window, group_by, rules, 5, country, zone)
        assert counted is not None and tried[:2] == ["hour", "quarter"], (group_by, tried)
        assert counted == summarize_folded(window, group_by, rules, 5, country, zone), group_by
    engine.dispose()
