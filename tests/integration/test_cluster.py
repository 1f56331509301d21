"""Call state on a Redis Cluster: start-up checks, key layout, readiness, failover.

The behaviour every contract point promises runs on the cluster in the other
modules (their ``backend`` parameter); here, what only a cluster has.
"""

from __future__ import annotations

import shutil
import time
from typing import Any, cast

import pytest
import redis
from callstate_harness import TENANT_A, Api, Launcher, RedisServer, wait_until
from primevox_bodies import Call, scenario
from redis.cluster import RedisCluster

from bench.chaos import run as chaos
from bench.lost_master import LostMaster
from bench.redis_cluster import RedisClusterServer
from core.settings import ConfigError, Settings
from core.store import (
    PARTITIONS,
    BudgetedPool,
    Store,
    connect,
    open_redis,
    partition_for,
)

ON_CLUSTER = pytest.mark.parametrize("backend", ["cluster"], indirect=True)


@ON_CLUSTER
@pytest.mark.parametrize("kind", ["web", "worker"])
def test_a_cluster_without_rq_redis_url_is_refused_at_start(launcher: Launcher, kind: str) -> None:
    """With REDIS_URL a cluster node and no RQ_REDIS_URL, web and worker exit at
    once with an error that names RQ_REDIS_URL (they do not serve, nor loop)."""
    proc = launcher.start(kind, {"RQ_REDIS_URL": ""})
    code = proc.popen.wait(30)
    assert code == 2, proc.tails()
    error = proc.stderr_path.read_text("utf-8")
    assert "configuration error" in error and "RQ_REDIS_URL" in error, proc.tails()


def _slot(client: RedisCluster, key: bytes) -> int:
    return int(client.keyslot(key))


@ON_CLUSTER
def test_a_calls_keys_share_a_slot_and_a_tenants_partitions_spread_over_the_masters(
    launcher: Launcher, redis_db: redis.Redis
) -> None:
    """Every key of one call sits in one slot, and one tenant's calls spread over
    every master (per-partition hash tags), each call readable as usual."""
    api = launcher.start_service()
    calls = [Call(TENANT_A) for _ in range(24)]
    for call in calls:
        for fields in scenario("answered", call):
            api.accept(fields)
    for call in calls:
        wait_until(lambda c=call: (api.call(c.uuid) or {}).get("outcome"), 20, "an outcome")
    cluster: RedisCluster = redis_db  # type: ignore[assignment]
    slots_by_call: dict[str, set[int]] = {}
    for key in cluster.scan_iter(match=f"cs:{{t:{TENANT_A}:*}}:call:*", count=1000):
        uuid = key.decode().split(":call:", 1)[1].removesuffix(":log").removesuffix(":records")
        slots_by_call.setdefault(uuid, set()).add(_slot(cluster, key))
    assert set(slots_by_call) == {c.uuid for c in calls}
    assert all(len(slots) == 1 for slots in slots_by_call.values()), slots_by_call
    masters = {
        cluster.get_node_from_key(f"cs:{{t:{TENANT_A}:{p}}}:x").name  # type: ignore[no-untyped-call]
        for p in range(8)
    }
    assert len(masters) == 3, masters
    assert len(api.outcomes(query=f"tenant_id={TENANT_A}")) == len(calls)


