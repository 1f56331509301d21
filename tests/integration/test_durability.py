"""DURABLE_MODE on a real redis-server: a master without its replicas either
acknowledges on what it has and says it is degraded (available), or refuses
(strict); either way a refused event's retry is deduplicated, and a replica
attached again restores full durability on its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from callstate_harness import TENANT_A, RedisServer, wait_until

from app import create_app
from core.settings import Settings
from core.store import PARTITIONS, NotReplicated, Store


def _envelope(call_uuid: str) -> dict[str, Any]:
    return {
        "id": f"ev-{call_uuid}",
        "tenant_id": TENANT_A,
        "kind": "CallEvent",
        "event_type": "InboundCall",
        "received_at": "2026-01-05T09:00:00+00:00",
        "data": {"call_uuid": call_uuid},
    }


def _pending(store: Store) -> list[str]:
    return [
        field
        for p in range(PARTITIONS)
        for field, _ in store.pending.take_pending(TENANT_A, p, 100)
    ]


@pytest.fixture
def master(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def attach_replica(redis_server: RedisServer, tmp_path: Path) -> Iterator[Any]:
    """Call it to start a replica of the session's redis-server; stopped after the test."""
    started: list[RedisServer] = []

    def attach() -> RedisServer:
        replica = RedisServer(redis_server.binary, tmp_path / f"replica-{len(started)}")
        replica.directory.mkdir()
        replica.start()
        started.append(replica)
        replica.client().replicaof("127.0.0.1", redis_server.port)
        return replica

    yield attach
    for replica in started:
        replica.stop()
    wait_until(
        lambda: int(redis_server.client().info("replication")["connected_slaves"]) == 0,
        30,
        "the replica to be gone from its master",
    )


def test_available_mode_acknowledges_without_replicas_degraded_until_one_is_attached(
    master: redis.Redis, attach_replica: Any
) -> None:
    """DURABLE_REPLICAS=1 on a Redis without a replica (available, the default):
    events are accepted at once, the master is reported degraded (since when),
    and once a replica is attached the same store waits for it again."""
    # With no replica nothing is waited for; with one, its WAIT may take a while on
    # a busy machine right after the replica's first sync: 5 s is a bound, not a goal.
    store = Store(master, durable_replicas=1, durable_wait_seconds=5.0)
    answers = store.pending.accept_many([(_envelope(f"alone-{i}"), "job:x") for i in range(5)])
    assert all(a is True or a is False for a in answers), answers
    [degraded] = store.health.degraded()
    assert (degraded.node, degraded.replicas) == ("", 0)
    assert store.backend.durability.wait_for("", master) == (0, False)  # redis 7.0: no WAITAOF
    first_seen = degraded.since
    assert store.health.degraded()[0].since == first_seen  # still the first time seen

    replica = attach_replica()
    wait_until(lambda: not store.health.degraded(), 60, "the master to be whole again")
    wait_until(
        lambda: replica.client().info("replication").get("master_link_status") == "up",
        60,
        "the replica's first sync",
    )
    assert store.backend.durability.wait_for("", master) == (1, False)
    [answer] = store.pending.accept_many([(_envelope("with-a-replica"), "job:x")])
    assert answer is True or answer is False, answer
    assert len(_pending(store)) == 6


def test_strict_mode_refuses_without_replicas_and_the_retry_is_deduplicated(
    master: redis.Redis, attach_replica: Any
) -> None:
    """DURABLE_MODE=strict: refused (NotReplicated: the web answers 503) while no
    replica confirms; the refused event was written, and its retry once a
    replica is attached is taken without a second copy."""
    store = Store(master, durable_replicas=1, durable_wait_seconds=0.05, durable_mode="strict")
    event = _envelope("strict")
    [answer] = store.pending.accept_many([(event, "job:x")])
    assert isinstance(answer, NotReplicated)
    assert not store.health.degraded()  # strict refuses; it does not degrade
    assert any("DURABLE_REPLICAS" in w for w in store.health.server_warnings())

    attach_replica()
    retried = wait_until(
        lambda: [
            a for a in store.pending.accept_many([(event, "job:x")]) if a is True or a is False
        ],
        60,
        "the retry to be confirmed by the replica",
    )
    assert retried == [False]  # the doorbell rang on the first write; no second drain job
    assert len(_pending(store)) == 1


def test_readyz_and_metrics_say_which_master_is_degraded(
    master: redis.Redis, attach_replica: Any
) -> None:
    """/readyz (still ready) and /metrics name the degraded master while it has no
    replica, and stop once it has one."""
    settings = Settings(api_keys={"k": "*"}, durable_replicas=1, durable_wait_seconds=0.2)
    app = create_app({"TESTING": True, "REDIS_CLIENT": master, "CALLSTATE_SETTINGS": settings})
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json["durability"]["mode"] == "available"
    [node] = ready.json["durability"]["degraded"]
    assert node["replicas"] == 0 and node["since"].endswith("Z")
    assert [w for w in ready.json["warnings"] if "durability degraded" in w]
    metrics = client.get("/metrics").text
    assert "callstate_durability_degraded_nodes 1.0" in metrics

    attach_replica()
    wait_until(lambda: not client.get("/readyz").json["durability"]["degraded"], 60, "recovery")
    assert "callstate_durability_degraded_nodes 0.0" in client.get("/metrics").text
