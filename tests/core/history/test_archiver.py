"""The archiver over fakeredis's outcome streams: every record once, nothing from the future,
backfill, backoff while the database is away, retention (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import sqlalchemy as sa
from click.testing import Result

from app import create_app
from bench.history_data import outcome_records
from core.history import writer
from core.history.archive import archive_pass, lag
from core.history.database import create_engine
from core.history.records import started_us
from core.history.schema import calls, revisions
from core.settings import Settings
from core.store import TENANTS_KEY, Store, dumps, outcomes_key
from tests.conftest import API_KEY
from workers.archiver import Archiver

Record = dict[str, Any]


def publish(store: Store, records: list[Record]) -> None:
    for record in records:
        body = {k: v for k, v in record.items() if k != "id"}
        store.backend.redis.xadd(
            outcomes_key(record["tenant_id"]), {"record": dumps(body)}, id=record["id"]
        )
        store.backend.redis.sadd(TENANTS_KEY, record["tenant_id"])


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_passes_archive_every_tenants_records_once(engine: sa.Engine) -> None:
    """Batches follow the merged streams to the end; another pass finds nothing."""
    store = Store(fakeredis.FakeRedis())
    records = list(outcome_records(230, tenants=("a", "b", "c")))
    publish(store, records)
    passes = 0
    while archive_pass(store, engine, batch=40):
        passes += 1
    assert passes == -(-len(records) // 40)
    assert count(engine, revisions) == len(records)
    assert archive_pass(store, engine, batch=40) == 0
    assert lag(store, engine).seconds(store.outcomes.server_time_us()) == 0.0
    with engine.connect() as connection:
        assert writer.read_cursor(connection) == records[-1]["id"]


def test_a_record_stamped_after_the_pass_began_waits_for_the_next(engine: sa.Engine) -> None:
    """Only records older than the server time read first are taken, so a tenant that
    appears meanwhile is never skipped past."""
    store = Store(fakeredis.FakeRedis())
    records = list(outcome_records(5, tenants=("a",)))
    future = {
        **records[0],
        "call_uuid": "later",
        "id": f"{store.outcomes.server_time_us() + 3_600_000_000}-0",
    }
    publish(store, [*records, future])
    assert archive_pass(store, engine) == 5
    assert archive_pass(store, engine) == 0
    found = lag(store, engine)
    assert found.archived_to == records[-1]["id"]
    assert found.waiting_since_us is None  # not decided yet, as far as Redis's clock goes


def test_backfill_archives_what_redis_holds_and_doubles_nothing(
    history_url: str, engine: sa.Engine
) -> None:
    """``flask history backfill`` twice: every record once, the cursor untouched."""
    client = fakeredis.FakeRedis()
    records = list(outcome_records(150, tenants=("a", "b")))
    publish(Store(client), records)
    app = create_app(
        {
            "TESTING": True,
            "REDIS_CLIENT": client,
            "CALLSTATE_SETTINGS": Settings(api_keys={API_KEY: "*"}, database_url=history_url),
        }
    )
    runner = app.test_cli_runner()
    for _ in range(2):
        result: Result = runner.invoke(args=["history", "backfill"])
        assert result.exit_code == 0, result.output
        assert f"{len(records)} outcome records" in result.output
    assert count(engine, revisions) == len(records)
    assert count(engine, calls) == len({r["call_uuid"] for r in records})
    with engine.connect() as connection:
        assert writer.read_cursor(connection) is None
    status = runner.invoke(args=["history", "status"])
    assert "nothing yet" in status.output


def test_without_a_database_the_archiver_backs_off_and_never_raises(
    engine: sa.Engine,
) -> None:
    """A database that refuses connections: each step waits longer, up to 30 s."""
    store = Store(fakeredis.FakeRedis())
    publish(store, list(outcome_records(3)))
    dead = create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none", role="worker")
    archiver = Archiver(store, dead)
    waits = [archiver.step() for _ in range(8)]
    assert waits[0] > 0 and waits == sorted(waits) and waits[-1] == 30.0
    healthy = Archiver(store, engine)
    assert healthy.step() == 0.5  # all archived: idle until the next look


def test_retention_deletes_what_started_before_the_cutoff(engine: sa.Engine) -> None:
    store = Store(fakeredis.FakeRedis())
    records = list(outcome_records(100))
    publish(store, records)
    while archive_pass(store, engine):
        pass
    middle = started_us(records[50]) / 1_000_000
    archiver = Archiver(store, engine, retention_days=1.0, clock=lambda: middle + 86_400)
    deleted = archiver.apply_retention()
    assert deleted == sum(
        1 for r in records if r["revision"] == 1 and started_us(r) < started_us(records[50])
    )
    assert count(engine, calls) == 100 - deleted


def test_a_record_the_database_refuses_is_set_aside_and_the_archive_goes_on(
    engine: sa.Engine,
) -> None:
    """A record the database will never store (NUL in PostgreSQL text) is set
    aside with why, once; every other record of the batch, and those after it,
    are archived; the cursor moves past them all. (SQLite stores NUL.)"""
    store = Store(fakeredis.FakeRedis())
    before, nul, after, later = outcome_records(4, tenants=("a", "b", "c", "d"))
    nul["caller"] = {"number": "+1555\x00x", "name": "N\u00fcl"}
    publish(store, [before, nul, after])
    archive_pass(store, engine, batch=10)
    publish(store, [later])
    archive_pass(store, engine, batch=10)
    refused = {nul["id"]} if engine.dialect.name == "postgresql" else set()
    with engine.connect() as connection:
        kept = {row["outcome_id"]: row for row in writer.set_aside_records(connection)}
        assert set(kept) == refused
        assert writer.set_aside_count(connection) == len(refused)
        assert writer.read_cursor(connection) == later["id"]
        archived_ids = {
            str(outcome_id)
            for (outcome_id,) in connection.execute(sa.select(revisions.c.outcome_id))
        }
    assert archived_ids == {before["id"], nul["id"], after["id"], later["id"]} - refused
    for row in kept.values():
        assert json.loads(row["record"])["caller"] == nul["caller"]  # kept whole
        assert "NUL" in row["reason"] and "\x00" not in row["reason"]
    assert archive_pass(store, engine, batch=10) == 0  # nothing comes back


def test_text_the_driver_cannot_encode_counts_as_refused() -> None:
    """A lone surrogate fails before any round trip (a UnicodeError, bare or
    wrapped): refused, like a DataError; an outage is not."""
    assert writer.refused_by_database(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates"))
    assert writer.refused_by_database(sa.exc.DataError("INSERT", {}, Exception("NUL")))
    assert not writer.refused_by_database(sa.exc.OperationalError("INSERT", {}, Exception("down")))


def test_a_failing_pass_never_ends_the_archiver_thread(engine: sa.Engine) -> None:
    """An unexpected error in a pass is logged and retried after a back-off: the
    thread keeps archiving once the cause is gone."""
    store = Store(fakeredis.FakeRedis())
    archiver = Archiver(store, engine)
    broken = store.outcomes.read_outcomes

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        store.outcomes.read_outcomes = broken  # type: ignore[method-assign]
        raise KeyError("a bug")

    store.outcomes.read_outcomes = fails_once  # type: ignore[method-assign]
    assert archiver.step() > 0  # backed off, not raised
    publish(store, list(outcome_records(3, tenants=("a",))))
    assert archiver.step() == 0.5 or count(engine, revisions) == 3
    assert count(engine, revisions) == 3
