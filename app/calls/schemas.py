"""What the calls, outcomes and messages routes answer, and the query arguments
they take: the schemas dump the answers and document them (app/web/rest.py).

A live call and a call are the engine's view of it (statemachine/state.py),
an outcome record is what statemachine/outcome.py decided; the schemas name
the fields shown, so a field the engine adds stays internal until a schema
shows it.
"""

from __future__ import annotations

import re
from typing import Any

import flask
from marshmallow import Schema, ValidationError, fields, pre_load, validate

from app.web.fast_dump import FastAnswer
from app.web.schema_fields import (
    EXAMPLE_CALL_UUID,
    EXAMPLE_CONTAINER,
    EXAMPLE_CONVERSATION,
    EXAMPLE_OUTCOME_ID,
    EXAMPLE_TENANT,
    OUTCOME_ID_PATTERN,
    Answer,
    Number,
    ex,
    text,
    time_field,
    values,
)
from statemachine.outcome import MissedReason, Outcome
from statemachine.state import CallStatus, Direction, EndedBy

# In the order the API has always listed them (a 400 answer names them so).
OUTCOME_KINDS = values((Outcome.ANSWERED, Outcome.MISSED, Outcome.VOICEMAIL, Outcome.OUTBOUND))
MISSED_REASONS = values(MissedReason)
CALL_STATES = values(CallStatus)
LIVE_STATES = values(state for state in CallStatus if state is not CallStatus.ENDED)
DIRECTIONS = values(Direction)
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


# -- answers -----------------------------------------------------------------------------


class PartySchema(Answer):
    """A person or extension: a number and a name, either possibly empty."""

    number = fields.String(required=True, metadata=ex("101"))
    name = fields.String(required=True, metadata=ex("Alice Émond"))


class DidSchema(Answer):
    """The customer's number that was called, as the PBX describes it."""

    number = fields.String(required=True, metadata=ex("+15550001000"))
    description = fields.String(required=True, metadata=ex("Main line, front desk"))
    group = fields.String(required=True, metadata=ex("Sales & Support"))


def party(description: str, *, example_null: bool = False) -> fields.Nested:
    meta: dict[str, Any] = {"description": description}
    if example_null:
        meta["example"] = None
    return fields.Nested(PartySchema, required=True, allow_none=True, metadata=meta)


def parties(description: str) -> fields.List[Any]:
    return fields.List(
        fields.Nested(PartySchema), required=True, metadata={"description": description}
    )


def direction() -> fields.String:
    return fields.String(required=True, validate=validate.OneOf(DIRECTIONS), metadata=ex("inbound"))


class LiveCallSchema(Answer):
    """A call as the engine sees it now."""

    call_uuid = text(EXAMPLE_CALL_UUID, "the PBX's callUuid", nullable=False)
    tenant_id = text(EXAMPLE_TENANT, nullable=False)
    container_id = text(EXAMPLE_CONTAINER, "empty when no event carried one", nullable=False)
    direction = direction()
    state = fields.String(
        required=True,
        validate=validate.OneOf(LIVE_STATES),
        metadata=ex("ringing", "new, queued, ringing, answered or dialing (outbound)"),
    )
    caller = party("who called (null for outbound calls)")
    did = fields.Nested(
        DidSchema,
        required=True,
        allow_none=True,
        metadata={"description": "the number called, when an InboundCall was seen"},
    )
    number_dialed = text(None, "outbound: the number the extension dialed")
    extension = party("outbound: the extension that placed the call", example_null=True)
    queue = text("600", "the queue the caller entered")
    ring_group = text(None, "the ring group the caller entered")
    ringing = parties("extensions ringing now")
    rang = parties("extensions that rang, in order, no repeats")
    answered_by = party("the first extension to answer", example_null=True)
    started_at = time_field("the call's first event")
    answered_at = time_field("when it was answered")
    ended_at = time_field("when it ended; null while live")
    last_event_at = time_field("the call's latest event")


class CallEventSchema(Answer):
    """One entry of a call's event log: the event as the PBX sent it."""

    event_type = fields.String(required=True, metadata=ex("ringAttempt"))
    received_at = time_field("when the engine received it", nullable=False)
    fields_ = fields.Dict(
        data_key="fields",
        attribute="fields",
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata=ex(
            {
                "eventType": "ringAttempt",
                "eventTarget": "extension",
                "tenantId": EXAMPLE_TENANT,
                "callUuid": EXAMPLE_CALL_UUID,
                "extNumber": "101",
                "extName": "Alice Émond",
            },
            "the body's fields, as sent",
        ),
    )


