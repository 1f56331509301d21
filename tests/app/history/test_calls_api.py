"""GET /v1/calls over the archive: filters, paging, tenant keys, CSV (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.history.csv_export import HEADER
from bench.history_data import outcome_records
from core.history import records as rows
from core.history import writer
from core.history.numbers import searchable
from core.history.schema import calls
from core.settings import Settings
from tests.conftest import API_KEY, TENANT_KEY

ADMIN = {"Authorization": f"Bearer {API_KEY}"}
# TENANT_KEY is bound to tenant "t1" in tests/conftest.py.
T1 = {"Authorization": f"Bearer {TENANT_KEY}"}
TENANTS = ("t1", "t2")
Record = dict[str, Any]


def latest_calls(records: list[Record]) -> list[Record]:
    """Each call's latest revision, newest start first (the API's order)."""
    latest: dict[tuple[str, str], Record] = {}
    for record in records:
        latest[(record["tenant_id"], record["call_uuid"])] = record
    return sorted(
        latest.values(),
        key=lambda r: (rows.started_us(r), r["tenant_id"], r["call_uuid"]),
        reverse=True,
    )


def archive_all(engine: sa.Engine, records: list[Record], batch: int = 5000) -> None:
    for start in range(0, len(records), batch):
        with engine.connect() as connection:
            cursor = writer.read_cursor(connection)
        writer.archive(engine, records[start : start + batch], cursor)


@pytest.fixture(scope="module")
def sample() -> list[Record]:
    return list(outcome_records(400, tenants=TENANTS, seed=7))


@pytest.fixture
def archived(history_engine: sa.Engine, sample: list[Record]) -> list[Record]:
    archive_all(history_engine, sample)
    return latest_calls(sample)


def every_page(api: FlaskClient, query: dict[str, str], headers: dict[str, str]) -> list[Record]:
    """Follow ``next`` to the end; checks each page's size."""
    found: list[Record] = []
    cursor: str | None = None
    limit = int(query.get("limit", "100"))
    while True:
        page_query = {**query, **({"cursor": cursor} if cursor else {})}
        answer = api.get(f"/v1/calls?{urlencode(page_query)}", headers=headers)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert set(body) == {"calls", "next"}
        assert len(body["calls"]) <= limit
        found += body["calls"]
        cursor = body["next"]
        if cursor is None:
            return found
        assert len(body["calls"]) == limit


def _number(party: Any) -> str | None:
    return party.get("number") if isinstance(party, dict) else None


def _involves(record: Record, extension: str) -> bool:
    numbers = [_number(p) for p in record["rang"]]
    numbers += [_number(record["answered_by"]), _number(record["voicemail_box"])]
    if record["direction"] == "outbound":
        numbers = [_number(record["extension"])]
    return extension in numbers


def _caller_starts(record: Record, prefix: str) -> bool:
    """Part of a number: the callers written, or read as E.164, starting with it."""
    written = _number(record["caller"]) or ""
    return any(n.startswith(prefix) for n in (written, searchable(written, "1") or ""))


def _started(text: str) -> int:
    return rows.started_us({"started_at": text, "id": "0-0"})


MIDDLE = "2026-01-05T01:40:00Z"
FILTERS: list[tuple[dict[str, str], Callable[[Record], bool]]] = [
    ({}, lambda r: True),
    ({"tenant_id": "t2"}, lambda r: r["tenant_id"] == "t2"),
    ({"outcome": "missed"}, lambda r: r["outcome"] == "missed"),
    ({"missed_reason": "abandoned"}, lambda r: r["missed_reason"] == "abandoned"),
    ({"direction": "outbound"}, lambda r: r["direction"] == "outbound"),
    ({"queue": "sales"}, lambda r: r["queue"] == "sales"),
    ({"ring_group": "700"}, lambda r: r["ring_group"] == "700"),
    ({"extension": "104"}, lambda r: _involves(r, "104")),
    ({"caller": "+1555"}, lambda r: _caller_starts(r, "+1555")),
    ({"caller": "0"}, lambda r: _caller_starts(r, "0")),
    ({"from": MIDDLE}, lambda r: rows.started_us(r) >= _started(MIDDLE)),
    ({"to": MIDDLE}, lambda r: rows.started_us(r) < _started(MIDDLE)),
    (
        {"from": "2026-01-05T00:30:00Z", "to": "2026-01-05T02:00:00+00:00", "outcome": "answered",
         "extension": "110", "tenant_id": "t1"},
        lambda r: _started("2026-01-05T00:30:00Z") <= rows.started_us(r)
        < _started("2026-01-05T02:00:00Z") and r["outcome"] == "answered"
        and _involves(r, "110") and r["tenant_id"] == "t1",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "matches"), FILTERS, ids=[urlencode(query) or "all" for query, _ in FILTERS]
)
def test_each_filter_finds_exactly_the_matching_calls_in_order(
    api: FlaskClient,
    archived: list[Record],
    query: dict[str, str],
    matches: Callable[[Record], bool],
) -> None:
    """Following every page gives each matching call once, at its latest revision, newest first."""
    expected = [r for r in archived if matches(r)]
    assert expected, f"the sample has no call for {query}"
    found = every_page(api, {**query, "limit": "37"}, ADMIN)
    assert found == expected


