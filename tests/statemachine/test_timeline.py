"""Table tests of a call's timeline: the story told from its log, step by step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from call_kit import TIMEOUT_AFTER, Call, at, by_time

from statemachine.events import CallEvent, Party
from statemachine.timeline import OutcomeRevision, StepKind, duration, timeline

C = Call("c1")


def story(events: list[CallEvent], revisions: list[OutcomeRevision] | None = None,
          ) -> list[tuple[float, str, str, float | None]]:  # fmt: skip
    """The timeline as (seconds after T0, kind, text, seconds) rows."""
    return [
        ((step.at - at(0)).total_seconds(), step.kind.value, step.text, step.seconds)
        for step in timeline(by_time(events), revisions or [])
    ]


def test_the_supervisors_example() -> None:
    """Queue wait, rings together, answer, talk and the end read as a person would say them."""
    events: list[CallEvent] = [C.inbound(0), C.queue(1, "sales"), C.ring(35, "101"),
                               C.ring(35, "102"), C.answer(47, "102"), C.end(47.2, "101"),
                               C.hangup(237, "102")]  # fmt: skip
    assert story(events) == [
        (0, "call", "call from +15551234567 (Zoë O'Brien-Müller) to +15550001111 (Main line)",
         None),
        (1, "queue", "waited 46 s in queue sales", 46),
        (35, "ring", "rang 101 Alice Smith and 102 Bob Jones for 12 s", 12),
        (47, "answer", "102 Bob Jones answered after 47 s", 47),
        (47.2, "leg_end", "101 Alice Smith stopped ringing", None),
        (237, "talk", "102 Bob Jones talked 3 min 10 s", 190),
        (237, "hangup", "call ended after 3 min 57 s (102 Bob Jones on the line)", 237),
    ]  # fmt: skip


def test_abandoned() -> None:
    """A caller who gave up in the queue: the wait ends at the hangup."""
    events: list[CallEvent] = [C.inbound(0), C.queue(1, "500"), C.hangup(35)]
    assert story(events)[1:] == [
        (1, "queue", "waited 34 s in queue 500", 34),
        (35, "hangup", "caller hung up after 35 s", 35),
    ]


def test_live_call_says_what_is_going_on() -> None:
    """Without an end, phases that have not stopped are told in the present, with no seconds."""
    events: list[CallEvent] = [C.inbound(0), C.queue(1, "500"), C.ring_group(2, "600"),
                               C.ring(3, "101")]  # fmt: skip
    assert story(events)[1:] == [
        (1, "queue", "waited 1 s in queue 500", 1),  # it went on to the ring group
        (2, "ring_group", "ringing ring group 600", None),
        (3, "ring", "ringing 101 Alice Smith", None),
    ]


def test_rollover_rings_are_separate_steps() -> None:
    """Rings more than a second apart are separate steps, each with its own length."""
    events: list[CallEvent] = [C.inbound(0), C.ring(10, "101"), C.ring(25.5, "102"),
                               C.end(25, "101"), C.answer(30, "102"), C.hangup(90, "102")]
    rows = story(events)
    assert rows[1] == (10, "ring", "rang 101 Alice Smith for 15 s", 15)
    assert rows[2] == (25, "leg_end", "101 Alice Smith stopped ringing", None)
    assert rows[3] == (25.5, "ring", "rang 102 Bob Jones for 5 s", 4.5)


def test_transfer() -> None:
    """A transfer tells both talks, each ending where that extension's leg ended."""
    events: list[CallEvent] = [C.inbound(0), C.ring(1, "101"), C.answer(3, "101"),
                               C.end(60, "101"), C.ring(60.5, "102"), C.answer(64, "102"),
                               C.end(120, "102"), C.hangup(120.5)]  # fmt: skip
    assert [(s, kind, text) for s, kind, text, _ in story(events)][1:] == [
        (1, "ring", "rang 101 Alice Smith for 2 s"),
        (3, "answer", "101 Alice Smith answered after 3 s"),
        (60, "talk", "101 Alice Smith talked 57 s"),
        (60, "leg_end", "101 Alice Smith hung up"),
        (60.5, "ring", "rang 102 Bob Jones for 4 s"),
        (64, "answer", "102 Bob Jones answered after 1 min 4 s"),
        (120, "talk", "102 Bob Jones talked 56 s"),
        (120, "leg_end", "102 Bob Jones hung up"),
        (120.5, "hangup", "call ended after 2 min 1 s"),
    ]


def test_voicemail() -> None:
    """A voicemail is told, and the ring before it lasted until it."""
    events: list[CallEvent] = [C.inbound(0), C.ring(1, "101"), C.voicemail(31, "101"),
                               C.hangup(31.5)]  # fmt: skip
    assert [text for _, _, text, _ in story(events)][1:] == [
        "rang 101 Alice Smith for 30 s",
        "caller left a voicemail for 101 Alice Smith",
        "caller hung up after 32 s",
    ]


