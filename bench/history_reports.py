"""The reports page's data from the call history: 30 days of a 100-agent centre.

    python -m bench.history --only reports [--db postgres,sqlite] [--report-days 30]
                                           [--report-calls 150000]

``--report-calls`` calls of one tenant over ``--report-days`` days (a call every
~17 s, 100 extensions) are loaded straight into the history tables, the
archive's cursor set past them, and the four requests the reports page makes
for the whole range (``/v1/stats`` by day, by queue and by extension, and
``/v1/stats/heatmap``) are answered through the Flask app (test client, no
network) from the database (``source: history``): seconds for the page (the
four one after the other, and all four at once as the page sends them), as a
ratio of the goal (1 s), of reading the range's records alone (the same
query, rows fetched and decoded as JSON, no figures), and of the page's data as
it was computed before the database counted it (every record read and folded in
Python: ``summarize_folded`` and ``heatmap``, the same answers checked equal), in
the same run. The query plans of the range's read and of the counts (the month,
and the page's default week) go to stdout and to
bench/results/history-reports-plans-<db>.txt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fakeredis import FakeRedis

from app import create_app
from app.stats.figure_rules import FigureRules
from app.stats.from_history import HistoryWindow, summarize_folded
from app.stats.heatmap import heatmap
from bench.common import progress, ratio
from bench.history_data import EPOCH, outcome_records
from core.history import records as rows
from core.history.numbers import DEPLOYMENT_DEFAULT
from core.history.reports import quarter_counts
from core.history.schema import OUTCOMES_CURSOR, calls, cursor, extensions, revisions
from core.history.search import window_records
from core.history.stat_counts import counted, figure_counts
from core.settings import Settings
from core.store import TENANTS_KEY, Store
from statemachine.events import micros

TENANT = "acme"
AGENTS = [str(n) for n in range(1001, 1101)]
GOAL_SECONDS = 1.0
RESULTS = Path(__file__).resolve().parent / "results"


def load_centre(engine: sa.Engine, kind: str, days: int, count: int) -> str:
    """Load the centre's calls into the tables and set the cursor past them; the last id."""
    spacing = days * 86400 / count
    batch: dict[str, list[dict[str, Any]]] = {"calls": [], "revisions": [], "extensions": []}

    def flush() -> None:
        with engine.begin() as connection:
            for table in (calls, revisions, extensions):
                if batch[table.name.removeprefix("history_")]:
                    connection.execute(sa.insert(table), batch[table.name.removeprefix("history_")])
        for values in batch.values():
            values.clear()

    last = ""
    records = outcome_records(count, tenants=(TENANT,), spacing_seconds=spacing, extensions=AGENTS)
    for record in records:
        if record["revision"] != 1:
            continue
        batch["calls"].append(rows.call_row(record))
        batch["revisions"].append(rows.revision_row(record))
        batch["extensions"] += rows.extension_rows(record)
        last = record["id"]
        if len(batch["calls"]) == 10_000:
            flush()
    flush()
    with engine.begin() as connection:
        connection.execute(
            sa.update(cursor).where(cursor.c.name == OUTCOMES_CURSOR).values(last_id=last)
        )
    if kind == "postgres":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return last


def plan(engine: sa.Engine, kind: str, query: Callable[[sa.Connection], Any]) -> str:
    """EXPLAIN of the first statement ``query`` sends."""
    found: list[Any] = []

    tuning: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor_: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "set_config" in statement:  # core.history.reports.tune: the query's settings
            tuning.append((statement, parameters))
        elif not found:
            found.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as connection:
            query(connection)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = found[0]
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if kind == "postgres" else "EXPLAIN QUERY PLAN "
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for setting, values in tuning:
            cur.execute(setting, values)
            cur.fetchall()
        cur.execute(prefix + statement, parameters)
        lines = [" ".join(map(str, row)) for row in cur.fetchall()]
    finally:
        raw.close()
    return f"{statement}\n" + "\n".join(lines)


def range_read(start_us: int, end_us: int) -> Callable[[sa.Connection], Any]:
    """The range's records as /v1/stats streams them."""
    return lambda connection: next(window_records(connection, [TENANT], start_us, end_us), None)


def heatmap_counts(start_us: int, end_us: int) -> Callable[[sa.Connection], Any]:
    """The heatmap's counts per quarter hour (core/history/reports.py)."""
    return lambda connection: quarter_counts(connection, [TENANT], start_us, end_us, (20.0,))


def stats_counts(start_us: int, end_us: int, grouping: str) -> Callable[[sa.Connection], Any]:
    """/v1/stats's counts per group (core/history/stat_counts.py)."""
    conditions = counted([TENANT], start_us, end_us)
    return lambda connection: figure_counts(connection, conditions, grouping, (20.0,))


def folded_before(engine: sa.Engine, start_us: int, end_us: int, answers: dict[str, Any]) -> float:
    """Seconds to compute the page's data as before the database counted it: every
    record of the range read and folded in Python, for the three /v1/stats requests
    and the heatmap. Checks the answers are those the page got."""
    store = Store(FakeRedis())
    zone = ZoneInfo(answers["heatmap"]["timezone"])
    began = time.perf_counter()
    for name in ("day", "queue", "extension"):
        window = HistoryWindow(engine, store, [TENANT], start_us, end_us, max_later_records=100_000)
        summary, _ = summarize_folded(window, name, FigureRules(), 0, DEPLOYMENT_DEFAULT, zone)
        got = answers[f"by {name}"]
        assert (summary["groups"], summary["totals"]) == (got["groups"], got["totals"]), name
    with engine.connect() as connection:
        window_calls = window_records(connection, [TENANT], start_us, end_us)
        folded = heatmap(window_calls, zone, "offered", FigureRules())
    assert folded == answers["heatmap"]["cells"]
    return time.perf_counter() - began


