"""Property tests of the call model: the fold is order-free, the rules consistent.

Two kinds of generated input:

- ``scenarios()``: realistic calls (inbound with or without the phone-number
  webhooks, queue, ring group, rings, answer, transfer, voicemail, hangup,
  outbound, timeout) with non-decreasing received_at times, together with what
  the contract's rules say their outcome is;
- ``chaotic_events()``: any events of one call, on a handful of moments and
  values, so that ties (same time, different values) are frequent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine.events import (
    CallEvent,
    CallTimedOut,
    Did,
    ExtensionAnswered,
    ExtensionCallEnded,
    ExtensionRinging,
    HangupCall,
    InboundCall,
    OutboundCallPlaced,
    Party,
    QueueEntered,
    RingGroupEntered,
    UnknownCallEvent,
    VoicemailLeft,
)
from statemachine.outcome import classify, outcome_record
from statemachine.state import CallFacts, CallView, apply, facts_of, fold
from statemachine.stored_facts import facts_from_json, facts_to_json

TENANT = "t1"
UUID = "7b2c1e9a-0000-4000-8000-000000000001"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
TIMEOUT = timedelta(hours=4)
EXTENSIONS = ["101", "102", "103", "110", "2001"]
EXT_NAMES = {"101": "Alice", "102": "Bob Jones", "103": "Zoë Ñ", "110": "Front Desk"}
OUTCOMES = {"answered", "voicemail", "missed", "outbound"}
MISSED_REASONS = {"abandoned", "no_answer", "unrouted"}
END_EVENTS = (HangupCall, ExtensionCallEnded, VoicemailLeft)

SETTINGS = settings(max_examples=300, deadline=None)

callers = st.builds(
    Party,
    st.sampled_from(["+15551234567", "5551234567", "anonymous", ""]),
    st.sampled_from(["Ada Lovelace", "O'Brien, Zoë", ""]),
)
dids = st.builds(
    Did,
    st.sampled_from(["+15550001111", "+15550002222"]),
    st.sampled_from(["Main line", ""]),
    st.sampled_from(["Sales", ""]),
)
extension_numbers = st.sampled_from(EXTENSIONS)


def extension(number: str) -> Party:
    return Party(number, EXT_NAMES.get(number, ""))


@dataclass(frozen=True)
class Scenario:
    """A generated call and what the rules say about it."""

    events: tuple[CallEvent, ...]
    outcome: str
    missed_reason: str | None


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A realistic call: events in the order they happened, times non-decreasing."""
    container = draw(st.sampled_from(["c1", "container-42"]))
    caller = draw(callers)
    clock = T0 + timedelta(seconds=draw(st.integers(0, 365 * 86400)))
    events: list[CallEvent] = []

    def add(cls: type[CallEvent], **kwargs: Any) -> None:
        nonlocal clock
        # 0 ms steps happen: two webhooks received in the same microsecond.
        clock += timedelta(microseconds=draw(st.sampled_from([0, 1, 1000, 250_000, 3_000_000])))
        kwargs.setdefault("caller", caller)
        events.append(
            cls(
                tenant_id=TENANT,
                container_id=container,
                received_at=clock,
                call_uuid=UUID,
                **kwargs,
            )
        )

    def maybe_unknown() -> None:
        if draw(st.integers(0, 9)) == 0:
            add(UnknownCallEvent, original_type="callParked")

    if draw(st.integers(0, 3)) == 0:
        placer = draw(extension_numbers)
        add(
            OutboundCallPlaced,
            caller=Party(placer, ""),
            extension=extension(placer),
            number_dialed=draw(st.sampled_from(["+15559876543", "911", ""])),
        )
        maybe_unknown()
        if draw(st.booleans()):
            add(ExtensionAnswered, caller=Party(placer, ""), extension=extension(placer))
        if draw(st.booleans()):
            add(ExtensionCallEnded, caller=Party(placer, ""), extension=extension(placer))
        if draw(st.booleans()):
            add(CallTimedOut, caller=Party())
        return Scenario(tuple(events), "outbound", None)

    if draw(st.integers(0, 4)) > 0:
        add(InboundCall, did=draw(dids), cid_prefix=draw(st.sampled_from(["", "VIP "])))
    queued = draw(st.booleans())
    if queued:
        queue = draw(st.sampled_from(["500", "q1"]))
        add(QueueEntered, caller=Party(caller.number, ""), queue=queue)
    grouped = draw(st.booleans())
    if grouped:
        add(RingGroupEntered, caller=Party(caller.number, ""), ring_group="600")
    maybe_unknown()
    rung = draw(st.lists(extension_numbers, max_size=4))
    for number in rung:
        add(ExtensionRinging, caller=Party(caller.number, ""), extension=extension(number))
    answerer = draw(st.none() | (st.sampled_from(rung) if rung else extension_numbers))
    answer_event = answerer is not None and draw(st.integers(0, 3)) > 0
    if answer_event:
        assert answerer is not None
        add(ExtensionAnswered, extension=extension(answerer))
    for number in set(rung) - {answerer}:
        if draw(st.booleans()):  # declined, or stopped ringing when someone answered
            add(ExtensionCallEnded, extension=extension(number))
    maybe_unknown()
    if answer_event and draw(st.integers(0, 3)) == 0:
        # Transfer: the answerer's leg ends, another extension rings (and may answer).
        assert answerer is not None
        add(ExtensionCallEnded, extension=extension(answerer))
        target = draw(extension_numbers)
        add(ExtensionRinging, caller=Party(caller.number, ""), extension=extension(target))
        rung.append(target)
        if draw(st.booleans()):
            add(ExtensionAnswered, extension=extension(target))
            answerer = target
    voicemail = draw(st.integers(0, 3)) == 0
    if voicemail:
        box = draw(st.sampled_from(rung) if rung else extension_numbers)
        add(VoicemailLeft, extension=extension(box))
    elif answerer is not None and draw(st.booleans()):
        add(ExtensionCallEnded, extension=extension(answerer))
    hangup_names = False
    if draw(st.integers(0, 3)) > 0:
        hangup_names = answerer is not None and draw(st.booleans())
        named = extension(answerer) if hangup_names and answerer is not None else Party()
        add(HangupCall, extension=named)
    maybe_unknown()
    if draw(st.integers(0, 4)) == 0:
        events.append(
            CallTimedOut(
                tenant_id=TENANT,
                container_id=container,
                received_at=clock + TIMEOUT,
                call_uuid=UUID,
            )
        )

    if answer_event or hangup_names:
        return Scenario(tuple(events), "answered", None)
    if voicemail:
        return Scenario(tuple(events), "voicemail", None)
    if queued:
        return Scenario(tuple(events), "missed", "abandoned")
    if rung or grouped:
        return Scenario(tuple(events), "missed", "no_answer")
    return Scenario(tuple(events), "missed", "unrouted")


