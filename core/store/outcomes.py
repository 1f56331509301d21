"""Outcome records: published per call revision into the outcome streams, and
read back in id order across tenants and partitions."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from redis.commands.core import Script

from core.store.backend import Backend, Part
from core.store.keys import (
    OUTCOMES_DUE_KEY,
    call_key,
    outcomes_key,
    partition_for,
    timers_key,
)
from core.store.values import _text, dumps, loads
from statemachine.outcome import OutcomeBody, OutcomeId, OutcomeRecord


class Outcomes(Part):
    """Publishing a call's outcome revisions; reading the streams by id or time."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self._publish_outcome: Script = backend.script("publish_outcome")

    def publish_outcome(
        self,
        tenant_id: str,
        call_uuid: str,
        *,
        expected_version: int,
        body: OutcomeBody,
        claimed_score: float | None,
    ) -> tuple[str, int, str | None]:
        """Publish ``body`` as the call's next outcome revision if it is new.

        Returns ("published", revision, id), ("unchanged", revision, None) or
        ("stale", 0, None) when the call moved on since it was read.
        """
        partition = partition_for(call_uuid)
        keys = [
            call_key(tenant_id, call_uuid, self.spread),
            timers_key(tenant_id, partition, self.spread),
            outcomes_key(tenant_id, partition, self.spread),
        ]
        args: list[str | int] = [
            expected_version,
            call_uuid,
            dumps(body),
            "" if claimed_score is None else repr(claimed_score),
            int(self.backend.retention_seconds * 1_000_000),
            self.backend.ttl_ms,
        ]
        result = self._publish_outcome(keys=keys, args=args)
        if result[0] == 0:
            return "stale", 0, None
        if result[0] == 2:
            return "unchanged", int(result[1]), None
        # For the dispatcher: this tenant has an outcome to turn into deliveries.
        self.redis.zadd(OUTCOMES_DUE_KEY, {tenant_id: time.time()}, lt=True)
        return "published", int(result[1]), _text(result[2])

    def server_time_us(self) -> int:
        """Redis's clock in microseconds: on a cluster, the earliest of every master's.

        Outcome ids are the clock of the master that wrote them, so every
        record written after this read has a larger id, whichever master.
        """
        times = []
        for _, client in self.backend.servers():
            seconds, micros = client.time()
            times.append(int(seconds) * 1_000_000 + int(micros))
        return min(times)

    def _outcome_streams(self, tenant_ids: Sequence[str]) -> list[str]:
        return [
            outcomes_key(t, p, self.spread) for t in tenant_ids for p in self.backend.partitions
        ]

    def read_outcomes(
        self,
        tenant_ids: Sequence[str],
        *,
        after: str | None,
        limit: int,
        outcome: str | None = None,
    ) -> tuple[list[OutcomeRecord], str | None]:
        """Outcome records after ``after``, oldest first, across tenants (and
        partitions: a cluster keeps one stream per tenant and partition).

        Returns (records, cursor) where cursor is the id to resume after (the
        last id looked at, even if filtered out), or ``after`` if nothing new.
        """
        records, cursor = self.read_feed(
            self._outcome_streams(tenant_ids),
            after=after,
            limit=limit,
            keep=None if outcome is None else (lambda record: record["outcome"] == outcome),
        )
        return cast(list[OutcomeRecord], records), cursor

    def read_feed(
        self,
        streams: Sequence[str],
        *,
        after: str | None,
        limit: int,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Records (each a stream entry's ``record`` field) after ``after`` across
        ``streams`` whose ids are server microseconds (the outcome streams, the
        live event streams), oldest first, those ``keep`` refuses skipped.

        A record is returned only if its id is at most the server time read
        *before* the streams (on a cluster the earliest master's): anything
        written later gets a larger id, so resuming from the last id returned
        can never skip a record. Records of two streams may share an id; a page
        never ends between them (it may then hold a few more than ``limit``).
        """
        horizon = self.server_time_us()
        start = f"({after}" if after else "-"
        found: list[tuple[OutcomeId, str, dict[str, Any]]] = []
        batch = max(limit, 100)
        cursors = dict.fromkeys(streams, start)
        exhausted: set[str] = set()
        while True:
            with self.redis.pipeline(transaction=False) as pipe:
                active = [k for k in streams if k not in exhausted]
                for stream in active:
                    pipe.xrange(stream, min=cursors[stream], max="+", count=batch)
                results = pipe.execute() if active else []
            for stream, entries in zip(active, results, strict=True):
                if len(entries) < batch:
                    exhausted.add(stream)
                for raw_id, fields in entries:
                    entry_id = _text(raw_id)
                    cursors[stream] = f"({entry_id}"
                    key = OutcomeId.parse(entry_id)
                    if key.micros > horizon:
                        exhausted.add(stream)
                        break
                    record = loads(fields[b"record"] if b"record" in fields else fields["record"])
                    found.append((key, entry_id, record))
            found.sort(key=lambda item: item[0])
            matching = [item for item in found if keep is None or keep(item[2])]
            if len(matching) >= limit or len(exhausted) == len(streams):
                break
        # Take the first `limit` matches; the cursor is the last record looked
        # at up to there, so filtered-out records are not read twice.
        out: list[dict[str, Any]] = []
        cursor = after
        for _, entry_id, record in found:
            if len(out) >= limit and entry_id != cursor:
                break
            cursor = entry_id
            if keep is None or keep(record):
                out.append({"id": entry_id, **record})
        return out, cursor

    def read_outcome_window(
        self,
        tenant_ids: Sequence[str],
        start_us: int,
        end_us: int,
        *,
        max_records: int = 100_000,
    ) -> tuple[list[OutcomeRecord], int]:
        """Outcome records decided from ``start_us`` to ``end_us`` (server
        microseconds, both included), oldest first, across tenants.

        Ids are ``<us>-<seq>``, so a time window is an id range. ``end_us`` is
        capped at the server time read before the streams, as in
        ``read_outcomes``: returns (records, the capped end), and every record
        decided later has a larger id than the capped end. Raises
        OverflowError if the window holds more than ``max_records`` records.
        """
        end = min(end_us, self.server_time_us())
        if end < start_us:
            return [], end
        batch = 1000
        found: list[tuple[OutcomeId, OutcomeRecord]] = []
        active = self._outcome_streams(tenant_ids)
        cursors = dict.fromkeys(active, str(start_us))
        while active:
            with self.redis.pipeline(transaction=False) as pipe:
                for stream in active:
                    pipe.xrange(stream, min=cursors[stream], max=str(end), count=batch)
                results = pipe.execute()
            more: list[str] = []
            for stream, entries in zip(active, results, strict=True):
                for raw_id, fields in entries:
                    entry_id = _text(raw_id)
                    record: OutcomeRecord = loads(
                        fields[b"record"] if b"record" in fields else fields["record"]
                    )
                    found.append((OutcomeId.parse(entry_id), {"id": entry_id, **record}))
                    cursors[stream] = f"({entry_id}"
                if len(entries) == batch:
                    more.append(stream)
            if len(found) > max_records:
                raise OverflowError(f"more than {max_records} outcome records in the window")
            active = more
        found.sort(key=lambda item: item[0])
        return [record for _, record in found], end
