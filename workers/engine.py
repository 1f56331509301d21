"""Apply events to calls and decide outcomes: the event-sourcing loop.

Every change follows the same path: read the call's log at a version, fold it
(with whatever is new) in pure Python, and commit the new records together
with what the fold says, refusing if the log moved meanwhile. A refused commit
is simply read and folded again, so any number of workers can work on one
call at once and none of them overwrites a newer state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from statemachine import CallView, fold, from_record, outcome_record, to_record
from statemachine.events import CallEvent, CallTimedOut, EventType, micros
from workers.exceptions import BadEnvelope, ConcurrentUpdate, TooManyConflicts
from workers.settings import Settings
from workers.store import (
    CallLog,
    Store,
    conversation_key,
    other_events_key,
    to_micros,
)

MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class Applied:
    """What applying one event did."""

    changed: bool
    state: str | None = None


def _merge(
    records: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The log with ``new`` added: a duplicate keeps its earliest receipt."""
    by_id = {r["id"]: r for r in records}
    for record in new:
        current = by_id.get(record["id"])
        if current is None or to_micros(record["received_at"]) < to_micros(current["received_at"]):
            by_id[record["id"]] = record
    return sorted(by_id.values(), key=lambda r: (to_micros(r["received_at"]), r["id"]))


def view_of(tenant_id: str, call_uuid: str, records: Sequence[dict[str, Any]]) -> CallView:
    """Fold a call's log records into its view. Raises BadEnvelope on a bad record."""
    events: list[CallEvent] = []
    for record in records:
        try:
            event = from_record(record)
        except (KeyError, TypeError, ValueError) as exc:
            raise BadEnvelope(f"log record {record.get('id')!r} is unreadable: {exc}") from exc
        if isinstance(event, CallEvent):
            events.append(event)
    return CallView(fold(tenant_id, call_uuid, events))