@ON_CLUSTER
def test_readyz_covers_every_node_and_warns_of_a_replica_down(
    launcher: Launcher, request: pytest.FixtureRequest
) -> None:
    """/readyz is ready while every node answers, still ready but warning with the
    node's address while a replica is down, and ready without the warning when
    it is back."""
    cluster: RedisClusterServer = request.getfixturevalue("redis_cluster")
    launcher.start_web()
    api: Api = launcher.api
    ready = api.get_json("/readyz")
    assert ready["status"] == "ready"
    assert not [w for w in ready["warnings"] if "cluster node" in w], ready
    replica = next(n for n in cluster.nodes if n.alive() and n not in cluster.master_nodes())
    cluster.kill9(replica)
    try:
        answer = api.get_json("/readyz")
        assert answer["status"] == "ready"
        assert [w for w in answer["warnings"] if replica.address in w], answer
    finally:
        cluster.restart(replica)
        cluster.wait_ok()
    wait_until(
        lambda: not [w for w in api.get_json("/readyz")["warnings"] if replica.address in w],
        20,
        "the replica's warning to go",
    )


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli")
def test_master_failovers_under_load_with_durable_replicas_lose_nothing() -> None:
    """kill -9 of cluster masters under traffic, DURABLE_REPLICAS=1: their replicas
    take over and every call still gets its one right outcome, no event lost or
    doubled (the chaos script on a cluster of its own)."""
    started = time.monotonic()
    report = chaos(
        duration=16.0,
        rate=4.0,
        speed=30.0,
        kill_every=0.0,
        redis_every=0.0,
        workers=2,
        seed=11,
        settle_timeout=90.0,
        progress=False,
        cluster=3,
        master_every=5.0,
        durable=1,
        master_kills_wanted=2,
    )
    assert report.master_kills >= 2, report.summary()
    assert report.clean, report.summary() + "\n" + "\n".join(report.problems[:20])
    assert time.monotonic() - started < 600


