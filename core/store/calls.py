"""Calls: each call's log, view, live index and timer, committed in one script."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.commands.core import Script

from core.exceptions import ConcurrentUpdate
from core.store.backend import Backend, Part
from core.store.keys import (
    TIMERS_DUE_KEY,
    _unpart,
    call_key,
    call_logs_pattern,
    call_of_log_key,
    live_key,
    log_keys,
    partition_for,
    pending_events_key,
    pending_key,
    timers_key,
    unfolded_keys,
    wake_key,
)
from core.store.log_merge import log_order
from core.store.pending import PendingEvents
from core.store.values import _text, dumps, loads, to_micros
from statemachine.envelope import Envelope
from statemachine.outcome import OutcomeRecord


@dataclass(frozen=True)
class CallLog:
    """A call's log as read at one version, with what was last decided."""

    version: int
    records: list[Envelope]
    revision: int
    outcome: OutcomeRecord | None


@dataclass(frozen=True)
class CallCommit:
    """What one commit writes: new records and what the log now means."""

    call_uuid: str
    expected_version: int
    new_records: Sequence[Envelope]
    view: dict[str, Any]
    live_since: int | None
    timer_due: float | None
    pending_done: Sequence[str] = ()
    partition: int = 0
    # What the log now holds, folded (statemachine.stored_facts), for the next
    # commit to fold its events into; None: not stored (the next one refolds).
    facts: dict[str, Any] | None = None
    # New records past the call's cap: kept apart, for inspection, never folded.
    unfolded: Sequence[Envelope] = ()


# A partition's batch up to this many events comes with its calls' heads (one
# round trip fewer); a larger one has them read apart (take_batch.lua says why).
HEADS_WITH_TAKE = 16

# Pending events taken, by partition: (tenant, partition) -> [(field, envelope)].
Taken = dict[tuple[str, int], list[tuple[str, Envelope]]]


@dataclass(frozen=True)
class CallHead:
    """What folding new records into a call needs, read without its records:
    the version, the facts stored with it, how many records the log holds,
    and the receipt (us) the log holds for each new record's id (None if new)."""

    version: int
    revision: int
    facts: dict[str, Any] | None
    size: int
    known: dict[str, int | None]

    def covers(self, ids: Sequence[str]) -> bool:
        """Whether this head was read for (at least) these new record ids."""
        return all(i in self.known for i in ids)


def _call_log(meta: list[Any], raw_records: list[bytes]) -> CallLog:
    version, revision, outcome, outcome_id = meta
    records = sorted((loads(raw) for raw in raw_records), key=log_order)
    decided: OutcomeRecord | None = None
    if outcome is not None:
        decided = cast(OutcomeRecord, {"id": _text(outcome_id), **loads(outcome)})
    return CallLog(int(version or 0), records, int(revision or 0), decided)


