"""take_batch.lua reads the same call heads as load_heads, on a real redis-server:
the drain session takes a batch and its calls' heads in one round trip, and a
head read there is either the one load_heads reads or not given at all (a call
uuid the script quotes otherwise than keys.py is read apart)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from callstate_harness import RedisServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.store import CallCommit, Store, partition_for
from statemachine.event_log import to_record
from statemachine.events import InboundCall, Party

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Plain uuids, and ones with every kind of character a key must quote.
PLAIN = st.text("abcdef0123456789-", min_size=1, max_size=12)
ODD = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def store(redis_server: RedisServer) -> Iterator[Store]:
    client = redis_server.client()
    try:
        yield Store(client)
    finally:
        client.close()


def inbound(tenant: str, call_uuid: str, second: int) -> dict[str, object]:
    event = InboundCall(
        tenant, "box", T0 + timedelta(seconds=second), call_uuid=call_uuid, caller=Party("+1555")
    )
    record = to_record(event, {"eventType": "InboundCall", "callUuid": call_uuid}, "InboundCall")
    return dict(record)


@EXAMPLES
@given(
    plain=st.lists(PLAIN, min_size=1, max_size=5, unique=True),
    odd=st.lists(ODD, max_size=5, unique=True),
    committed=st.integers(0, 3),
)
def test_heads_taken_with_a_batch_are_the_heads_load_heads_reads(
    store: Store, plain: list[str], odd: list[str], committed: int
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    uuids = list(dict.fromkeys(plain + odd))
    for n, call_uuid in enumerate(uuids[:committed]):
        record = inbound(tenant, call_uuid, n)
        commit = CallCommit(call_uuid, 0, [record], {}, None, None, facts={"n": n})
        store.calls.commit_call(tenant, commit)
    accepted = [(inbound(tenant, u, 100 + n), "job:x") for n, u in enumerate(uuids)]
    accepted += [(inbound(tenant, uuids[0], 0), "job:x")]  # a known id: its receipt is read
    store.pending.accept_many(accepted)  # type: ignore[arg-type]
    partitions = sorted({(tenant, partition_for(u)) for u in uuids})
    taken, heads = store.calls.take_with_heads(partitions, 200)
    assert sum(len(batch) for batch in taken.values()) == len(accepted)
    ids: dict[str, list[str]] = {}
    for batch in taken.values():
        for _, envelope in batch:
            ids.setdefault(envelope["data"]["call_uuid"], []).append(envelope["id"])
    expected = store.calls.load_heads(tenant, ids)
    got = heads.get(tenant, {})
    for call_uuid, head in got.items():
        assert head == expected[call_uuid]
        assert head.covers(ids[call_uuid])
    for call_uuid in plain:
        assert call_uuid in got  # only an oddly quoted uuid may be left to read apart
