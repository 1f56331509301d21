"""An outcome published on a master that is lost before its replica has it: the
promoted replica does not know the revision was published, so the engine
publishes it again under a new record id. Subscribers get that revision once
(the same delivery, the same webhook-id), on the real cluster."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from callstate_harness import TENANT_A, wait_until

from bench.redis_cluster import ClusterNode, RedisClusterServer
from core.deliveries.dispatch import Deliveries
from core.deliveries.records import Subscription
from core.settings import Settings
from core.store import Store, call_key

pytestmark = pytest.mark.parametrize("backend", ["cluster"], indirect=True)

CALL = "lost-publication-call"


def _node(cluster: RedisClusterServer, client: Any, key: str) -> ClusterNode:
    address = client.get_node_from_key(key).name
    return next(n for n in cluster.nodes if n.address == address)


def test_a_revision_published_again_after_its_master_is_lost_is_delivered_once(
    redis_db: redis.Redis, request: pytest.FixtureRequest
) -> None:
    """A decision published and dispatched on a master that is then killed (-9)
    before its replica had the publication: on the promoted replica the same
    revision is published again under a new record id, and dispatching it makes
    no second delivery: the one delivery, with the same webhook-id."""
    cluster: RedisClusterServer = request.getfixturevalue("redis_cluster")
    store = Store(redis_db)
    settings = Settings()
    subscription: Subscription = {
        "id": "sub_lostpublication",
        "tenant_id": TENANT_A,
        "url": "https://receiver.example/hook",
        "outcomes": None,
        "enabled": True,
        "max_in_flight": None,
        "created_at": None,
        "created_us": 0,
        "secrets": [{"secret": "whsec_c2VjcmV0", "expires_at": None}],
    }
    store.subscriptions.save_subscription(subscription)
    deliveries = Deliveries(store, settings)
    body = {"outcome": "answered", "tenant_id": TENANT_A, "call_uuid": CALL}

    master = _node(cluster, redis_db, call_key(TENANT_A, CALL, True))
    # The publication is the engine's own script, kept from the replica as a
    # master killed before its replica had it would have kept it.
    real = store.outcomes._publish_outcome
    store.outcomes._publish_outcome = redis_db.register_script(
        "redis.set_repl(redis.REPL_NONE)\n" + str(real.script)
    )
    status, revision, first_id = store.outcomes.publish_outcome(
        TENANT_A, CALL, expected_version=0, body=body, claimed_score=None
    )
    store.outcomes._publish_outcome = real
    assert (status, revision) == ("published", 1)
    assert deliveries.dispatch(TENANT_A) == 1
    [before] = store.subscriptions.deliveries(TENANT_A, subscription["id"])
    cluster.kill9(master)
    try:
        cluster.wait_failover(60)
        status = wait_until(
            lambda: _publish_again(store, body), 60, "the slot's new master to answer"
        )
        assert status == "published", status  # the promoted replica had not seen it
        records, _ = store.outcomes.read_outcomes([TENANT_A], after=None, limit=100)
        [again] = [r for r in records if r["call_uuid"] == CALL]
        assert again["revision"] == 1 and again["id"] != first_id  # the first one is gone
        deliveries.dispatch(TENANT_A)
        after = store.subscriptions.deliveries(TENANT_A, subscription["id"])
        assert [d["webhook_id"] for d in after] == [before["webhook_id"]], after
    finally:
        cluster.restart(master)  # back, as the promoted replica's replica
        cluster.wait_ok(60)


def _publish_again(store: Store, body: dict[str, Any]) -> str | None:
    """What the engine does once the call's timer falls due again on the promoted
    replica; None while the slot map is still moving."""
    try:
        status, _, _ = store.outcomes.publish_outcome(
            TENANT_A, CALL, expected_version=0, body=body, claimed_score=None
        )
    except redis.RedisError:
        return None
    return status
