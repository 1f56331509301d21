"""Table tests of the extension board: each scenario's events, then each extension's status.

Expected values restate the rules of docs/supervisor.md; times are
seconds after ``T0``. Every scenario is also checked in reversed and shuffled
arrival orders with duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from call_kit import T0, TENANT, TIMEOUT_AFTER, Call, arrival_orders, at, ext

from statemachine.events import CallEvent, Party
from statemachine.extensions import (
    ExtensionState,
    LegState,
    extension_board,
    leg_from_json,
    legs_of,
    status_of,
    tenant_board,
)
from statemachine.state import CallView, fold
from statemachine.tenant import fold_tenant

C1, C2 = Call("c1"), Call("c2")


@dataclass(frozen=True)
class Ext:
    """What the board says about one extension (``since`` in seconds after T0)."""

    state: str
    since: float | None
    call_uuid: str | None = None
    answered: int = 0
    missed: int = 0
    talk: float = 0.0
    outbound: int = 0
    calls: tuple[str, ...] | None = None  # checked when given


SCENARIOS: list[tuple[str, list[CallEvent], dict[str, Ext]]] = [
    (
        "ringing",
        [C1.inbound(0), C1.ring(2, "101")],
        {"101": Ext("ringing", 2, "c1", calls=("c1",))},
    ),
    (
        "on-call",
        [C1.inbound(0), C1.ring(2, "101"), C1.answer(6, "101")],
        {"101": Ext("on_call", 6, "c1", answered=1)},
    ),
    (
        "answered-and-ended-idle-since-own-end",
        [C1.inbound(0), C1.ring(2, "101"), C1.answer(6, "101"), C1.end(66, "101"),
         C1.hangup(66.5, "101")],
        {"101": Ext("idle", 66, answered=1, talk=60)},
    ),
    (
        # Ring-all: the answer by 102 stops 101's ring even without 101's own end.
        "ring-all-answered-by-other",
        [C1.inbound(0), C1.queue(1, "500"), C1.ring(10, "101"), C1.ring(10, "102"),
         C1.answer(15, "102")],
        {"101": Ext("idle", 15), "102": Ext("on_call", 15, "c1", answered=1)},
    ),
    (
        "ring-all-own-end-after-the-answer-is-no-miss",
        [C1.inbound(0), C1.ring(10, "101"), C1.ring(10, "102"), C1.answer(15, "102"),
         C1.end(15.2, "101"), C1.hangup(75, "102")],
        {"101": Ext("idle", 15), "102": Ext("idle", 75, answered=1, talk=60)},
    ),
    (
        # Rollover: 101's ring ended unanswered before anyone answered.
        "rollover-is-a-miss",
        [C1.inbound(0), C1.queue(1, "500"), C1.ring(10, "101"), C1.end(25, "101"),
         C1.ring(25.5, "102"), C1.answer(30, "102")],
        {"101": Ext("idle", 25, missed=1), "102": Ext("on_call", 30, "c1", answered=1)},
    ),
    (
        "transfer-with-phone-number-webhooks",
        [C1.inbound(0), C1.ring(1, "101"), C1.answer(3, "101"), C1.end(60, "101"),
         C1.ring(60.5, "102")],
        {"101": Ext("idle", 60, answered=1, talk=57), "102": Ext("ringing", 60.5, "c1")},
    ),
    (
        "transfer-answered",
        [C1.inbound(0), C1.ring(1, "101"), C1.answer(3, "101"), C1.end(60, "101"),
         C1.ring(60.5, "102"), C1.answer(64, "102")],
        {"101": Ext("idle", 60, answered=1, talk=57), "102": Ext("on_call", 64, "c1", answered=1)},
    ),
    (
        "transfer-completed",
        [C1.inbound(0), C1.ring(1, "101"), C1.answer(3, "101"), C1.end(60, "101"),
         C1.ring(60.5, "102"), C1.answer(64, "102"), C1.end(120, "102"), C1.hangup(120.1)],
        {"101": Ext("idle", 60, answered=1, talk=57), "102": Ext("idle", 120, answered=1, talk=56)},
    ),
    (
        # The call looks ended at 101's end (state.py's extension-only rule), but
        # 102's ring came after that end: 102 rings on, on the board.
        "transfer-extension-only-ringing",
        [C1.ring(0, "101"), C1.answer(3, "101"), C1.end(60, "101"), C1.ring(60.5, "102")],
        {"101": Ext("idle", 60, answered=1, talk=57), "102": Ext("ringing", 60.5, "c1")},
    ),
    (
        "transfer-extension-only-answered",
        [C1.ring(0, "101"), C1.answer(3, "101"), C1.end(60, "101"), C1.ring(60.5, "102"),
         C1.answer(64, "102")],
        {"101": Ext("idle", 60, answered=1, talk=57), "102": Ext("on_call", 64, "c1", answered=1)},
    ),
    (
        "transfer-extension-only-unanswered-ring-ends",
        [C1.ring(0, "101"), C1.answer(3, "101"), C1.end(60, "101"), C1.ring(60.5, "102"),
         C1.end(80, "102")],
        {"101": Ext("idle", 60, answered=1, talk=57), "102": Ext("idle", 80, missed=1)},
    ),
    (
        # Transferred back: 101 answered, handed over, 102 declined, 101 rings again.
        "transfer-back-rings-again",
        [C1.inbound(0), C1.ring(1, "101"), C1.answer(3, "101"), C1.end(60, "101"),
         C1.ring(60.5, "102"), C1.end(70, "102"), C1.ring(71, "101")],
        {"101": Ext("ringing", 71, "c1", answered=1), "102": Ext("idle", 70, missed=1)},
    ),
    (
        "transfer-back-caller-hangs-up",
        [C1.inbound(0), C1.ring(1, "101"), C1.answer(3, "101"), C1.end(60, "101"),
         C1.ring(60.5, "102"), C1.end(70, "102"), C1.ring(71, "101"), C1.hangup(90)],
        {"101": Ext("idle", 90, answered=1, talk=57), "102": Ext("idle", 70, missed=1)},
    ),
    (
        "two-ring-groups-at-once",
        [C1.inbound(0), C1.ring(10, "101"), C2.inbound(1), C2.ring(12, "101")],
        {"101": Ext("ringing", 12, "c2", calls=("c1", "c2"))},
    ),
    (
        "on-one-call-while-another-rings",
        [C1.inbound(0), C1.ring(10, "101"), C2.inbound(1), C2.ring(12, "101"),
         C2.answer(15, "101")],
        {"101": Ext("on_call", 15, "c2", answered=1, calls=("c1", "c2"))},
    ),
    (
        "other-call-taken-by-a-colleague",
        [C1.inbound(0), C1.ring(10, "101"), C1.ring(10, "102"), C2.inbound(1),
         C2.ring(12, "101"), C2.answer(15, "101"), C1.answer(16, "102")],
        {"101": Ext("on_call", 15, "c2", answered=1, calls=("c2",)),
         "102": Ext("on_call", 16, "c1", answered=1)},
    ),
    (
        # The hangup webhook won the race with the answer's: answered, talk 0.
        "hangup-races-the-answer",
        [C1.inbound(0), C1.ring(2, "101"), C1.hangup(30.1), C1.answer(30.2, "101")],
        {"101": Ext("idle", 30.1, answered=1)},
    ),
    (
        "hangup-before-the-answer-arrives",
        [C1.inbound(0), C1.ring(2, "101"), C1.hangup(30.1)],
        {"101": Ext("idle", 30.1, missed=1)},
    ),
    (
        "hangup-while-ringing",
        [C1.inbound(0), C1.queue(1, "500"), C1.ring(5, "101"), C1.ring(5, "102"), C1.hangup(45)],
        {"101": Ext("idle", 45, missed=1), "102": Ext("idle", 45, missed=1)},
    ),
    (
        "hangup-names-the-answerer",
        [C1.inbound(0), C1.ring(4, "101"), C1.ring(4, "102"), C1.hangup(64, "101")],
        {"101": Ext("idle", 64, answered=1, talk=60), "102": Ext("idle", 64)},
    ),
    (
        "hangup-names-an-answerer-that-never-rang",
        [C1.inbound(0), C1.hangup(30, "101")],
        {"101": Ext("idle", 30, answered=1)},
    ),
    (
        "ring-after-the-hangup",
        [C1.inbound(0), C1.hangup(10), C1.ring(10.5, "101")],
        {"101": Ext("idle", 10, missed=1)},
    ),
    (
        "voicemail-ends-the-ring",
        [C1.inbound(0), C1.ring(1, "101"), C1.voicemail(50, "101")],
        {"101": Ext("idle", 50, missed=1)},
    ),
    (
        "voicemail-alone-is-no-leg",
        [C1.inbound(0), C1.ring(1, "101"), C1.end(5, "101"), C2.inbound(50),
         C2.voicemail(100, "101"), C2.hangup(100)],
        {"101": Ext("idle", 5, missed=1)},
    ),
    (
        "voicemail-extension-only",
        [C1.ring(0, "101"), C1.voicemail(30, "101")],
        {"101": Ext("idle", 30, missed=1)},
    ),
    (
        "extension-only-answered",
        [C1.ring(0, "101"), C1.answer(5, "101")],
        {"101": Ext("on_call", 5, "c1", answered=1)},
    ),
    (
        "extension-only-ended",
        [C1.ring(0, "101"), C1.ring(0.2, "102"), C1.answer(3, "101"), C1.end(3.1, "102"),
         C1.end(90, "101")],
        {"101": Ext("idle", 90, answered=1, talk=87), "102": Ext("idle", 3)},
    ),
    (
        "outbound-dialing",
        [C1.outbound(0, "101")],
        {"101": Ext("on_call", 0, "c1", outbound=1)},
    ),
    (
        "outbound-answered-and-ended",
        [C1.outbound(0, "101"), C1.outbound_answer(8, "101"), C1.outbound_end(68, "101")],
        {"101": Ext("idle", 68, talk=60, outbound=1)},
    ),
    (
        "outbound-unanswered",
        [C1.outbound(0, "101"), C1.outbound_end(20, "101")],
        {"101": Ext("idle", 20, outbound=1)},
    ),
    (
        "outbound-completion-races-ahead-of-answer",
        [C1.outbound(0, "101"), C1.outbound_end(0.01, "101"), C1.outbound_answer(0.02, "101")],
        {"101": Ext("idle", 0.01, outbound=1)},
    ),
    (
        # An internal call: 102 dials 101, whose ring and answer share the callUuid.
        "internal-call",
        [C1.outbound(0, "102", "101"), C1.ring(0.1, "101"), C1.answer(5, "101"),
         C1.end(65, "101"), C1.outbound_end(65.1, "102")],
        {"101": Ext("idle", 65, answered=1, talk=60),
         "102": Ext("idle", 65.1, talk=60.1, outbound=1)},
    ),
    (
        "timeout-while-ringing",
        [C1.inbound(0), C1.ring(2, "101"), C1.timeout(2 + TIMEOUT_AFTER)],
        {"101": Ext("idle", 2, missed=1)},
    ),
    (
        "timeout-while-talking",
        [C1.inbound(0), C1.ring(2, "101"), C1.answer(5, "101"), C1.timeout(5 + TIMEOUT_AFTER)],
        {"101": Ext("idle", 5, answered=1)},
    ),
    (
        "timeout-closes-a-ring-after-an-extension-end",
        [C1.ring(0, "101"), C1.answer(3, "101"), C1.end(60, "101"), C1.ring(60.5, "102"),
         C1.timeout(60.5 + TIMEOUT_AFTER)],
        {"101": Ext("idle", 60, answered=1, talk=57), "102": Ext("idle", 60.5, missed=1)},
    ),
    (
        "unknown-events-change-nothing",
        [C1.inbound(0), C1.unknown(1), C1.ring(2, "101"), C1.unknown(50)],
        {"101": Ext("ringing", 2, "c1")},
    ),
    (
        "day-figures-add-up-over-calls",
        [C1.inbound(0), C1.ring(1, "101"), C1.answer(3, "101"), C1.end(63, "101"), C1.hangup(63),
         C2.inbound(100), C2.ring(101, "101"), C2.hangup(120),
         Call("c3").outbound(200, "101"), Call("c3").outbound_answer(205, "101"),
         Call("c3").outbound_end(245, "101")],
        {"101": Ext("idle", 245, answered=1, missed=1, talk=100, outbound=1)},
    ),
]


def board_of(events: list[CallEvent]) -> dict[str, dict[str, Any]]:
    board = tenant_board(fold_tenant(TENANT, events), T0 - timedelta(hours=1))
    return {number: status.as_json() for number, status in board.items()}


def _seconds(moment: str | None) -> float | None:
    if moment is None:
        return None
    return (at(0).fromisoformat(moment.replace("Z", "+00:00")) - T0).total_seconds()


@pytest.mark.parametrize(("events", "expected"), [(e, x) for _, e, x in SCENARIOS],
                         ids=[name for name, _, _ in SCENARIOS])  # fmt: skip
def test_board(events: list[CallEvent], expected: dict[str, Ext]) -> None:
    """Each scenario gives every extension the state, since, call and figures the rules say."""
    board = board_of(events)
    assert sorted(board) == sorted(expected)
    for number, want in expected.items():
        got = board[number]
        assert got["state"] == want.state, number
        assert _seconds(got["since"]) == pytest.approx(want.since), number
        assert got["call_uuid"] == want.call_uuid, number
        assert (got["answered"], got["missed"], got["outbound"]) == (
            want.answered, want.missed, want.outbound), number  # fmt: skip
        assert got["talk_seconds"] == pytest.approx(want.talk), number
        assert got["name"] == ext(number).name
        if want.calls is not None:
            assert tuple(got["calls"]) == want.calls, number
        if want.state == "idle":
            assert got["calls"] == []


@pytest.mark.parametrize("events", [e for _, e, _ in SCENARIOS],
                         ids=[name for name, _, _ in SCENARIOS])  # fmt: skip
def test_board_order_free(events: list[CallEvent]) -> None:
    """Every scenario's board is the same in reversed and shuffled orders, with duplicates."""
    expected = board_of(events)
    for order in arrival_orders(events):
        assert board_of(order) == expected