class Calls(Part):
    """Calls' logs, views, timers and live index."""

    def __init__(self, backend: Backend, pending: PendingEvents) -> None:
        super().__init__(backend)
        # A commit clears its events' pending marks, through this part when
        # they live in another slot than the call.
        self.pending = pending
        self._commit_call: Script = backend.script("commit_call")
        self._claim_timers: Script = backend.script("claim_timers")
        self._take_batch: Script = backend.script("take_batch")

    def load_call(self, tenant_id: str, call_uuid: str) -> CallLog:
        """Read a call's log, version and last outcome in one atomic snapshot."""
        return self.load_calls(tenant_id, [call_uuid])[call_uuid]

    def load_calls(self, tenant_id: str, call_uuids: Sequence[str]) -> dict[str, CallLog]:
        """Read several calls at once: one round trip (per node of a cluster).

        Each call's version is read before its records, so a commit landing in
        between makes the records newer than the version, never older: the
        commit built on them is then refused (ConcurrentUpdate) and retried.
        On one Redis the whole read is one MULTI, an atomic snapshot.
        """
        with self.redis.pipeline(transaction=self.backend.cluster is None) as pipe:
            for call_uuid in call_uuids:
                base = call_key(tenant_id, call_uuid, self.spread)
                pipe.hmget(base, ["v", "revision", "outcome", "outcome_id"])
                pipe.hvals(log_keys(base)[1])
            answers = pipe.execute()
        return {
            call_uuid: _call_log(meta, raw_records)
            for call_uuid, meta, raw_records in zip(
                call_uuids, answers[::2], answers[1::2], strict=True
            )
        }

    def load_heads(self, tenant_id: str, new_ids: dict[str, list[str]]) -> dict[str, CallHead]:
        """Read the heads of several calls (call uuid -> ids of its new records) in
        one round trip (per node of a cluster): no record is read, so the cost
        does not grow with the log. On one Redis, one MULTI: an atomic snapshot."""
        with self.redis.pipeline(transaction=self.backend.cluster is None) as pipe:
            for call_uuid, ids in new_ids.items():
                base = call_key(tenant_id, call_uuid, self.spread)
                log = log_keys(base)[0]
                pipe.hmget(base, ["v", "revision", "facts"])
                pipe.zcard(log)
                if ids:
                    pipe.zmscore(log, ids)
            answers = iter(pipe.execute())
        heads: dict[str, CallHead] = {}
        for call_uuid, ids in new_ids.items():
            version, revision, facts = next(answers)
            size = int(next(answers))
            scores = next(answers) if ids else []
            heads[call_uuid] = CallHead(
                version=int(version or 0),
                revision=int(revision or 0),
                facts=loads(facts) if facts else None,
                size=size,
                known={i: None if s is None else int(s) for i, s in zip(ids, scores, strict=True)},
            )
        return heads

    def take_with_heads(
        self, partitions: Sequence[tuple[str, int]], limit: int
    ) -> tuple[Taken, dict[str, dict[str, CallHead]]]:
        """The oldest pending events of several partitions (as
        ``PendingEvents.take_pending_many``) and, on one Redis, the heads of
        their calls read in the same step (lua/take_batch.lua): tenant -> call
        uuid -> head. On a cluster no heads (a call may live in another slot).

        A head is given only where it was read from the call's own key; the
        caller still checks that it covers the ids it folds (``covers``)."""
        if self.spread:
            return self.pending.take_pending_many(partitions, limit), {}
        calls = [
            (
                self._take_batch,
                [
                    pending_key(tenant, number),
                    pending_events_key(tenant, number),
                    wake_key(tenant, number),
                ],
                [limit, call_key(tenant, ""), HEADS_WITH_TAKE],
            )
            for tenant, number in partitions
        ]
        answers = self.backend.eval_all(calls)
        taken: Taken = {}
        heads: dict[str, dict[str, CallHead]] = {}
        for (tenant, number), (flat, *raw_heads) in zip(partitions, answers, strict=True):
            if flat:
                taken[(tenant, number)] = [
                    (_text(f), loads(e)) for f, e in zip(flat[::2], flat[1::2], strict=True)
                ]
            for base, version, revision, facts, size, ids, scores in raw_heads:
                call_uuid = _text(base).removeprefix(call_key(tenant, ""))
                if call_key(tenant, _unpart(call_uuid)) != _text(base):
                    continue  # quoted otherwise than keys.py does: read apart
                heads.setdefault(tenant, {})[_unpart(call_uuid)] = CallHead(
                    version=int(version or 0),
                    revision=int(revision or 0),
                    facts=loads(facts) if facts else None,
                    size=int(size),
                    known={
                        _text(i): None if s is None else int(s)
                        for i, s in zip(ids, scores, strict=True)
                    },
                )
        return taken, heads

    def commit_call(self, tenant_id: str, commit: CallCommit) -> tuple[int, bool]:
        """Append records and write the call's view, index and timer in one step.

        Returns (new version, whether the log changed). Raises ConcurrentUpdate
        if another worker committed since ``commit.expected_version`` was read.
        """
        result = self.commit_calls(tenant_id, [commit])[0]
        if result is None:
            raise ConcurrentUpdate(f"call {commit.call_uuid} moved past its read version")
        return result[0], result[1]

    def commit_calls(
        self, tenant_id: str, commits: Sequence[CallCommit]
    ) -> list[tuple[int, bool, int] | None]:
        """Commit several calls in one round trip (per node); for each, (new version,
        whether the log changed, how many unfolded records were new), or None if
        it conflicted."""
        calls = [self._commit_keys_args(tenant_id, c) for c in commits]
        # The cross-tenant timers index is outside the tenant's slot, so its mark
        # is a command sent after the scripts, in the same round trip. It is
        # sent for a commit that then conflicts too: a mark only moves earlier,
        # and one too early costs the timer reader a look, never a timer.
        armed = [c.timer_due for c in commits if c.timer_due is not None]
        also = [("ZADD", TIMERS_DUE_KEY, "LT", repr(min(armed)), tenant_id)] if armed else []
        answers = self.backend.eval_many(
            [(self._commit_call, keys, args) for keys, args in calls], also=also
        )
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        for commit, answer in zip(commits, answers, strict=True):
            if answer[0] and self._elsewhere(commit.call_uuid, commit.partition):
                self.pending.clear_applied(tenant_id, commit.partition, commit.pending_done)
        return [(int(a[1]), bool(a[2]), int(a[3])) if a[0] else None for a in answers]

    def _elsewhere(self, name: str, partition: int) -> bool:
        """Whether the log of ``name`` (a call, a conversation) lives in another
        slot than pending partition ``partition`` (only on a cluster, only for
        events intake would not file so)."""
        return self.spread and partition_for(name) != partition

    def _commit_keys_args(self, tenant_id: str, commit: CallCommit) -> tuple[list[str], list[Any]]:
        base = call_key(tenant_id, commit.call_uuid, self.spread)
        log, records = log_keys(base)
        partition = partition_for(commit.call_uuid)
        # Pending marks in another slot are cleared after the commit (PendingEvents.clear_applied).
        elsewhere = self._elsewhere(commit.call_uuid, commit.partition)
        done = [] if elsewhere else list(commit.pending_done)
        args: list[Any] = [
            commit.expected_version,
            commit.call_uuid,
            dumps(commit.view),
            "" if commit.facts is None else dumps(commit.facts),
            "" if commit.live_since is None else commit.live_since,
            "" if commit.timer_due is None else repr(commit.timer_due),
            self.backend.ttl_ms,
        ]
        for entries in (commit.new_records, commit.unfolded):
            args.append(len(entries))
            for record in entries:
                args += [record["id"], to_micros(record["received_at"]), dumps(record)]
        args += [len(done), *done]
        pending = partition if elsewhere else commit.partition
        keys = [
            log,
            records,
            base,
            live_key(tenant_id, partition, self.spread),
            timers_key(tenant_id, partition, self.spread),
            pending_key(tenant_id, pending, self.spread),
            pending_events_key(tenant_id, pending, self.spread),
            *unfolded_keys(base),
        ]
        return keys, args

    def claim_timers(
        self, tenant_id: str, now: float, lease_until: float, limit: int = 200
    ) -> list[str]:
        """Claim the tenant's due timers until ``lease_until`` (at most ``limit`` per
        timers key); return the call uuids."""
        calls = [
            (self._claim_timers, [timers_key(tenant_id, p, self.spread)], [now, lease_until, limit])
            for p in self.backend.partitions
        ]
        answers = self.backend.eval_all(calls)
        return [_text(m) for members in answers for m in members]

    def _timers(self, tenant_id: str, call_uuid: str) -> str:
        return timers_key(tenant_id, partition_for(call_uuid), self.spread)

    def rearm_timer(self, tenant_id: str, call_uuid: str, due: float) -> None:
        """Look at a call again at ``due`` (only if its timer still exists)."""
        if self.redis.zadd(self._timers(tenant_id, call_uuid), {call_uuid: due}, xx=True, ch=True):
            self.redis.zadd(TIMERS_DUE_KEY, {tenant_id: due}, lt=True)

    def release_timer(self, tenant_id: str, call_uuid: str) -> None:
        """Drop a call's timer (the call is gone: expired or never existed)."""
        self.redis.zrem(self._timers(tenant_id, call_uuid), call_uuid)

    def drop_live(self, tenant_id: str, call_uuid: str) -> None:
        self.redis.zrem(live_key(tenant_id, partition_for(call_uuid), self.spread), call_uuid)

    def live_calls(self, tenant_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The views of every live call of the given tenants, oldest first.

        Costs one round trip (per node) for the indexes and one for the views:
        time grows with live calls, not with calls ever seen.
        """
        indexes = [
            (t, live_key(t, p, self.spread)) for t in tenant_ids for p in self.backend.partitions
        ]
        with self.redis.pipeline(transaction=False) as pipe:
            for _, key in indexes:
                pipe.zrange(key, 0, -1, withscores=True)
            found = pipe.execute()
        wanted = [
            (tenant, _text(uuid), score)
            for (tenant, _), index in zip(indexes, found, strict=True)
            for uuid, score in index
        ]
        if not wanted:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant, uuid, _ in wanted:
                pipe.hget(call_key(tenant, uuid, self.spread), "view")
            views = pipe.execute()
        calls = [
            (score, loads(view))
            for (_, _, score), view in zip(wanted, views, strict=True)
            if view is not None
        ]
        calls.sort(key=lambda item: (item[0], item[1]["call_uuid"]))
        return [view for _, view in calls]

    def get_call(self, tenant_id: str, call_uuid: str) -> dict[str, Any] | None:
        """The call's view with its outcome and events, or None if unknown: one
        round trip (one MULTI on one Redis, so the parts agree)."""
        base = call_key(tenant_id, call_uuid, self.spread)
        with self.redis.pipeline(transaction=self.backend.cluster is None) as pipe:
            pipe.hmget(base, ["v", "revision", "outcome", "outcome_id", "view"])
            pipe.hvals(log_keys(base)[1])
            pipe.zcard(unfolded_keys(base)[0])
            (*meta, view), raw_records, unfolded = pipe.execute()
        log = _call_log(meta, raw_records)
        if not log.records:
            return None
        return {
            **(loads(view) if view else {}),
            "events_not_folded": int(unfolded),
            "outcome": log.outcome,
            "events": [
                {
                    "id": r["id"],  # its place in the log (a page's cursor); not shown
                    "event_type": r["event_type"],
                    "received_at": r["received_at"],
                    "fields": r["fields"],
                }
                for r in log.records
            ],
        }

    def scan_calls(self, tenant_id: str) -> Iterator[str]:
        """Every call uuid of a tenant still in Redis (for rebuilds; one SCAN of
        every master, whichever partition)."""
        pattern = call_logs_pattern(tenant_id, self.spread)
        for key in self.redis.scan_iter(match=pattern, count=500):
            yield call_of_log_key(_text(key))

    def replace_view(self, tenant_id: str, call_uuid: str, view: dict[str, Any]) -> None:
        """Overwrite a stored view (rebuild found it differs from the log's fold)."""
        self.redis.hset(call_key(tenant_id, call_uuid, self.spread), "view", dumps(view))

    def replace_facts(self, tenant_id: str, call_uuid: str, facts: dict[str, Any]) -> None:
        """Overwrite a call's stored facts (rebuild found they differ from the log's fold)."""
        self.redis.hset(call_key(tenant_id, call_uuid, self.spread), "facts", dumps(facts))