class OutcomeRecordSchema(Answer):
    """What happened to one call; a later revision supersedes an earlier one."""

    id = fields.String(
        required=True,
        validate=validate.Regexp(OUTCOME_ID_PATTERN),
        metadata=ex(EXAMPLE_OUTCOME_ID, "record id, increasing; use with after= and Last-Event-ID"),
    )
    revision = fields.Integer(
        required=True, validate=validate.Range(min=1), metadata=ex(1, "1, then 2, 3… if revised")
    )
    call_uuid = text(EXAMPLE_CALL_UUID, nullable=False)
    tenant_id = text(EXAMPLE_TENANT, nullable=False)
    container_id = text(EXAMPLE_CONTAINER, nullable=False)
    direction = direction()
    outcome = fields.String(
        required=True, validate=validate.OneOf(OUTCOME_KINDS), metadata=ex("answered")
    )
    missed_reason = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(MISSED_REASONS),
        metadata=ex(None, "for missed calls: abandoned, no_answer or unrouted"),
    )
    answered_by = party("the extension that answered")
    voicemail_box = party("for voicemail: the box", example_null=True)
    caller = party("who called")
    did = fields.Nested(DidSchema, required=True, allow_none=True)
    number_dialed = text(None, "outbound: the number dialed")
    extension = party("outbound: the extension that placed the call", example_null=True)
    queue = text("600")
    ring_group = text(None)
    rang = parties("extensions that rang, in order, no repeats")
    started_at = time_field("the call's first event")
    answered_at = time_field("when it was answered")
    ended_at = time_field("when it ended", nullable=False)
    wait_seconds = Number(
        required=True,
        allow_none=True,
        metadata=ex(12.5, "start to answer, or start to end when unanswered; null if unknown"),
    )
    talk_seconds = Number(
        required=True,
        allow_none=True,
        metadata=ex(95.2, "answer to end; 0 when unanswered; null if unknown"),
    )
    ended_by = fields.String(
        required=True, validate=validate.OneOf(values(EndedBy)), metadata=ex("hangup")
    )
    short_abandon = fields.Boolean(
        required=True,
        metadata=ex(
            False,
            "abandoned within the tenant's short_abandon_seconds of the start "
            "(absent from records decided before it existed)",
        ),
    )


class CallSchema(FastAnswer, LiveCallSchema):
    """One call: its state, its latest outcome and its event log."""

    state = fields.String(
        required=True,
        validate=validate.OneOf(CALL_STATES),
        metadata=ex("ended"),
    )
    answered_by = party("the first extension to answer")
    outcome = fields.Nested(
        OutcomeRecordSchema,
        required=True,
        allow_none=True,
        metadata={"description": "the latest outcome revision; null until decided"},
    )
    events = fields.List(
        fields.Nested(CallEventSchema),
        required=True,
        metadata={"description": "the call's event log, in received order"},
    )
    events_not_folded = fields.Integer(
        required=True,
        metadata={
            "description": "events of this call past MAX_EVENTS_PER_CALL: accepted and kept, "
            "but not folded into its state (not in events)",
            "example": 0,
        },
    )


class MessageSchema(Answer):
    """One SMS/MMS message."""

    id = text("5d41402abc4b2a76b9719d911017c592", "event id", nullable=False)
    conversation_id = fields.String(
        attribute="data.conversation_id",
        required=True,
        allow_none=False,
        metadata=ex(EXAMPLE_CONVERSATION),
    )
    tenant_id = text(EXAMPLE_TENANT, nullable=False)
    container_id = text(EXAMPLE_CONTAINER, nullable=False)
    direction = fields.String(
        attribute="data.direction",
        required=True,
        validate=validate.OneOf(DIRECTIONS),
        metadata=ex("inbound"),
    )
    from_ = fields.String(
        data_key="from", attribute="data.from_number", required=True, metadata=ex("+15551230000")
    )
    to = fields.String(attribute="data.to_number", required=True, metadata=ex("+15550001000"))
    text = fields.String(attribute="data.text", required=True, metadata=ex("Can you call me back?"))
    received_at = time_field("when the engine received it", nullable=False)


class LiveCallListSchema(FastAnswer):
    calls = fields.List(fields.Nested(LiveCallSchema), required=True)