# -- chaotic events: few values, many ties ---------------------------------------
moments = st.integers(0, 4).map(lambda s: T0 + timedelta(seconds=s))
small_parties = st.builds(
    Party, st.sampled_from(["", "101", "102"]), st.sampled_from(["", "A", "B"])
)


def _call_event(cls: type[CallEvent], **extra: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(
        cls,
        tenant_id=st.just(TENANT),
        container_id=st.sampled_from(["", "c1", "c2"]),
        received_at=moments,
        call_uuid=st.just(UUID),
        caller=small_parties,
        **extra,
    )


chaotic_event: st.SearchStrategy[CallEvent] = st.one_of(
    _call_event(InboundCall, did=st.builds(Did, st.sampled_from(["1", "2"])),
                cid_prefix=st.sampled_from(["", "x"])),
    _call_event(HangupCall, extension=small_parties),
    _call_event(ExtensionRinging, extension=small_parties),
    _call_event(RingGroupEntered, ring_group=st.sampled_from(["", "600", "601"])),
    _call_event(QueueEntered, queue=st.sampled_from(["", "500", "501"])),
    _call_event(ExtensionAnswered, extension=small_parties),
    _call_event(ExtensionCallEnded, extension=small_parties),
    _call_event(VoicemailLeft, extension=small_parties),
    _call_event(OutboundCallPlaced, extension=small_parties,
                number_dialed=st.sampled_from(["", "911", "+1555"])),
    _call_event(CallTimedOut),
    _call_event(UnknownCallEvent, original_type=st.just("x")),
)
chaotic_events = st.lists(chaotic_event, min_size=1, max_size=10)
any_events = st.one_of(scenarios().map(lambda s: list(s.events)), chaotic_events)


# -- helpers ------------------------------------------------------------------------
def record_or_none(view: CallView) -> dict[str, Any] | None:
    """The outcome record of an ended call, None for a live one."""
    if view.ended_at is None:
        return None
    return outcome_record(view)


def summary(events: list[CallEvent]) -> tuple[CallFacts, dict[str, Any], Any]:
    return summary_of(fold(TENANT, UUID, events))


def summary_of(facts: CallFacts) -> tuple[CallFacts, dict[str, Any], Any]:
    view = CallView(facts)
    return facts, view.as_json(), (classify(view), record_or_none(view))


# -- (a) arrival order and duplicates do not matter ---------------------------------
@SETTINGS
@given(data=st.data(), events=any_events)
def test_any_order_and_duplicates_fold_the_same(
    data: st.DataObject, events: list[CallEvent]
) -> None:
    """Any permutation of a call's events, with any duplicates, gives the same facts and record."""
    some_of_them = st.lists(st.sampled_from(events), max_size=6) if events else st.just([])
    duplicates = data.draw(some_of_them, label="duplicates")
    shuffled = data.draw(st.permutations(events + duplicates), label="arrival order")
    assert summary(shuffled) == summary(events)


# -- (b) fold equals stepwise apply ---------------------------------------------------
@SETTINGS
@given(data=st.data(), events=any_events)
def test_fold_equals_apply_one_by_one(data: st.DataObject, events: list[CallEvent]) -> None:
    """Folding the log at once equals applying its events one by one, in any order, from empty."""
    order = data.draw(st.permutations(events), label="apply order")
    facts = CallFacts(TENANT, UUID)
    for event in order:
        facts = apply(facts, event)
    assert facts == fold(TENANT, UUID, events)


@SETTINGS
@given(data=st.data(), events=any_events)
def test_fold_of_parts_merges_to_fold_of_whole(
    data: st.DataObject, events: list[CallEvent]
) -> None:
    """Folding two parts of a log separately and merging them equals folding the whole log."""
    cut = data.draw(st.integers(0, len(events)), label="cut")
    left, right = fold(TENANT, UUID, events[:cut]), fold(TENANT, UUID, events[cut:])
    whole = fold(TENANT, UUID, events)
    assert left.merge(right) == whole
    assert right.merge(left) == whole


@SETTINGS
@given(data=st.data(), events=any_events)
def test_stored_facts_with_new_batches_merge_to_fold_of_whole(
    data: st.DataObject, events: list[CallEvent]
) -> None:
    """The engine's linear fold: facts stored as JSON after each batch, read back and
    merged with the next batch, in any arrival order and any batching, equal the
    fold of the whole log (and give the same view and outcome)."""
    order = data.draw(st.permutations(events), label="arrival order")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(order)), max_size=4), label="cuts"))
    stored = facts_to_json(CallFacts(TENANT, UUID))
    for start, end in zip([0, *cuts], [*cuts, len(order)], strict=True):
        facts = facts_from_json(TENANT, UUID, json.loads(json.dumps(stored)))
        assert facts is not None
        stored = facts_to_json(facts.merge(fold(TENANT, UUID, order[start:end])))
    facts = facts_from_json(TENANT, UUID, stored)
    assert facts is not None
    assert summary_of(facts) == summary(events)


