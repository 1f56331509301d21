"""/v1/stats from the archive: the same figures as from the outcome streams, for any window."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import fakeredis
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

import app.stats.figures as stats
from app import create_app
from app.stats.from_history import HistoryWindow, summarize_history
from bench.history_data import outcome_records, revised
from core.history.archive import archive_pass
from core.history.database import create_engine, upgrade
from core.history.records import decided_us
from core.settings import Settings
from core.store import TENANTS_KEY, Store, dumps, outcomes_key
from tests.conftest import API_KEY

Record = dict[str, Any]
TENANTS = ("t1", "t2")


def publish(store: Store, records: list[Record]) -> None:
    for record in records:
        body = {k: v for k, v in record.items() if k != "id"}
        store.backend.redis.xadd(
            outcomes_key(record["tenant_id"]), {"record": dumps(body)}, id=record["id"]
        )
    store.backend.redis.sadd(TENANTS_KEY, *TENANTS)


@pytest.fixture
def records() -> list[Record]:
    made = list(outcome_records(600, tenants=TENANTS, seed=11, spacing_seconds=45.0))
    # A revision decided long after its call (another window's), and follow-ups:
    # a missed caller calling again and being answered.
    late = revised(made[10], f"{decided_us(made[-1]) + 1}-0")
    return [*made, late]


@pytest.fixture
def store() -> Store:
    return Store(fakeredis.FakeRedis())


@pytest.fixture
def engine(history_url: str) -> sa.Engine:
    engine = create_engine(history_url)
    upgrade(engine)
    return engine


def from_streams(store: Store, start_us: int, end_us: int, group_by: str | None) -> Any:
    found, _ = store.outcomes.read_outcome_window(list(TENANTS), start_us, end_us)
    calls = stats.calls_in_window(found)
    return stats.summarize(calls, group_by, 20.0), stats.missed_calls(calls, 25)


@pytest.mark.parametrize("archived_share", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("group_by", [None, "queue", "extension", "day", "hour"])
def test_the_archive_gives_the_figures_the_streams_give(
    store: Store,
    engine: sa.Engine,
    records: list[Record],
    archived_share: float,
    group_by: str | None,
) -> None:
    """Windows cut anywhere, with the archive complete, partial (the rest read from
    Redis) or empty: totals, groups and the callback list are identical."""
    publish(store, records)
    target = int(len(records) * archived_share)
    archived = 0
    while archived < target and (written := archive_pass(store, engine, batch=50)):
        archived += written
    ids = sorted(decided_us(r) for r in records)
    windows = [(ids[0], ids[-1]), (ids[100], ids[450]), (ids[300], ids[-1] + 10), (ids[5], ids[6])]
    for start_us, end_us in windows:
        window = HistoryWindow(
            engine, store, list(TENANTS), start_us, end_us, max_later_records=100_000
        )
        assert summarize_history(window, group_by, 20.0, 25) == from_streams(
            store, start_us, end_us, group_by
        )


def test_stats_past_redis_retention_come_from_the_archive(
    history_url: str, engine: sa.Engine, records: list[Record]
) -> None:
    """A window older than RETENTION_SECONDS is answered from the database (source: history)."""
    client = fakeredis.FakeRedis()
    settings = Settings(api_keys={API_KEY: "*"}, database_url=history_url)
    store = Store(client, retention_seconds=settings.retention_seconds)
    publish(store, records)
    while archive_pass(store, engine):
        pass
    app = create_app({"TESTING": True, "REDIS_CLIENT": client, "CALLSTATE_SETTINGS": settings})
    api: FlaskClient = app.test_client()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    old = api.get("/v1/stats?from=2026-01-05&to=2026-01-06&group_by=day", headers=headers)
    assert old.status_code == 200
    body = old.get_json()
    assert body["window"]["source"] == "history"
    assert body["totals"]["offered"] + body["totals"]["outbound"] > 0
    assert [g["key"] for g in body["groups"]] == ["2026-01-05"]
    recent = api.get("/v1/stats", headers=headers).get_json()
    assert recent["window"]["source"] == "redis"
    no_history = create_app(
        {
            "TESTING": True,
            "REDIS_CLIENT": client,
            "CALLSTATE_SETTINGS": replace(settings, database_url=None),
        }
    ).test_client()
    assert (
        no_history.get("/v1/stats?from=2026-01-05", headers=headers).get_json()["window"]["source"]
        == "redis"
    )