def test_transfer_step_by_step() -> None:
    """Applying a transfer's events one by one moves 101 and 102 through their states."""
    steps: list[tuple[CallEvent, dict[str, str]]] = [
        (C1.inbound(0), {}),
        (C1.queue(1, "500"), {}),
        (C1.ring(5, "101"), {"101": "ringing"}),
        (C1.answer(8, "101"), {"101": "on_call"}),
        (C1.end(60, "101"), {"101": "idle"}),
        (C1.ring(60.5, "102"), {"101": "idle", "102": "ringing"}),
        (C1.answer(64, "102"), {"101": "idle", "102": "on_call"}),
        (C1.hangup(120, "102"), {"101": "idle", "102": "idle"}),
    ]
    seen: list[CallEvent] = []
    for event, states in steps:
        seen.append(event)
        board = board_of(seen)
        assert {number: status["state"] for number, status in board.items()} == states


def test_unknown_extension() -> None:
    """An extension no call has shown is `unknown`, with nothing since and no figures."""
    board = tenant_board(fold_tenant(TENANT, [C1.inbound(0), C1.ring(1, "101")]), T0)
    status = status_of(board, "105")
    assert status.state is ExtensionState.UNKNOWN
    assert status.as_json() == {
        "number": "105", "name": "", "state": "unknown", "since": None, "call_uuid": None,
        "calls": [], "answered": 0, "missed": 0, "talk_seconds": 0.0, "outbound": 0,
    }  # fmt: skip
    assert status_of(board, "101").state is ExtensionState.RINGING


