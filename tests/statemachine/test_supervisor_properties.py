"""Property tests of the supervisor's view: the board, callbacks and timeline over many calls.

Generated input reuses test_properties' calls: realistic ``scenarios()``
re-keyed into several calls that overlap in time (so one extension can ring
in two calls at once, and a call-back can come before, during or after a
miss), and ``chaotic_event``s spread over a few calls (many ties).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_properties import T0, TENANT, chaotic_event, scenarios

from statemachine.callbacks import (
    ContactKind,
    ResolutionKind,
    callback_id,
    callback_items,
    contact_from_json,
    contact_of,
    contact_of_record,
    tenant_callbacks,
)
from statemachine.events import CallEvent, ExtensionRinging, OutboundCallPlaced
from statemachine.extensions import (
    ExtensionState,
    Leg,
    LegState,
    extension_board,
    leg_from_json,
    legs_of,
    tenant_board,
)
from statemachine.outcome import outcome_record
from statemachine.phone_numbers import e164
from statemachine.state import CallFacts, CallView, facts_of, fold
from statemachine.tenant import TenantFacts, fold_tenant, tenant_facts_of
from statemachine.timeline import RUNG_TOGETHER, OutcomeRevision, StepKind, timeline

SETTINGS = settings(max_examples=150, deadline=None)
COUNTRY = "1"
DAY_START = T0 - timedelta(days=1)
# Numbers an outbound call may dial: three of them are the generated callers'.
DIALLED = ["+15551234567", "1 (555) 123-4567", "5551234567", "+15559876543", "911", ""]


@st.composite
def overlapping_calls(draw: st.DrawFn) -> list[CallEvent]:
    """Up to four realistic calls of one tenant, starting within two minutes of each other."""
    events: list[CallEvent] = []
    for index in range(draw(st.integers(1, 4))):
        scenario = draw(scenarios())
        if not scenario.events:
            continue
        start = T0 + timedelta(seconds=draw(st.sampled_from([0, 1, 5, 30, 120])))
        shift = start - scenario.events[0].received_at
        dialled = draw(st.sampled_from(DIALLED))
        for event in scenario.events:
            moved = replace(event, call_uuid=f"call-{index}", received_at=event.received_at + shift)
            if isinstance(moved, OutboundCallPlaced):
                moved = replace(moved, number_dialed=dialled)
            events.append(moved)
    return events


chaotic_calls = st.lists(
    st.tuples(chaotic_event, st.sampled_from(["a", "b", "c"])).map(
        lambda pair: replace(pair[0], call_uuid=pair[1])
    ),
    min_size=1,
    max_size=14,
)
many_calls = st.one_of(overlapping_calls(), chaotic_calls)


def board_json(facts: TenantFacts) -> dict[str, Any]:
    return {n: s.as_json() for n, s in tenant_board(facts, DAY_START).items()}


def callbacks_json(facts: TenantFacts) -> list[dict[str, Any]]:
    return [item.as_json() for item in tenant_callbacks(facts, COUNTRY)]


def derived(events: list[CallEvent]) -> tuple[Any, ...]:
    facts = fold_tenant(TENANT, events)
    return board_json(facts), callbacks_json(facts)


# -- order, duplicates, fold vs merge -----------------------------------------------------


@SETTINGS
@given(data=st.data(), events=many_calls)
def test_any_order_and_duplicates_same_board_and_callbacks(
    data: st.DataObject, events: list[CallEvent]
) -> None:
    """Any arrival order of many calls' events, with any duplicates, gives the same view."""
    # (sampled_from refuses an empty list: no events, no duplicates)
    again = st.lists(st.sampled_from(events), max_size=6) if events else st.just([])
    duplicates = data.draw(again, label="duplicates")
    shuffled = data.draw(st.permutations(events + duplicates), label="arrival order")
    assert fold_tenant(TENANT, shuffled) == fold_tenant(TENANT, events)
    assert derived(shuffled) == derived(events)


@SETTINGS
@given(data=st.data(), events=many_calls)
def test_fold_equals_merging_one_by_one(data: st.DataObject, events: list[CallEvent]) -> None:
    """Folding the events equals merging each event's facts one by one, in any order."""
    order = data.draw(st.permutations(events), label="merge order")
    one_by_one = functools.reduce(
        lambda facts, event: facts.merge(tenant_facts_of(event)), order, TenantFacts(TENANT)
    )
    assert one_by_one == fold_tenant(TENANT, events)


@SETTINGS
@given(x=many_calls, y=many_calls, z=many_calls)
def test_tenant_merge_laws(x: list[CallEvent], y: list[CallEvent], z: list[CallEvent]) -> None:
    """Merging tenants' facts is commutative, associative and idempotent, with an identity."""
    fx, fy, fz = (fold_tenant(TENANT, events) for events in (x, y, z))
    assert fx.merge(fy) == fy.merge(fx)
    assert fx.merge(fy).merge(fz) == fx.merge(fy.merge(fz))
    assert fx.merge(fx) == fx
    assert TenantFacts(TENANT).merge(fx) == fx == fx.merge(TenantFacts(TENANT))


