"""History benchmark: archive throughput, search latency among 1M archived calls, CSV rows/s.

    python -m bench.history [--db postgres,sqlite] [--archive 20000] [--calls 1000000]
                            [--searches 40] [--csv-rows 100000]

For each database (a fresh database on the PostgreSQL server named by
CALLSTATE_TEST_POSTGRES_URL, default the local one; a SQLite file):

1. Archive throughput. ``--archive`` synthetic outcome records
   (``bench.history_data``) are written into the outcome streams of a private
   redis-server, then archived with the archiver's own pass
   (``archive_pass``, batches of 500) until none is left: records/s, as a
   ratio of reading the same records from Redis alone (``read_outcomes``, the
   archiver's read, no database) in the same run, and against the rate the
   intake goal needs (2,000 events/s at ~6 webhooks a call = 333 calls/s).
2. Search latency. ``--calls`` calls are loaded straight into the three
   tables (executemany, not the archiver: this measures reads), and each kind
   of search (``GET /v1/calls``'s filters) runs ``--searches`` times with
   varying values, first page and a page 20 pages deep: p50/p99 ms, as a
   ratio of a primary-key lookup measured in the same rounds, and against the
   same searches at 10,000 calls (flat = 1.0). Query plans of each search at
   the full size go to bench/results/history-plans-<db>.txt.
3. CSV. ``GET /v1/calls?format=csv`` for ``--csv-rows`` calls through the
   Flask app (test client, no network): rows/s, as a ratio of fetching the
   same rows from the database without writing CSV.
4. With ``--only reports``, only this: the reports page's data over 30 days of
   a 100-agent centre (``bench/history_reports.py``).

Loopback only; every loop is bounded.

Over 400 lines on purpose: each figure beside the data it is measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.common import percentile, print_machine, progress, ratio
from bench.history_data import EXTENSIONS, QUEUES, outcome_records
from bench.history_reports import run_reports
from bench.service import RedisServer
from core.history import records as rows
from core.history.archive import archive_pass
from core.history.database import create_engine, upgrade
from core.history.schema import calls, extensions, revisions
from core.history.search import CallFilter, Position, page, select_calls, stream
from core.settings import Settings, database_url
from core.store import TENANTS_KEY, Store, dumps, outcomes_key

ADMIN_URL = os.environ.get(
    "CALLSTATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TENANTS = ("acme", "globex", "initech", "umbrella")
RESULTS = Path(__file__).resolve().parent / "results"
NEEDED_CALLS_PER_SECOND = 2000 / 6


# -- databases ---------------------------------------------------------------------


class Database:
    """A fresh database of one kind, dropped (or deleted) at the end."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.name = f"callstate_bench_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            self.url = f"sqlite:///{directory / (self.name + '.sqlite3')}"
        else:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{self.name}"')
            base = sa.make_url(database_url(ADMIN_URL) or "")
            self.url = base.set(database=self.name).render_as_string(hide_password=False)
        self.engine = create_engine(self.url, role="worker")
        upgrade(self.engine)

    def drop(self) -> None:
        self.engine.dispose()
        if self.kind == "postgres":
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# -- 1. archive throughput -----------------------------------------------------------


def fill_streams(store: Store, count: int) -> int:
    """Put the records of ``count`` calls on the tenants' outcome streams."""
    written = 0
    with store.backend.redis.pipeline(transaction=False) as pipe:
        for record in outcome_records(count, tenants=TENANTS, spacing_seconds=2.0):
            body = {k: v for k, v in record.items() if k != "id"}
            pipe.xadd(outcomes_key(record["tenant_id"]), {"record": dumps(body)}, id=record["id"])
            written += 1
            if written % 2000 == 0:
                pipe.execute()
        pipe.sadd(TENANTS_KEY, *TENANTS)
        pipe.execute()
    return written


def read_only_rate(store: Store, expected: int) -> float:
    began = time.perf_counter()
    after: str | None = None
    seen = 0
    while True:
        found, after = store.outcomes.read_outcomes(store.tenants.all(), after=after, limit=500)
        if not found:
            break
        seen += len(found)
    assert seen == expected, (seen, expected)
    return seen / (time.perf_counter() - began)


def archive_rate(store: Store, database: Database, expected: int) -> float:
    began = time.perf_counter()
    total = 0
    while written := archive_pass(store, database.engine):
        total += written
    assert total == expected, (total, expected)
    return total / (time.perf_counter() - began)


# -- 2. search latency -------------------------------------------------------------------


def load(database: Database, first: int, count: int) -> None:
    """Add calls ``first``..``first + count`` straight into the tables."""
    batch: dict[str, list[dict[str, Any]]] = {"calls": [], "revisions": [], "extensions": []}

    def flush() -> None:
        with database.engine.begin() as connection:
            for table in (calls, revisions, extensions):
                if batch[table.name.removeprefix("history_")]:
                    connection.execute(sa.insert(table), batch[table.name.removeprefix("history_")])
        for values in batch.values():
            values.clear()

    records = outcome_records(first + count, tenants=TENANTS, spacing_seconds=2.0)
    seen = 0
    for record in records:
        if record["revision"] != 1:
            continue
        seen += 1
        if seen <= first:
            continue
        batch["calls"].append(rows.call_row(record))
        batch["revisions"].append(rows.revision_row(record))
        batch["extensions"] += rows.extension_rows(record)
        if len(batch["calls"]) == 10_000:
            flush()
    flush()
    if database.kind == "postgres":
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with database.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))