class Engine:
    """The worker side's logic, over a :class:`Store`."""

    def __init__(
        self, store: Store, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    # -- applying events --------------------------------------------------------

    def apply(self, envelope: dict[str, Any], pending_field: str | None = None) -> Applied:
        """Apply one accepted event. Idempotent: applying it again changes nothing."""
        kind = envelope.get("kind")
        tenant = envelope.get("tenant_id")
        if not isinstance(tenant, str) or not tenant:
            raise BadEnvelope("envelope has no tenant_id")
        done = [pending_field] if pending_field else []
        if kind == "MessageEvent":
            base = conversation_key(tenant, envelope["data"]["conversation_id"])
            return Applied(self.store.append_log(base, [envelope], tenant, done) > 0)
        if kind == "UnknownEvent":
            return Applied(
                self.store.append_log(other_events_key(tenant), [envelope], tenant, done) > 0
            )
        call_uuid = envelope.get("data", {}).get("call_uuid")
        if not isinstance(call_uuid, str) or not call_uuid:
            raise BadEnvelope("call event has no call_uuid")
        _, changed, view = self._commit(tenant, call_uuid, [envelope], done)
        return Applied(changed, view.status.value)

    def _commit(
        self,
        tenant_id: str,
        call_uuid: str,
        new_records: Sequence[dict[str, Any]],
        pending_done: Sequence[str] = (),
    ) -> tuple[int, bool, CallView]:
        for _ in range(MAX_ATTEMPTS):
            log = self.store.load_call(tenant_id, call_uuid)
            records = _merge(log.records, new_records)
            view = view_of(tenant_id, call_uuid, records)
            started = view.started_at
            try:
                version, changed = self.store.commit_call(
                    tenant_id,
                    call_uuid,
                    expected_version=log.version,
                    new_records=new_records,
                    view=view.as_json(),
                    live_since=micros(started) if view.is_live and started else None,
                    timer_due=self._timer_due(view, decided=log.revision > 0),
                    pending_done=pending_done,
                )
            except ConcurrentUpdate:
                continue
            return version, changed, view
        raise TooManyConflicts(f"call {call_uuid} kept changing for {MAX_ATTEMPTS} attempts")

    def _timer_due(self, view: CallView, *, decided: bool) -> float | None:
        """When to look at the call next: its timeout if live, its decision if ended."""
        if view.is_live:
            last = view.facts.last_at or view.started_at
            return last.timestamp() + self.settings.call_timeout_seconds if last else None
        ended = view.ended_at
        if ended is None:
            return None
        if decided:
            # A straggler after the decision: give its friends the same grace,
            # then publish one new revision for all of them.
            return self.clock() + self.settings.outcome_grace_seconds
        return ended.timestamp() + self.settings.outcome_grace_seconds

    # -- deciding outcomes ------------------------------------------------------

    def decide(self, tenant_id: str, call_uuid: str, claimed_score: float | None = None) -> str:
        """Look at a call whose timer fell due: time it out, or publish its outcome.

        Returns what happened: "published", "unchanged", "stale" (the call moved
        on; its newer commit set a new timer), "live" or "gone".
        """
        for _ in range(MAX_ATTEMPTS):
            log = self.store.load_call(tenant_id, call_uuid)
            if not log.records:
                self.store.release_timer(tenant_id, call_uuid)
                self.store.drop_live(tenant_id, call_uuid)
                return "gone"
            view = view_of(tenant_id, call_uuid, log.records)
            if view.is_live:
                if not self._timed_out(view):
                    return "live"
                self._commit(tenant_id, call_uuid, [self._timeout_record(view)])
                continue
            body = outcome_record(view)
            status, _, _ = self.store.publish_outcome(
                tenant_id,
                call_uuid,
                expected_version=log.version,
                body=body,
                claimed_score=claimed_score,
            )
            return status
        raise TooManyConflicts(f"call {call_uuid} kept changing while deciding")

    def _timed_out(self, view: CallView) -> bool:
        last = view.facts.last_at
        return (
            last is not None
            and self.clock() >= last.timestamp() + self.settings.call_timeout_seconds
        )

    def _timeout_record(self, view: CallView) -> dict[str, Any]:
        now = datetime.fromtimestamp(self.clock(), UTC)
        event = CallTimedOut(
            tenant_id=view.facts.tenant_id,
            container_id=view.container_id,
            received_at=now,
            call_uuid=view.facts.call_uuid,
        )
        # One timeout per call: the same id every time, so two deciders racing
        # on one call record it once (the earliest is kept).
        return to_record(event, {"callUuid": view.facts.call_uuid}, EventType.ENGINE_TIMEOUT.value)

    # -- rebuilding -------------------------------------------------------------

    def rebuild_call(self, tenant_id: str, call_uuid: str, *, fix: bool) -> list[str]:
        """Fold a call's log afresh and compare with what is stored.

        Returns the differences found (empty when all agree). With ``fix``, a
        differing view is overwritten and a differing outcome republished as a
        new revision.
        """
        log: CallLog = self.store.load_call(tenant_id, call_uuid)
        if not log.records:
            return []
        view = view_of(tenant_id, call_uuid, log.records)
        problems: list[str] = []
        stored = self.store.get_call(tenant_id, call_uuid) or {}
        fresh = view.as_json()
        stored_view = {k: stored.get(k) for k in fresh}
        if stored_view != fresh:
            keys = sorted(k for k in fresh if stored_view.get(k) != fresh[k])
            problems.append(f"{tenant_id}/{call_uuid}: view differs in {', '.join(keys)}")
            if fix:
                self.store.replace_view(tenant_id, call_uuid, fresh)
        if not view.is_live:
            body = outcome_record(view)
            decided = log.outcome
            if decided is not None:
                decided_body = {k: decided.get(k) for k in body}
                if decided_body != body:
                    keys = sorted(k for k in body if decided_body.get(k) != body[k])
                    problems.append(
                        f"{tenant_id}/{call_uuid}: outcome differs in {', '.join(keys)}"
                    )
                    if fix:
                        self.store.publish_outcome(
                            tenant_id,
                            call_uuid,
                            expected_version=log.version,
                            body=body,
                            claimed_score=None,
                        )
        return problems
