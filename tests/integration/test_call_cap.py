"""One runaway call against real processes: 3,000 distinct events to one call.

Every event is answered 202 and kept; the first MAX_EVENTS_PER_CALL (1,000)
are folded, the rest kept unfolded and counted; a call of another partition,
posted behind the flood, is applied correctly; and the worker never reads the
flooded call's records while applying (its fold is the stored facts plus the
new events: Redis serves no HVALS of a call's log records), so the 3,000th event
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


def start_logging_every_command(launcher: Launcher) -> None:
    """Redis's slow log, with no threshold, records every command with its keys."""
    redis = launcher.redis_client
    redis.config_set("slowlog-log-slower-than", 0)
    redis.config_set("slowlog-max-len", 1_000_000)
    redis.slowlog_reset()


def record_reads(launcher: Launcher) -> list[list[bytes]]:
    """The HVALS commands logged that read a call's log records (its ``:records``
    hash); other features' HVALS (subscriptions, credentials) are not reads of a log."""
    logged = launcher.redis_client.execute_command("SLOWLOG", "GET", -1)
    commands = [entry[3] for entry in logged]
    # The log saw the worker apply the flood (its commits), or it proves nothing.
    assert sum(c[0].upper() in (b"EVALSHA", b"EVAL", b"FCALL") for c in commands) >= 10
    return [
        c for c in commands
        if c and c[0].upper() == b"HVALS" and len(c) > 1 and c[1].endswith(b":records")
    ]  # fmt: skip


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

    start_logging_every_command(launcher)
    worker = launcher.start("worker", {"WORKER_CONCURRENCY": "1"})
    launcher.wait_workers(worker, 1)
    wait_until(
        lambda: launcher.pending(TENANT_A) == 0, 120, "every event applied", detail=launcher.tails
    )
    # Applying 3,002 events read no call's records: each batch read heads only.
    assert record_reads(launcher) == []

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