def searches(rng: random.Random) -> dict[str, Callable[[], CallFilter]]:
    """Each kind of search, with a value drawn at each call."""

    def tenant() -> str:
        return rng.choice(TENANTS)

    def caller() -> str:
        return rng.choice(["+1555", "+15551", "0", "555"]) + str(rng.randrange(10))

    return {
        "all tenants": lambda: CallFilter(),
        "tenant": lambda: CallFilter(tenant_id=tenant()),
        "tenant+outcome=missed": lambda: CallFilter(tenant_id=tenant(), outcome="missed"),
        "tenant+queue": lambda: CallFilter(tenant_id=tenant(), queue=rng.choice(QUEUES)),
        "tenant+extension": lambda: CallFilter(
            tenant_id=tenant(), extension=rng.choice(EXTENSIONS)
        ),
        "tenant+caller prefix": lambda: CallFilter(tenant_id=tenant(), caller_prefix=caller()),
        "tenant+one day": lambda: CallFilter(
            tenant_id=tenant(),
            started_from_us=rows.started_us({"started_at": "2026-01-10T00:00:00Z", "id": "0"}),
            started_to_us=rows.started_us({"started_at": "2026-01-11T00:00:00Z", "id": "0"}),
        ),
        "tenant+day+missed+queue": lambda: CallFilter(
            tenant_id=tenant(),
            outcome="missed",
            queue=rng.choice(QUEUES),
            started_from_us=rows.started_us({"started_at": "2026-01-10T00:00:00Z", "id": "0"}),
            started_to_us=rows.started_us({"started_at": "2026-01-11T00:00:00Z", "id": "0"}),
        ),
    }


def timed(action: Callable[[], Any]) -> float:
    began = time.perf_counter()
    action()
    return (time.perf_counter() - began) * 1000


def measure_searches(
    database: Database, rounds: int, seed: int = 5
) -> dict[str, dict[str, list[float]]]:
    """ms per search kind: first page, a page 20 deep, and a PK lookup in the same rounds."""
    rng = random.Random(seed)
    kinds = searches(rng)
    with database.engine.connect() as connection:
        keys = connection.execute(sa.select(calls.c.tenant_id, calls.c.call_uuid).limit(5000)).all()
    lookup = sa.select(calls.c.record).where(
        calls.c.tenant_id == sa.bindparam("t"), calls.c.call_uuid == sa.bindparam("c")
    )
    found: dict[str, dict[str, list[float]]] = {}
    for _ in range(rounds):
        for name, make in kinds.items():
            where = make()
            times = found.setdefault(name, {"first": [], "deep": [], "baseline": []})
            times["first"].append(timed(lambda w=where: page(database.engine, w, None, 100)))  # type: ignore[misc]
            position: Position | None = None
            for _ in range(20):
                _, position = page(database.engine, where, position, 100)
                if position is None:
                    break
            if position is not None:
                deep_at = position
                times["deep"].append(
                    timed(lambda w=where, p=deep_at: page(database.engine, w, p, 100))  # type: ignore[misc]
                )
            key = {"t": rng.choice(keys)[0], "c": rng.choice(keys)[1]}
            with database.engine.connect() as connection:
                began = time.perf_counter()
                connection.execute(lookup, key).all()
                times["baseline"].append((time.perf_counter() - began) * 1000)
    return found


def plans(database: Database) -> str:
    """EXPLAIN of each search kind (first page) at the current size."""
    rng = random.Random(9)
    out = []
    dialect = database.engine.dialect
    for name, make in searches(rng).items():
        statement = select_calls(make(), None, 101)
        sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        prefix = (
            "EXPLAIN (ANALYZE, BUFFERS) " if database.kind == "postgres" else "EXPLAIN QUERY PLAN "
        )
        with database.engine.connect() as connection:
            lines = [" ".join(map(str, row)) for row in connection.exec_driver_sql(prefix + sql)]
        out.append(f"== {name}\n{sql}\n" + "\n".join(lines))
    return "\n\n".join(out)


# -- 3. CSV ----------------------------------------------------------------------------


