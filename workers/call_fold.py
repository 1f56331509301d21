"""What a commit folds: new records into a call's stored facts, within its cap.

Applying one more event costs the same for a call's 10th event as for its
1,000th: the new records are folded into the facts stored with the call's
last commit (``CallFacts.merge``, order-free like the fold itself), and only
the receipts of their ids are read from the log, never its records. The
whole log is folded again only when that would not be the same: no facts
stored yet (a call committed before they were), or an earlier copy of an
event already folded (the log then keeps the earlier copy, whose receipt the
facts must hold instead).

Past ``MAX_EVENTS_PER_CALL`` records, a call's new events are kept apart,
unfolded (``CallCommit.unfolded``): one runaway call's fold and log stay
bounded, and nothing accepted is lost.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.exceptions import BadEnvelope
from core.store import CallHead, CallLog, merge_log, to_micros
from statemachine import CallFacts, CallView, fold, from_record
from statemachine.envelope import Envelope
from statemachine.events import CallEvent
from statemachine.primevox import ENGINE_TIMEOUT
from statemachine.stored_facts import facts_from_json


def events_of(records: Sequence[Envelope]) -> list[CallEvent]:
    """The call events of log records. Raises BadEnvelope on a bad record."""
    events: list[CallEvent] = []
    for record in records:
        try:
            event = from_record(record)
        except (KeyError, TypeError, ValueError) as exc:
            raise BadEnvelope(f"log record {record.get('id')!r} is unreadable: {exc}") from exc
        if isinstance(event, CallEvent):
            events.append(event)
    return events


def facts_of_log(tenant_id: str, call_uuid: str, records: Sequence[Envelope]) -> CallFacts:
    """Fold a call's whole log into its facts. Raises BadEnvelope on a bad record."""
    return fold(tenant_id, call_uuid, events_of(records))


def view_of(tenant_id: str, call_uuid: str, records: Sequence[Envelope]) -> CallView:
    """Fold a call's whole log into its view. Raises BadEnvelope on a bad record."""
    return CallView(facts_of_log(tenant_id, call_uuid, records))


def stored_view(tenant_id: str, call_uuid: str, head: CallHead) -> CallView | None:
    """The view of the facts stored with the call's last commit; None if none are
    (or in an older form)."""
    facts = facts_from_json(tenant_id, call_uuid, head.facts) if head.facts else None
    return CallView(facts) if facts is not None else None


def past_cap(cap: int, size: int, fresh: Sequence[Envelope]) -> list[Envelope]:
    """The new records (in log order) that would take a log of ``size`` records
    past ``cap``. The engine's own timeout is never one of them: it is what
    ends a call that sends nothing more."""
    room = cap - size
    past: list[Envelope] = []
    for record in fresh:
        if record["event_type"] == ENGINE_TIMEOUT:
            continue
        if room > 0:
            room -= 1
        else:
            past.append(record)
    return past


def without(records: Sequence[Envelope], dropped: Sequence[Envelope]) -> list[Envelope]:
    """``records`` but those whose id is one of ``dropped``'s."""
    ids = {r["id"] for r in dropped}
    return [r for r in records if r["id"] not in ids]


def fold_into_stored(
    tenant_id: str, call_uuid: str, head: CallHead, new: Sequence[Envelope], cap: int
) -> tuple[CallFacts, list[Envelope]] | None:
    """The call's stored facts with ``new`` folded in, and the records past the
    cap; None when only a fold of the whole log (:func:`fold_whole`) is right."""
    stored = facts_from_json(tenant_id, call_uuid, head.facts) if head.facts else None
    if stored is None:
        if head.size:
            return None  # committed before facts were stored, or in an older form
        stored = CallFacts(tenant_id, call_uuid)
    fresh: list[Envelope] = []
    for record in merge_log([], new):
        known = head.known.get(record["id"])
        if known is None:
            fresh.append(record)
        elif to_micros(record["received_at"]) < known:
            # The log will keep this copy instead of the one folded, whose
            # receipt the facts remember: only a refold forgets it.
            return None
        # else: a later copy of a folded event; the log keeps its own.
    unfolded = past_cap(cap, head.size, fresh)
    events = events_of(without(fresh, unfolded))
    return stored.merge(fold(tenant_id, call_uuid, events)), unfolded


def fold_whole(
    tenant_id: str, call_uuid: str, log: CallLog, new: Sequence[Envelope], cap: int
) -> tuple[CallFacts, list[Envelope]]:
    """The fold of the whole log with ``new`` added, and the records past the cap."""
    in_log = {r["id"] for r in log.records}
    fresh = [r for r in merge_log([], new) if r["id"] not in in_log]
    unfolded = past_cap(cap, len(log.records), fresh)
    merged = merge_log(log.records, without(new, unfolded))
    return facts_of_log(tenant_id, call_uuid, merged), unfolded