def next_page(example: str | None, description: str) -> fields.String:
    """Where the next page starts; null after the last."""
    return fields.String(required=True, allow_none=True, metadata=ex(example, description))


class OutcomePageSchema(FastAnswer):
    outcomes = fields.List(fields.Nested(OutcomeRecordSchema), required=True)
    next = next_page(
        EXAMPLE_OUTCOME_ID, "pass as after= for the next page; null when this page was the last"
    )


class MessageListSchema(Answer):
    messages = fields.List(fields.Nested(MessageSchema), required=True)


class CallHistoryPageSchema(Answer):
    """A page of call history: each call as its latest outcome record, newest start first."""

    calls = fields.List(fields.Nested(OutcomeRecordSchema), required=True)
    next = next_page(None, "pass as cursor= for the next page; null: this was the last")


class LiveSnapshotSchema(Answer):
    """One event of the live-calls stream: every live call, as ``/v1/calls/live`` lists them."""

    calls = fields.List(fields.Nested(LiveCallSchema), required=True)
    server_time = time_field("when the snapshot was taken", nullable=False)


# -- query arguments ----------------------------------------------------------------------

# ASCII digits only (``\d`` also takes other scripts' digits) and no trailing
# newline (``$`` allows one): Redis refuses both, which would read as a 503.
OUTCOME_ID = re.compile(r"^[0-9]{1,20}(-[0-9]{1,20})?\Z")
MAX_STREAM_ID_PART = 2**64 - 1


def is_outcome_id(value: str) -> bool:
    """Whether ``value`` is an outcome id Redis can read after: ``<us>[-<seq>]``, each a
    64-bit unsigned, short of the very last id (nothing can follow that one)."""
    if not OUTCOME_ID.match(value):
        return False
    parts = [int(part) for part in value.split("-")]
    return max(parts) <= MAX_STREAM_ID_PART and parts != [MAX_STREAM_ID_PART] * 2


class OutcomeIdArg(fields.String):
    """An outcome id to read after; anything else is refused in the API's words."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or not is_outcome_id(value):
            raise ValidationError("after must be an outcome id such as 1764063000123456-0")
        return value


class WholeNumberArg(fields.Integer):
    """A whole number in ``low..high``, written in ASCII digits (no sign, no spaces)."""

    def __init__(self, name: str, low: int, high: int, **kwargs: Any) -> None:
        self.message = f"{name} must be a whole number from {low} to {high}"
        super().__init__(validate=validate.Range(min=low, max=high, error=self.message), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        # isascii: "²".isdigit() is true but int("²") raises.
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise ValidationError(self.message)
        return int(value)


def tenant_filter() -> fields.String:
    return fields.String(
        metadata={"description": "only this tenant (a tenant key may name only its own)"}
    )


class LiveCallArgs(Schema):
    """Filters of the live calls (an empty value matches calls with that field empty)."""

    tenant_id = tenant_filter()
    container_id = fields.String(metadata={"description": "only this container"})
    queue = fields.String(metadata={"description": "only calls in this queue"})


class OutcomeArgs(Schema):
    """Which outcome records to read; an empty value counts as not given. A missing
    ``after`` is read from the Last-Event-ID header (an EventSource resuming)."""

    after = OutcomeIdArg(
        metadata={
            "description": "only records after this id (exclusive); the Last-Event-ID "
            "header does the same",
            "pattern": OUTCOME_ID_PATTERN,
            "example": EXAMPLE_OUTCOME_ID,
        }
    )
    tenant_id = tenant_filter()
    outcome = fields.String(
        validate=validate.OneOf(
            OUTCOME_KINDS, error=f"outcome must be one of {', '.join(OUTCOME_KINDS)}"
        ),
        metadata={"description": "only this outcome"},
    )

    @pre_load
    def _given(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        given = {key: data[key] for key in data if data[key] != ""}
        if "after" not in given and flask.request.headers.get("Last-Event-ID"):
            given["after"] = flask.request.headers["Last-Event-ID"]
        return given


class OutcomePageArgs(OutcomeArgs):
    limit = WholeNumberArg(
        "limit", 1, MAX_LIMIT, load_default=DEFAULT_LIMIT, metadata={"description": "page size"}
    )


class LastEventIdHeader(Schema):
    """The header an EventSource resumes with (read by OutcomeArgs)."""

    last_event_id = fields.String(
        data_key="Last-Event-ID",
        metadata={
            "description": "resume after this record id (wins over after=)",
            "pattern": OUTCOME_ID_PATTERN,
        },
    )
