"""Table tests of the outcome rules and the live state, on the pure call model.

Each scenario is a list of typed events of one call (times are seconds after
``T0``); the expected values restate the contract's rules (CONTRACT.md,
"Outcome records") for that scenario.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

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
    isoformat,
)
from statemachine.outcome import classify, outcome_record
from statemachine.state import CallFacts, CallView, apply, facts_of, fold

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TENANT = "t1"
CONTAINER = "c1"
UUID = "call-0001"
CALLER = Party("+15551234567", "Zoë O'Brien-Müller")
DID = Did("+15550001111", "Main line", "Sales")
EXT = {"101": "Alice Smith", "102": "Bob Jones", "103": "Carol & Co."}
TIMEOUT_AFTER = 4 * 3600.0


def at(seconds: float) -> datetime:
    """The moment ``seconds`` after the start of every scenario."""
    return T0 + timedelta(seconds=seconds)


def ext(number: str) -> Party:
    """The extension ``number`` with its display name."""
    return Party(number, EXT.get(number, ""))


def common(seconds: float) -> dict[str, object]:
    return {
        "tenant_id": TENANT,
        "container_id": CONTAINER,
        "received_at": at(seconds),
        "call_uuid": UUID,
    }


def inbound(s: float, caller: Party = CALLER) -> InboundCall:
    return InboundCall(**common(s), caller=caller, did=DID, cid_prefix="VIP")  # type: ignore[arg-type]


def hangup(s: float, number: str = "") -> HangupCall:
    extension = ext(number) if number else Party()
    return HangupCall(**common(s), caller=CALLER, extension=extension)  # type: ignore[arg-type]


def ring(s: float, number: str, caller: Party = CALLER) -> ExtensionRinging:
    # ringAttempt carries callerIdNum only.
    return ExtensionRinging(  # type: ignore[arg-type]
        **common(s), caller=Party(caller.number, ""), extension=ext(number)
    )


def ring_group(s: float, group: str) -> RingGroupEntered:
    return RingGroupEntered(  # type: ignore[arg-type]
        **common(s), caller=Party(CALLER.number, ""), ring_group=group
    )


def queue(s: float, name: str) -> QueueEntered:
    return QueueEntered(**common(s), caller=Party(CALLER.number, ""), queue=name)  # type: ignore[arg-type]


def answered(s: float, number: str) -> ExtensionAnswered:
    return ExtensionAnswered(**common(s), caller=CALLER, extension=ext(number))  # type: ignore[arg-type]


def ext_ended(s: float, number: str) -> ExtensionCallEnded:
    return ExtensionCallEnded(**common(s), caller=CALLER, extension=ext(number))  # type: ignore[arg-type]


def voicemail(s: float, number: str) -> VoicemailLeft:
    return VoicemailLeft(**common(s), caller=CALLER, extension=ext(number))  # type: ignore[arg-type]


def outbound(s: float, number: str, dialed: str = "+15559876543") -> OutboundCallPlaced:
    return OutboundCallPlaced(  # type: ignore[arg-type]
        **common(s), caller=Party(number, ""), extension=ext(number), number_dialed=dialed
    )


def timed_out(s: float) -> CallTimedOut:
    return CallTimedOut(**common(s))  # type: ignore[arg-type]


def unknown(s: float) -> UnknownCallEvent:
    return UnknownCallEvent(  # type: ignore[arg-type]
        **common(s), caller=Party("+19999999999", "Someone Else"), original_type="callParked"
    )


def view_of(events: list[CallEvent]) -> CallView:
    return CallView(fold(TENANT, UUID, events))


@dataclass(frozen=True)
class Expect:
    """What the rules say about one scenario (``outcome`` is ``classify``'s, live or not)."""

    state: str
    outcome: str
    missed_reason: str | None = None
    answered_by: str | None = None
    voicemail_box: str | None = None
    ended_by: str | None = None
    ended_at: float | None = None
    answered_at: float | None = None
    wait: float | None = None
    talk: float | None = None
    direction: str = "inbound"


SCENARIOS: list[tuple[str, list[CallEvent], Expect]] = [
    (
        "plain-answered",
        [inbound(0), ring(2, "101"), answered(6, "101"), ext_ended(66, "101"), hangup(66.5, "101")],
        Expect("ended", "answered", None, "101", None, "hangup", 66.5, 6, 6, 60.5),
    ),
    (
        "answered-via-queue",
        [
            inbound(0),
            queue(1, "500"),
            ring(10, "101"),
            ring(10, "102"),
            answered(15, "102"),
            ext_ended(15.2, "101"),
            hangup(75, "102"),
        ],
        Expect("ended", "answered", None, "102", None, "hangup", 75, 15, 15, 60),
    ),
    (
        "answered-hangup-names-ext-after-ring",
        [inbound(0), ring(4, "101"), hangup(64, "101")],
        Expect("ended", "answered", None, "101", None, "hangup", 64, 4, 4, 60),
    ),
    (
        "answered-hangup-names-ext-never-rang",
        [inbound(0), hangup(30, "101")],
        Expect("ended", "answered", None, "101", None, "hangup", 30, None, None, None),
    ),
    (
        "abandoned-in-queue",
        [inbound(0), queue(1, "500"), hangup(40)],
        Expect("ended", "missed", "abandoned", None, None, "hangup", 40, None, 40, 0),
    ),
    (
        "abandoned-in-queue-after-agents-rang",
        [inbound(0), queue(1, "500"), ring(5, "101"), ring(5, "102"), hangup(45)],
        Expect("ended", "missed", "abandoned", None, None, "hangup", 45, None, 45, 0),
    ),
    (
        "ring-group-no-answer",
        [inbound(0), ring_group(1, "600"), hangup(30)],
        Expect("ended", "missed", "no_answer", None, None, "hangup", 30, None, 30, 0),
    ),
    (
        "extension-rang-no-answer",
        [inbound(0), ring(1, "101"), ext_ended(25, "101"), hangup(25)],
        Expect("ended", "missed", "no_answer", None, None, "hangup", 25, None, 25, 0),
    ),
    (
        "unrouted",
        [inbound(0), hangup(3)],
        Expect("ended", "missed", "unrouted", None, None, "hangup", 3, None, 3, 0),
    ),
    (
        "voicemail-with-hangup",
        [inbound(0), ring(1, "101"), voicemail(50, "101"), hangup(50.25)],
        Expect("ended", "voicemail", None, None, "101", "hangup", 50.25, None, 50.25, 0),
    ),
    (
        # The phone number sends webhooks (InboundCall seen), so its HangupCall
        # is due: the voicemail alone does not end the call.
        "voicemail-without-hangup-inbound-seen-is-live",
        [inbound(0), ring(1, "101"), voicemail(50, "101")],
        Expect("ringing", "voicemail", voicemail_box="101"),
    ),
    (
        "voicemail-without-hangup-timed-out",
        [inbound(0), ring(1, "101"), voicemail(50, "101"), timed_out(50 + TIMEOUT_AFTER)],
        Expect("ended", "voicemail", None, None, "101", "timeout", 50, None, 50, 0),
    ),
    (
        "extension-only-answered",
        [ring(0, "101"), answered(5, "101"), ext_ended(65, "101")],
        Expect("ended", "answered", None, "101", None, "hangup", 65, 5, 5, 60),
    ),
    (
        "extension-only-voicemail",
        [ring(0, "101"), voicemail(30, "101")],
        Expect("ended", "voicemail", None, None, "101", "hangup", 30, None, 30, 0),
    ),
    (
        "extension-only-answered-not-yet-ended",
        [ring(0, "101"), answered(5, "101")],
        Expect("answered", "answered", answered_by="101"),
    ),
    (
        "outbound-ended-by-extension",
        [outbound(0, "101"), ext_ended(45, "101")],
        Expect("ended", "outbound", None, None, None, "hangup", 45, None, 45, 0, "outbound"),
    ),
    (
        "outbound-answered-ended-by-extension",
        [outbound(0, "101"), answered(8, "101"), ext_ended(68, "101")],
        Expect("ended", "outbound", None, "101", None, "hangup", 68, 8, 8, 60, "outbound"),
    ),
    (
        "outbound-never-ended-dialing",
        [outbound(0, "101")],
        Expect("dialing", "outbound", direction="outbound"),
    ),
    (
        "outbound-never-ended-answered",
        [outbound(0, "101"), answered(5, "101")],
        Expect("answered", "outbound", answered_by="101", direction="outbound"),
    ),
    (
        "outbound-timed-out",
        [outbound(0, "101"), timed_out(TIMEOUT_AFTER)],
        Expect("ended", "outbound", None, None, None, "timeout", 0, None, 0, 0, "outbound"),
    ),
    (
        # 101 and 102 rang, 101 answered; 102's leg ending (its ring stopped)
        # says nothing about the conversation, which goes on until 101's ends.
        "extension-only-other-leg-ends-first-still-live",
        [ring(0, "101"), ring(0.2, "102"), answered(3, "101"), ext_ended(3.1, "102")],
        Expect("answered", "answered", answered_by="101"),
    ),
    (
        "extension-only-answerer-leg-ends-call",
        [ring(0, "101"), ring(0.2, "102"), answered(3, "101"), ext_ended(3.1, "102"),
         ext_ended(90, "101")],
        Expect("ended", "answered", None, "101", None, "hangup", 90, 3, 3, 87),
    ),
    (
        # 101 hung up its leg, then 102 rang (a transfer). Ends are decided by
        # which events exist, not by their order, so the call looks ended at
        # 101's end; 102 answering makes it live again (the outcome is revised).
        "transfer-extension-only-looks-ended-while-ringing",
        [ring(0, "101"), answered(3, "101"), ext_ended(60, "101"), ring(60.5, "102")],
        Expect("ended", "answered", None, "101", None, "hangup", 60, 3, 3, 57),
    ),
    (
        "transfer-extension-only-live-again-once-answered",
        [ring(0, "101"), answered(3, "101"), ext_ended(60, "101"), ring(60.5, "102"),
         answered(64, "102")],
        Expect("answered", "answered", answered_by="101"),
    ),
    (
        "transfer-extension-only-ends-with-last-leg",
        [ring(0, "101"), answered(3, "101"), ext_ended(60, "101"), ring(60.5, "102"),
         answered(64, "102"), ext_ended(120, "102")],
        Expect("ended", "answered", None, "101", None, "hangup", 120, 3, 3, 117),
    ),
    (
        # Racing webhooks: the completion was received before the answer.
        "outbound-completion-races-ahead-of-answer",
        [outbound(0, "101"), ext_ended(0.01, "101"), answered(0.02, "101")],
        Expect("ended", "outbound", None, "101", None, "hangup", 0.01, 0.01, 0.01, 0,
               direction="outbound"),
    ),
    (
        "transfer-extension-only-completed",
        [
            ring(0, "101"),
            answered(3, "101"),
            ext_ended(60, "101"),
            ring(60.5, "102"),
            answered(65, "102"),
            ext_ended(120, "102"),
        ],
        Expect("ended", "answered", None, "101", None, "hangup", 120, 3, 3, 117),
    ),
    (
        "transfer-with-inbound-call-waits-for-hangup",
        [inbound(0), ring(1, "101"), answered(3, "101"), ext_ended(60, "101")],
        Expect("answered", "answered", answered_by="101"),
    ),
    (
        "timed-out-ringing",
        [inbound(0), ring(2, "101"), timed_out(2 + TIMEOUT_AFTER)],
        Expect("ended", "missed", "no_answer", None, None, "timeout", 2, None, 2, 0),
    ),
    (
        "timed-out-answered",
        [inbound(0), ring(2, "101"), answered(5, "101"), timed_out(5 + TIMEOUT_AFTER)],
        Expect("ended", "answered", None, "101", None, "timeout", 5, 5, 5, 0),
    ),
    (
        "hangup-after-timeout-wins",
        [inbound(0), ring(2, "101"), timed_out(2 + TIMEOUT_AFTER), hangup(3 + TIMEOUT_AFTER)],
        Expect(
            "ended", "missed", "no_answer", None, None, "hangup", 3 + TIMEOUT_AFTER, None,
            3 + TIMEOUT_AFTER, 0,
        ),
    ),
    (
        # A short call: the answer webhook was delivered after the hangup.
        # A call is not answered after it ended: the answer time is capped at
        # the end, so talk is 0, never negative.
        "hangup-races-ahead-of-answer",
        [inbound(0), ring(2, "101"), hangup(30.1, "101"), answered(30.2, "101")],
        Expect("ended", "answered", None, "101", None, "hangup", 30.1, 30.1, 30.1, 0),
    ),
    (
        "hangup-without-ext-races-ahead-of-answer",
        [inbound(0), ring(2, "101"), hangup(30.1), answered(30.2, "101")],
        Expect("ended", "answered", None, "101", None, "hangup", 30.1, 30.1, 30.1, 0),
    ),
    (
        "answered-beats-voicemail",
        [
            inbound(0),
            ring(1, "101"),
            answered(4, "101"),
            ring(30, "102"),
            voicemail(60, "102"),
            hangup(60, "101"),
        ],
        Expect("ended", "answered", None, "101", None, "hangup", 60, 4, 4, 56),
    ),
    (
        "hangup-naming-ext-beats-voicemail",
        [inbound(0), ring(1, "101"), voicemail(40, "101"), hangup(41, "102")],
        Expect("ended", "answered", None, "102", None, "hangup", 41, None, None, None),
    ),
    (
        "first-answer-wins",
        [inbound(0), ring(1, "101"), ring(1, "102"), answered(3, "102"), answered(3.5, "101"),
         hangup(20, "101")],
        Expect("ended", "answered", None, "102", None, "hangup", 20, 3, 3, 17),
    ),
    (
        "queue-and-voicemail",
        [inbound(0), queue(1, "500"), ring(5, "101"), voicemail(35, "101"), hangup(35)],
        Expect("ended", "voicemail", None, None, "101", "hangup", 35, None, 35, 0),
    ),
    (
        "unknown-events-ignored",
        [inbound(0), unknown(1), hangup(3), unknown(100)],
        Expect("ended", "missed", "unrouted", None, None, "hangup", 3, None, 3, 0),
    ),
]


def _seconds_or_none(moment: str | None) -> float | None:
    if moment is None:
        return None
    return (datetime.fromisoformat(moment.replace("Z", "+00:00")) - T0).total_seconds()


def _number(party: dict[str, str] | None) -> str | None:
    return party["number"] if party is not None else None


@pytest.mark.parametrize(("events", "expect"), [(e, x) for _, e, x in SCENARIOS],
                         ids=[name for name, _, _ in SCENARIOS])
def test_scenario(events: list[CallEvent], expect: Expect) -> None:
    """Each scenario gives the state, outcome and timings the contract's rules prescribe."""
    view = view_of(events)
    outcome, reason = classify(view)
    assert view.status.value == expect.state
    assert view.as_json()["state"] == expect.state
    assert view.direction.value == expect.direction
    assert outcome.value == expect.outcome
    assert (reason.value if reason else None) == expect.missed_reason
    assert (view.answered_by.number if view.answered_by else None) == expect.answered_by
    if expect.ended_by is None:
        assert view.is_live
        assert view.ended_at is None and view.ended_by is None
        with pytest.raises(ValueError):
            outcome_record(view)
        return
    assert not view.is_live
    record = outcome_record(view)
    assert record["outcome"] == expect.outcome
    assert record["missed_reason"] == expect.missed_reason
    assert record["direction"] == expect.direction
    assert _number(record["answered_by"]) == expect.answered_by
    if expect.answered_by is not None:
        assert record["answered_by"]["name"] == EXT[expect.answered_by]
    assert _number(record["voicemail_box"]) == expect.voicemail_box
    if expect.voicemail_box is not None:
        assert record["voicemail_box"]["name"] == EXT[expect.voicemail_box]
    assert record["ended_by"] == expect.ended_by
    assert record["started_at"] == isoformat(at(0))
    assert _seconds_or_none(record["ended_at"]) == pytest.approx(expect.ended_at)
    assert _seconds_or_none(record["answered_at"]) == pytest.approx(expect.answered_at)
    assert record["wait_seconds"] == pytest.approx(expect.wait)
    assert record["talk_seconds"] == pytest.approx(expect.talk)
    assert "id" not in record and "revision" not in record
    assert record["call_uuid"] == UUID
    assert record["tenant_id"] == TENANT
    assert record["container_id"] == CONTAINER


def arrival_orders(events: list[CallEvent]) -> list[list[CallEvent]]:
    """Other arrival orders of ``events``: reversed, and shuffled with duplicates."""
    rng = random.Random(len(events))
    orders = [list(reversed(events))]
    for _ in range(5):
        shuffled = events + rng.sample(events, k=len(events) // 2)
        rng.shuffle(shuffled)
        orders.append(shuffled)
    return orders


@pytest.mark.parametrize("events", [e for _, e, _ in SCENARIOS],
                         ids=[name for name, _, _ in SCENARIOS])
def test_scenario_order_free(events: list[CallEvent]) -> None:
    """Every scenario folds to the same facts in reversed, shuffled and duplicated order."""
    expected = fold(TENANT, UUID, events)
    for order in arrival_orders(events):
        assert fold(TENANT, UUID, order) == expected
        assert CallView(fold(TENANT, UUID, order)).as_json() == CallView(expected).as_json()


def test_record_carries_queue_ring_group_did_and_caller() -> None:
    """The outcome record names the queue, ring group, DID and caller as the events told them."""
    events: list[CallEvent] = [
        inbound(0),
        queue(1, "500"),
        ring_group(2, "600"),
        ring(3, "101"),
        hangup(9),
    ]
    record = outcome_record(view_of(events))
    assert record["queue"] == "500"
    assert record["ring_group"] == "600"
    assert record["did"] == {"number": DID.number, "description": "Main line", "group": "Sales"}
    assert record["caller"] == {"number": CALLER.number, "name": CALLER.name}
    assert record["number_dialed"] is None
    assert record["rang"] == [{"number": "101", "name": EXT["101"]}]


def test_outbound_record_fields() -> None:
    """An outbound record names the number dialed and the placing extension, no caller or DID."""
    record = outcome_record(view_of([outbound(0, "102", "+4930123456"), ext_ended(20, "102")]))
    assert record["direction"] == "outbound"
    assert record["outcome"] == "outbound"
    assert record["missed_reason"] is None
    assert record["number_dialed"] == "+4930123456"
    assert record["extension"] == {"number": "102", "name": EXT["102"]}
    assert record["caller"] is None
    assert record["did"] is None


def test_live_state_progression() -> None:
    """Applying events one by one moves the call new → queued → ringing → answered → ended."""
    facts = CallFacts(TENANT, UUID)
    assert not CallView(facts).is_live

    facts = apply(facts, inbound(0))
    view = CallView(facts)
    assert (view.status.value, view.ringing, view.is_live) == ("new", [], True)

    facts = apply(facts, queue(1, "500"))
    view = CallView(facts)
    assert (view.status.value, view.ringing, view.queue) == ("queued", [], "500")

    facts = apply(facts, ring(5, "101"))
    facts = apply(facts, ring(5.5, "102"))
    view = CallView(facts)
    assert view.status.value == "ringing"
    assert view.ringing == [ext("101"), ext("102")]

    facts = apply(facts, ext_ended(8, "102"))  # 102 declined: its leg ended
    view = CallView(facts)
    assert view.status.value == "ringing"
    assert view.ringing == [ext("101")]

    facts = apply(facts, answered(10, "101"))
    view = CallView(facts)
    assert (view.status.value, view.ringing, view.answered_by) == ("answered", [], ext("101"))
    assert view.answered_at == at(10)
    assert view.is_live

    facts = apply(facts, hangup(70, "101"))
    view = CallView(facts)
    assert (view.status.value, view.ringing, view.is_live) == ("ended", [], False)
    assert view.ended_at == at(70)


def test_ring_group_alone_is_ringing() -> None:
    """Entering a ring group puts the call in the ringing state, with no extension known."""
    view = view_of([inbound(0), ring_group(1, "600")])
    assert view.status.value == "ringing"
    assert view.ringing == []
    assert view.ring_group == "600"


def test_extension_rung_again_is_ringing() -> None:
    """An extension rung again after its earlier leg ended is listed as ringing again."""
    view = view_of([inbound(0), queue(1, "500"), ring(2, "101"), ext_ended(20, "101"),
                    ring(25, "101")])
    assert view.status.value == "ringing"
    assert view.ringing == [ext("101")]


def test_unknown_event_changes_nothing() -> None:
    """An UnknownCallEvent tells nothing: facts, view and outcome are as without it."""
    assert facts_of(unknown(5)) == CallFacts(TENANT, UUID)
    base: list[CallEvent] = [inbound(0), ring(1, "101"), hangup(10)]
    with_unknown = [unknown(0.5), *base, unknown(50)]
    assert fold(TENANT, UUID, with_unknown) == fold(TENANT, UUID, base)
    assert outcome_record(view_of(with_unknown)) == outcome_record(view_of(base))
    only_unknown = view_of([unknown(3)])
    assert only_unknown.started_at is None
    assert not only_unknown.is_live
    assert only_unknown.caller is None


def test_unknown_event_does_not_end_or_revive_live_call() -> None:
    """An unknown event after an extension end does not count as activity (call stays ended)."""
    events: list[CallEvent] = [
        ring(0, "101"), answered(2, "101"), ext_ended(30, "101"), unknown(31)
    ]
    view = view_of(events)
    assert view.ended_at == at(30)
    assert view.status.value == "ended"


def test_rang_order_and_no_repeats() -> None:
    """`rang` lists each extension once, by its first ring time, ties broken by number."""
    events: list[CallEvent] = [
        inbound(0),
        ring(5, "102"),
        ring(3, "101"),
        ring(7, "102"),
        ring(9, "103"),
        ring(10, "101"),
        ring(9, "100"),
        hangup(20),
    ]
    view = view_of(events)
    assert [p.number for p in view.rang] == ["101", "102", "100", "103"]
    assert outcome_record(view)["rang"] == [
        {"number": "101", "name": EXT["101"]},
        {"number": "102", "name": EXT["102"]},
        {"number": "100", "name": ""},
        {"number": "103", "name": EXT["103"]},
    ]


def test_ring_without_extension_number_is_not_a_ring() -> None:
    """A ringAttempt with an empty extension number adds nobody to `rang`."""
    empty_ring = ExtensionRinging(**common(1), caller=CALLER, extension=Party())  # type: ignore[arg-type]
    view = view_of([inbound(0), empty_ring, hangup(5)])
    assert view.rang == []
    assert classify(view)[1] is not None and classify(view)[1].value == "unrouted"


def test_answer_without_extension_number_still_answered() -> None:
    """ExtensionAnswered with an empty extension number still means a person answered."""
    anon = ExtensionAnswered(**common(4), caller=CALLER, extension=Party())  # type: ignore[arg-type]
    record = outcome_record(view_of([inbound(0), anon, hangup(10)]))
    assert record["outcome"] == "answered"
    assert record["answered_by"] == {"number": "", "name": ""}
    assert (record["wait_seconds"], record["talk_seconds"]) == (4, 6)


def test_extension_names_earliest_non_empty_sighting_wins() -> None:
    """An extension's name is the earliest non-empty name any event gave it."""
    unnamed = ExtensionRinging(**common(1), caller=CALLER, extension=Party("104", ""))  # type: ignore[arg-type]
    named_late = ExtensionAnswered(  # type: ignore[arg-type]
        **common(3), caller=CALLER, extension=Party("104", "Dave Late")
    )
    named_later = HangupCall(  # type: ignore[arg-type]
        **common(9), caller=CALLER, extension=Party("104", "Dave Renamed")
    )
    view = view_of([named_later, unnamed, inbound(0), named_late])
    assert view.answered_by == Party("104", "Dave Late")
    assert view.rang == [Party("104", "Dave Late")]


def test_caller_from_inbound_call() -> None:
    """The caller's number and name come from InboundCall, over other events' caller fields."""
    other = Party("+15550000000", "Not The Caller")
    early_ring = ExtensionRinging(**common(0), caller=other, extension=ext("101"))  # type: ignore[arg-type]
    view = view_of([early_ring, inbound(0.5), hangup(9)])
    assert view.caller == CALLER
    assert view.did == DID
    assert outcome_record(view)["caller"] == {"number": CALLER.number, "name": CALLER.name}


def test_caller_without_inbound_call_from_earliest_sightings() -> None:
    """Without InboundCall, caller number and name are the earliest non-empty ones seen."""
    view = view_of([answered(5, "101"), ring(0, "101"), ext_ended(60, "101")])
    # ringAttempt (t=0) carries only the number; the name comes from ExtensionAnswered.
    assert view.caller == CALLER
    assert view.did is None


def test_outbound_call_has_no_caller() -> None:
    """An outbound call's caller fields are the extension's, so the call has no caller."""
    view = view_of([outbound(0, "101"), answered(3, "101")])
    assert view.caller is None
    assert view.extension == ext("101")
    assert view.number_dialed == "+15559876543"
    assert view.as_json()["direction"] == "outbound"


def test_outcome_record_refused_for_live_call() -> None:
    """outcome_record raises ValueError for a call that has not ended."""
    with pytest.raises(ValueError):
        outcome_record(view_of([inbound(0), ring(1, "101")]))


def test_timeout_does_not_move_start_or_last_event() -> None:
    """CallTimedOut neither starts a call nor counts as its last sign of life."""
    facts = fold(TENANT, UUID, [inbound(10), ring(12, "101"), timed_out(12 + TIMEOUT_AFTER)])
    assert facts.first_at == at(10)
    assert facts.last_at == at(12)
    view = CallView(facts)
    assert view.ended_at == at(12)
    assert view.ended_by is not None and view.ended_by.value == "timeout"


def test_extension_end_with_equal_activity_time_ends_call() -> None:
    """An extension end at the moment of the last activity still ends an extension-only call."""
    view = view_of([ring(0, "101"), answered(5, "101"), ext_ended(5, "101")])
    assert view.ended_at == at(5)
    record = outcome_record(view)
    assert (record["wait_seconds"], record["talk_seconds"]) == (5, 0)
