"""Call history end to end: real web and worker processes, a real Redis, a real database.

- Redis lets everything expire (RETENTION_SECONDS of a few seconds); the calls
  are still found, exported and counted from the database (SQLite, PostgreSQL).
- The worker is killed with SIGKILL again and again while it archives; the
  archive ends up holding every outcome revision exactly once.
- The database (a private PostgreSQL) goes down: intake and outcomes go on,
  /readyz and /metrics show the archive falling behind, and once the database
  is back it catches up with nothing lost or doubled.
"""

from __future__ import annotations

import csv
import io
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from callstate_harness import (
    ADMIN_KEY,
    KEY_A,
    REPO,
    TENANT_A,
    TENANT_B,
    Api,
    Launcher,
    wait_until,
)
from postgres_server import PostgresServer, postgres_bindir
from primevox_bodies import EXPECTED, Call, scenario

from app.intake.loading import load_event
from core.history.schema import calls, revisions
from core.queue import enqueue_event, events_queue
from core.settings import database_url
from core.store import Store
from statemachine.event_log import to_record
from tests.kit.history_db import history_url, postgres_url, sqlite_url  # noqa: F401

KINDS = ["answered", "abandoned", "no_answer", "voicemail", "outbound", "unrouted"]
Record = dict[str, Any]


def migrate(launcher: Launcher, url: str) -> None:
    """Run the Procfile's release process, as a deploy does."""
    release = launcher.start("release", {"DATABASE_URL": url})
    release.popen.wait(60)
    assert release.popen.returncode == 0, release.tails()


def post_calls(api: Api, count: int, tenants: tuple[str, ...] = (TENANT_A, TENANT_B)) -> list[Call]:
    placed = []
    for index in range(count):
        call = Call(tenants[index % len(tenants)])
        for fields in scenario(KINDS[index % len(KINDS)], call):
            api.accept(fields)
        placed.append(call)
    return placed


def stream_records(launcher: Launcher) -> list[Record]:
    """Every outcome record the outcome streams hold, all tenants."""
    store = Store(launcher.redis_client)
    records, _ = store.outcomes.read_outcomes(store.tenants.all(), after=None, limit=1_000_000)
    return records


def archived(url: str) -> tuple[list[tuple[str, str, int]], dict[tuple[str, str], Record]]:
    """(every archived revision's key, each call's row) straight from the database."""
    import json

    engine = sa.create_engine(database_url(url) or url)
    try:
        with engine.connect() as connection:
            keys = [
                (str(t), str(c), int(r))
                for t, c, r in connection.execute(
                    sa.select(revisions.c.tenant_id, revisions.c.call_uuid, revisions.c.revision)
                )
            ]
            rows = {
                (str(t), str(c)): json.loads(record)
                for t, c, record in connection.execute(
                    sa.select(calls.c.tenant_id, calls.c.call_uuid, calls.c.record)
                )
            }
    finally:
        engine.dispose()
    return keys, rows


def assert_archive_matches(launcher: Launcher, url: str, expected_calls: int) -> None:
    """Every outcome revision once, and each call at its latest revision."""
    records = stream_records(launcher)
    keys, rows = archived(url)
    assert len(keys) == len(set(keys)), "a revision archived twice"
    assert sorted(keys) == sorted((r["tenant_id"], r["call_uuid"], r["revision"]) for r in records)
    latest: dict[tuple[str, str], Record] = {}
    for record in records:
        latest[(record["tenant_id"], record["call_uuid"])] = record
    assert len(rows) == len(latest) == expected_calls
    for key, record in latest.items():
        assert rows[key] == record


def archive_caught_up(api: Api) -> bool:
    history = api.get_json("/readyz")["history"]
    return bool(history["reachable"] and history["lag_seconds"] == 0.0)


def every_call(api: Api, query: str = "", key: str | None = None) -> list[Record]:
    found: list[Record] = []
    cursor = ""
    while True:
        page = api.get_json(f"/v1/calls?limit=50{query}{cursor}", key)
        found += page["calls"]
        if page["next"] is None:
            return found
        cursor = f"&cursor={page['next']}"


# -- Redis forgets, the database remembers ------------------------------------------------


