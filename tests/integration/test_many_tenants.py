"""A thousand tenants cost little: periodic work follows what changed, not the tenant count.

Counted on a real redis-server (INFO's total_commands_processed, less the
INFO calls themselves), never timed: the Redis commands that the worker's
periodic duties (housekeeper ticks: timers, dispatch, reaper; the delivery
process's claim step) and an every-tenant key's ``GET /v1/calls/<uuid>``
send with 10 idle tenants and with 1,000.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from callstate_harness import TENANT_A
from primevox_bodies import Call
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from app import create_app
from core.queue import events_queue
from core.settings import Settings
from core.store import TENANTS_KEY, Store
from workers import jobs
from workers.deliveries import DeliveryRunner
from workers.engine import Engine
from workers.housekeeper import Housekeeper

TICKS = 20
FEW, MANY = 10, 1000
# Whatever the tenant count, a tick may send a handful more commands (a lock
# taken or not, a tenant list read); never one more per tenant.
SLACK = 40


def commands(client: redis.Redis, run: Callable[[], object]) -> int:
    """Redis commands ``run`` sent (the two INFO calls around it not counted)."""
    before = int(client.info("stats")["total_commands_processed"])
    run()
    after = int(client.info("stats")["total_commands_processed"])
    return after - before - 1


def settings() -> Settings:
    return Settings(
        webhook_tokens={"tok": "*"},
        api_keys={"key": "*"},
        outcome_grace_seconds=0.0,
        pending_check_seconds=1.0,
    )


def idle_tenants(client: redis.Redis, count: int) -> None:
    """``count`` tenants that posted events once (long applied and decided)."""
    client.sadd(TENANTS_KEY, *(f"idle-{n:04d}" for n in range(count)))


def periodic_work(client: redis.Redis) -> int:
    """Commands of TICKS housekeeper ticks (each with its reaper pass) and TICKS
    delivery claim steps, once the engine is idle and between index sweeps."""
    store = Store(client)
    keeper = Housekeeper(Engine(store, settings()), events_queue(client), "counting-worker")
    keeper.tick()  # the first tick sweeps every tenant once (heals older marks)
    runner = DeliveryRunner(store, settings(), threads=2)

    def ticks() -> None:
        for _ in range(TICKS):
            keeper._last_reap = 0.0  # the reaper runs on every counted tick
            keeper.tick()
            runner.step(force=True)

    try:
        runner.step(force=True)  # its start-up migration check reads every tenant once
        return commands(client, ticks)
    finally:
        runner.pool.shutdown()


def test_idle_periodic_work_does_not_grow_with_the_tenant_count(redis_db: redis.Redis) -> None:
    """An idle engine's periodic work sends about as many commands with 1,000
    tenants as with 10 (it used to send several per tenant per tick)."""
    idle_tenants(redis_db, FEW)
    few = periodic_work(redis_db)
    redis_db.flushall()
    idle_tenants(redis_db, MANY)
    many = periodic_work(redis_db)
    assert many <= few + SLACK, (few, many)


def test_an_every_tenant_key_finds_a_call_without_asking_each_tenant(
    redis_db: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET /v1/calls/<uuid> with an every-tenant key costs the same with 10 or
    1,000 tenants, and still finds the call (and 404s an unknown one)."""

    def lookups(count: int) -> tuple[int, int]:
        redis_db.flushall()
        Store(redis_db).tenants.start_call_index(time.time())  # a fresh install: complete at once
        idle_tenants(redis_db, count)
        app = create_app(
            {"TESTING": True, "REDIS_CLIENT": redis_db, "CALLSTATE_SETTINGS": settings()}
        )
        client = app.test_client()
        call = Call(TENANT_A)
        for fields in (call.inbound(), call.hangup()):
            assert client.post("/webhooks/primevox/tok", data=fields).status_code == 202
        monkeypatch.setattr(jobs, "IDLE_LINGER_SECONDS", 0.0)
        SimpleWorker([events_queue(redis_db)], connection=redis_db, serializer=JSONSerializer).work(
            burst=True, logging_level="WARNING"
        )
        headers = {"Authorization": "Bearer key"}
        found = commands(redis_db, lambda: client.get(f"/v1/calls/{call.uuid}", headers=headers))
        missing = commands(redis_db, lambda: client.get("/v1/calls/no-such-call", headers=headers))
        return found, missing

    few, many = lookups(FEW), lookups(MANY)
    assert many[0] <= few[0] + 2, (few, many)
    assert few[0] > few[1]  # the call was found (its log read), the unknown one not
    assert many[1] <= few[1] + 2, (few, many)
