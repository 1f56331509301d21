"""The log merge rule is one rule: Redis's (lua/shared/merge_log.lua, inside the
commit_call and append_log scripts) and the engine's Python fold
(``core.store.merge_log``) give the same log for any batches of records, with
duplicates, ties and receipts in any order, on a real redis-server."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from callstate_harness import RedisServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.store import CallCommit, Store, merge_log
from statemachine.envelope import Envelope

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Receipts a microsecond apart (more digits than a Lua number prints), and further.
OFFSETS_US = [0, 1, 2, 999_999, 1_000_000, 3_600_000_000]
# One instant written three ways: equal receipts whose text differs.
ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
# Few ids, so batches repeat them; non-ASCII ones sort by code point as Redis sorts bytes.
IDS = ["a", "b", "c", "ab", "é", "z☎"]


@st.composite
def batches(draw: st.DrawFn) -> list[list[Envelope]]:
    """A few batches of records: each an id drawn from a few, a receipt from a few
    instants in some zone's spelling, and its copy number (which copy a log kept)."""
    copies = itertools.count()
    drawn = draw(
        st.lists(
            st.lists(
                st.tuples(
                    st.sampled_from(IDS), st.sampled_from(OFFSETS_US), st.sampled_from(ZONES)
                ),
                max_size=6,
            ),
            min_size=1,
            max_size=5,
        )
    )
    return [
        [
            {
                "id": event_id,
                "event_type": "Test",
                "kind": "unknown",
                "tenant_id": "t1",
                "container_id": "c",
                "received_at": (T0 + timedelta(microseconds=offset))
                .astimezone(zone)
                .isoformat(timespec="microseconds"),
                "fields": {"copy": str(next(copies))},
                "data": {},
            }
            for event_id, offset, zone in batch
        ]
        for batch in drawn
    ]


EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def store(redis_server: RedisServer) -> Iterator[Store]:
    """A Store on the session's redis-server; each example writes keys of its own."""
    client = redis_server.client()
    try:
        yield Store(client)
    finally:
        client.close()


@EXAMPLES
@given(batches=batches())
def test_a_plain_log_appended_in_redis_equals_the_python_fold(
    store: Store, batches: list[list[Envelope]]
) -> None:
    """append_log.lua stores what merge_log folds, and says it changed the log
    exactly when the fold differs from the log before."""
    base = store.logs.conversation_key("t1", f"merge-{uuid.uuid4().hex}")
    expected: list[Envelope] = []
    for batch in batches:
        added = store.logs.append_log(base, batch, "t1")
        before, expected = expected, merge_log(expected, batch)
        assert (added > 0) == (expected != before)
    assert store.logs.read_log(base) == expected


@EXAMPLES
@given(batches=batches())
def test_a_call_log_committed_in_redis_equals_the_python_fold(
    store: Store, batches: list[list[Envelope]]
) -> None:
    """commit_call.lua stores what the engine folded with merge_log, and moves the
    call's version exactly when that fold differs from the log it read."""
    call_uuid = f"merge-{uuid.uuid4().hex}"
    for batch in batches:
        log = store.calls.load_call("t1", call_uuid)
        expected = merge_log(log.records, batch)
        commit = CallCommit(call_uuid, log.version, batch, {}, None, None)
        version, changed = store.calls.commit_call("t1", commit)
        assert changed == (expected != log.records)
        assert version == log.version + changed
        assert store.calls.load_call("t1", call_uuid).records == expected
