"""Builders of typed events for scenarios with several calls of one tenant.

Times are seconds after ``T0`` (test_rules' constants); each :class:`Call`
names one ``callUuid``.
Extension and caller values follow the PBX's fields: ``ringAttempt`` carries
the caller's number only, outbound events carry the extension as caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from test_rules import CALLER, DID, EXT, T0, TENANT, TIMEOUT_AFTER, arrival_orders, at, ext

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

__all__ = ["CALLER", "DID", "EXT", "T0", "TENANT", "TIMEOUT_AFTER", "Call", "arrival_orders", "at",
           "by_time", "ext"]  # fmt: skip


@dataclass(frozen=True)
class Call:
    """One call's event builders."""

    uuid: str
    caller: Party = CALLER
    tenant: str = TENANT
    container: str = "c1"
    did: Did = field(default=DID)

    def _common(self, s: float) -> dict[str, Any]:
        return {"tenant_id": self.tenant, "container_id": self.container,
                "received_at": at(s), "call_uuid": self.uuid}  # fmt: skip

    def inbound(self, s: float) -> InboundCall:
        return InboundCall(**self._common(s), caller=self.caller, did=self.did)

    def hangup(self, s: float, number: str = "") -> HangupCall:
        named = ext(number) if number else Party()
        return HangupCall(**self._common(s), caller=self.caller, extension=named)

    def ring(self, s: float, number: str) -> ExtensionRinging:
        caller = Party(self.caller.number, "")
        return ExtensionRinging(**self._common(s), caller=caller, extension=ext(number))

    def ring_group(self, s: float, group: str) -> RingGroupEntered:
        caller = Party(self.caller.number, "")
        return RingGroupEntered(**self._common(s), caller=caller, ring_group=group)

    def queue(self, s: float, name: str) -> QueueEntered:
        return QueueEntered(**self._common(s), caller=Party(self.caller.number, ""), queue=name)

    def answer(self, s: float, number: str) -> ExtensionAnswered:
        return ExtensionAnswered(**self._common(s), caller=self.caller, extension=ext(number))

    def end(self, s: float, number: str) -> ExtensionCallEnded:
        return ExtensionCallEnded(**self._common(s), caller=self.caller, extension=ext(number))

    def voicemail(self, s: float, number: str) -> VoicemailLeft:
        return VoicemailLeft(**self._common(s), caller=self.caller, extension=ext(number))

    def outbound(self, s: float, number: str, dialled: str = "+15559876543") -> OutboundCallPlaced:
        return OutboundCallPlaced(**self._common(s), caller=Party(number, ""),
                                  extension=ext(number), number_dialed=dialled)  # fmt: skip

    def outbound_answer(self, s: float, number: str) -> ExtensionAnswered:
        return ExtensionAnswered(**self._common(s), caller=Party(number, ""), extension=ext(number))

    def outbound_end(self, s: float, number: str) -> ExtensionCallEnded:
        placer = Party(number, "")
        return ExtensionCallEnded(**self._common(s), caller=placer, extension=ext(number))

    def timeout(self, s: float) -> CallTimedOut:
        return CallTimedOut(**self._common(s))

    def unknown(self, s: float, original_type: str = "callParked") -> UnknownCallEvent:
        return UnknownCallEvent(**self._common(s), original_type=original_type)


def by_time(events: list[CallEvent]) -> list[CallEvent]:
    """The events in received order (a log's order), ties kept as given."""
    return sorted(events, key=lambda e: e.received_at)
