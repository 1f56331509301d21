"""Call-centre figures from outcome records: what ``GET /v1/stats`` and the wallboard show.

Pure functions, no I/O. The input is outcome records as the outcome streams
hold them (``id`` = ``<decided at, server microseconds>-<seq>``, ``revision``).
The definitions, as docs/stats.md states them:

- a window holds the calls whose *first* outcome revision was decided in it,
  each counted once, with the figures of its latest revision in the window;
- offered: inbound calls; answered, voicemail, missed (abandoned + no_answer
  + unrouted) split them; outbound calls are counted apart;
- wait: ``wait_seconds`` of the record (call start to answer, or to end when
  unanswered); talk: ``talk_seconds`` of answered calls;
- abandon rate = abandoned / offered; the service levels, short abandons and
  ring-no-answer in ``service_levels``, callback recovery in ``callback_figures``.

Over 400 lines on purpose: every figure's definition in one place, to be read
beside docs/stats.md; the API and the history's figures both use them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.stats.callback_figures import CallbackRecovery, CallbackTally
from app.stats.figure_rules import FigureRules
from app.stats.service_levels import LevelTally
from core.history.records import extensions_of
from core.local_time import UTC_ZONE, local_date, local_hour
from statemachine.events import isoformat, parse_time
from statemachine.outcome import OutcomeId, OutcomeRecord

GROUPINGS = ("queue", "extension", "did", "hour", "day", "tenant")
# Outbound calls have no queue and no DID: they count in the totals only there.
UNGROUPED_OUTBOUND = ("queue", "did")
Key = str | None


# -- windows -------------------------------------------------------------------


def parse_instant(text: str) -> datetime:
    """An ISO-8601 date or time (no offset = UTC) as an aware UTC datetime. Raises ValueError.

    A ``+`` of an offset that arrived as a space (an unencoded query string) is
    read as ``+``.
    """
    value = re.sub(r" (\d{2}(:?\d{2})?)$", r"+\1", text.strip())
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except OverflowError as exc:  # an offset that moves it out of years 1..9999
        raise ValueError(str(exc)) from None


def start_of_day(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: where the default window starts."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def record_key(record: Mapping[str, Any]) -> OutcomeId:
    """A record's id, in the feed's order."""
    return OutcomeId.of(record)


# -- which records count ---------------------------------------------------------


def calls_in_window(records: Iterable[OutcomeRecord]) -> list[OutcomeRecord]:
    """One record per call: its latest revision among ``records`` (the records
    decided in a window), for the calls whose revision 1 is among them.

    A call of which only a later revision is here was first decided before
    the window and is counted there, so consecutive windows never count a
    call twice. Oldest decision first.
    """
    latest: dict[tuple[str, str], OutcomeRecord] = {}
    first: dict[tuple[str, str], int] = {}
    for record in records:
        call = (record["tenant_id"], record["call_uuid"])
        revision = int(record.get("revision") or 1)
        first[call] = min(first.get(call, revision), revision)
        current = latest.get(call)
        if current is None or (revision, record_key(record)) > (
            int(current.get("revision") or 1),
            record_key(current),
        ):
            latest[call] = record
    calls = [record for call, record in latest.items() if first[call] == 1]
    calls.sort(key=record_key)
    return calls


# -- grouping ------------------------------------------------------------------------


def _number(party: Any) -> str | None:
    if isinstance(party, dict) and party.get("number"):
        return str(party["number"])
    return None


def _started(record: Mapping[str, Any]) -> datetime:
    """When the call started (its end, or its decision, if the start is unknown), UTC."""
    for name in ("started_at", "ended_at"):
        if record.get(name):
            return parse_time(record[name])
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=record_key(record).micros)


# When a call started, for readers that bucket calls by time (the heatmap).
call_start = _started


def group_keys(record: OutcomeRecord, group_by: str, zone: ZoneInfo = UTC_ZONE) -> list[Key]:
    """The group(s) a call belongs to; None = the call has no such attribute.
    ``hour`` and ``day``: the local hour and date in ``zone`` the call started.

    Only ``extension`` can put a call in several groups. Raises ValueError
    for an unknown grouping.
    """
    if group_by == "queue":
        return [record.get("queue") or None]
    if group_by == "tenant":
        return [record["tenant_id"]]
    if group_by == "did":
        return [_number(record.get("did"))]
    if group_by == "hour":
        return [local_hour(_started(record), zone)]
    if group_by == "day":
        return [local_date(_started(record), zone)]
    if group_by == "extension":
        return list(extensions_of(record)) or [None]
    raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}")


# -- figures -----------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


US = 1_000_000


def _micros(seconds: Any) -> int:
    """Seconds as whole microseconds: sums of them do not depend on the order added
    (float sums do), so a window streamed from the archive adds up as one from Redis."""
    return round(float(seconds) * US)


def _mean(total_us: int, count: int) -> float | None:
    return total_us / count / US if count else None


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass
class Tally:
    """The figures of one group, added up call by call (the service levels, short
    abandons and ring-no-answer beside it: service_levels.LevelTally)."""

    offered: int = 0
    answered: int = 0
    voicemail: int = 0
    abandoned: int = 0
    no_answer: int = 0
    unrouted: int = 0
    elsewhere: int = 0
    waits: int = 0
    wait_total: int = 0  # microseconds: exact, whatever the order calls come in
    wait_max: float | None = None
    answer_waits: int = 0
    answer_wait_total: int = 0  # microseconds: exact, whatever the order calls come in
    talks: int = 0
    talk_total: int = 0  # microseconds: exact, whatever the order calls come in
    outbound: int = 0
    outbound_talk_total: int = 0  # microseconds: exact, whatever the order calls come in

    def add(self, record: OutcomeRecord, extension: str | None = None) -> None:
        """Count one call. ``extension``: count it as that extension's (answered
        only if that extension answered, voicemail only if it was that box)."""
        if record.get("direction") == "outbound":
            self.outbound += 1
            self.outbound_talk_total += _micros(record.get("talk_seconds") or 0.0)
            return
        self.offered += 1
        wait = record.get("wait_seconds")
        if wait is not None:
            self.waits += 1
            self.wait_total += _micros(wait)
            wait = float(wait)
            self.wait_max = wait if self.wait_max is None else max(self.wait_max, wait)
        outcome = record.get("outcome")
        mine = extension is None
        if outcome == "answered":
            mine = mine or _number(record.get("answered_by")) == extension
        elif outcome == "voicemail":
            mine = mine or _number(record.get("voicemail_box")) == extension
        if outcome in ("answered", "voicemail") and not mine:
            self.elsewhere += 1
        elif outcome == "answered":
            self.answered += 1
            if wait is not None:
                self.answer_waits += 1
                self.answer_wait_total += _micros(wait)
            talk = record.get("talk_seconds")
            if talk is not None:
                self.talks += 1
                self.talk_total += _micros(talk)
        elif outcome == "voicemail":
            self.voicemail += 1
        elif record.get("missed_reason") == "abandoned":
            self.abandoned += 1
        elif record.get("missed_reason") == "no_answer":
            self.no_answer += 1
        else:
            self.unrouted += 1

    def merge(self, other: Tally) -> None:
        """Add ``other``'s calls: the figures of both groups' calls together."""
        wait_max = other.wait_max
        for name, value in vars(other).items():
            if name != "wait_max":
                setattr(self, name, getattr(self, name) + value)
        if wait_max is not None:
            self.wait_max = wait_max if self.wait_max is None else max(self.wait_max, wait_max)

    def as_json(self, levels: Mapping[str, Any]) -> dict[str, Any]:
        """The figures, with ``levels`` (LevelTally.as_json) in the places v2 gave
        the service level."""
        return {
            "offered": self.offered,
            "answered": self.answered,
            "missed": self.abandoned + self.no_answer + self.unrouted,
            "abandoned": self.abandoned,
            "no_answer": self.no_answer,
            "unrouted": self.unrouted,
            "voicemail": self.voicemail,
            "elsewhere": self.elsewhere,
            "abandon_rate": _ratio(self.abandoned, self.offered),
            "service_level": levels["service_level"],
            "answered_in_service_level": levels["answered_in_service_level"],
            "avg_wait_seconds": _seconds(_mean(self.wait_total, self.waits)),
            "max_wait_seconds": _seconds(self.wait_max),
            "avg_answer_seconds": _seconds(_mean(self.answer_wait_total, self.answer_waits)),
            "talk_seconds": _seconds(self.talk_total / US),
            "avg_talk_seconds": _seconds(_mean(self.talk_total, self.talks)),
            "outbound": self.outbound,
            "outbound_talk_seconds": _seconds(self.outbound_talk_total / US),
        }


class Summary:
    """``summarize``'s answer, added up call by call (``add``) or from counts of
    calls added to its groups (``group``, ``totals``: app/stats/counted.py)."""

    def __init__(
        self,
        group_by: str | None,
        rules: FigureRules | float,
        country_of: Callable[[str], str] = lambda tenant: "",
        zone: ZoneInfo = UTC_ZONE,
    ) -> None:
        if group_by is not None and group_by not in GROUPINGS:
            raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}")
        self.group_by = group_by
        self.rules = FigureRules.of(rules)
        self.zone = zone
        self.totals = Tally()
        self.levels = LevelTally(self.rules)
        self.groups: dict[Key, tuple[Tally, LevelTally]] = {}
        self.callbacks = CallbackRecovery(self.rules, country_of)
        # Every call is in one group of the others: their totals are the groups' sums,
        # added up once at the end rather than call by call (the same integers).
        self.totals_apart = group_by is None or group_by == "extension"

    def keys_of(self, call: OutcomeRecord) -> list[Key] | None:
        """The groups ``call`` is counted in; None: the totals only."""
        if self.group_by is None or (
            self.group_by in UNGROUPED_OUTBOUND and call["direction"] == "outbound"
        ):
            return None
        return group_keys(call, self.group_by, self.zone)

    def group(self, key: Key) -> tuple[Tally, LevelTally]:
        return self.groups.setdefault(key, (Tally(), LevelTally(self.rules)))

    def add(self, call: OutcomeRecord, *, callbacks: bool = True) -> None:
        """Count one call (``callbacks``: among the callback figures' calls too)."""
        keys = self.keys_of(call)
        if self.totals_apart or keys is None:
            self.totals.add(call)
            self.levels.add(call)
        if callbacks:
            self.callbacks.add(call, keys)
        for key in keys or ():
            tally, level = self.group(key)
            extension = key if self.group_by == "extension" else None
            tally.add(call, extension=extension)
            level.add(call, extension=extension)

    def answer(
        self, callbacks: tuple[CallbackTally, dict[Key, CallbackTally]] | None = None
    ) -> dict[str, Any]:
        """The answer (once): ``callbacks`` the callback figures, else those of the
        calls added."""
        if not self.totals_apart:
            for tally, level in self.groups.values():
                self.totals.merge(tally)
                self.levels.merge(level)
        callback_totals, callback_groups = callbacks or self.callbacks.tally()
        per_extension = self.group_by == "extension"
        rules = self.rules

        def figures(tally: Tally, level: LevelTally, recovery: CallbackTally) -> dict[str, Any]:
            level_figures = level.as_json(per_extension=False)
            return {
                **tally.as_json(level_figures),
                **level_figures,
                "callbacks": recovery.as_json(),
            }

        ordered = sorted(self.groups.items(), key=lambda item: (item[0] is None, item[0] or ""))
        return {
            "groups": [
                {
                    "key": key,
                    **figures(
                        tally,
                        level,
                        callback_groups.get(key, CallbackTally(rules.callback_minutes)),
                    ),
                    **(level.as_json(per_extension=True) if per_extension else {}),
                }
                for key, (tally, level) in ordered
            ],
            "totals": figures(self.totals, self.levels, callback_totals),
        }


def summarize(
    calls: Iterable[OutcomeRecord],
    group_by: str | None,
    rules: FigureRules | float,
    country_of: Callable[[str], str] = lambda tenant: "",
    zone: ZoneInfo = UTC_ZONE,
) -> dict[str, Any]:
    """``{"groups": [{"key": ..., **figures}], "totals": figures}`` for ``calls``
    (as ``calls_in_window`` returns them; read once, so a stream will do).
    ``rules``: the thresholds (a number: one service-level threshold);
    ``country_of(tenant)``: the country its numbers are read in, for callbacks.
    Groups sorted by key, None last; no grouping gives no groups; outbound
    calls are in no queue or DID group.
    Raises ValueError for an unknown grouping."""
    summary = Summary(group_by, rules, country_of, zone)
    for call in calls:
        summary.add(call)
    return summary.answer()


# -- the callback list -----------------------------------------------------------------


def phone_key(number: Any) -> str | None:
    """A number reduced for matching a caller with a callback: its last 10
    digits (so +1 555… and 555… match); None for anonymous or short numbers."""
    digits = re.sub(r"\D", "", str(number or ""))
    return digits[-10:] if len(digits) >= 3 else None


def _when(record: Mapping[str, Any], *names: str) -> datetime | None:
    for name in names:
        if record.get(name):
            return parse_time(record[name])
    return None


def is_missed_inbound(call: OutcomeRecord) -> bool:
    return call.get("direction") != "outbound" and call["outcome"] == "missed"


def missed_order(call: OutcomeRecord) -> tuple[datetime, OutcomeId]:
    """The callback list's order (newest end first, when reversed)."""
    ended = _when(call, "ended_at", "started_at") or datetime.min.replace(tzinfo=UTC)
    return ended, record_key(call)


def caller_key(call: OutcomeRecord) -> tuple[str, str] | None:
    """(tenant, the caller's number as phone_key reduces it), or None if anonymous."""
    number = phone_key(_number(call.get("caller")))
    return (call["tenant_id"], number) if number else None


def contact_key(call: OutcomeRecord) -> tuple[str, str] | None:
    """(tenant, number) a call reached that can follow up a missed call from that
    number: an outbound call's number dialed, an answered call's caller."""
    if call.get("direction") == "outbound":
        number = phone_key(call.get("number_dialed"))
        return (call["tenant_id"], number) if number else None
    if call.get("outcome") == "answered":
        return caller_key(call)
    return None


def missed_calls(calls: Sequence[OutcomeRecord], limit: int = 50) -> list[dict[str, Any]]:
    """Inbound missed calls of ``calls``, newest first: the callback list.

    Each carries ``follow_up``: the first later call that reached the same
    number, if any, as ``{"kind": "called_back"}`` (an outbound call to it) or
    ``{"kind": "answered"}`` (the caller called again and was answered), with
    its ``at`` and ``call_uuid``; else null.
    """
    contacts: dict[tuple[str, str], list[tuple[datetime, str, OutcomeRecord]]] = {}
    for call in calls:
        key = contact_key(call)
        kind = "called_back" if call.get("direction") == "outbound" else "answered"
        started = _when(call, "started_at", "answered_at", "ended_at")
        if key is not None and started is not None:
            contacts.setdefault(key, []).append((started, kind, call))
    missed = [c for c in calls if is_missed_inbound(c)]
    missed.sort(key=missed_order, reverse=True)
    out: list[dict[str, Any]] = []
    for call in missed[:limit]:
        ended = _when(call, "ended_at", "started_at")
        number = phone_key(_number(call.get("caller")))
        later = sorted(
            (
                item
                for item in contacts.get((call["tenant_id"], number or ""), [])
                if ended is not None and item[0] >= ended
            ),
            key=lambda item: item[0],
        )
        follow_up = None
        if number and later:
            at, kind, other = later[0]
            follow_up = {"kind": kind, "at": isoformat(at), "call_uuid": other["call_uuid"]}
        out.append(
            {
                "id": call["id"],
                "call_uuid": call["call_uuid"],
                "tenant_id": call["tenant_id"],
                "caller": call.get("caller"),
                "did": call.get("did"),
                "queue": call.get("queue"),
                "ring_group": call.get("ring_group"),
                "rang": call.get("rang") or [],
                "missed_reason": call.get("missed_reason"),
                "started_at": call.get("started_at"),
                "ended_at": call.get("ended_at"),
                "wait_seconds": call.get("wait_seconds"),
                "follow_up": follow_up,
            }
        )
    return out


def merge_later(
    archived: Iterable[OutcomeRecord], later: Sequence[OutcomeRecord]
) -> Iterator[OutcomeRecord]:
    """Complete a window read from the archive with the records decided after it.

    ``archived``: the window's calls as the archive holds them up to its cursor
    (each call at its latest revision there, its revision 1 in the window);
    ``later``: the outcome records decided since (from the cursor's moment to
    the window's end). A call's later revision replaces its archived one; a
    call first decided later counts if its revision 1 is among ``later``.
    The same calls as ``calls_in_window`` over all the window's records.
    """
    latest: dict[tuple[str, str], OutcomeRecord] = {}
    first: dict[tuple[str, str], int] = {}
    for record in later:
        call = (record["tenant_id"], record["call_uuid"])
        revision = _revision(record)
        first[call] = min(first.get(call, revision), revision)
        if call not in latest or revision > _revision(latest[call]):
            latest[call] = record
    seen: set[tuple[str, str]] = set()
    for record in archived:
        call = (record["tenant_id"], record["call_uuid"])
        seen.add(call)
        newer = latest.get(call)
        yield newer if newer is not None and _revision(newer) > _revision(record) else record
    for call, record in latest.items():
        if call not in seen and first[call] == 1:
            yield record


def _revision(record: OutcomeRecord) -> int:
    return int(record.get("revision") or 1)