def test_calls_expired_from_redis_are_still_found_exported_and_counted(
    launcher: Launcher,
    redis_db: redis.Redis,
    history_url: str,  # noqa: F811
) -> None:
    """RETENTION_SECONDS=3: after Redis has dropped every call, search, CSV and stats
    still give every one of them, from the database."""
    migrate(launcher, history_url)
    api = launcher.start_service(DATABASE_URL=history_url, RETENTION_SECONDS="3")
    placed = post_calls(api, 24)
    wait_until(lambda: len(every_call(api)) == 24, 30, "24 calls archived", interval=0.2)
    wait_until(
        lambda: all(api.call(c.uuid) is None for c in placed),
        30,
        "Redis to expire every call",
        interval=0.5,
    )
    # One more call per tenant publishes an outcome, which trims the streams by
    # age: once the last record is older than the retention, all of them go.
    newest_us = max(int(r["id"].partition("-")[0]) for r in api.outcomes())

    def redis_now_us() -> int:
        seconds, micros = redis_db.time()
        return int(seconds) * 1_000_000 + int(micros)

    wait_until(
        lambda: redis_now_us() > newest_us + 3_200_000,
        10,
        "every outcome record older than RETENTION_SECONDS",
    )
    post_calls(api, 2)
    wait_until(lambda: len(every_call(api)) == 26, 30, "the last 2 calls archived", interval=0.2)
    left = {r["call_uuid"] for r in api.outcomes()}
    assert not left & {c.uuid for c in placed}, "Redis still holds old outcome records"
    kinds = [KINDS[i % len(KINDS)] for i in range(24)] + KINDS[:2]

    found = every_call(api)
    assert {r["call_uuid"] for r in found} >= {c.uuid for c in placed}
    for index, call in enumerate(placed):
        record = next(r for r in found if r["call_uuid"] == call.uuid)
        assert (record["outcome"], record["missed_reason"]) == EXPECTED[kinds[index]]
    starts = [r["started_at"] for r in found]
    assert starts == sorted(starts, reverse=True)

    tenant_a = every_call(api, key=KEY_A)
    assert {r["tenant_id"] for r in tenant_a} == {TENANT_A}
    assert len(tenant_a) == 13
    missed = every_call(api, "&outcome=missed")
    assert len(missed) == sum(1 for kind in kinds if EXPECTED[kind][0] == "missed")

    answer = api.request(
        "GET", "/v1/calls?outcome=missed", headers={"Authorization": f"Bearer {ADMIN_KEY}",
                                                    "Accept": "text/csv"}
    )  # fmt: skip
    assert answer.status == 200
    table = list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert [row["call_uuid"] for row in table] == [r["call_uuid"] for r in missed]
    assert all(row["caller_number"] in ('="+15551230000"', "") for row in table)

    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    figures = api.get_json(f"/v1/stats?from={hour_ago}&group_by=day")
    assert figures["window"]["source"] == "history"
    totals = figures["totals"]
    assert totals["outbound"] == kinds.count("outbound")
    assert totals["offered"] == len(kinds) - kinds.count("outbound")
    assert totals["answered"] == kinds.count("answered")
    assert totals["abandoned"] == kinds.count("abandoned")
    assert totals["voicemail"] == kinds.count("voicemail")
    assert [g["key"] for g in figures["groups"]] == [time.strftime("%Y-%m-%d", time.gmtime())]
    assert {m["call_uuid"] for m in figures["missed_calls"]} == {r["call_uuid"] for r in missed}


# -- kill -9 while archiving ------------------------------------------------------------


def test_a_worker_killed_again_and_again_archives_every_revision_once(
    launcher: Launcher,
    history_url: str,  # noqa: F811
) -> None:
    """Calls flow while the worker process is SIGKILLed at random moments and restarted:
    at the end the archive holds exactly the outcome streams' revisions."""
    migrate(launcher, history_url)
    env = {"DATABASE_URL": history_url}
    api = launcher.start_service(**env)
    worker = launcher.procs[-1]
    placed: list[Call] = []
    done = threading.Event()

    def traffic() -> None:
        try:
            for _ in range(12):
                placed.extend(post_calls(api, 10))
                time.sleep(0.3)
        finally:
            done.set()

    sender = threading.Thread(target=traffic)
    sender.start()
    rng = random.Random(14)
    kills = 0
    try:
        while not done.is_set() or kills < 3:
            time.sleep(rng.uniform(0.5, 1.5))
            worker.kill9()
            kills += 1
            worker = launcher.start_worker(**env)
    finally:
        sender.join(120)
    wait_until(lambda: archive_caught_up(api), 60, "the archive to catch up", interval=0.3)
    wait_until(lambda: len(every_call(api)) == len(placed), 60, "every call archived")
    assert_archive_matches(launcher, history_url, len(placed))