def test_day_window() -> None:
    """Figures count what happened in [day_start, day_end): answers when answered, talk and
    misses when the leg ended, outbound calls when placed."""
    events: list[CallEvent] = [
        # Answered before the window, ended inside it.
        C1.inbound(0), C1.ring(1, "101"), C1.answer(3, "101"), C1.end(603, "101"), C1.hangup(603),
        C2.inbound(700), C2.ring(701, "101"), C2.hangup(720),  # a miss inside
        Call("c3").outbound(1000, "101"),  # placed after the window
    ]  # fmt: skip
    board = tenant_board(fold_tenant(TENANT, events), at(10), at(900))
    status = board["101"].as_json()
    assert (status["answered"], status["missed"], status["outbound"]) == (0, 1, 0)
    assert status["talk_seconds"] == 600
    whole = tenant_board(fold_tenant(TENANT, events), at(0)).__getitem__("101").as_json()
    assert (whole["answered"], whole["missed"], whole["outbound"]) == (1, 1, 1)


def test_renamed_extension_shows_latest_name() -> None:
    """The board names an extension as its latest leg did."""
    c2_ring = C2.ring(100, "101")
    renamed = type(c2_ring)(**{**c2_ring.__dict__, "extension": Party("101", "Alice Jones")})
    board = tenant_board(fold_tenant(TENANT, [C1.ring(0, "101"), C1.end(5, "101"), renamed]), T0)
    assert board["101"].extension == Party("101", "Alice Jones")


