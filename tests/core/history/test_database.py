"""The history database: migrations, and the archive's exactly-once writes.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bench.history_data import outcome_records
from core.history import records as rows
from core.history import writer
from core.history.database import current_revision, downgrade, head_revision, upgrade
from core.history.exceptions import CursorMoved
from core.history.schema import calls, extensions, metadata, revisions
from core.settings import ConfigError, Settings


def table_rows(engine: sa.Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.select(table))]


def cursor_of(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return writer.read_cursor(connection)


def test_migrations_from_empty_build_exactly_the_schema_the_code_queries(
    empty_engine: sa.Engine,
) -> None:
    """An empty database upgrades to the head and matches schema.py; down and up work."""
    assert current_revision(empty_engine) is None
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    with empty_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": "history_alembic_version"}
        )
        assert compare_metadata(context, metadata) == []
    upgrade(empty_engine)  # idempotent
    downgrade(empty_engine, "base")
    assert not set(sa.inspect(empty_engine).get_table_names()) & set(metadata.tables)
    upgrade(empty_engine)
    assert cursor_of(empty_engine) is None


def test_every_revision_is_kept_and_each_call_holds_its_latest(engine: sa.Engine) -> None:
    """One row per revision; one row per call with the newest revision and its first's time."""
    records = list(outcome_records(300))
    for start in range(0, len(records), 64):
        writer.archive(engine, records[start : start + 64], cursor_of(engine))
    assert cursor_of(engine) == records[-1]["id"]
    stored = {
        (r["tenant_id"], r["call_uuid"], r["revision"]): r for r in table_rows(engine, revisions)
    }
    assert set(stored) == {(r["tenant_id"], r["call_uuid"], r["revision"]) for r in records}
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        key = (record["tenant_id"], record["call_uuid"])
        latest[key] = record  # decision order: the later revision comes later
        first.setdefault(key, record)
    by_call = {(r["tenant_id"], r["call_uuid"]): r for r in table_rows(engine, calls)}
    assert set(by_call) == set(latest)
    revised = [k for k, r in latest.items() if r["revision"] == 2]
    assert revised, "the data must hold revised calls"
    for key, record in latest.items():
        row = by_call[key]
        assert json.loads(row["record"]) == record
        assert row["revision"] == record["revision"]
        assert row["first_revision"] == 1
        assert row["first_decided_us"] == rows.decided_us(first[key])
    expected_extensions = {
        (r["tenant_id"], r["call_uuid"], number)
        for r in latest.values()
        for number in rows.extensions_of(r)
    }
    assert {
        (r["tenant_id"], r["call_uuid"], r["extension"]) for r in table_rows(engine, extensions)
    } == expected_extensions


def test_writing_the_same_records_again_changes_nothing(engine: sa.Engine) -> None:
    """A backfill over archived records (older revisions too) leaves every row as it was."""
    records = list(outcome_records(120))
    writer.archive(engine, records, None)
    before = {
        t.name: sorted(map(repr, table_rows(engine, t))) for t in (calls, revisions, extensions)
    }
    with engine.begin() as connection:
        assert writer.write_records(connection, list(reversed(records))) == 0
    after = {
        t.name: sorted(map(repr, table_rows(engine, t))) for t in (calls, revisions, extensions)
    }
    assert after == before
    assert cursor_of(engine) == records[-1]["id"]


def test_a_writer_with_a_stale_cursor_writes_nothing(engine: sa.Engine) -> None:
    """Two archivers read the same cursor: the second one's batch is refused whole."""
    records = list(outcome_records(20))
    writer.archive(engine, records[:10], None)
    with pytest.raises(CursorMoved):
        writer.archive(engine, records[10:], None)
    assert len(table_rows(engine, revisions)) == 10
    writer.archive(engine, records[10:], records[9]["id"])
    assert len(table_rows(engine, revisions)) == len(records)


def test_a_failure_inside_the_transaction_leaves_neither_rows_nor_cursor(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows and cursor commit together: a crash after some rows were sent loses them all, and
    the next pass writes every record exactly once."""
    records = list(outcome_records(50))
    writer.archive(engine, records[:20], None)

    def broken(record: dict[str, Any], country: str) -> list[dict[str, Any]]:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(rows, "extension_rows", broken)
    with pytest.raises(RuntimeError):
        writer.archive(engine, records[20:], records[19]["id"])
    assert cursor_of(engine) == records[19]["id"]
    assert len(table_rows(engine, revisions)) == 20
    monkeypatch.undo()
    writer.archive(engine, records[20:], records[19]["id"])
    assert len(table_rows(engine, revisions)) == len(records)
    assert len(table_rows(engine, calls)) == len({r["call_uuid"] for r in records})


def test_retention_deletes_old_calls_with_their_revisions_and_extensions(engine: sa.Engine) -> None:
    """Calls that started before the cutoff go, in batches; later ones stay whole."""
    records = list(outcome_records(100))
    writer.archive(engine, records, None)
    cutoff = rows.started_us(records[60])
    old = {r["call_uuid"] for r in records if rows.started_us(r) < cutoff}
    deleted = 0
    while count := writer.delete_started_before(engine, cutoff, batch=7):
        assert count <= 7
        deleted += count
    assert deleted == len(old)
    for table in (calls, revisions, extensions):
        left = {r["call_uuid"] for r in table_rows(engine, table)}
        assert not left & old
    assert {r["call_uuid"] for r in table_rows(engine, calls)} == {
        r["call_uuid"] for r in records
    } - old


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("", None),
        ("postgres://u:p@db.example:5432/d", "postgresql+psycopg://u:p@db.example:5432/d"),
        ("postgresql://u@h/d?sslmode=require", "postgresql+psycopg://u@h/d?sslmode=require"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        (
            "sqlite:////var/lib/callstate/history.sqlite3",
            "sqlite:////var/lib/callstate/history.sqlite3",
        ),
        ("sqlite:///relative.sqlite3", "sqlite:///relative.sqlite3"),
    ],
)
def test_database_url_spellings_become_what_sqlalchemy_opens(given: str, used: str | None) -> None:
    """Heroku's postgres:// and postgresql:// open with psycopg 3; SQLite paths stay."""
    assert Settings.from_env({"DATABASE_URL": given}).database_url == used


@pytest.mark.parametrize(
    "given",
    ["mysql://u:secret-password@h/d", "sqlite://", "sqlite:///", "postgres://", "secret-password"],
)
def test_other_database_urls_are_refused_without_showing_them(given: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"DATABASE_URL": given})
    assert "secret-password" not in str(refused.value)
    assert "DATABASE_URL" in str(refused.value)