@SETTINGS
@given(data=st.data(), events=many_calls)
def test_a_store_keeping_legs_and_contacts_per_call_agrees(
    data: st.DataObject, events: list[CallEvent]
) -> None:
    """A store that, event by event, replaces the touched call's legs and contact (kept as
    JSON) ends with the board and callbacks of the whole fold."""
    order = data.draw(st.permutations(events), label="arrival order")
    facts: dict[str, CallFacts] = {}
    legs: dict[str, list[dict[str, Any]]] = {}
    contacts: dict[str, dict[str, Any]] = {}
    for event in order:
        uuid = event.call_uuid
        facts[uuid] = facts.get(uuid, CallFacts(TENANT, uuid)).merge(facts_of(event))
        view = CallView(facts[uuid])
        legs[uuid] = [leg.as_json() for leg in legs_of(view)]
        contact = contact_of(view, COUNTRY)
        if contact is None:
            contacts.pop(uuid, None)
        else:
            contacts[uuid] = contact.as_json()
    kept_legs = [leg_from_json(leg) for call_legs in legs.values() for leg in call_legs]
    board = {n: s.as_json() for n, s in extension_board(kept_legs, DAY_START).items()}
    items = callback_items(TENANT, (contact_from_json(c) for c in contacts.values()))
    assert (board, [i.as_json() for i in items]) == derived(events)


# -- what the board and legs promise -------------------------------------------------------


def check_leg(leg: Leg) -> None:
    """The invariants of one leg."""
    ended = leg.state is LegState.ENDED
    assert ended == (leg.ended_at is not None)
    assert leg.since is not None or ended
    if ended:
        assert leg.since == leg.ended_at
    else:
        assert leg.talk_seconds is None and not leg.missed
    if leg.started_at is not None and leg.ended_at is not None:
        assert leg.started_at <= leg.ended_at
    if leg.answered_at is not None and leg.ended_at is not None:
        assert leg.answered_at <= leg.ended_at
    assert not (leg.answered and leg.missed)
    assert not (leg.placed and (leg.answered or leg.missed))
    assert leg.talk_seconds is None or leg.talk_seconds >= 0
    if leg.state is LegState.ON_CALL:
        assert leg.placed or leg.answered


@SETTINGS
@given(events=many_calls)
def test_legs_and_board_are_consistent(events: list[CallEvent]) -> None:
    """Every leg obeys the leg rules; every extension's state agrees with its legs."""
    facts = fold_tenant(TENANT, events)
    all_legs = [leg for view in facts.views() for leg in legs_of(view)]
    for leg in all_legs:
        check_leg(leg)
    board = tenant_board(facts, DAY_START)
    assert set(board) == {leg.extension.number for leg in all_legs}
    for number, status in board.items():
        mine = [leg for leg in all_legs if leg.extension.number == number]
        open_legs = [leg for leg in mine if leg.state is not LegState.ENDED]
        assert set(status.calls) == {leg.call_uuid for leg in open_legs}
        assert status.state is not ExtensionState.UNKNOWN
        if status.state is ExtensionState.IDLE:
            assert not open_legs and status.call_uuid is None
            assert status.since == max(leg.ended_at for leg in mine if leg.ended_at)
        else:
            assert status.call_uuid in status.calls and status.since is not None
            on_call = any(leg.state is LegState.ON_CALL for leg in open_legs)
            assert (status.state is ExtensionState.ON_CALL) == on_call
        today = status.today
        assert 0 <= today.answered <= sum(leg.answered for leg in mine)
        assert 0 <= today.missed <= sum(leg.missed for leg in mine)
        assert 0 <= today.outbound <= sum(leg.placed for leg in mine)
        assert today.talk_seconds >= 0


@SETTINGS
@given(events=overlapping_calls())
def test_realistic_calls_leave_no_leg_open_once_ended(events: list[CallEvent]) -> None:
    """Once a call has ended by HangupCall or timeout, none of its legs is open."""
    for view in fold_tenant(TENANT, events).views():
        if view.facts.hangup is not None or view.facts.timed_out_at is not None:
            assert all(leg.state is LegState.ENDED for leg in legs_of(view))


# -- what callbacks promise ---------------------------------------------------------------