@SETTINGS
@given(events=any_events)
def test_stored_facts_read_back_equal(events: list[CallEvent]) -> None:
    """Facts stored as JSON read back equal, and a form not ours reads as None (refold)."""
    facts = fold(TENANT, UUID, events)
    stored = json.loads(json.dumps(facts_to_json(facts)))
    assert facts_from_json(TENANT, UUID, stored) == facts
    assert facts_from_json(TENANT, UUID, {**stored, "format": -1}) is None


# -- (c) merge laws ---------------------------------------------------------------------
@SETTINGS
@given(a=chaotic_event, b=chaotic_event, c=chaotic_event)
def test_merge_laws_on_event_facts(a: CallEvent, b: CallEvent, c: CallEvent) -> None:
    """Merging facts of events is commutative, associative, idempotent, with an identity."""
    fa, fb, fc = facts_of(a), facts_of(b), facts_of(c)
    assert fa.merge(fb) == fb.merge(fa)
    assert fa.merge(fb).merge(fc) == fa.merge(fb.merge(fc))
    assert fa.merge(fa) == fa
    assert fa.merge(fb).merge(fb) == fa.merge(fb)
    empty = CallFacts(TENANT, UUID)
    assert empty.merge(fa) == fa
    assert fa.merge(empty) == fa


