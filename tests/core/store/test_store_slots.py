"""Every Lua script touches keys of one Redis Cluster slot only.

A tenant's keys all carry the hash tag ``{t:<tenant>}``, so a tenant can live
on one shard of a Redis Cluster (or be moved whole to another Redis). This
records the KEYS of every script the engine runs through a realistic day —
intake, draining, outcomes, timeouts, subscriptions and deliveries — for
tenants with awkward names, and checks each call stays in one slot.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient
from redis.cluster import key_slot
from redis.commands.core import ScriptCommands

from core.deliveries.dispatch import Deliveries
from core.settings import Settings
from core.store import (
    Store,
    call_key,
    live_key,
    outcomes_key,
    partition_for,
    partition_tag,
    pending_key,
    tenant_tag,
    timers_key,
)
from devtools.simulator import generate_call, generate_sms
from tests.conftest import API_KEY, TOKEN
from workers.deliveries import DeliveryRunner
from workers.engine import Engine

AWKWARD_TENANTS = ["acme", "t{1}", "a:b c", "Ünïcode-☎", "}{"]


@pytest.fixture
def script_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[bytes]]]:
    """Record the KEYS of every EVALSHA the engine sends."""
    seen: list[list[bytes]] = []
    original = ScriptCommands.evalsha

    def recording(self: Any, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        keys = keys_and_args[:numkeys]
        seen.append([k.encode() if isinstance(k, str) else k for k in keys])
        return original(self, sha, numkeys, *keys_and_args)

    monkeypatch.setattr(ScriptCommands, "evalsha", recording)
    yield seen


def test_tenant_keys_share_one_slot_whatever_the_tenant_name() -> None:
    """Keys built for one tenant hash to one slot; different tenants may differ."""
    for tenant in AWKWARD_TENANTS:
        tag = tenant_tag(tenant)
        assert "{" in tag and tag.count("{") == 1 and tag.count("}") == 1
        assert key_slot(f"{tag}:call:x:log".encode()) == key_slot(f"{tag}:live".encode())


@pytest.fixture(params=["tenant tags", "partition tags"])
def layout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every Store of the test keys by tenant (one Redis) or by partition (a cluster)."""
    if request.param == "partition tags":
        original = Store.__init__

        def spread(self: Store, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **{**kwargs, "spread": True})

        monkeypatch.setattr(Store, "__init__", spread)
    return str(request.param)


def test_partition_tags_spread_a_tenant_and_keep_a_call_in_one_slot() -> None:
    """On a cluster each partition of a tenant has its own slot, and all of one
    call's keys (log, records, state, live and timer index, pending set,
    outcomes) share its partition's slot."""
    for tenant in AWKWARD_TENANTS:
        slots = {key_slot(partition_tag(tenant, p, spread=True).encode()) for p in range(8)}
        assert len(slots) == 8
        call = "call-1"
        p = partition_for(call)
        keys = [
            call_key(tenant, call, True) + ":log",
            call_key(tenant, call, True),
            live_key(tenant, p, True),
            timers_key(tenant, p, True),
            pending_key(tenant, p, True),
            outcomes_key(tenant, p, True),
        ]
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
        assert call_key(tenant, call) == call_key(tenant, call, False)  # one Redis: as before


def test_every_script_call_stays_in_one_slot(
    layout: str,
    client: FlaskClient,
    redis_client: fakeredis.FakeRedis,
    settings: Settings,
    drain: Any,
    script_keys: list[list[bytes]],
) -> None:
    """A day of traffic for awkwardly named tenants runs no script across two slots,
    keyed by tenant (one Redis) or by partition (a cluster)."""
    rng = random.Random(5)
    store = Store(redis_client)
    subscription = client.post(
        "/v1/subscriptions",
        json={"url": "https://8.8.8.8/hook"},  # a global address: no DNS needed to check it
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert subscription.status_code == 201
    for tenant in AWKWARD_TENANTS:
        posts = [p for _ in range(6) for p in generate_call(rng, tenant, speed=1000).posts]
        posts += generate_sms(rng, tenant)
        for post in posts:
            body, content_type = post.body()
            answer = client.post(
                f"/webhooks/primevox/{TOKEN}", data=body, content_type=content_type
            )
            assert answer.status_code == 202, answer.get_json()
    drain()
    engine = Engine(store, Settings(outcome_grace_seconds=0.0, call_timeout_seconds=0.0))
    deliveries = Deliveries(store, settings)
    made = 0
    for tenant in AWKWARD_TENANTS:
        for call_uuid in store.calls.claim_timers(tenant, now=1e12, lease_until=1e12 + 1):
            engine.decide(tenant, call_uuid)
        made += deliveries.dispatch(tenant)
    # Every first attempt is claimed, refused (the name "resolves" to a
    # documentation address, never contacted) and recorded with its breaker.
    # No retry or breaker probe may fall due while that runs, however slowly
    # (on a busy machine the breaker's 5 s passed and probes went too).
    runner = DeliveryRunner(
        store,
        replace(settings, delivery_retry_seconds=(3600,), delivery_breaker_seconds=3600.0),
        threads=4,
        resolve=lambda _host, _port: ["192.0.2.1"],
    )
    assert runner.run_until_idle() == made > 0
    kinds = {len(keys) for keys in script_keys}
    assert len(script_keys) > 50 and len(kinds) >= 4, "the day did not exercise the scripts"
    for keys in script_keys:
        slots = {key_slot(k) for k in keys}
        assert len(slots) == 1, f"script touched several slots: {keys}"
    acme = {key_slot(keys[0]) for keys in script_keys if b"{t:acme" in keys[0]}
    if layout == "partition tags":
        assert len(acme) >= 3, "one tenant's scripts should spread over its partitions' slots"
    else:
        assert len(acme) == 1
