"""The event registry: it refuses declarations that do not fit, and events the fold cannot take."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from statemachine.events import CallEvent, HangupCall, InboundCall
from statemachine.primevox import ALIASES, EVENTS, EXAMPLE_VALUES
from statemachine.registry import Declared, Registry, RegistryError, check_handlers
from statemachine.state import CallFacts, facts_of


@dataclass(frozen=True)
class CallParked(CallEvent):
    """An event type the fold has no handler for."""

    slot: str = ""


@dataclass(frozen=True)
class LateHangup(HangupCall):
    """A subclass: it must not fold as its parent does without saying so."""


def _with(*extra: Declared) -> Registry:
    return Registry([*EVENTS.declared, *extra], aliases=ALIASES, example_values=EXAMPLE_VALUES)


PARKED = Declared("CallParkedEvent", "callParked", CallParked, "CallParked", "parked")


def test_the_declared_events_all_have_handlers() -> None:
    check_handlers(EVENTS, facts_of)


def test_an_event_without_a_facts_of_handler_fails_the_check() -> None:
    with pytest.raises(RegistryError, match="no facts_of handler for CallParked"):
        check_handlers(_with(PARKED), facts_of)


def test_a_subclass_needs_its_own_handler() -> None:
    late = Declared("LateHangupEvent", "lateHangup", LateHangup, "LateHangup", "late")
    with pytest.raises(RegistryError, match="LateHangup"):
        check_handlers(_with(late), facts_of)


def test_a_handler_registered_for_the_new_class_passes() -> None:
    @dataclass(frozen=True)
    class CallHeld(CallEvent):
        pass

    @facts_of.register(CallHeld)
    def _(event: CallHeld) -> CallFacts:
        return CallFacts(event.tenant_id, event.call_uuid)

    check_handlers(_with(replace(PARKED, event_class=CallHeld, stored_as="CallHeld")), facts_of)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (replace(PARKED, title="InboundCallEvent"), "title 'InboundCallEvent' declared twice"),
        (replace(PARKED, event_class=InboundCall), "has two stored names"),
        (replace(PARKED, stored_as="HangupCall"), "names two classes"),
        (replace(PARKED, event_type="ringAttempt", target="extension"), "distinct targets"),
        (replace(PARKED, fields=("parkSlot",)), "no example value for ['parkSlot']"),
        (replace(PARKED, event_type=""), "one catch-all"),
    ],
)
def test_declarations_that_contradict_each_other_do_not_load(extra: Declared, problem: str) -> None:
    with pytest.raises(RegistryError) as refused:
        _with(extra)
    assert problem in str(refused.value)


def test_samples_follow_the_pbx_order_and_spelling() -> None:
    """A sample starts with eventType and eventTarget, then the declared fields as spelled."""
    answered = EVENTS.sample("ExtensionAnswered")
    assert list(answered)[:3] == ["eventType", "containerId", "tenantId"]
    assert answered["extensionNumber"] == EXAMPLE_VALUES["extNumber"]
    ring = EVENTS.sample("ringAttempt.ringGroup")
    assert (ring["eventType"], ring["eventTarget"]) == ("ringAttempt", "ringGroup")
    sms = EVENTS.sample("outboundMessage")
    assert (sms["fromNumber"], sms["toNumber"]) == ("+15550001000", "+15551230000")


def test_stored_names_are_the_ones_logs_hold() -> None:
    """Every class a log can name, by the name old logs already carry."""
    assert sorted(EVENTS.classes) == sorted(
        [
            "InboundCall",
            "HangupCall",
            "ExtensionRinging",
            "RingGroupEntered",
            "QueueEntered",
            "ExtensionAnswered",
            "ExtensionCallEnded",
            "VoicemailLeft",
            "OutboundCallPlaced",
            "CallTimedOut",
            "UnknownCallEvent",
            "MessageEvent",
            "UnknownEvent",
        ]
    )


def test_a_sample_takes_ids_under_its_own_spelling_and_refuses_stray_values() -> None:
    sms = EVENTS.sample("inboundMessage", {"messageText": "hi"}, ids={"tenantId": "t9"})
    assert (sms["tenantID"], sms["messageText"]) == ("t9", "hi")
    assert "tenantId" not in sms
    with pytest.raises(KeyError, match="parkSlot"):
        EVENTS.sample("HangupCall", {"parkSlot": "71"})