# -- the database goes away and comes back ----------------------------------------------


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("!!! PostgreSQL server binaries (initdb, pg_ctl) are not installed !!!")
    try:
        server = PostgresServer.create(bindir)
        server.start()
    except (subprocess.CalledProcessError, KeyError, OSError) as exc:
        pytest.fail(f"could not start a private PostgreSQL: {exc}")
    try:
        yield server
    finally:
        server.remove()


def test_a_database_outage_slows_nothing_and_loses_nothing(
    launcher: Launcher, private_postgres: PostgresServer
) -> None:
    """With PostgreSQL down, webhooks are accepted and outcomes decided as usual; /readyz
    stays ready and warns, /metrics shows the lag; after the restart the archive catches
    up with every revision once."""
    url = private_postgres.url
    migrate(launcher, url)
    api = launcher.start_service(DATABASE_URL=url)
    post_calls(api, 12)
    wait_until(lambda: len(every_call(api)) == 12, 30, "the first calls archived", interval=0.2)

    private_postgres.stop("immediate")
    started = time.monotonic()
    during = post_calls(api, 12)
    wait_until(
        lambda: {c.uuid for c in during} <= {r["call_uuid"] for r in api.outcomes()},
        30,
        "outcomes decided while the database is down",
        interval=0.2,
    )
    decided_after = time.monotonic() - started
    assert decided_after < 20, "outcomes took as long as they do with the database up"
    ready = api.request("GET", "/readyz")
    assert ready.status == 200
    body = ready.json()
    assert body["history"]["reachable"] is False
    assert any("history database unreachable" in w for w in body["warnings"])
    assert api.metric("callstate_history_up") == 0.0
    assert api.get("/v1/calls").status == 503
    time.sleep(2)

    private_postgres.start()
    wait_until(lambda: archive_caught_up(api), 90, "the archive to catch up", interval=0.5)
    assert api.metric("callstate_history_up") == 1.0
    assert api.metric("callstate_history_archive_lag_seconds") == 0.0
    assert len(every_call(api)) == 24
    assert_archive_matches(launcher, url, 24)


def test_a_record_postgresql_refuses_stops_nobody_else(
    launcher: Launcher,
    postgres_url: str,  # noqa: F811
) -> None:
    """An outcome record carrying NUL (forced past intake, which refuses it) is set
    aside by the archiver on PostgreSQL; a clean call of another tenant posted
    afterwards is archived within seconds, and /readyz, /metrics and ``flask
    history status`` tell of the one set aside."""
    migrate(launcher, postgres_url)
    api = launcher.start_service(DATABASE_URL=postgres_url)
    poisoned = Call(TENANT_B)
    store = Store(launcher.redis_client)
    for fields in scenario("abandoned", poisoned):
        _, event = load_event(dict(fields), datetime.now(UTC))
        envelope = to_record(event, dict(fields), fields["eventType"])
        if envelope["data"].get("caller"):
            envelope["data"]["caller"]["number"] = "+1555\x00x"
            envelope["fields"]["callerIdNum"] = "+1555\x00x"
        enqueue_event(store, events_queue(launcher.queues), envelope)

    def decided(uuid: str = poisoned.uuid) -> bool:
        found = api.call(uuid, ADMIN_KEY)
        return found is not None and found["outcome"] is not None

    wait_until(decided, 30, "the call with NUL decided")
    clean = post_calls(api, 1, tenants=(TENANT_A,))[0]
    wait_until(
        lambda: clean.uuid in {c["call_uuid"] for c in every_call(api)},
        15,
        "the clean call of the other tenant archived",
        interval=0.2,
    )
    ready = api.get_json("/readyz", expect=200)
    assert ready["history"]["set_aside"] == 1
    assert any("set aside" in warning for warning in ready["warnings"])
    assert api.metric("callstate_history_set_aside_records") == 1.0
    status = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "history", "status"],
        env=launcher.env({"DATABASE_URL": postgres_url}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert "1 outcome record(s) set aside" in status.stdout
    assert poisoned.uuid in status.stdout and "NUL" in status.stdout
