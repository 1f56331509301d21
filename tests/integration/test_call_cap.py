"""One runaway call against real processes: 3,000 distinct events to one call.

Every event is answered 202 and kept; the first MAX_EVENTS_PER_CALL (1,000)
are folded, the rest kept unfolded and counted; a call of another partition,
posted behind the flood, is applied correctly; and the worker never reads the
flooded call's records while applying (its fold is the stored facts plus the
new events: Redis serves no HVALS of a call's log), so the 3,000th event
costs what the 3rd did.
"""

from __future__ import annotations

import pytest
from callstate_harness import TENANT_A, Launcher, post_all, wait_until
from primevox_bodies import ALICE, Call, Ext

from core.store import partition_for

FLOOD = 3000
CAP = 1000


def other_partition_call(flooded: Call) -> Call:
    """A call of the same tenant whose events wait in another pending partition."""
    while True:
        call = Call(TENANT_A)
        if partition_for(call.uuid) != partition_for(flooded.uuid):
            return call


def hvals_calls(launcher: Launcher) -> int:
    stats = launcher.redis_client.info("commandstats")
    return int(stats.get("cmdstat_hvals", {}).get("calls", 0))


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_a_flooded_call_is_capped_and_costs_no_more_per_event(launcher: Launcher) -> None:
    api = launcher.api
    launcher.start_web()
    flooded = Call(TENANT_A)
    bodies = [flooded.inbound()] + [
        flooded.ring(Ext(f"{1000 + i}", f"Agent {i}")) for i in range(FLOOD - 1)
    ]
    answers = post_all(api, bodies)
    assert [a.status for _, a in answers] == [202] * FLOOD
    other = other_partition_call(flooded)
    api.accept(other.inbound())
    api.accept(other.answered(ALICE))

    before = hvals_calls(launcher)
    worker = launcher.start("worker", {"WORKER_CONCURRENCY": "1"})
    launcher.wait_workers(worker, 1)
    wait_until(
        lambda: launcher.pending(TENANT_A) == 0, 120, "every event applied", detail=launcher.tails
    )
    # Applying 3,002 events read no call's records: each batch read heads only.
    assert hvals_calls(launcher) == before

    seen = api.call(other.uuid)
    assert seen is not None and seen["state"] == "answered"
    assert seen["answered_by"]["number"] == ALICE.number
    assert seen["events_not_folded"] == 0

    detail = api.call(flooded.uuid)
    assert detail is not None
    assert len(detail["events"]) == CAP
    assert detail["events_not_folded"] == FLOOD - CAP
    rings = [e for e in detail["events"] if e["event_type"] == "ringAttempt"]
    assert len(detail["rang"]) == len(rings)  # each folded ring, and no other
    assert api.metric("callstate_events_not_folded_total") == FLOOD - CAP
    assert not launcher.crashed(), launcher.tails()
