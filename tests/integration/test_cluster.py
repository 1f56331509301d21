"""Call state on a Redis Cluster: start-up checks, key layout, readiness, failover.

The behaviour every contract point promises runs on the cluster in the other
modules (their ``backend`` parameter); here, what only a cluster has.
"""

from __future__ import annotations

import shutil
import time

import pytest
import redis
from callstate_harness import TENANT_A, Api, Launcher, wait_until
from primevox_bodies import Call, scenario
from redis.cluster import RedisCluster

from bench.chaos import run as chaos
from bench.redis_cluster import RedisClusterServer

pytestmark = pytest.mark.parametrize("backend", ["cluster"], indirect=True)


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
    )
    assert report.master_kills >= 2, report.summary()
    assert report.clean, report.summary() + "\n" + "\n".join(report.problems[:20])
    assert time.monotonic() - started < 600