def test_a_tenant_key_sees_only_its_tenant(api: FlaskClient, archived: list[Record]) -> None:
    """A tenant key's search covers its calls only; naming another tenant is 403."""
    found = every_page(api, {"limit": "50"}, T1)
    assert found == [r for r in archived if r["tenant_id"] == "t1"]
    answer = api.get("/v1/calls?tenant_id=t2", headers=T1)
    assert answer.status_code == 403
    assert "error" in answer.get_json()


def test_a_cursor_cannot_carry_a_tenant_key_into_another_tenant(
    api: FlaskClient, archived: list[Record]
) -> None:
    """An admin's cursor positioned on t2 is refused to t1's key, not followed."""
    page = api.get("/v1/calls?tenant_id=t2&limit=5", headers=ADMIN).get_json()
    answer = api.get(f"/v1/calls?cursor={page['next']}", headers=T1)
    assert answer.status_code == 400


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=x", "outcome=lost", "from=yesterday", "cursor=%%%",
     "cursor=WzEsMl0", "from=2026-01-02&to=2026-01-01", "format=xml", "direction=sideways"],
)  # fmt: skip
def test_bad_queries_are_400_with_a_reason(
    api: FlaskClient, history_engine: sa.Engine, query: str
) -> None:
    answer = api.get(f"/v1/calls?{query}", headers=ADMIN)
    assert answer.status_code == 400
    assert answer.get_json()["error"]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("format=xml", "format must be one of json, csv"),
        ("outcome=lost", "outcome must be one of answered, missed, voicemail, outbound"),
        ("limit=x", "limit must be a whole number from 1 up"),
        ("caller=", "caller must not be empty"),
        ("direction=up&missed_reason=why", "missed_reason must be one of abandoned, no_answer, "
         "unrouted; direction must be one of inbound, outbound"),
    ],
)  # fmt: skip
def test_bad_queries_are_worded_as_every_other_query_of_the_api(
    api: FlaskClient, history_engine: sa.Engine, query: str, error: str
) -> None:
    """Each problem reads ``<argument> <what is wrong>``, as on /v1/outcomes and
    /v1/stats; several are joined with ``; ``."""
    answer = api.get(f"/v1/calls?{query}", headers=ADMIN)
    assert (answer.status_code, answer.get_json()) == (400, {"error": error})


def test_without_a_database_history_is_not_configured(client: FlaskClient) -> None:
    """No DATABASE_URL: 501 saying so, for JSON and CSV alike."""
    for headers in (ADMIN, {**ADMIN, "Accept": "text/csv"}):
        answer = client.get("/v1/calls", headers=headers)
        assert answer.status_code == 501
        assert "DATABASE_URL" in answer.get_json()["error"]


def test_the_api_needs_a_key(api: FlaskClient) -> None:
    assert api.get("/v1/calls").status_code == 401


