"""The envelope: one event as the log keeps it.

The intake wraps every accepted webhook in one (``to_record``), the worker
applies it and appends it to the call's (or conversation's) log, and a rebuild
reads it back (``from_record``). Stored as JSON: this describes its shape, it
checks nothing at run time (the worker sets aside an envelope it cannot read).
"""

from __future__ import annotations

from typing import Any, TypedDict


class Envelope(TypedDict):
    """An accepted event: what was sent, and what we understood of it."""

    # Derived from the event's type and fields: the same event posted twice has
    # the same id, which is how a retried webhook is deduplicated.
    id: str
    # The type as the PBX spelled it (unknown types too).
    event_type: str
    # Which event class reads ``data`` back.
    kind: str
    tenant_id: str
    container_id: str
    # ISO-8601 UTC with microseconds, as the intake received it.
    received_at: str
    # The body's fields exactly as sent (every value as text).
    fields: dict[str, str]
    # The event's own fields, as the event class writes them.
    data: dict[str, Any]
