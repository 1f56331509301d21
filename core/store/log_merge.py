"""The log merge rule, as the engine folds it: one record per event id, a
duplicate keeping its earliest receipt (on a tie, the record already in the
log), read in receipt order (ties by id). Redis applies the same rule when it
stores a commit (lua/shared/merge_log.lua); a test on a real redis-server
holds the two equal."""

from __future__ import annotations

from collections.abc import Sequence

from core.store.values import to_micros
from statemachine.envelope import Envelope


def log_order(record: Envelope) -> tuple[int, str]:
    """A record's place in its log: receipt time (us), then event id."""
    return to_micros(record["received_at"]), record["id"]


def merge_log(records: Sequence[Envelope], new: Sequence[Envelope]) -> list[Envelope]:
    """The log ``records`` with ``new`` added, in log order."""
    by_id = {r["id"]: r for r in records}
    for record in new:
        current = by_id.get(record["id"])
        if current is None or to_micros(record["received_at"]) < to_micros(current["received_at"]):
            by_id[record["id"]] = record
    return sorted(by_id.values(), key=log_order)
