"""The supervisor's view in the OpenAPI document: its schemas and operations.

Kept apart from app/openapi.py, which merges both in (``SCHEMAS`` into its
response schemas, ``paths()`` into its paths).
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

EXAMPLE_TIME = "2025-11-25T10:00:00.000000Z"
EXAMPLE_CALL = "6f1c2f0e-8a3b-4c1e-9d2a-5b7e3c4d1a20"
EXAMPLE_CALLBACK = "cb_4e1f0c9a2b7d3e5f6a8b9c0d"
STEP_KINDS = (
    "call",
    "outbound",
    "queue",
    "ring_group",
    "ring",
    "answer",
    "talk",
    "leg_end",
    "voicemail",
    "hangup",
    "timeout",
    "unknown",
    "outcome",
)


def _ex(value: Any, description: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"example": value}
    if description:
        meta["description"] = description
    return meta


def _text(example: Any, description: str, *, nullable: bool = False) -> fields.String:
    return fields.String(required=True, allow_none=nullable, metadata=_ex(example, description))


def _time(description: str, *, nullable: bool = False) -> fields.DateTime:
    return fields.DateTime(
        required=True, allow_none=nullable, metadata=_ex(EXAMPLE_TIME, description + " (UTC)")
    )


def _count(description: str) -> fields.Integer:
    return fields.Integer(
        required=True, validate=validate.Range(min=0), metadata=_ex(3, description)
    )


class _Doc(Schema):
    class Meta:
        unknown = EXCLUDE


class ExtensionDoc(_Doc):
    """One extension on the board: what it does now and its figures for today (UTC)."""

    tenant_id = _text("acme", "whose extension")
    number = _text("101", "the extension number")
    name = _text("Alice Émond", "the name its latest call gave it (may be empty)")
    state = fields.String(
        required=True,
        validate=validate.OneOf(("ringing", "on_call", "idle")),
        metadata=_ex("on_call", "ringing, on_call (talking or dialling) or idle"),
    )
    since = _time("when the current state began (idle: when its last leg ended)", nullable=True)
    call_uuid = _text(
        EXAMPLE_CALL, "the call it rings in or is on now; null when idle", nullable=True
    )
    calls = fields.List(
        fields.String(),
        required=True,
        metadata=_ex([EXAMPLE_CALL], "every call it rings in or is on now, oldest first"),
    )
    answered = _count("calls offered to it that it answered today")
    missed = _count("rings it let go unanswered today, while nobody else answered")
    talk_seconds = fields.Float(
        required=True, metadata=_ex(312.5, "talk of its legs that ended today, both directions")
    )
    outbound = _count("calls it placed today")


class ExtensionBoardDoc(_Doc):
    """The extension board."""

    extensions = fields.List(fields.Nested(ExtensionDoc), required=True)
    server_time = _time("when the board was read")


class TimelineStepDoc(_Doc):
    """One line of a call's story."""

    at = _time("when it happened (the webhook's receipt, a talk's end, an outcome's decision)")
    kind = fields.String(
        required=True, validate=validate.OneOf(STEP_KINDS), metadata=_ex("ring", "what it tells")
    )
    text = _text("rang 101 Alice Émond and 102 Bob for 12 s", "the step in words")
    seconds = fields.Float(
        required=True,
        allow_none=True,
        metadata=_ex(12.0, "how long it lasted, where it has a length (a wait, a ring, a talk)"),
    )


class TimelineDoc(_Doc):
    """A call's story, in received order."""

    call_uuid = _text(EXAMPLE_CALL, "the call")
    tenant_id = _text("acme", "whose call")
    timeline = fields.List(fields.Nested(TimelineStepDoc), required=True)


RESOLVED_KINDS = ("called_back", "answered", "manual")


class CallbackDoc(_Doc):
    """A missed caller to call back: open until a later call reaches the number, or by hand."""

    id = _text(EXAMPLE_CALLBACK, "the item's id (a function of the missed call)")
    tenant_id = _text("acme", "whose item")
    number = _text("+15551230000", "the caller's number, E.164")
    missed_call_uuid = _text(EXAMPLE_CALL, "the call that was missed")
    missed_at = _time("when the missed call ended")
    missed_reason = fields.String(
        required=True,
        validate=validate.OneOf(("abandoned", "no_answer")),
        metadata=_ex("abandoned"),
    )
    status = fields.String(
        required=True, validate=validate.OneOf(("open", "resolved")), metadata=_ex("open")
    )
    resolved_at = _time("when it was resolved", nullable=True)
    resolved_by = _text(
        None,
        "the call_uuid of the call that resolved it, or the note of a manual resolution",
        nullable=True,
    )
    resolved_by_kind = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(RESOLVED_KINDS),
        metadata=_ex(
            None,
            "called_back (an outbound call to the number), answered (the number called in "
            "and was answered) or manual",
        ),
    )
    resolved_by_call_uuid = _text(None, "the resolving call, if a call", nullable=True)
    note = _text(None, "the note, if resolved by hand", nullable=True)


class CallbackListDoc(_Doc):
    """Callback items, oldest miss first."""

    callbacks = fields.List(fields.Nested(CallbackDoc), required=True)
    server_time = _time("when the list was read (the wait of an open item runs until now)")


class ResolveRequestDoc(_Doc):
    """A manual resolution."""

    note = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata=_ex("reached her on her mobile", "who resolved it and how"),
    )