@ON_CLUSTER
def test_open_redis_knows_a_cluster_and_wants_a_plain_redis_for_rq(
    redis_db: redis.Redis, redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    """REDIS_URL naming a cluster node gives a cluster client, refused without
    RQ_REDIS_URL or with RQ_REDIS_URL naming a cluster; one Redis serves both."""
    cluster: RedisClusterServer = request.getfixturevalue("redis_cluster")
    node_url = cluster.nodes[-1].url  # any node, a replica too
    with pytest.raises(ConfigError, match="RQ_REDIS_URL"):
        open_redis(Settings(redis_url=node_url))
    with pytest.raises(ConfigError, match="RQ_REDIS_URL names a Redis Cluster"):
        open_redis(Settings(redis_url=node_url, rq_redis_url=cluster.url))
    both = open_redis(Settings(redis_url=node_url, rq_redis_url=redis_server.url))
    assert both.cluster and not isinstance(both.queues, RedisCluster)
    one = open_redis(Settings(redis_url=redis_server.url))
    assert not one.cluster and one.queues is one.state


@ON_CLUSTER
def test_the_connection_budget_holds_per_cluster_node(
    redis_db: redis.Redis, request: pytest.FixtureRequest
) -> None:
    """A budgeted cluster client holds at most its budget of connections to each node."""
    cluster: RedisClusterServer = request.getfixturevalue("redis_cluster")
    client = connect(cluster.url, max_connections=2, cluster=True)
    store = Store(client)
    store.pending.accept_many([(_envelope(f"budget-{i}"), "job:x") for i in range(40)])
    nodes = cast(RedisCluster, client).get_primaries()  # type: ignore[no-untyped-call]
    for node in nodes:
        pool = node.redis_connection.connection_pool
        assert isinstance(pool, BudgetedPool) and pool.max_connections == 2
        assert len(pool._connections) <= 2


def _envelope(call_uuid: str, tenant: str = TENANT_A) -> dict[str, Any]:
    return {
        "id": f"ev-{call_uuid}",
        "tenant_id": tenant,
        "kind": "CallEvent",
        "event_type": "InboundCall",
        "received_at": "2026-01-05T09:00:00+00:00",
        "data": {"call_uuid": call_uuid},
    }


@ON_CLUSTER
def test_outcome_pages_across_partitions_and_masters_resume_exactly(redis_db: redis.Redis) -> None:
    """Outcome records of one tenant written to its eight partitions (on three
    masters), read a page of 1, 2 or 7 at a time with ``after=``, come back each
    exactly once and in id order, while more are being written."""
    store = Store(redis_db)
    calls = [f"call-{n}" for n in range(60)]
    assert len({partition_for(c) for c in calls}) == PARTITIONS
    body = {"outcome": "answered", "tenant_id": TENANT_A}
    for call in calls[:30]:
        store.outcomes.publish_outcome(
            TENANT_A, call, expected_version=0, body=body, claimed_score=None
        )
    for limit in (1, 2, 7):
        seen: list[str] = []
        after = None
        late = iter(calls[30:])
        while True:
            page, cursor = store.outcomes.read_outcomes([TENANT_A], after=after, limit=limit)
            if limit == 1:  # records keep arriving while the reader pages
                for call in (next(late, None), next(late, None)):
                    if call is not None:
                        store.outcomes.publish_outcome(
                            TENANT_A, call, expected_version=0, body=body, claimed_score=None
                        )
            seen += [r["id"] for r in page]
            if not page:
                break
            after = cursor
        everything, _ = store.outcomes.read_outcomes([TENANT_A], after=None, limit=1000)
        assert seen == [r["id"] for r in everything], limit
        assert len(everything) == len(calls) and len(set(seen)) == len(seen)


@ON_CLUSTER
def test_durable_replicas_on_a_cluster_accept_once_replicas_have_the_events(
    redis_db: redis.Redis,
) -> None:
    """DURABLE_REPLICAS=1 on the cluster (a replica per master): events of calls
    on every master are accepted, each group confirmed by WAIT."""
    store = Store(redis_db, durable_replicas=1, durable_wait_seconds=2.0)
    answers = store.pending.accept_many([(_envelope(f"durable-{i}"), "job:x") for i in range(40)])
    assert all(a is True or a is False for a in answers), answers
    assert sum(len(store.pending.take_pending(TENANT_A, p, 100)) for p in range(PARTITIONS)) == 40


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli")
def test_slots_migrating_to_a_new_master_under_traffic_lose_nothing() -> None:
    """A fourth master joins and slots migrate onto it (redis-cli --cluster
    rebalance) while calls flow: every call still gets its one right outcome,
    no event lost or doubled; intake at most asks for retries meanwhile."""
    report = chaos(
        duration=14.0,
        rate=4.0,
        speed=30.0,
        kill_every=0.0,
        redis_every=0.0,
        workers=2,
        seed=13,
        settle_timeout=90.0,
        progress=False,
        cluster=3,
        reshard_at=3.0,
    )
    assert report.reshards == 1, report.summary()
    assert report.clean, report.summary() + "\n" + "\n".join(report.problems[:20])


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli")
@pytest.mark.parametrize(
    ("mode", "replicas", "victim"),
    [
        ("available", 1, "other"),
        ("available", 1, "redis_url"),
        ("strict", 1, "redis_url"),
        ("available", 0, "other"),
    ],
)
def test_a_master_lost_for_good_under_load(mode: str, replicas: int, victim: str) -> None:
    """kill -9 of a master that does not come back while a retrying sender posts
    (the one REDIS_URL names, or another), on a cluster of its own: every
    outcome right, no revision published twice. Available: every webhook is
    taken within 10 s of the failover and, with DURABLE_REPLICAS=1, /readyz
    says degraded until the lost node is back as a replica, then recovers.
    Strict: refused (503) until then, and never degraded. (DURABLE_REPLICAS=0
    waits for no replica, in either mode.)"""
    lost = LostMaster(victim, kill_at=4.0, restore_after=12.0)
    report = chaos(
        duration=12.0,
        rate=4.0,
        speed=30.0,
        kill_every=0.0,
        redis_every=0.0,
        workers=2,
        seed=17,
        settle_timeout=120.0,
        progress=False,
        cluster=3,
        durable=replicas,
        durable_mode=mode,
        lost_master=lost,
    )
    assert report.master_kills == 1, report.summary()
    assert report.clean and not report.problems, (
        report.summary() + "\n" + "\n".join(report.problems[:20])
    )
    assert lost.recovered_at, report.summary()
    if mode == "available":
        assert lost.longest_wait(report.takes) <= 10.0, report.summary()
    if replicas and mode == "available":
        assert lost.degraded_first and lost.degraded_last >= lost.failed_over_at, report.summary()
    if mode == "strict":
        assert not lost.degraded_first, report.summary()
        # Refused until the lost node came back: a refused sender retries at least
        # every 2 s, so one was refused in the last moments before the restart.
        assert lost.window_503(report.takes) >= lost.restore_after - 2.5, report.summary()
