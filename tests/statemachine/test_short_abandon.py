"""``short_abandon`` in outcome records: abandoned within the tenant's threshold
of the call's start, the edge included, and nothing else is ever short."""

from __future__ import annotations

import pytest

from statemachine.events import CallEvent
from statemachine.outcome import outcome_record
from tests.statemachine.test_rules import answered, hangup, inbound, queue, ring, view_of


@pytest.mark.parametrize(
    ("hung_up_at", "threshold", "short"),
    [
        (4.999, 5.0, True),
        (5.0, 5.0, True),  # "within 5 s" includes the fifth second
        (5.001, 5.0, False),
        (9.0, 10.0, True),  # the tenant's own threshold, not the default
        (0.0, 0.0, True),
        (1.0, 0.0, False),
    ],
)
def test_abandoned_in_queue_is_short_at_the_threshold_edge(
    hung_up_at: float, threshold: float, short: bool
) -> None:
    view = view_of([inbound(0), queue(0.5, "600"), hangup(hung_up_at)])
    record = outcome_record(view, threshold)
    assert (record["missed_reason"], record["short_abandon"]) == ("abandoned", short)


def test_default_threshold_is_five_seconds() -> None:
    assert outcome_record(view_of([inbound(0), queue(1, "600"), hangup(5)]))["short_abandon"]
    assert not outcome_record(view_of([inbound(0), queue(1, "600"), hangup(6)]))["short_abandon"]


@pytest.mark.parametrize(
    "events",
    [
        [inbound(0), ring(1, "101"), hangup(2)],  # no_answer
        [inbound(0), hangup(1)],  # unrouted
        [inbound(0), queue(0.5, "600"), answered(1, "101"), hangup(2)],  # answered
    ],
)
def test_only_abandoned_calls_are_short(events: list[CallEvent]) -> None:
    assert outcome_record(view_of(events), 60.0)["short_abandon"] is False
