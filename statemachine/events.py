"""Typed PrimeVOX events: what the engine folds.

The edge (marshmallow schemas in ``app``) turns raw webhook bodies into these
dataclasses; the log stores each one as a *record* (``to_record``) so a worker
can rebuild it (``from_record``) without ever seeing the raw body again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, ClassVar


class EventType(str, Enum):
    """Every ``eventType`` the PBX sends, spelled as it sends them, plus our own."""

    INBOUND_CALL = "InboundCall"
    HANGUP_CALL = "HangupCall"
    RING_ATTEMPT = "ringAttempt"
    EXTENSION_ANSWERED = "ExtensionAnswered"
    INBOUND_CALL_COMPLETED = "inboundCallCompleted"
    VOICEMAIL_HANGUP = "voicemailHangup"
    OUTBOUND_CALL = "outboundCall"
    QUEUE_ENTERED = "queueEntered"
    INBOUND_MESSAGE = "inboundMessage"
    OUTBOUND_MESSAGE = "outboundMessage"
    # Written by the engine itself, never by the PBX: the call went silent for
    # CALL_TIMEOUT_SECONDS. Logged like any event so a rebuild sees it too.
    ENGINE_TIMEOUT = "callstate.timeout"


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


@dataclass(frozen=True)
class Event:
    """What every event has: where it belongs and when we received it."""

    event_type: ClassVar[str]

    tenant_id: str
    container_id: str
    received_at: datetime

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

    call_uuid: str = ""
    caller: Party = field(default_factory=Party)


@dataclass(frozen=True)
class InboundCall(CallEvent):
    event_type: ClassVar[str] = EventType.INBOUND_CALL.value
    did: Did = field(default_factory=Did)
    cid_prefix: str = ""


@dataclass(frozen=True)
class HangupCall(CallEvent):
    """The call ended. ``extension`` is filled when a person had answered."""

    event_type: ClassVar[str] = EventType.HANGUP_CALL.value
    extension: Party = field(default_factory=Party)


@dataclass(frozen=True)
class ExtensionRinging(CallEvent):
    event_type: ClassVar[str] = EventType.RING_ATTEMPT.value
    extension: Party = field(default_factory=Party)


@dataclass(frozen=True)
class RingGroupEntered(CallEvent):
    """``ringAttempt`` with ``eventTarget=ringGroup``: same type, another meaning."""

    event_type: ClassVar[str] = EventType.RING_ATTEMPT.value
    ring_group: str = ""


@dataclass(frozen=True)
class QueueEntered(CallEvent):
    event_type: ClassVar[str] = EventType.QUEUE_ENTERED.value
    queue: str = ""


@dataclass(frozen=True)
class ExtensionAnswered(CallEvent):
    event_type: ClassVar[str] = EventType.EXTENSION_ANSWERED.value
    extension: Party = field(default_factory=Party)


@dataclass(frozen=True)
class ExtensionCallEnded(CallEvent):
    """``inboundCallCompleted``: the extension's leg of the call ended."""

    event_type: ClassVar[str] = EventType.INBOUND_CALL_COMPLETED.value
    extension: Party = field(default_factory=Party)


@dataclass(frozen=True)
class VoicemailLeft(CallEvent):
    event_type: ClassVar[str] = EventType.VOICEMAIL_HANGUP.value
    extension: Party = field(default_factory=Party)


@dataclass(frozen=True)
class OutboundCallPlaced(CallEvent):
    event_type: ClassVar[str] = EventType.OUTBOUND_CALL.value
    extension: Party = field(default_factory=Party)
    number_dialed: str = ""


@dataclass(frozen=True)
class CallTimedOut(CallEvent):
    """Written by the engine when a live call has been silent too long."""

    event_type: ClassVar[str] = EventType.ENGINE_TIMEOUT.value


@dataclass(frozen=True)
class UnknownCallEvent(CallEvent):
    """An ``eventType`` we do not know yet: kept in the log, changes nothing."""

    event_type: ClassVar[str] = "unknown"
    original_type: str = ""


@dataclass(frozen=True)
class MessageEvent(Event):
    """An SMS/MMS, inbound or outbound, in a conversation."""

    event_type: ClassVar[str] = "message"
    conversation_id: str = ""
    direction: str = "inbound"
    from_number: str = ""
    to_number: str = ""
    text: str = ""


@dataclass(frozen=True)
class UnknownEvent(Event):
    """An unknown ``eventType`` with no ``callUuid``: kept for inspection only."""

    event_type: ClassVar[str] = "unknown"
    original_type: str = ""


CALL_EVENT_CLASSES: dict[str, type[CallEvent]] = {
    "InboundCall": InboundCall,
    "HangupCall": HangupCall,
    "ExtensionRinging": ExtensionRinging,
    "RingGroupEntered": RingGroupEntered,
    "QueueEntered": QueueEntered,
    "ExtensionAnswered": ExtensionAnswered,
    "ExtensionCallEnded": ExtensionCallEnded,
    "VoicemailLeft": VoicemailLeft,
    "OutboundCallPlaced": OutboundCallPlaced,
    "CallTimedOut": CallTimedOut,
    "UnknownCallEvent": UnknownCallEvent,
}
_ALL_CLASSES: dict[str, type[Event]] = {
    **CALL_EVENT_CLASSES,
    "MessageEvent": MessageEvent,
    "UnknownEvent": UnknownEvent,
}


# The name a log record stores for each class: the keys above, declared once and
# never derived from the class, so renaming a class does not orphan stored logs.
_STORED_NAMES: dict[type[Event], str] = {cls: name for name, cls in _ALL_CLASSES.items()}


def to_record(event: Event, fields_as_sent: dict[str, str], event_type: str) -> dict[str, Any]:
    """Serialise an event for the log: what was sent, and what we understood.

    ``event_type`` is the type as the PBX spelled it (unknown types included),
    which is also what identifies the event together with its fields.
    """
    return {
        "id": event_id_for(event_type, fields_as_sent),
        "event_type": event_type,
        "kind": _STORED_NAMES[type(event)],
        "tenant_id": event.tenant_id,
        "container_id": event.container_id,
        "received_at": isoformat(event.received_at),
        "fields": fields_as_sent,
        "data": event.data(),
    }


def from_record(record: dict[str, Any]) -> Event:
    """Rebuild the typed event from a log record. Raises KeyError/ValueError on a bad record."""
    cls = _ALL_CLASSES[record["kind"]]
    kwargs: dict[str, Any] = {
        "tenant_id": record["tenant_id"],
        "container_id": record["container_id"],
        "received_at": parse_time(record["received_at"]),
    }
    for f in fields(cls):
        if f.name in kwargs or f.name not in record["data"]:
            continue
        value = record["data"][f.name]
        if f.name in {"caller", "extension"}:
            value = Party(**value)
        elif f.name == "did":
            value = Did(**value)
        kwargs[f.name] = value
    return cls(**kwargs)
