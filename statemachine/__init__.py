"""The call model: typed events, an order-free fold, and the outcome rules.

Pure Python on purpose: no Redis, Flask, RQ or marshmallow here, so every rule
can be tested with plain values.
"""

from __future__ import annotations

from statemachine.event_log import from_record, to_record
from statemachine.events import CallEvent, Event
from statemachine.outcome import Outcome, classify, outcome_record
from statemachine.state import CallFacts, CallStatus, CallView, apply, fold

__all__ = [
    "CallEvent",
    "CallFacts",
    "CallStatus",
    "CallView",
    "Event",
    "Outcome",
    "apply",
    "classify",
    "fold",
    "from_record",
    "outcome_record",
    "to_record",
]