@SETTINGS
@given(x=any_events, y=any_events, z=any_events)
def test_merge_laws_on_folded_facts(
    x: list[CallEvent], y: list[CallEvent], z: list[CallEvent]
) -> None:
    """The merge laws hold for the facts of whole logs, not only of single events."""
    fx, fy, fz = (fold(TENANT, UUID, events) for events in (x, y, z))
    assert fx.merge(fy) == fy.merge(fx)
    assert fx.merge(fy).merge(fz) == fx.merge(fy.merge(fz))
    assert fx.merge(fx) == fx


# -- (d) outcome rules are consistent -------------------------------------------------
def check_record(record: dict[str, Any], view: CallView) -> None:
    """The invariants every outcome record must satisfy."""
    outcome = record["outcome"]
    assert outcome in OUTCOMES
    assert (record["missed_reason"] is not None) == (outcome == "missed")
    assert record["missed_reason"] is None or record["missed_reason"] in MISSED_REASONS
    assert (outcome == "outbound") == (record["direction"] == "outbound")
    assert (record["voicemail_box"] is not None) == (outcome == "voicemail")
    assert record["ended_by"] in {"hangup", "timeout"}
    assert record["ended_at"] is not None
    if outcome == "answered":
        assert record["answered_by"] is not None
    if record["answered_by"] is None:
        assert record["talk_seconds"] == 0
        assert record["answered_at"] is None
    if record["answered_by"] is not None and record["answered_at"] is None:
        assert record["wait_seconds"] is None and record["talk_seconds"] is None
    if record["started_at"] is not None:
        assert record["started_at"] <= record["ended_at"]
        if record["answered_at"] is not None or record["answered_by"] is None:
            assert record["wait_seconds"] is not None and record["wait_seconds"] >= 0
    if record["answered_at"] is not None:
        assert record["talk_seconds"] is not None and record["talk_seconds"] >= 0
        assert record["started_at"] <= record["answered_at"]
    numbers = [p["number"] for p in record["rang"]]
    assert len(numbers) == len(set(numbers))
    assert view.status.value == "ended" and not view.is_live


@SETTINGS
@given(events=any_events)
def test_outcome_records_are_consistent(events: list[CallEvent]) -> None:
    """Every ended call's record obeys the contract's field rules; live calls have none."""
    view = CallView(fold(TENANT, UUID, events))
    if view.ended_at is None:
        assert view.status.value in {"new", "queued", "ringing", "answered", "dialing"}
        assert view.ended_by is None
        return
    check_record(outcome_record(view), view)


# -- (e) the rules, restated on the scenario ---------------------------------------
def expected_ended_by(events: tuple[CallEvent, ...]) -> str | None:
    """The contract's end rule, computed from the events as generated."""
    if any(isinstance(e, HangupCall) for e in events):
        return "hangup"
    inbound_seen = any(isinstance(e, InboundCall) for e in events)
    outbound = any(isinstance(e, OutboundCallPlaced) for e in events)
    ended = {
        e.extension.number for e in events if isinstance(e, ExtensionCallEnded | VoicemailLeft)
    }
    answered = {
        e.extension.number
        for e in events
        if isinstance(e, ExtensionAnswered) and e.extension.number
    }
    # Order-free: every extension that answered has ended its leg.
    if ended and (outbound or not inbound_seen) and answered <= ended:
        return "hangup"
    if any(isinstance(e, CallTimedOut) for e in events):
        return "timeout"
    return None


@SETTINGS
@given(scenario=scenarios())
def test_scenario_outcome_follows_rules(scenario: Scenario) -> None:
    """A generated call gets the outcome, missed reason and end the contract's rules give it."""
    view = CallView(fold(TENANT, UUID, scenario.events))
    outcome, reason = classify(view)
    assert outcome.value == scenario.outcome
    assert (reason.value if reason else None) == scenario.missed_reason
    ended_by = expected_ended_by(scenario.events)
    assert (view.ended_by.value if view.ended_by else None) == ended_by
    if ended_by is None:
        assert view.ended_at is None
        # Live, unless nothing but unknown events was seen (the call never started).
        assert view.is_live == (view.started_at is not None)
        return
    record = outcome_record(view)
    assert record["outcome"] == scenario.outcome
    assert record["missed_reason"] == scenario.missed_reason
    assert record["ended_by"] == ended_by
    check_record(record, view)
