"""An event as its log record, and back.

A record keeps what the PBX sent (``fields``) and what we understood
(``data``); it names the event's class by the name the registry declares
for it (:mod:`statemachine.primevox`), never by the Python class name, so a
class can be renamed without migrating stored logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, cast

from statemachine.envelope import Envelope
from statemachine.events import Did, Event, Party, event_id_for, isoformat, parse_time
from statemachine.primevox import EVENTS


def to_record(event: Event, fields_as_sent: dict[str, str], event_type: str) -> Envelope:
    """Serialise an event for the log: what was sent, and what we understood.

    ``event_type`` is the type as the PBX spelled it (unknown types included),
    which is also what identifies the event together with its fields.
    """
    return {
        "id": event_id_for(event_type, fields_as_sent),
        "event_type": event_type,
        "kind": EVENTS.stored_names[type(event)],
        "tenant_id": event.tenant_id,
        "container_id": event.container_id,
        # Every event has its receipt time, so this is never None.
        "received_at": cast(str, isoformat(event.received_at)),
        "fields": fields_as_sent,
        "data": event.data(),
    }


def from_record(record: Mapping[str, Any]) -> Event:
    """Rebuild the typed event from a log record (an Envelope, or any JSON object
    read back). Raises KeyError/ValueError on a bad record."""
    cls = EVENTS.classes[record["kind"]]
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