def read_csv(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff"), "a byte-order mark, for Excel"
    return list(csv.DictReader(io.StringIO(text[1:])))


def cell_text(cell: str) -> str:
    """What a spreadsheet shows for one of our cells."""
    if cell.startswith('="') and cell.endswith('"'):
        return cell[2:-1].replace('""', '"')
    return cell[1:] if cell.startswith("'") else cell


@pytest.mark.parametrize(
    "how", [{"query": "format=csv"}, {"accept": "text/csv"}, {"accept": "text/csv, */*;q=0.5"}]
)
def test_csv_has_a_header_and_one_row_per_call(
    api: FlaskClient, archived: list[Record], how: dict[str, str]
) -> None:
    """Same calls and order as JSON; numbers kept as text; names safe from formulas."""
    headers = {**ADMIN, **({"Accept": how["accept"]} if "accept" in how else {})}
    answer = api.get(f"/v1/calls?outcome=missed&{how.get('query', '')}", headers=headers)
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    table = read_csv(answer.get_data(as_text=True))
    expected = [r for r in archived if r["outcome"] == "missed"]
    assert list(table[0]) == HEADER
    assert [row["call_uuid"] for row in table] == [r["call_uuid"] for r in expected]
    for row, record in zip(table, expected, strict=True):
        assert cell_text(row["caller_number"]) == (_number(record["caller"]) or "")
        if _number(record["caller"]):
            assert row["caller_number"].startswith('="'), "numbers as text, + and 0 kept"
        assert cell_text(row["caller_name"]) == ((record["caller"] or {}).get("name") or "")
        assert not row["caller_name"].startswith("="), "a name never becomes a formula"
        assert row["started_at"] == record["started_at"] and row["started_at"].endswith("Z")
        assert row["wait_seconds"] == str(record["wait_seconds"])
        assert cell_text(row["queue"]) == (record["queue"] or "")
        assert cell_text(row["rang"]) == ";".join(p["number"] for p in record["rang"])
        assert row["outcome_id"] == record["id"]


def test_json_stays_the_default_for_browsers_and_generic_clients(
    api: FlaskClient, archived: list[Record]
) -> None:
    for accept in ("*/*", "application/json", "text/html,*/*;q=0.8", ""):
        answer = api.get("/v1/calls?limit=1", headers={**ADMIN, "Accept": accept})
        assert answer.mimetype == "application/json", accept


def test_csv_of_100000_calls_streams_in_flat_memory(
    api: FlaskClient, history_engine: sa.Engine
) -> None:
    """100,000 rows come out whole while the process holds a few MB, not the whole file."""
    count = 100_000
    # Only the calls table feeds the CSV: fill it directly (the archive path is
    # tested elsewhere, and would make this test minutes long).
    generated = outcome_records(count, tenants=TENANTS, seed=3, spacing_seconds=1.0)
    with history_engine.begin() as connection:
        batch: list[Record] = []
        for record in generated:
            if record["revision"] == 1:
                batch.append(rows.call_row(record))
            if len(batch) == 10_000:
                connection.execute(sa.insert(calls), batch)
                batch = []
        if batch:
            connection.execute(sa.insert(calls), batch)
    with history_engine.connect() as connection:
        calls_stored = connection.execute(sa.select(sa.func.count()).select_from(calls)).scalar()
    assert calls_stored == count

    tracemalloc.start()
    try:
        answer = api.get("/v1/calls?format=csv", headers=ADMIN, buffered=False)
        assert answer.status_code == 200
        lines = 0
        size = 0
        first_line = ""
        for chunk in answer.response:
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            if not first_line:
                first_line = text.split("\r\n", 1)[0]
            lines += text.count("\r\n")
            size += len(text)
        answer.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first_line.lstrip("\ufeff").split(",") == HEADER
    assert lines == count + 1
    assert size > 20 * 2**20, "the file is tens of MB"
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB while streaming {size / 2**20:.0f} MiB"


def test_the_time_filter_reads_utc(api: FlaskClient, archived: list[Record]) -> None:
    """An offset in from/to is converted to UTC; a date alone is its midnight UTC."""
    moment = datetime(2026, 1, 5, 1, 40, tzinfo=UTC)
    same = [
        every_page(api, {"from": q, "limit": "1000"}, ADMIN)
        for q in ("2026-01-05T01:40:00Z", "2026-01-05T02:40:00+01:00", "2026-01-05T01:40:00")
    ]
    assert same[0] == same[1] == same[2]
    assert all(rows.started_us(r) >= int(moment.timestamp() * 1e6) for r in same[0])
    by_day = every_page(api, {"to": "2026-01-05", "limit": "1000"}, ADMIN)
    assert by_day == []
    assert json.dumps(same[0])


def test_exports_past_the_cap_get_503_and_a_finished_one_gives_its_slot_back(
    history_app: Flask, archived: list[Record]
) -> None:
    """MAX_EXPORTS_PER_PROCESS downloads under way take every export slot: one more
    CSV, or page of more than 100 calls, is 503 with Retry-After at once; a small
    page is served; a download read to its end gives its slot back."""
    settings: Settings = history_app.config["CALLSTATE_SETTINGS"]
    client = history_app.test_client()
    auth = {"Authorization": f"Bearer {API_KEY}"}
    open_ones = [
        client.get("/v1/calls?format=csv", headers=auth, buffered=False)
        for _ in range(settings.max_exports_per_process)
    ]
    assert [r.status_code for r in open_ones] == [200] * settings.max_exports_per_process
    for path in ("/v1/calls?format=csv", "/v1/calls?limit=500"):
        refused = client.get(path, headers=auth)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        assert "MAX_EXPORTS_PER_PROCESS" in refused.get_json()["error"]
    assert client.get("/v1/calls?limit=100", headers=auth).status_code == 200
    open_ones[0].get_data()  # read to its end
    assert client.get("/v1/calls?format=csv", headers=auth).status_code == 200
    for response in open_ones:
        response.close()


def test_a_download_whose_reader_stalls_is_cut_off() -> None:
    """The pieces stop once the reader took longer than the idle limit to ask for
    the next one; a reader that keeps asking gets every piece."""
    from app.history.exports import cut_off_when_idle

    steady = list(cut_off_when_idle(iter(["a", "b", "c"]), idle_seconds=5.0))
    assert steady == ["a", "b", "c"]
    received = []
    for piece in cut_off_when_idle(iter(["a", "b", "c"]), idle_seconds=0.05):
        received.append(piece)
        time.sleep(0.1)  # the reader stalls after each piece
    assert received == ["a"]