def test_board_sorted_by_extension_number() -> None:
    """Extensions are listed as numbers (9, 10, 101), then other names."""
    events = [C1.ring(0, n) for n in ("101", "9", "10", "front-desk", "1000")]
    assert list(tenant_board(fold_tenant(TENANT, events), T0)) == [
        "9", "10", "101", "1000", "front-desk"]  # fmt: skip


def test_legs_json_round_trip() -> None:
    """A leg read back from its JSON equals the leg (what a store keeps)."""
    for _, events, _ in SCENARIOS:
        for uuid in {e.call_uuid for e in events}:
            view = CallView(fold(TENANT, uuid, [e for e in events if e.call_uuid == uuid]))
            for leg in legs_of(view):
                assert leg_from_json(leg.as_json()) == leg


def test_leg_states_of_one_call() -> None:
    """legs_of names each extension of the call once, with its leg state."""
    events: list[CallEvent] = [C1.inbound(0), C1.ring(1, "101"), C1.ring(1, "102"),
                               C1.answer(4, "102")]  # fmt: skip
    legs = legs_of(CallView(fold(TENANT, "c1", events)))
    assert [(leg.extension.number, leg.state) for leg in legs] == [
        ("101", LegState.ENDED), ("102", LegState.ON_CALL)]  # fmt: skip
    assert legs[1].answered_at == at(4) and legs[1].since == at(4)
    assert legs[0].ended_at == at(4) and not legs[0].missed


def test_answer_without_extension_number_stops_rings_but_has_no_leg() -> None:
    """An answer naming no extension still stops the others' rings; nobody gets its leg."""
    anonymous = C1.answer(4, "101")
    anonymous = type(anonymous)(**{**anonymous.__dict__, "extension": Party()})
    board = board_of([C1.inbound(0), C1.ring(1, "101"), anonymous])
    assert set(board) == {"101"}
    assert board["101"]["state"] == "idle" and board["101"]["missed"] == 0


def test_a_leg_given_twice_counts_once() -> None:
    """extension_board counts a leg once however often a store hands it over."""
    legs = legs_of(CallView(fold(TENANT, "c1", [C1.inbound(0), C1.ring(1, "101"),
                                                C1.hangup(9)])))  # fmt: skip
    assert extension_board(legs + legs, T0)["101"].today.missed == 1
