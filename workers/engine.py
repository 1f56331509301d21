"""Apply events to calls and decide outcomes: the event-sourcing loop.

Every change follows the same path: read the call's head at a version (its
stored facts, not its records), fold what is new into those facts in pure
Python (workers/call_fold.py), and commit the new records together with what
the fold says, refusing if the log moved meanwhile. A refused commit is
simply read and folded again, so any number of workers can work on one call
at once and none of them overwrites a newer state.

Past 400 lines on purpose: applying, deciding and rebuilding share that one
loop and its conflict rules; apart they could drift.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from core.exceptions import TooManyConflicts
from core.observability import OUTCOME_BUCKETS, get_logger, histogram_increments
from core.settings import Settings
from core.store import (
    CallCommit,
    CallHead,
    CallLog,
    CallPart,
    Store,
    partition_for,
)
from core.supervisor import call_part
from core.tenant_settings import for_tenant
from statemachine import CallView, outcome_record, to_record
from statemachine.envelope import Envelope
from statemachine.events import CallTimedOut, micros, parse_time
from statemachine.live_events import Step, live_steps
from statemachine.outcome import OutcomeBody
from statemachine.primevox import ENGINE_TIMEOUT
from statemachine.stored_facts import facts_to_json
from workers.call_fold import fold_into_stored, fold_whole, stored_view, view_of, without

MAX_ATTEMPTS = 50
log = get_logger("callstate.engine")


@dataclass
class BatchResult:
    """What applying a batch did: the envelopes applied, how many were set aside."""

    applied: list[Envelope] = dataclasses.field(default_factory=list)
    poisoned: int = 0
    conflicts: int = 0


class Engine:
    """The worker side's logic, over a :class:`Store`."""

    def __init__(
        self, store: Store, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.supervisor = store.supervisor

    # -- applying events --------------------------------------------------------

    def apply_batch(
        self, tenant_id: str, partition: int, batch: Sequence[tuple[str, Envelope]]
    ) -> BatchResult:
        """Apply a partition's pending events: all of a call's at once, every call's
        read in one round trip and committed in another.

        Each event ends up applied (its pending mark cleared in the same commit)
        or, if it cannot be applied, set aside as poisoned. Idempotent.
        """
        return self.apply_batches(tenant_id, {partition: batch})

    def apply_batches(
        self,
        tenant_id: str,
        batches: Mapping[int, Sequence[tuple[str, Envelope]]],
        heads: Mapping[str, CallHead] | None = None,
    ) -> BatchResult:
        """Apply pending events of several partitions of one tenant together:
        still one round trip to read every call and one to commit them.

        ``heads``: calls' heads read with the events (Calls.take_with_heads);
        a call's is used if it covers the call's new records, else read again."""
        result = BatchResult()
        calls: dict[str, list[tuple[str, Envelope]]] = {}
        homes: dict[str, int] = {}
        logs: dict[tuple[str, int, int], list[tuple[str, Envelope]]] = {}
        conversations: dict[tuple[str, int], list[tuple[str, Envelope]]] = {}
        for partition, batch in batches.items():
            for field, envelope in batch:
                kind = envelope.get("kind")
                data = envelope.get("data") or {}
                if envelope.get("tenant_id") != tenant_id:
                    self._poison(
                        tenant_id, partition, field, envelope, "envelope of another tenant"
                    )
                    result.poisoned += 1
                elif kind == "MessageEvent" and data.get("conversation_id"):
                    key = (data["conversation_id"], partition)
                    conversations.setdefault(key, []).append((field, envelope))
                elif kind == "UnknownEvent":
                    base = self.store.logs.other_events_key(tenant_id)
                    home = partition_for("")
                    logs.setdefault((base, partition, home), []).append((field, envelope))
                elif isinstance(data.get("call_uuid"), str) and data["call_uuid"]:
                    uuid = data["call_uuid"]
                    if homes.setdefault(uuid, partition) != partition:
                        # The same call pending in two partitions (never made by
                        # intake): apply this one on its own, correctly marked.
                        self._commit(tenant_id, uuid, [envelope], [field], partition)
                        result.applied.append(envelope)
                        continue
                    calls.setdefault(uuid, []).append((field, envelope))
                else:
                    self._poison(tenant_id, partition, field, envelope, "no call_uuid")
                    result.poisoned += 1
        for (base, partition, home), items in logs.items():
            self.store.logs.append_log(
                base, [e for _, e in items], tenant_id, [f for f, _ in items], partition, home
            )
            result.applied += [e for _, e in items]
        for (conversation_id, partition), items in conversations.items():
            self.store.logs.append_messages(
                conversation_id, [e for _, e in items], tenant_id, [f for f, _ in items], partition
            )
            result.applied += [e for _, e in items]
        if calls:
            self._commit_calls(tenant_id, homes, calls, result, heads or {})
        return result

    def _commit_calls(
        self,
        tenant_id: str,
        homes: dict[str, int],
        calls: dict[str, list[tuple[str, Envelope]]],
        result: BatchResult,
        read: Mapping[str, CallHead],
    ) -> None:
        new_ids = {uuid: [e["id"] for _, e in items] for uuid, items in calls.items()}
        heads = {
            uuid: read[uuid]
            for uuid, ids in new_ids.items()
            if uuid in read and read[uuid].covers(ids)
        }
        missing = {uuid: ids for uuid, ids in new_ids.items() if uuid not in heads}
        if missing:
            heads.update(self.store.calls.load_heads(tenant_id, missing))
        commits: list[CallCommit] = []
        views: dict[str, CallView] = {}
        for call_uuid, items in calls.items():
            partition = homes[call_uuid]
            try:
                commit, views[call_uuid] = self._prepare(
                    tenant_id,
                    partition,
                    call_uuid,
                    heads[call_uuid],
                    [e for _, e in items],
                    [f for f, _ in items],
                )
                commits.append(commit)
            except redis.RedisError:
                raise
            except Exception:
                # Something in this call's events breaks the fold: apply them
                # one by one and set aside only the culprit, so one poisoned
                # event blocks neither its call nor its partition.
                for field, envelope in items:
                    try:
                        self._commit(tenant_id, call_uuid, [envelope], [field], partition)
                        result.applied.append(envelope)
                    except redis.RedisError:
                        raise
                    except Exception as exc:
                        self._poison(tenant_id, partition, field, envelope, repr(exc))
                        result.poisoned += 1
        answers = self.store.calls.commit_calls(tenant_id, commits)
        parts: list[CallPart] = []
        committed: list[CallView] = []
        unfolded = 0
        for commit, answer in zip(commits, answers, strict=True):
            items = calls[commit.call_uuid]
            if answer is not None:
                parts += self._parts(views[commit.call_uuid], answer[0])
                committed.append(views[commit.call_uuid])
                unfolded += answer[2]
            if answer is None:
                # Another worker committed to this call meanwhile: do it alone.
                result.conflicts += 1
                self._commit(
                    tenant_id,
                    commit.call_uuid,
                    [e for _, e in items],
                    [f for f, _ in items],
                    commit.partition,
                )
            result.applied += [e for _, e in items]
        self._after_commit(tenant_id, parts, committed)
        self._count_unfolded(tenant_id, unfolded)

    def _parts(self, view: CallView, version: int) -> list[CallPart]:
        """The call's part in the supervisor's view; none if deriving it fails (logged:
        a bug there must not hold up the call itself)."""
        try:
            return [call_part(view, version, self.settings.default_country)]
        except Exception as exc:  # the call is committed; its part can wait
            log.error(
                "supervisor view skipped a call", call_uuid=view.facts.call_uuid, error=repr(exc)
            )
            return []

    def _save_parts(self, tenant_id: str, parts: Sequence[CallPart]) -> None:
        self.supervisor.save_parts(tenant_id, parts, self.clock())

    def _prepare(
        self,
        tenant_id: str,
        partition: int,
        call_uuid: str,
        head: CallHead,
        new_records: Sequence[Envelope],
        pending_done: Sequence[str],
    ) -> tuple[CallCommit, CallView]:
        """Fold new records into the call: into the facts stored with its last
        commit when it can (the cost of the new records alone), else (no facts
        stored, or an earlier copy of a folded event came) the whole log again."""
        cap = self.settings.max_events_per_call
        folded = fold_into_stored(tenant_id, call_uuid, head, new_records, cap)
        version, revision = head.version, head.revision
        if folded is None:
            log = self.store.calls.load_call(tenant_id, call_uuid)
            version, revision = log.version, log.revision
            folded = fold_whole(tenant_id, call_uuid, log, new_records, cap)
        facts, unfolded = folded
        view = CallView(facts)
        started = view.started_at
        commit = CallCommit(
            call_uuid=call_uuid,
            expected_version=version,
            new_records=without(new_records, unfolded),
            view=view.as_json(),
            live_since=micros(started) if view.is_live and started else None,
            timer_due=self._timer_due(view, decided=revision > 0),
            pending_done=list(pending_done),
            partition=partition,
            facts=facts_to_json(facts),
            unfolded=unfolded,
        )
        return commit, view

    def _count_unfolded(self, tenant_id: str, unfolded: int) -> None:
        if unfolded:
            log.warning(
                "events past MAX_EVENTS_PER_CALL kept unfolded", tenant=tenant_id, events=unfolded
            )
            self.store.stats.add({"events_not_folded": unfolded})

    def _poison(
        self, tenant_id: str, partition: int, field: str, envelope: Envelope, error: str
    ) -> None:
        log.error("event set aside as poisoned", tenant=tenant_id, field=field, error=error)
        self.store.poisoned.set_aside(tenant_id, partition, field, envelope, error)

    def _commit(
        self,
        tenant_id: str,
        call_uuid: str,
        new_records: Sequence[Envelope],
        pending_done: Sequence[str] = (),
        partition: int = 0,
    ) -> tuple[int, bool, CallView]:
        ids = [r["id"] for r in new_records]
        for _ in range(MAX_ATTEMPTS):
            head = self.store.calls.load_heads(tenant_id, {call_uuid: ids})[call_uuid]
            commit, view = self._prepare(
                tenant_id, partition, call_uuid, head, new_records, pending_done
            )
            answer = self.store.calls.commit_calls(tenant_id, [commit])[0]
            if answer is None:
                continue
            version, changed, unfolded = answer
            self._after_commit(tenant_id, self._parts(view, version), [view])
            self._count_unfolded(tenant_id, unfolded)
            return version, changed, view
        raise TooManyConflicts(f"call {call_uuid} kept changing for {MAX_ATTEMPTS} attempts")

    def _after_commit(
        self, tenant_id: str, parts: Sequence[CallPart], views: Sequence[CallView]
    ) -> None:
        """Save the committed calls' parts in the supervisor's view and send the live
        steps (call.started...) they have passed and not sent yet
        (statemachine/live_events.py), in one round trip. A failure to send steps
        is logged, not raised: the calls are committed, and their next commit
        sends whatever is missing."""
        steps: list[tuple[str, Sequence[Step]]] = []
        try:
            steps = [(view.facts.call_uuid, live_steps(view)) for view in views]
        except Exception as exc:
            log.error("live call events not sent", tenant=tenant_id, error=repr(exc))
        error = self.store.call_effects.send(tenant_id, parts, steps, self.clock())
        if error is not None:
            log.error("live call events not sent", tenant=tenant_id, error=repr(error))

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
        on; its newer commit set a new timer), "waiting" (events accepted in
        time are not applied yet; looked at again shortly), "live" or "gone".
        """
        for _ in range(MAX_ATTEMPTS):
            version, view = self._current(tenant_id, call_uuid)
            if view is None:
                self.store.calls.release_timer(tenant_id, call_uuid)
                self.store.calls.drop_live(tenant_id, call_uuid)
                return "gone"
            if view.is_live:
                if not self._timed_out(view):
                    return "live"
                self._commit(tenant_id, call_uuid, [self._timeout_record(view)])
                continue
            if self._events_still_waiting(tenant_id, call_uuid, view):
                return "waiting"
            # Again at the decision: a part lost between a commit and its write
            # (a worker killed there) is back once the call is decided.
            self._save_parts(tenant_id, self._parts(view, version))
            body = self._outcome_record(tenant_id, view)
            status, revision, _ = self.store.outcomes.publish_outcome(
                tenant_id,
                call_uuid,
                expected_version=version,
                body=body,
                claimed_score=claimed_score,
            )
            if status == "published":
                self._count_outcome(tenant_id, body, revision)
            return status
        raise TooManyConflicts(f"call {call_uuid} kept changing while deciding")

    def _outcome_record(self, tenant_id: str, view: CallView) -> OutcomeBody:
        """The call's outcome record, short abandons measured by its tenant's threshold."""
        tenant = for_tenant(self.store, self.settings, tenant_id)
        return outcome_record(view, tenant.short_abandon_seconds)

    def _current(self, tenant_id: str, call_uuid: str) -> tuple[int, CallView | None]:
        """The call's version and view as committed (None: no such call): from
        its stored facts, or a fold of its log if none are stored."""
        head = self.store.calls.load_heads(tenant_id, {call_uuid: []})[call_uuid]
        if not head.size:
            return head.version, None
        view = stored_view(tenant_id, call_uuid, head)
        if view is not None:
            return head.version, view
        log = self.store.calls.load_call(tenant_id, call_uuid)
        if not log.records:
            return log.version, None
        return log.version, view_of(tenant_id, call_uuid, log.records)

    def _events_still_waiting(self, tenant_id: str, call_uuid: str, view: CallView) -> bool:
        """Are events accepted before this call's decision time still unapplied?

        Under a backlog longer than the grace, a straggler of this call may be
        waiting in its partition: deciding now would publish a wrong first
        outcome and a revision later. Wait (briefly) for the backlog instead.
        """
        ended = view.ended_at
        oldest = self.store.pending.oldest_pending(tenant_id, partition_for(call_uuid))
        if ended is None or oldest is None:
            return False
        if oldest > ended.timestamp() + self.settings.outcome_grace_seconds:
            return False
        self.store.calls.rearm_timer(tenant_id, call_uuid, self.clock() + 0.5)
        return True

    def _count_outcome(self, tenant_id: str, body: OutcomeBody, revision: int) -> None:
        ended = parse_time(body["ended_at"]).timestamp()
        self.store.stats.add(
            {
                f"outcomes:{body['outcome']}": 1,
                **histogram_increments(
                    "end_to_outcome_seconds", self.clock() - ended, OUTCOME_BUCKETS
                ),
            }
        )
        log.info(
            "outcome published",
            tenant=tenant_id,
            call_uuid=body["call_uuid"],
            outcome=body["outcome"],
            revision=revision,
        )

    def _timed_out(self, view: CallView) -> bool:
        last = view.facts.last_at
        return (
            last is not None
            and self.clock() >= last.timestamp() + self.settings.call_timeout_seconds
        )

    def _timeout_record(self, view: CallView) -> Envelope:
        now = datetime.fromtimestamp(self.clock(), UTC)
        event = CallTimedOut(
            tenant_id=view.facts.tenant_id,
            container_id=view.container_id,
            received_at=now,
            call_uuid=view.facts.call_uuid,
        )
        # One timeout per call: the same id every time, so two deciders racing
        # on one call record it once (the earliest is kept).
        return to_record(event, {"callUuid": view.facts.call_uuid}, ENGINE_TIMEOUT)

    # -- rebuilding -------------------------------------------------------------

    def _rebuild_part(
        self, tenant_id: str, view: CallView, version: int, *, fix: bool
    ) -> list[str]:
        """Compare the call's stored part in the supervisor's view with its fold."""
        call_uuid = view.facts.call_uuid
        fresh = call_part(view, version, self.settings.default_country)
        legs, contact, _ = self.supervisor.part(tenant_id, call_uuid)
        differs = [
            name
            for name, stored, derived in (
                ("legs", legs, list(fresh.legs)),
                ("contact", contact, fresh.contact),
            )
            if stored != derived
        ]
        if not differs:
            return []
        if fix:
            self._save_parts(tenant_id, [fresh])
        return [f"{tenant_id}/{call_uuid}: supervisor view differs in {', '.join(differs)}"]

    def rebuild_call(self, tenant_id: str, call_uuid: str, *, fix: bool) -> list[str]:
        """Fold a call's log afresh and compare with what is stored.

        Returns the differences found (empty when all agree). With ``fix``, a
        differing view is overwritten and a differing outcome republished as a
        new revision.
        """
        log: CallLog = self.store.calls.load_call(tenant_id, call_uuid)
        if not log.records:
            return []
        view = view_of(tenant_id, call_uuid, log.records)
        problems: list[str] = []
        stored = self.store.calls.get_call(tenant_id, call_uuid) or {}
        fresh = view.as_json()
        stored_view = {k: stored.get(k) for k in fresh}
        if stored_view != fresh:
            keys = sorted(k for k in fresh if stored_view.get(k) != fresh[k])
            problems.append(f"{tenant_id}/{call_uuid}: view differs in {', '.join(keys)}")
            if fix:
                self.store.calls.replace_view(tenant_id, call_uuid, fresh)
        # The facts the next event is folded into: stored with each commit
        # (none yet is no difference: the next commit refolds the log).
        facts = facts_to_json(view.facts)
        stored_facts = self.store.calls.load_heads(tenant_id, {call_uuid: []})[call_uuid].facts
        if stored_facts is not None and stored_facts != facts:
            problems.append(f"{tenant_id}/{call_uuid}: stored facts differ from the log's fold")
            if fix:
                self.store.calls.replace_facts(tenant_id, call_uuid, facts)
        problems += self._rebuild_part(tenant_id, view, log.version, fix=fix)
        if not view.is_live:
            body = self._outcome_record(tenant_id, view)
            decided = log.outcome
            if decided is not None:
                decided_body = {k: decided.get(k) for k in body}
                if decided_body != body:
                    keys = sorted(k for k, value in body.items() if decided_body.get(k) != value)
                    problems.append(
                        f"{tenant_id}/{call_uuid}: outcome differs in {', '.join(keys)}"
                    )
                    if fix:
                        self.store.outcomes.publish_outcome(
                            tenant_id,
                            call_uuid,
                            expected_version=log.version,
                            body=body,
                            claimed_score=None,
                        )
        return problems