def test_outbound() -> None:
    """An outbound call: who dialled what, when it was answered, how long they talked."""
    events: list[CallEvent] = [C.outbound(0, "101", "+15559876543"), C.outbound_answer(8, "101"),
                               C.outbound_end(68, "101")]  # fmt: skip
    assert story(events) == [
        (0, "outbound", "101 Alice Smith dialled +15559876543", None),
        (8, "answer", "101 Alice Smith answered after 8 s", 8),
        (68, "talk", "101 Alice Smith talked 1 min", 60),
        (68, "leg_end", "101 Alice Smith hung up", None),
    ]


def test_unanswered_outbound_has_no_talk() -> None:
    """An outbound call nobody answered tells no talk."""
    kinds = [kind for _, kind, _, _ in story([C.outbound(0, "101"), C.outbound_end(20, "101")])]
    assert kinds == ["outbound", "leg_end"]


def test_timeout_and_unknown_events() -> None:
    """The engine's timeout and events we do not understand are told too."""
    events: list[CallEvent] = [C.inbound(0), C.unknown(1), C.ring(2, "101"),
                               C.timeout(2 + TIMEOUT_AFTER)]  # fmt: skip
    assert story(events)[1:] == [
        (1, "unknown", "callParked received (not understood)", None),
        (2, "ring", "rang 101 Alice Smith for 0 s", 0),
        (2 + TIMEOUT_AFTER, "timeout", "no webhook for 4 h: ended by the engine", TIMEOUT_AFTER),
    ]


def test_hangup_racing_the_answer() -> None:
    """An answer received after the hangup is told where it was received, with talk 0."""
    events: list[CallEvent] = [C.inbound(0), C.ring(2, "101"), C.hangup(30.1),
                               C.answer(30.2, "101")]  # fmt: skip
    assert [(kind, text) for _, kind, text, _ in story(events)][1:] == [
        ("ring", "rang 101 Alice Smith for 28 s"),
        ("talk", "101 Alice Smith talked 0 s"),
        ("hangup", "call ended after 30 s"),
        ("answer", "101 Alice Smith answered after 30 s"),
    ]


def test_outcome_and_revisions() -> None:
    """Outcomes go where their decision time puts them; later revisions say so."""
    events: list[CallEvent] = [C.inbound(0), C.ring(2, "101"), C.hangup(30.1),
                               C.answer(40, "101")]  # fmt: skip
    revisions = [
        OutcomeRevision(1, at(35.1), "missed", missed_reason="no_answer"),
        OutcomeRevision(2, at(45), "answered", answered_by=Party("101", "Alice Smith")),
    ]
    rows = [(s, kind, text) for s, kind, text, _ in story(events, revisions)]
    assert rows[-3:] == [
        (35.1, "outcome", "outcome: missed (no answer)"),
        (40, "answer", "101 Alice Smith answered after 40 s"),
        (45, "outcome", "outcome revised (revision 2): answered by 101 Alice Smith"),
    ]


def test_outcome_revision_from_record() -> None:
    """An outcome record reads into a revision with its decision time."""
    record = {"revision": 3, "outcome": "voicemail", "missed_reason": None, "answered_by": None,
              "voicemail_box": {"number": "101", "name": "Alice Smith"}}  # fmt: skip
    revision = OutcomeRevision.from_record(record, at(9))
    assert revision == OutcomeRevision(3, at(9), "voicemail", None, None,
                                       Party("101", "Alice Smith"))  # fmt: skip
    [step] = timeline([], [revision])
    assert step.as_json() == {"at": "2024-05-01T12:00:09.000000Z", "kind": "outcome",
                              "text": "outcome revised (revision 3): voicemail for 101 Alice Smith",
                              "seconds": None}  # fmt: skip


def test_events_of_two_calls_are_refused() -> None:
    """A timeline is one call's story: events of two calls raise ValueError."""
    with pytest.raises(ValueError):
        timeline([C.inbound(0), Call("c2").inbound(1)])


def test_empty_log() -> None:
    """No events and no outcome tell no story."""
    assert timeline([]) == []


def test_step_json() -> None:
    """A step is the contract's at, kind, text and seconds."""
    step = timeline([C.inbound(0), C.queue(1, "500"), C.hangup(3)])[1]
    assert step.kind is StepKind.QUEUE
    assert step.as_json() == {"at": "2024-05-01T12:00:01.000000Z", "kind": "queue",
                              "text": "waited 2 s in queue 500", "seconds": 2.0}  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "0 s"), (0.2, "under 1 s"), (0.5, "1 s"), (34, "34 s"), (59.4, "59 s"), (59.6, "1 min"),
     (60, "1 min"), (190, "3 min 10 s"), (3599, "59 min 59 s"), (3600, "1 h"),
     (3725, "1 h 2 min"), (TIMEOUT_AFTER, "4 h"), (timedelta(days=1).total_seconds(), "24 h")],
)  # fmt: skip
def test_duration(seconds: float, said: str) -> None:
    """Durations are said in whole seconds, minutes and hours."""
    assert duration(seconds) == said
