"""Tenants as data on real processes: with only the environment's admin key, a
tenant is onboarded over the API, its new token posts at once to every web
process, its read key reads but cannot subscribe, a revoked token gets 401
within 2 s, no raw secret is anywhere in Redis or the history database, and a
Chicago tenant's figures use Chicago's day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import sqlalchemy as sa
from callstate_harness import ADMIN_KEY, Api, Launcher, wait_until
from primevox_bodies import ALICE, Call

from core.history.database import create_engine
from core.local_time import local_midnight
from core.store import outcomes_key
from statemachine.events import isoformat, micros
from tests.app.stats.test_stats import record
from tests.integration.test_history_e2e import migrate
from tests.kit.history_db import postgres_url  # noqa: F401

# The directory's keys share one hash tag: on a cluster too, each change is one MULTI.
pytestmark = pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)

TENANT = "chicago"
CHICAGO = ZoneInfo("America/Chicago")
# Posts to the web: it runs 2 processes on one port; this many posts reach both.
POSTS = 12


def send(api: Api, method: str, path: str, body: Any = None, key: str = ADMIN_KEY) -> Any:
    answer = api.request(
        method,
        path,
        None if body is None else json.dumps(body).encode(),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    return answer.status, (answer.json() if answer.body else None)


def post_call(api: Api, token: str) -> list[int]:
    """A whole answered call of the tenant, each event's status."""
    call = Call(TENANT)
    events = [call.inbound(), call.ring(ALICE), call.answered(ALICE), call.hangup(ALICE)]
    return [api.post_event(fields, token=token).status for fields in events]


def everything_in_redis(client: redis.Redis) -> bytes:
    """Every key and every value (whatever its type), as bytes (every master of a cluster)."""
    found = []
    for key in client.scan_iter(count=1000):
        found.append(key)
        kind = client.type(key)
        if kind == b"string":
            found.append(client.get(key) or b"")
        elif kind == b"hash":
            found += [k + v for k, v in client.hgetall(key).items()]
        elif kind == b"set":
            found += list(client.smembers(key))
        elif kind == b"zset":
            found += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"list":
            found += client.lrange(key, 0, -1)
        elif kind == b"stream":
            found += [json.dumps(str(e)).encode() for e in client.xrange(key)]
    return b"\n".join(found)


def everything_in_database(url: str) -> str:
    engine = create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return "\n".join(
                repr(row)
                for table in metadata.sorted_tables
                for row in connection.execute(table.select())
            )
    finally:
        engine.dispose()


def test_a_tenant_onboarded_over_the_api_on_real_processes(
    backend: str,
    launcher: Launcher,
    postgres_url: str,  # noqa: F811
) -> None:
    migrate(launcher, postgres_url)
    api = launcher.start_service(
        WEBHOOK_TOKENS="", API_KEYS=f"{ADMIN_KEY}:*", DATABASE_URL=postgres_url
    )
    status, made = send(api, "POST", "/v1/tenants", {"id": TENANT, "timezone": "America/Chicago"})
    assert status == 201, made
    status, token = send(api, "POST", f"/v1/tenants/{TENANT}/webhook-tokens", {"name": "pbx"})
    assert status == 201, token
    status, read = send(api, "POST", f"/v1/tenants/{TENANT}/api-keys", {"scope": "read"})
    assert status == 201, read
    secret, key = token["token"], read["key"]

    # At once, in whichever web process answers.
    for _ in range(POSTS // 4):
        assert post_call(api, secret) == [202, 202, 202, 202]

    # The read key reads its tenant (what the wallboard asks) and may not subscribe.
    assert api.request("GET", "/wallboard").status == 200
    for path in ("/v1/calls/live", "/v1/stats?group_by=queue", "/v1/extensions/live"):
        assert api.get(path, key).status == 200, path
    status, refused = send(api, "POST", "/v1/subscriptions", {"url": "https://x.example/"}, key)
    assert status == 403, refused
    assert api.get("/v1/calls/live?tenant_id=other", key).status == 403

    # A Chicago day: a call that started 23:30 UTC is in its 17:00 or 18:00 hour.
    started = datetime.now(UTC).replace(hour=23, minute=30, second=0, microsecond=0)
    started -= timedelta(days=1)
    rec = record(call="late", tenant=TENANT, started=started)
    rec.pop("id")
    # Decided now (outcome ids are microseconds), as the worker would have.
    decided = f"{micros(datetime.now(UTC))}-0"
    stream = outcomes_key(TENANT, 0, spread=backend == "cluster")
    launcher.redis_client.xadd(stream, {"record": json.dumps(rec)}, id=decided)
    since = isoformat(started - timedelta(hours=1))
    hourly = api.get_json(f"/v1/stats?group_by=hour&from={since}", key)
    hour = 18 if started.astimezone(CHICAGO).utcoffset() == timedelta(hours=-5) else 17
    assert f"T{hour}:00:00-0" in hourly["groups"][0]["key"], hourly["groups"]
    assert hourly["window"]["timezone"] == "America/Chicago"
    before = local_midnight(datetime.now(UTC), CHICAGO)
    today = api.get_json("/v1/stats", key)["window"]
    assert today["from"] in (
        isoformat(before),
        isoformat(local_midnight(datetime.now(UTC), CHICAGO)),
    )

    # The calls reach the history database (what the test below scans).
    wait_until(
        lambda: api.get_json(f"/v1/calls?tenant_id={TENANT}")["calls"],
        30,
        "the tenant's calls in the history database",
    )

    # Revoked: 401 within 2 s in every web process (polled; the bound is generous).
    assert send(api, "DELETE", f"/v1/tenants/{TENANT}/webhook-tokens/{token['id']}")[0] == 204

    def refused_everywhere() -> list[int] | None:
        """POSTS posts in a row, spread over both web processes, all refused."""
        seen = [api.post_event(Call(TENANT).inbound(), token=secret).status for _ in range(POSTS)]
        return seen if set(seen) == {401} else None

    wait_until(refused_everywhere, 10, "the revoked token refused by every web process")

    listed = api.get_json(f"/v1/tenants/{TENANT}/api-keys")["api_keys"]
    assert [k["id"] for k in listed] == [read["id"]]
    assert listed[0]["last_used_at"] is not None

    # No raw secret anywhere: every Redis key and value, every database row.
    stored = everything_in_redis(launcher.redis_client)
    rows = everything_in_database(postgres_url)
    assert "webhook_token.revoked" in rows  # the audit copy is there, and scanned
    for raw in (secret, key, ADMIN_KEY):
        assert raw.encode() not in stored
        assert raw not in rows