def csv_rates(database: Database, limit: int) -> tuple[float, float]:
    """(CSV rows/s through the app, raw fetch rows/s) for ``limit`` calls."""
    from fakeredis import FakeRedis

    from app import create_app

    settings = replace(Settings(api_keys={"k": "*"}), database_url=database.url)
    app = create_app({"TESTING": True, "REDIS_CLIENT": FakeRedis(), "CALLSTATE_SETTINGS": settings})
    client = app.test_client()
    began = time.perf_counter()
    answer = client.get(
        f"/v1/calls?format=csv&limit={limit}", headers={"Authorization": "Bearer k"}, buffered=False
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    lines = 0
    for chunk in answer.response:
        lines += (chunk if isinstance(chunk, bytes) else chunk.encode()).count(b"\r\n")
    answer.close()
    csv_rate = (lines - 1) / (time.perf_counter() - began)
    began = time.perf_counter()
    with database.engine.connect() as connection:
        fetched = sum(1 for _ in stream(connection, CallFilter(), None, limit))
    raw_rate = fetched / (time.perf_counter() - began)
    assert lines - 1 == fetched == limit, (lines, fetched, limit)
    return csv_rate, raw_rate


# -- main ------------------------------------------------------------------------------


def summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.1f} / p99 {percentile(values, 99):.1f} ms"


def run(kind: str, args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    if args.only == "reports":
        return run_reports_only(kind, args, directory)
    result: dict[str, Any] = {"db": kind}
    redis_server = RedisServer(directory / f"redis-{kind}")
    (directory / f"redis-{kind}").mkdir()
    redis_server.start()
    database = Database(kind, directory)
    try:
        store = Store(redis_server.client())
        progress(f"{kind}: filling the outcome streams with {args.archive} calls")
        count = fill_streams(store, args.archive)
        read = read_only_rate(store, count)
        progress(f"{kind}: archiving {count} records")
        archived = archive_rate(store, database, count)
        result["archive"] = {"records/s": round(archived), "read-only records/s": round(read)}
        headroom = archived / NEEDED_CALLS_PER_SECOND
        print(f"\n[{kind}] 1. archive: {archived:.0f} records/s; Redis read alone {read:.0f}/s; "
              f"ratio {ratio(archived, read)}; x{headroom:.1f} the "
              f"{NEEDED_CALLS_PER_SECOND:.0f} calls/s of the intake goal", flush=True)  # fmt: skip
        redis_server.stop()
        database.drop()
        database = Database(kind, directory)

        sizes = [10_000, args.calls]
        loaded = 0
        latency: dict[int, dict[str, dict[str, list[float]]]] = {}
        for size in sizes:
            progress(f"{kind}: loading calls up to {size}")
            began = time.perf_counter()
            load(database, loaded, size - loaded)
            progress(f"{kind}: loaded {size - loaded} calls in {time.perf_counter() - began:.0f} s")
            loaded = size
            latency[size] = measure_searches(database, args.searches)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"history-plans-{kind}.txt").write_text(plans(database))
        print(f"\n[{kind}] 2. search at {sizes[-1]:,} calls (first page of 100 / 20 pages deep);"
              " ratios: vs a primary-key lookup, vs the same search at 10,000 calls")  # fmt: skip
        result["search"] = {}
        for name, times in latency[sizes[-1]].items():
            small = latency[sizes[0]][name]
            first, deep, base = times["first"], times["deep"], times["baseline"]
            p50 = statistics.median(first)
            versus_pk = ratio(p50, statistics.median(base))
            versus_small = ratio(p50, statistics.median(small["first"]))
            line = f"  {name:26} first {summary(first)} (x{versus_pk} PK, x{versus_small} 10k)"
            if deep:
                line += f"; deep {summary(deep)}"
            print(line, flush=True)
            result["search"][name] = {
                "first_p50_ms": round(statistics.median(first), 2),
                "first_p99_ms": round(percentile(first, 99), 2),
                "deep_p50_ms": round(statistics.median(deep), 2) if deep else None,
                "pk_p50_ms": round(statistics.median(base), 3),
                "first_p50_at_10k_ms": round(statistics.median(small["first"]), 2),
            }
        progress(f"{kind}: CSV of {args.csv_rows} calls")
        csv_rate, raw_rate = csv_rates(database, args.csv_rows)
        result["csv"] = {"rows/s": round(csv_rate), "raw fetch rows/s": round(raw_rate)}
        print(f"\n[{kind}] 3. CSV: {csv_rate:.0f} rows/s; raw fetch {raw_rate:.0f} rows/s; "
              f"ratio {ratio(csv_rate, raw_rate)}", flush=True)  # fmt: skip
    finally:
        redis_server.stop()
        database.drop()
    return result


def run_reports_only(kind: str, args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    """4. The reports page's data (bench/history_reports.py) on a fresh database."""
    database = Database(kind, directory)
    try:
        return {
            "db": kind,
            "reports": run_reports(
                kind, database.engine, database.url, args.report_days, args.report_calls
            ),
        }
    finally:
        database.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", default="postgres,sqlite")
    parser.add_argument("--archive", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--searches", type=int, default=40)
    parser.add_argument("--csv-rows", type=int, default=100_000)
    parser.add_argument("--only", choices=("all", "reports"), default="all")
    parser.add_argument("--report-days", type=int, default=30)
    parser.add_argument("--report-calls", type=int, default=150_000)
    args = parser.parse_args()
    print("history benchmark")
    print_machine()
    results = []
    with tempfile.TemporaryDirectory(prefix="callstate-bench-history-") as directory:
        for kind in args.db.split(","):
            results.append(run(kind.strip(), args, Path(directory)))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "history.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
