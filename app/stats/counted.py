"""``/v1/stats`` over the history database, counted by the database.

The archived calls of a window are counted per group by a GROUP BY
(core/history/stat_counts.py) rather than read and folded; the answer is
exactly ``figures.summarize``'s over the window's calls, built from the
counts and from the few calls the counts cannot hold, folded one by one as
for the heatmap (app/stats/from_history.py): those revised after the
window's end, and those Redis holds a newer revision of (left out of the
counts), with the calls Redis adds after the archive.

What is not a sum is folded over few calls, selected by the database:

- callback recovery: the missed callers are counted; whether and when each
  was called back is folded over the missed calls that a call of the window
  reached the same number of, and those calls (``reached_candidates``);
- the callback list: the window's missed inbound calls, and the calls that
  may follow them up (``followers``).

``summarize_counted`` answers None where the counts cannot: ``group_by=did``
(no column), a time zone whose offset is not whole quarter hours for
``hour`` and ``day``, and a tenant whose callers' numbers were read in
another country than its own now. The caller then folds every call.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

import app.stats.figures as stats
from app.stats.callback_figures import CallbackRecovery, CallbackTally
from app.stats.figure_rules import FigureRules
from app.stats.service_levels import LevelTally
from core.history.reports import QUARTER_US, archived_of, revised_after
from core.history.stat_counts import (
    FigureCounts,
    counted,
    figure_counts,
    followers,
    key_countries,
    missed_inbound,
    reached_candidates,
)
from core.local_time import local_date, local_hour
from statemachine.callbacks import ContactKind, contact_of_record
from statemachine.outcome import OutcomeRecord

if TYPE_CHECKING:
    from app.stats.from_history import HistoryWindow

GROUPING = {
    None: None,
    "queue": "queue",
    "tenant": "tenant",
    "extension": "extension",
    "day": "quarter",
    "hour": "quarter",
}
HOUR_US = 4 * QUARTER_US
Key = str | None


def local_key(
    unit: int, group_by: str, zone: ZoneInfo, length_us: int = QUARTER_US
) -> str | None:
    """The local day or hour (``figures.group_keys``) of every instant of a UTC
    quarter hour (``unit`` x ``length_us`` from the epoch: of an hour with
    ``HOUR_US``); None when they are not all in one."""
    first = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=unit * length_us)
    last = first + timedelta(microseconds=length_us - 1)
    begins, ends = first.astimezone(zone), last.astimezone(zone)
    if begins.utcoffset() != ends.utcoffset():
        return None
    if group_by == "day":
        day = local_date(first, zone)
        return day if begins.date() == ends.date() else None
    hour = local_hour(first, zone)
    return hour if begins.hour == ends.hour else None


def _grouped(
    connection: sa.Connection,
    conditions: list[sa.ColumnElement[bool]],
    group_by: str | None,
    rules: FigureRules,
    window: HistoryWindow,
    zone: ZoneInfo,
) -> tuple[list[FigureCounts], list[tuple[Key, FigureCounts]]] | None:
    """(the rows counted, each with its group's key), or None when a row's calls
    are not all in one local day or hour. ``day`` and ``hour`` are counted per UTC
    hour where the zone's offset at the window's ends is whole hours (a quarter of
    the rows to read and place), per quarter hour otherwise or when an hour is not
    in one local hour (an offset changing by half an hour)."""
    thresholds = rules.service_level_seconds
    if group_by not in ("day", "hour"):
        rows = figure_counts(connection, conditions, GROUPING[group_by], thresholds)
        return rows, [(row.key, row) for row in rows]
    units = [("quarter", QUARTER_US)]
    ends = (window.start_us, window.archive_end_us)
    if all(_whole_hours(instant_us, zone) for instant_us in ends):
        units.insert(0, ("hour", HOUR_US))
    for grouping, length_us in units:
        rows = figure_counts(connection, conditions, grouping, thresholds)
        local: dict[int, str | None] = {}  # a unit's inbound and outbound calls: once
        placed: list[tuple[Key, FigureCounts]] = []
        for row in rows:
            unit = int(row.key)
            if unit not in local:
                local[unit] = local_key(unit, group_by, zone, length_us)
            if local[unit] is None:
                break
            placed.append((local[unit], row))
        else:
            return rows, placed
    return None


def _whole_hours(instant_us: int, zone: ZoneInfo) -> bool:
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=instant_us)
    offset = at.astimezone(zone).utcoffset()
    return offset is not None and offset % timedelta(hours=1) == timedelta(0)


def add_counts(tally: stats.Tally, level: LevelTally, counts: FigureCounts) -> None:
    """Add calls counted together, as ``Tally.add`` and ``LevelTally.add`` count each."""
    if counts.outbound:
        tally.outbound += counts.calls
        tally.outbound_talk_total += counts.outbound_talk_us
        return
    tally.offered += counts.calls
    tally.answered += counts.answered
    tally.voicemail += counts.voicemail
    tally.abandoned += counts.abandoned
    tally.no_answer += counts.no_answer
    tally.unrouted += counts.unrouted
    tally.elsewhere += counts.elsewhere
    tally.waits += counts.waits
    tally.wait_total += counts.wait_us
    if counts.wait_max is not None:
        tally.wait_max = (
            counts.wait_max if tally.wait_max is None else max(tally.wait_max, counts.wait_max)
        )
    tally.answer_waits += counts.answer_waits
    tally.answer_wait_total += counts.answer_wait_us
    tally.talks += counts.talks
    tally.talk_total += counts.talk_us
    level.offered += counts.calls
    level.abandoned += counts.level_abandoned
    level.short_abandoned += counts.short_abandoned
    level.answered += counts.answered
    level.rang_unanswered += counts.rang_unanswered
    for index, within in enumerate(counts.answered_within):
        level.answered_within[index] += within


def summarize_counted(
    window: HistoryWindow,
    group_by: str | None,
    rules: FigureRules,
    missed_limit: int,
    country_of: Callable[[str], str],
    zone: ZoneInfo,
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(``stats.summarize``'s answer, ``stats.missed_calls``'s) for the window, or
    None where the counts cannot say (see the module's docstring)."""
    if group_by not in GROUPING or window.archive_end_us < window.start_us:
        return None
    summary = stats.Summary(group_by, rules, country_of, zone)
    bounds = (window.tenants, window.start_us, window.archive_end_us)
    with window.engine.connect() as connection:
        folded = list(revised_after(connection, *bounds))
        revised = {_call(record) for record in folded}
        in_redis = sorted({_call(record) for record in window.later} - revised)
        newer_in_redis = list(archived_of(connection, *bounds, in_redis))
        folded += newer_in_redis
        conditions = counted(*bounds, leaving_out=[_call(r) for r in newer_in_redis])
        counts = _grouped(connection, conditions, group_by, rules, window, zone)
        if counts is None:
            return None
        rows, placed = counts
        if not _read_in_their_countries(connection, conditions, rows, window, country_of):
            return None
        totals_rows = (
            figure_counts(connection, conditions, None, rules.service_level_seconds)
            if group_by == "extension"
            else []
        )
        calls = list(stats.merge_later(folded, window.later))
        missed_keys, reaching_keys = _contact_numbers(calls, country_of)
        candidates = list(
            reached_candidates(connection, *bounds, conditions, missed_keys, reaching_keys)
        )
        missed: list[dict[str, Any]] = []
        if missed_limit:
            newest = _newest_missed(
                [*missed_inbound(connection, *bounds, conditions), *calls], missed_limit
            )
            numbers = {key for call in newest if (key := stats.caller_key(call)) is not None}
            following = [
                *followers(connection, *bounds, conditions, sorted(numbers)),
                *(call for call in calls if stats.contact_key(call) in numbers),
            ]
            missed = stats.missed_calls(newest + following, missed_limit)
    callback_totals, callback_groups = _callbacks(summary, rules, country_of, calls, candidates)
    for group_key, row in placed:
        if group_by is None or (group_by in stats.UNGROUPED_OUTBOUND and row.outbound):
            add_counts(summary.totals, summary.levels, row)
        else:
            add_counts(*summary.group(group_key), row)
            tally = callback_groups.setdefault(group_key, CallbackTally(rules.callback_minutes))
            tally.missed_callers += row.missed_callers
        if group_by != "extension":  # its totals are counted apart
            callback_totals.missed_callers += row.missed_callers
    for row in totals_rows:
        add_counts(summary.totals, summary.levels, row)
        callback_totals.missed_callers += row.missed_callers
    for call in calls:
        summary.add(call, callbacks=False)
    return summary.answer((callback_totals, callback_groups)), missed


def _read_in_their_countries(
    connection: sa.Connection,
    conditions: list[sa.ColumnElement[bool]],
    rows: list[FigureCounts],
    window: HistoryWindow,
    country_of: Callable[[str], str],
) -> bool:
    """Were the counted calls' numbers read in their tenant's country now? One
    tenant: the counts say; several: the database is asked."""
    if len(window.tenants) == 1:
        country = country_of(window.tenants[0])
        return all(row.key_countries == (country, country, row.calls) for row in rows)
    countries = key_countries(connection, conditions)
    return all(country == country_of(tenant) for tenant, country in countries)


def _callbacks(
    summary: stats.Summary,
    rules: FigureRules,
    country_of: Callable[[str], str],
    calls: Iterable[OutcomeRecord],
    candidates: list[OutcomeRecord],
) -> tuple[CallbackTally, dict[Key, CallbackTally]]:
    """The callback figures of the folded calls and the counted ``candidates``, less
    the candidates' missed callers (the counts hold them)."""
    recovery = CallbackRecovery(rules, country_of)
    for call in [*candidates, *calls]:
        recovery.add(call, summary.keys_of(call))
    totals, groups = recovery.tally()
    for call in candidates:
        if _kind(call, country_of) is ContactKind.MISSED:
            totals.missed_callers -= 1
            for key in summary.keys_of(call) or ():
                groups.setdefault(key, CallbackTally(rules.callback_minutes)).missed_callers -= 1
    return totals, groups


def _kind(call: OutcomeRecord, country_of: Callable[[str], str]) -> ContactKind | None:
    try:
        contact = contact_of_record(call, country_of(call["tenant_id"]))
    except (KeyError, ValueError):
        return None
    return contact.kind if contact is not None else None


def _contact_numbers(
    calls: Iterable[OutcomeRecord], country_of: Callable[[str], str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(tenant, number) of the folded calls' missed callers, and of the numbers they reached."""
    missed: set[tuple[str, str]] = set()
    reaching: set[tuple[str, str]] = set()
    for call in calls:
        try:
            contact = contact_of_record(call, country_of(call["tenant_id"]))
        except (KeyError, ValueError):
            continue
        if contact is None:
            continue
        found = missed if contact.kind is ContactKind.MISSED else reaching
        found.add((call["tenant_id"], contact.number))
    return sorted(missed), sorted(reaching)


def _newest_missed(calls: Iterable[OutcomeRecord], limit: int) -> list[OutcomeRecord]:
    """The ``limit`` newest inbound missed calls (``stats.missed_order``)."""
    newest: list[tuple[Any, int, OutcomeRecord]] = []
    order = count()
    for call in calls:
        if stats.is_missed_inbound(call):
            item = (stats.missed_order(call), next(order), call)
            if len(newest) < limit:
                heapq.heappush(newest, item)
            else:
                heapq.heappushpop(newest, item)
    return [call for _, _, call in newest]


def _call(record: OutcomeRecord) -> tuple[str, str]:
    return (record["tenant_id"], record["call_uuid"])
