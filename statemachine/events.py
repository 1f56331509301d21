"""Typed PrimeVOX events: what the engine folds.

The edge (marshmallow schemas in ``app``) turns raw webhook bodies into these
dataclasses, reading each field from the body field its ``metadata`` names
(:mod:`statemachine.wire`); the log stores each one as a *record*
(:mod:`statemachine.event_log`) so a worker can rebuild it without ever
seeing the raw body again. Which ``eventType`` becomes which class is
declared in :mod:`statemachine.primevox`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from statemachine.wire import LONG_TEXT, RECEIVED, identifier, read, text


@dataclass(frozen=True, order=True)
class Party:
    """A phone party: an extension, a caller. Either part may be empty."""

    number: str = ""
    name: str = ""

    def as_json(self) -> dict[str, str]:
        return {"number": self.number, "name": self.name}


@dataclass(frozen=True, order=True)
class Did:
    """The customer's number that was called, with the PBX's description of it."""

    number: str = ""
    description: str = ""
    group: str = ""

    def as_json(self) -> dict[str, str]:
        return {"number": self.number, "description": self.description, "group": self.group}


def to_utc(moment: datetime) -> datetime:
    """Return ``moment`` as an aware UTC datetime (naive means UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def isoformat(moment: datetime | None) -> str | None:
    """Format as ISO-8601 UTC with microseconds and a ``Z``; ``None`` stays ``None``."""
    if moment is None:
        return None
    # Not strftime: its %Y does not pad years before 1000 to four digits, which
    # parse_time could then not read back (and strings would not sort by time).
    return to_utc(moment).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    """Whole microseconds since the epoch, exactly (no float rounding)."""
    return (to_utc(moment) - _EPOCH) // timedelta(microseconds=1)


def parse_time(text: str) -> datetime:
    """Parse a timestamp written by :func:`isoformat`. Raises ValueError."""
    return to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def event_id_for(event_type: str, fields_as_sent: dict[str, str]) -> str:
    """Name an event by its content, so a sender's retry gets the same id.

    The PBX sends no event id and no timestamp, so two deliveries with the same
    type and the same fields *are* the same event.
    """
    canonical = json.dumps([event_type, sorted(fields_as_sent.items())], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# An unknown event keeps the eventType as the PBX spelled it.
_TYPE_AS_SENT = read(text("eventType", max_length=None, required=True))
# MMS bodies may carry MIME attachments: the whole body limit applies.
_MESSAGE_TEXT = read(text("messageText", max_length=None, lines=True))


@dataclass(frozen=True)
class Event:
    """What every event has: where it belongs and when we received it."""

    tenant_id: str = field(metadata=read(identifier("tenantId", required=True)))
    container_id: str = field(metadata=read(identifier("containerId")))
    received_at: datetime = field(metadata=RECEIVED)

    def data(self) -> dict[str, Any]:
        """Return the event's own fields (beyond the common ones) as JSON values."""
        common = {"tenant_id", "container_id", "received_at"}
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in common:
                continue
            value = getattr(self, f.name)
            if isinstance(value, Party | Did):
                value = value.as_json()
            out[f.name] = value
        return out


@dataclass(frozen=True)
class CallEvent(Event):
    """An event about one call, named by the PBX's ``callUuid``."""

    call_uuid: str = field(default="", metadata=read(identifier("callUuid", required=True)))
    caller: Party = field(
        default_factory=Party,
        metadata=read(number=text("callerIdNum"), name=text("callerIdName")),
    )


@dataclass(frozen=True)
class ExtensionEvent(CallEvent):
    """A call event about one extension (``extNumber``/``extName``, however spelled)."""

    extension: Party = field(
        default_factory=Party, metadata=read(number=text("extNumber"), name=text("extName"))
    )


@dataclass(frozen=True)
class InboundCall(CallEvent):
    did: Did = field(
        default_factory=Did,
        metadata=read(
            number=text("didNumber"),
            description=text("didDescription", max_length=LONG_TEXT, lines=True),
            group=text("didGroup", max_length=LONG_TEXT, lines=True),
        ),
    )
    cid_prefix: str = field(default="", metadata=read(text("cidPrefix")))


@dataclass(frozen=True)
class HangupCall(ExtensionEvent):
    """The call ended. ``extension`` is filled when a person had answered."""


@dataclass(frozen=True)
class ExtensionRinging(ExtensionEvent):
    """``ringAttempt`` with ``eventTarget=extension``: the extension is ringing."""


@dataclass(frozen=True)
class RingGroupEntered(CallEvent):
    """``ringAttempt`` with ``eventTarget=ringGroup``: same type, another meaning."""

    ring_group: str = field(default="", metadata=read(text("rgNumber")))


@dataclass(frozen=True)
class QueueEntered(CallEvent):
    queue: str = field(default="", metadata=read(text("queueNumber")))


@dataclass(frozen=True)
class ExtensionAnswered(ExtensionEvent):
    """The extension answered (the PBX spells it ``extensionNumber``/``extensionName``)."""


@dataclass(frozen=True)
class ExtensionCallEnded(ExtensionEvent):
    """``inboundCallCompleted``: the extension's leg of the call ended."""


@dataclass(frozen=True)
class VoicemailLeft(ExtensionEvent):
    """The caller left a voicemail at the extension and hung up."""


@dataclass(frozen=True)
class OutboundCallPlaced(ExtensionEvent):
    number_dialed: str = field(default="", metadata=read(text("numberDialed")))


@dataclass(frozen=True)
class CallTimedOut(CallEvent):
    """Written by the engine when a live call has been silent too long."""


@dataclass(frozen=True)
class UnknownCallEvent(CallEvent):
    """An ``eventType`` we do not know yet: kept in the log, changes nothing."""

    original_type: str = field(default="", metadata=_TYPE_AS_SENT)


@dataclass(frozen=True)
class MessageEvent(Event):
    """An SMS/MMS, inbound or outbound, in a conversation.

    ``direction`` is not in the body: each declaration fixes it.
    """

    conversation_id: str = field(
        default="", metadata=read(identifier("conversationId", required=True))
    )
    direction: str = "inbound"
    from_number: str = field(default="", metadata=read(text("fromNumber")))
    to_number: str = field(default="", metadata=read(text("toNumber")))
    text: str = field(default="", metadata=_MESSAGE_TEXT)


@dataclass(frozen=True)
class UnknownEvent(Event):
    """An unknown ``eventType`` with no ``callUuid``: kept for inspection only."""

    original_type: str = field(default="", metadata=_TYPE_AS_SENT)