@SETTINGS
@given(events=many_calls)
def test_callbacks_follow_the_rules(events: list[CallEvent]) -> None:
    """Each item is a miss; a resolved one was reached at or after the miss by the first such
    call; an open one was reached by no call at or after it."""
    facts = fold_tenant(TENANT, events)
    contacts = [c for v in facts.views() if (c := contact_of(v, COUNTRY)) is not None]
    reached = [c for c in contacts if c.kind is not ContactKind.MISSED]
    items = tenant_callbacks(facts, COUNTRY)
    assert [i.missed_call_uuid for i in items] == sorted(
        (c.call_uuid for c in contacts if c.kind is ContactKind.MISSED),
        key=lambda uuid: next((c.at, callback_id(TENANT, uuid)) for c in contacts
                              if c.call_uuid == uuid),
    )  # fmt: skip
    for item in items:
        assert item.id == callback_id(TENANT, item.missed_call_uuid)
        assert item.number == e164(item.number, COUNTRY)
        later = [c for c in reached if c.number == item.number and c.at >= item.missed_at]
        if not later:
            assert item.resolution is None
            continue
        first = min(later, key=lambda c: (c.at, c.call_uuid))
        assert item.resolution is not None
        assert item.resolution.kind is not ResolutionKind.MANUAL
        assert (item.resolution.at, item.resolution.call_uuid) == (first.at, first.call_uuid)


@SETTINGS
@given(events=overlapping_calls())
def test_contact_from_record_agrees_with_contact_from_view(events: list[CallEvent]) -> None:
    """An ended call's contact is the same from its view and from its outcome record."""
    for view in fold_tenant(TENANT, events).views():
        if view.ended_at is not None:
            record = {**outcome_record(view), "id": "1-0", "revision": 1}
            assert contact_of_record(record, COUNTRY) == contact_of(view, COUNTRY)


# -- what the timeline promises -----------------------------------------------------------


def step_starts(log: list[CallEvent]) -> list[datetime]:
    """When each told step begins, by the rule: a ring within RUNG_TOGETHER of the first ring
    of an unbroken run of rings joins that ring's step; every other event is a step."""
    starts: list[datetime] = []
    first_ring: datetime | None = None
    for event in log:
        if is_ring(event) and first_ring and event.received_at - first_ring <= RUNG_TOGETHER:
            continue
        starts.append(event.received_at)
        first_ring = event.received_at if is_ring(event) else None
    return starts


def is_ring(event: CallEvent) -> bool:
    return isinstance(event, ExtensionRinging) and bool(event.extension.number)


@SETTINGS
@given(scenario=scenarios(), decided=st.lists(st.integers(0, 10**6), max_size=3))
def test_timeline_tells_every_event_once(scenario: Any, decided: list[int]) -> None:
    """Every event of the log is told in received order, with lengths never negative; each
    outcome revision is one step, where its time puts it."""
    log = list(scenario.events)
    view = CallView(fold(TENANT, log[0].call_uuid if log else "none", log))
    revisions = [
        OutcomeRevision(n + 1, T0 + timedelta(seconds=s), "missed", "abandoned")
        for n, s in enumerate(sorted(decided))
    ]
    steps = timeline(log, revisions)
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    assert all(s.text and (s.seconds is None or s.seconds >= 0) for s in steps)
    told = [s for s in steps if s.kind not in {StepKind.TALK, StepKind.OUTCOME}]
    assert [s.at for s in told] == step_starts(log)
    assert [s.at for s in told] == sorted(s.at for s in told)
    assert sum(s.kind is StepKind.OUTCOME for s in steps) == len(revisions)
    talks = [s for s in steps if s.kind is StepKind.TALK]
    assert len(talks) <= len(legs_of(view))
    assert timeline(log, revisions) == steps  # a function of its input


# -- what number reading promises --------------------------------------------------------

national = st.tuples(st.sampled_from("23456789"), st.text("0123456789", min_size=9, max_size=9))


@SETTINGS
@given(number=national, separator=st.sampled_from(["", " ", "-", "."]))
def test_every_nanp_writing_reads_the_same(number: tuple[str, str], separator: str) -> None:
    """A NANP number reads the same with or without +1 or 1, with any separators."""
    digits = "".join(number)
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    grouped = separator.join([area, exchange, line])
    writings = [digits, "1" + digits, "+1" + digits, grouped, f"1{separator}{grouped}",
                f"+1{separator}{grouped}", f"({area}) {exchange}-{line}", f"011 1 {grouped}"]
    assert {e164(w, COUNTRY) for w in writings} == {"+1" + digits}


@SETTINGS
@given(text=st.text(max_size=20), country=st.sampled_from(["", "1", "44", "49", "353"]))
def test_a_read_number_reads_as_itself(text: str, country: str) -> None:
    """Whatever the input, a number read is + and 7 to 15 digits, and reads as itself again."""
    number = e164(text, country)
    if number is not None:
        assert number[0] == "+" and number[1:].isdigit() and 7 <= len(number) - 1 <= 15
        assert e164(number, country) == number
