"""PrimeVOX webhook bodies exactly as the PBX documents and sends them.

Field names and their casing are the PBX's own: ``extensionNumber`` on
ExtensionAnswered, ``containerID`` on SMS, and so on. Every builder returns
the fields as a dict of text, in the order the PBX documents them: each
starts from the event registry's sample body (statemachine.primevox), so a
newly declared event can be built with ``Call.event`` at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from statemachine.primevox import EVENTS

Fields = dict[str, str]


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Ext:
    number: str
    name: str


ALICE = Ext("101", "Alice Émond")
BOB = Ext("102", "Bob O'Neil & Co")
CAROL = Ext("103", "Carol Nguyễn")


@dataclass(frozen=True)
class Call:
    """One call of the PBX; its methods build that call's events."""

    tenant: str
    uuid: str = field(default_factory=new_uuid)
    container: str = "container-1"
    caller_number: str = "+15551230000"
    caller_name: str = "Zoë D'Arcy-Smith"
    did: str = "+15550001000"

    def event(self, key: str, **values: str) -> Fields:
        """Any declared event of this call: the registry's sample of ``key``
        (statemachine.primevox) with this call's ids and ``values`` in it."""
        ids = {"containerId": self.container, "tenantId": self.tenant, "callUuid": self.uuid}
        return EVENTS.sample(key, values, ids=ids)

    def inbound(self) -> Fields:
        return self.event(
            "InboundCall",
            didNumber=self.did,
            callerIdNum=self.caller_number,
            callerIdName=self.caller_name,
        )

    def hangup(self, ext: Ext | None = None) -> Fields:
        return self.event(
            "HangupCall",
            extNumber=ext.number if ext else "",
            extName=ext.name if ext else "",
            callerIdName=self.caller_name,
            callerIdNum=self.caller_number,
        )

    def ring(self, ext: Ext) -> Fields:
        return self.event(
            "ringAttempt.extension",
            extNumber=ext.number,
            extName=ext.name,
            callerIdNum=self.caller_number,
        )

    def ring_group(self, number: str = "600") -> Fields:
        return self.event("ringAttempt.ringGroup", rgNumber=number, callerIdNum=self.caller_number)

    def queue(self, number: str = "700") -> Fields:
        return self.event("queueEntered", queueNumber=number, callerIdNum=self.caller_number)

    def answered(self, ext: Ext) -> Fields:
        return self.event(
            "ExtensionAnswered",
            callerIdNum=self.caller_number,
            callerIdName=self.caller_name,
            extensionNumber=ext.number,
            extensionName=ext.name,
        )

    def _ext_event(self, key: str, ext: Ext) -> Fields:
        return self.event(
            key,
            extNumber=ext.number,
            extName=ext.name,
            callerIdName=self.caller_name,
            callerIdNum=self.caller_number,
        )

    def completed(self, ext: Ext) -> Fields:
        return self._ext_event("inboundCallCompleted", ext)

    def voicemail(self, ext: Ext) -> Fields:
        return self._ext_event("voicemailHangup", ext)

    def outbound(self, ext: Ext, dialed: str = "+15559876543") -> Fields:
        return self.event(
            "outboundCall", extNumber=ext.number, extName=ext.name, numberDialed=dialed
        )

    def unknown(self, event_type: str = "callParked") -> Fields:
        return {**self.event("UnknownCallEvent"), "eventType": event_type}


def message(
    direction: str,
    tenant: str,
    conversation: str,
    text: str,
    customer: str = "+15550001000",
    outsider: str = "+15557654321",
    container: str = "container-1",
) -> Fields:
    """An SMS event, JSON-spelled (containerID, tenantID, conversationID)."""
    inbound = direction == "inbound"
    return EVENTS.sample(
        "inboundMessage" if inbound else "outboundMessage",
        {
            "toNumber": customer if inbound else outsider,
            "fromNumber": outsider if inbound else customer,
            "messageText": text,
        },
        ids={"containerId": container, "tenantId": tenant, "conversationId": conversation},
    )


# -- whole calls, in the order the PBX sends their events --------------------------

# kind -> (outcome, missed_reason)
EXPECTED: dict[str, tuple[str, str | None]] = {
    "answered": ("answered", None),
    "answered_hangup_only": ("answered", None),
    "abandoned": ("missed", "abandoned"),
    "no_answer": ("missed", "no_answer"),
    "voicemail": ("voicemail", None),
    "outbound": ("outbound", None),
    "unrouted": ("missed", "unrouted"),
    "extension_only_answered": ("answered", None),
    "extension_only_voicemail": ("voicemail", None),
}


def scenario(kind: str, call: Call) -> list[Fields]:
    """The events of one call of ``kind`` (a key of EXPECTED), in realistic order."""
    if kind == "answered":
        return [
            call.inbound(),
            call.queue(),
            call.ring(ALICE),
            call.ring(BOB),
            call.answered(BOB),
            call.completed(BOB),
            call.hangup(BOB),
        ]
    if kind == "answered_hangup_only":
        # Only phone-number webhooks configured: HangupCall names who answered.
        return [call.inbound(), call.hangup(CAROL)]
    if kind == "abandoned":
        return [call.inbound(), call.queue(), call.ring(ALICE), call.hangup()]
    if kind == "no_answer":
        return [call.inbound(), call.ring_group(), call.ring(ALICE), call.ring(BOB), call.hangup()]
    if kind == "voicemail":
        return [call.inbound(), call.ring(ALICE), call.voicemail(ALICE), call.hangup()]
    if kind == "outbound":
        # No HangupCall for outbound calls: the extension's end event ends it.
        return [call.outbound(BOB), call.completed(BOB)]
    if kind == "unrouted":
        return [call.inbound(), call.hangup()]
    if kind == "extension_only_answered":
        # Only extension webhooks configured: no InboundCall, no HangupCall.
        return [call.ring(ALICE), call.answered(ALICE), call.completed(ALICE)]
    if kind == "extension_only_voicemail":
        return [call.ring(BOB), call.voicemail(BOB)]
    raise ValueError(f"unknown scenario {kind!r}")