def read_alone(engine: sa.Engine, start_us: int, end_us: int) -> tuple[float, int]:
    """(seconds, calls) to read the range's records alone."""
    began = time.perf_counter()
    with engine.connect() as connection:
        seen = sum(1 for _ in window_records(connection, [TENANT], start_us, end_us))
    return time.perf_counter() - began, seen


def page_data(url: str, query: str) -> tuple[dict[str, float], dict[str, Any], float]:
    """(seconds of each, answers, seconds of all four at once) for the four
    requests of the reports page: one after the other, then all at once, as the
    page sends them (each on a thread of its own, as the server would run them;
    the answers must be the same)."""
    settings = replace(Settings(api_keys={"k": "*"}), database_url=url)
    redis = FakeRedis()
    redis.sadd(TENANTS_KEY, TENANT)  # the tenant as intake would have named it
    app = create_app({"TESTING": True, "REDIS_CLIENT": redis, "CALLSTATE_SETTINGS": settings})
    client = app.test_client()
    headers = {"Authorization": "Bearer k"}
    requests = {
        "by day": f"/v1/stats?{query}&group_by=day&missed_limit=0",
        "by queue": f"/v1/stats?{query}&group_by=queue&missed_limit=0",
        "by extension": f"/v1/stats?{query}&group_by=extension&missed_limit=0",
        "heatmap": f"/v1/stats/heatmap?{query}&metric=offered",
    }
    client.get(requests["heatmap"], headers=headers)  # the app's first request: imports, pools
    answers: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name, path in requests.items():
        began = time.perf_counter()
        answer = client.get(path, headers=headers)
        seconds[name] = time.perf_counter() - began
        assert answer.status_code == 200, answer.get_data(as_text=True)
        answers[name] = answer.get_json()

    def fetch(path: str) -> Any:
        answer = app.test_client().get(path, headers=headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return answer.get_json()

    with ThreadPoolExecutor(len(requests)) as pool:
        began = time.perf_counter()
        together = dict(zip(requests, pool.map(fetch, requests.values()), strict=True))
        at_once = time.perf_counter() - began
    assert together == answers, "the requests answered differently at once"
    return seconds, answers, at_once


def run_reports(kind: str, engine: sa.Engine, url: str, days: int, count: int) -> dict[str, Any]:
    progress(f"{kind}: loading {count} calls over {days} days")
    began = time.perf_counter()
    load_centre(engine, kind, days, count)
    progress(f"{kind}: loaded in {time.perf_counter() - began:.0f} s")
    start, end = EPOCH, EPOCH + timedelta(days=days + 1)
    start_us, end_us = micros(start), micros(end) - 1
    # The whole month (the planner may rightly read every row of it), and the
    # page's default week (a slice: the index on first_decided_us).
    week_us = micros(end - timedelta(days=7))
    explained = (
        f"-- {days} days\n{plan(engine, kind, range_read(start_us, end_us))}\n\n"
        f"-- the last 7 days\n{plan(engine, kind, range_read(week_us, end_us))}\n\n"
        f"-- the heatmap's counts, {days} days\n"
        f"{plan(engine, kind, heatmap_counts(start_us, end_us))}\n\n"
        f"-- the heatmap's counts, the last 7 days\n"
        f"{plan(engine, kind, heatmap_counts(week_us, end_us))}\n\n"
        f"-- /v1/stats's counts by hour (day, hour in a zone of whole hours), {days} days\n"
        f"{plan(engine, kind, stats_counts(start_us, end_us, 'hour'))}\n\n"
        f"-- /v1/stats's counts by extension, {days} days\n"
        f"{plan(engine, kind, stats_counts(start_us, end_us, 'extension'))}\n\n"
        f"-- /v1/stats's counts by hour, the last 7 days\n"
        f"{plan(engine, kind, stats_counts(week_us, end_us, 'hour'))}"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"history-reports-plans-{kind}.txt").write_text(explained)
    alone, seen = read_alone(engine, start_us, end_us)
    query = f"from={start.isoformat()}&to={end.isoformat()}".replace("+00:00", "Z")
    each, answers, at_once = page_data(url, query)
    seconds = sum(each.values())
    assert answers["by queue"]["window"]["source"] == "history"
    offered = answers["by queue"]["totals"]["offered"]
    assert offered > count // 2, offered
    # The page's data as it was computed before the database counted it.
    before = folded_before(engine, start_us, end_us, answers)
    print(
        f"\n[{kind}] 4. reports page over {days} days, {seen:,} calls ({offered:,} offered, "
        f"{len(AGENTS)} agents): {seconds:.2f} s for its 4 requests; "
        f"ratio {ratio(seconds, GOAL_SECONDS)} of the 1 s goal, "
        f"{ratio(seconds, before)} of folding every record in Python as before "
        f"({before:.2f} s, the same answers), "
        f"{ratio(seconds, alone)} of reading the records alone ({alone:.2f} s); "
        + ", ".join(f"{name} {value:.2f} s" for name, value in each.items())
        + f"; the 4 at once, as the page sends them: {at_once:.2f} s, "
        f"ratio {ratio(at_once, GOAL_SECONDS)} of the goal"
        + f"\nquery plans (the range's read, the heatmap's and /v1/stats's counts):\n{explained}",
        flush=True,
    )
    return {
        "calls": seen,
        "page_seconds": round(seconds, 3),
        "page_at_once_seconds": round(at_once, 3),
        "request_seconds": {name: round(value, 3) for name, value in each.items()},
        "read_alone_seconds": round(alone, 3),
        "folded_before_seconds": round(before, 3),
        "answers_bytes": len(json.dumps(answers)),
    }