SCHEMAS: dict[str, type[Schema]] = {
    "Extension": ExtensionDoc,
    "ExtensionBoard": ExtensionBoardDoc,
    "TimelineStep": TimelineStepDoc,
    "Timeline": TimelineDoc,
    "Callback": CallbackDoc,
    "CallbackList": CallbackListDoc,
    "ResolveCallbackRequest": ResolveRequestDoc,
}


def paths() -> dict[str, dict[str, Any]]:
    """The supervisor's operations, in app/openapi.py's style."""
    from app.openapi import (
        FORBIDDEN,
        TENANT_FILTER,
        TOO_MANY_STREAMS,
        UNAUTHORIZED,
        UNAVAILABLE,
        _error,
        _json,
        _path,
        _query,
    )
    from app.rest import sse_event

    status = _query(
        "status",
        "only open or only resolved items",
        {"type": "string", "enum": ["open", "resolved"]},
    )
    scope = (
        " A tenant's key reads its tenant; an admin key reads the tenant named by `tenant_id`, "
        "or every tenant (each entry has `tenant_id`)."
    )

    def stream(event: str, schema: str, summary: str, op: str, params: list[Any]) -> Any:
        return {
            "get": {
                "tags": ["supervisor"],
                "operationId": op,
                "summary": summary,
                "description": f"`event: {event}` with the whole list (as the list endpoint "
                "answers it) when it changes, and a keep-alive comment every 15 s. Each event "
                "is a snapshot: a reconnect starts with the current one. The stream closes "
                "after STREAM_MAX_SECONDS; reconnect.",
                "parameters": params,
                "responses": {
                    "200": {
                        "description": "the event stream",
                        "content": {
                            "text/event-stream": {
                                "schema": sse_event(event, schema),
                                "example": f'event: {event}\ndata: {{"{event}": [...], '
                                f'"server_time": "{EXAMPLE_TIME}"}}\n\n',
                            }
                        },
                    },
                    "400": _error("a bad filter"),
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "503": TOO_MANY_STREAMS,
                },
            }
        }

    return {
        "/v1/extensions/live": {
            "get": {
                "tags": ["supervisor"],
                "operationId": "listExtensions",
                "summary": "The extension board: who rings, talks or is idle, with today's figures",
                "description": "Derived from the call events (PrimeVOX sends no agent status). "
                "Lists every extension with a leg live now or ended today or in the last 24 h, "
                "in number order. Today is the UTC day." + scope,
                "parameters": [TENANT_FILTER],
                "responses": {
                    "200": _json("ExtensionBoard", "the board"),
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "503": UNAVAILABLE,
                },
            }
        },
        "/v1/extensions/live/stream": stream(
            "extensions",
            "ExtensionBoard",
            "The extension board as Server-Sent Events, on every change",
            "streamExtensions",
            [TENANT_FILTER],
        ),
        "/v1/calls/{call_uuid}/timeline": {
            "get": {
                "tags": ["calls"],
                "operationId": "getCallTimeline",
                "summary": "A call's story: every webhook in received order, in words",
                "description": "With the waits, rings and talks it tells and the outcome and "
                "its revisions, computed from the call's log.",
                "parameters": [_path("call_uuid", "the PBX's callUuid", EXAMPLE_CALL)],
                "responses": {
                    "200": _json("Timeline", "the story"),
                    "401": UNAUTHORIZED,
                    "404": _error("no such call, or another tenant's"),
                    "503": UNAVAILABLE,
                },
            }
        },
        "/v1/callbacks": {
            "get": {
                "tags": ["supervisor"],
                "operationId": "listCallbacks",
                "summary": "Missed callers and whether somebody reached them since",
                "description": "An abandoned or no_answer inbound call opens an item for the "
                "caller's number; the first later outbound call to that number, or inbound call "
                "from it that was answered, resolves it (numbers compared as E.164, national "
                "ones read in DEFAULT_COUNTRY)." + scope,
                "parameters": [status, TENANT_FILTER],
                "responses": {
                    "200": _json("CallbackList", "the items, oldest miss first"),
                    "400": _error("status is not open or resolved"),
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "503": UNAVAILABLE,
                },
            }
        },
        "/v1/callbacks/stream": stream(
            "callbacks",
            "CallbackList",
            "Callback items as Server-Sent Events, on every change",
            "streamCallbacks",
            [status, TENANT_FILTER],
        ),
        "/v1/callbacks/{callback_id}/resolve": {
            "post": {
                "tags": ["supervisor"],
                "operationId": "resolveCallback",
                "summary": "Mark a callback item resolved by hand, with a note",
                "description": "The same note again answers 200 (a retry); an item resolved "
                "already otherwise answers 409 with the item. A call that reached the number "
                "before the note was given still wins: the earliest resolution counts.",
                "parameters": [_path("callback_id", "the item's id", EXAMPLE_CALLBACK)],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "ResolveCallbackRequest"}},
                },
                "responses": {
                    "200": _json("Callback", "the item, resolved"),
                    "400": _error("no JSON object, or a missing, blank or too long note"),
                    "401": UNAUTHORIZED,
                    "404": _error("no such item, or another tenant's"),
                    "409": _error("resolved already (the body's `callback` says how)"),
                    "503": UNAVAILABLE,
                },
            }
        },
    }
