"""What ``GET /v1/stats`` takes and answers (app/stats/routes.py): its query, parsed
with the API's own messages, and the figures, dumped and documented by these
schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from app.calls.schemas import MISSED_REASONS, DidSchema, PartySchema, party
from app.stats.figures import GROUPINGS, parse_instant, start_of_day
from app.web.schema_fields import (
    EXAMPLE_CALL_UUID,
    EXAMPLE_OUTCOME_ID,
    EXAMPLE_TENANT,
    EXAMPLE_TIME,
    Answer,
    Count,
    Number,
    Timestamp,
    ex,
    text,
    time_field,
    tz_arg,
    values,
)
from statemachine.callbacks import ContactKind

MAX_MISSED = 500
DEFAULT_MISSED = 50
MAX_SERVICE_LEVEL_SECONDS = 86400


# -- the query -----------------------------------------------------------------------------


class InstantArg(fields.Field[datetime]):
    """An ISO-8601 date or time (no offset: UTC), as app.stats.figures reads it."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        try:
            return parse_instant(str(value))
        except ValueError:
            raise ValidationError(
                f"{self.data_key or attr} must be an ISO-8601 time such as 2026-11-25T00:00:00Z"
            ) from None


def _bounded(value: Any, high: float, message: str) -> float:
    """``value`` as a number from 0 to ``high``; else ValidationError(message)."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= high:
        raise ValidationError(message)
    return number


class BoundedNumberArg(fields.Float):
    """A number from 0 to ``high``, refused in the API's words."""

    def __init__(self, name: str, high: int, **kwargs: Any) -> None:
        self.high, self.message = high, f"{name} must be a number from 0 to {high:g}"
        super().__init__(validate=validate.Range(min=0, max=high), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        return _bounded(value, self.high, self.message)


class CountArg(fields.Integer):
    """A count from 0 to ``high``, read as a number (a fraction is cut: 2.5 reads as 2)."""

    def __init__(self, name: str, high: int, **kwargs: Any) -> None:
        self.high, self.message = high, f"{name} must be a number from 0 to {high:g}"
        super().__init__(validate=validate.Range(min=0, max=high), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        return int(_bounded(value, self.high, self.message))


class StatsArgs(Schema):
    """The window, grouping and figures asked for; an empty value counts as not given."""

    from_ = InstantArg(
        data_key="from",
        metadata={
            "description": "window start, ISO-8601 date or time (no offset: UTC); default: "
            "today's midnight in the time zone (tz)",
            "type": "string",
            "example": "2025-11-25T00:00:00Z",
        },
    )
    to = InstantArg(
        metadata={
            "description": "window end (exclusive), ISO-8601; default: now",
            "type": "string",
            "example": "2025-11-26T00:00:00Z",
        }
    )
    group_by = fields.String(
        validate=validate.OneOf(GROUPINGS, error=f"group_by must be one of {', '.join(GROUPINGS)}"),
        metadata={"description": "group the figures"},
    )
    service_level_seconds = BoundedNumberArg(
        "service_level_seconds",
        MAX_SERVICE_LEVEL_SECONDS,
        metadata={
            "description": "answered within this wait counts toward the service level "
            "(default SERVICE_LEVEL_SECONDS)",
            # Whole numbers, as written (the field's Range would document 86400.0).
            "minimum": 0,
            "maximum": MAX_SERVICE_LEVEL_SECONDS,
        },
    )
    missed_limit = CountArg(
        "missed_limit",
        MAX_MISSED,
        load_default=DEFAULT_MISSED,
        metadata={"description": "at most this many missed calls"},
    )
    tenant_id = fields.String(
        metadata={"description": "only this tenant (a tenant key may name only its own)"}
    )
    tz = tz_arg("the tenant's (every tenant: DEFAULT_TIMEZONE)")

    @pre_load
    def _given(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        """Empty values dropped; a window that ends before it starts refused before any
        other argument is looked at (a bad time is left to its field to say)."""
        given = {key: data[key] for key in data if data[key] != ""}
        try:
            now = datetime.now(UTC)
            start = parse_instant(given["from"]) if "from" in given else start_of_day(now)
            end = parse_instant(given["to"]) if "to" in given else now
        except ValueError:
            return given
        if start >= end:
            raise ValidationError("from must be before to")
        return given


# -- the answer ----------------------------------------------------------------------------


def _count(description: str) -> Count:
    return Count(required=True, validate=validate.Range(min=0), metadata=ex(0, description))


def _seconds(description: str, *, nullable: bool = True) -> Number:
    return Number(required=True, allow_none=nullable, metadata=ex(14.2, description))


def figures() -> dict[str, fields.Field[Any]]:
    """The figures' fields, in the order the answer lists them (new ones each call: a
    field belongs to one schema)."""
    return {
        "offered": _count("inbound calls"),
        "answered": _count("inbound calls answered (by this extension, when grouped by extension)"),
        "missed": _count("abandoned + no_answer + unrouted"),
        "abandoned": _count("the caller gave up in a queue"),
        "no_answer": _count("extensions rang, nobody answered"),
        "unrouted": _count("never queued or rung"),
        "voicemail": _count("voicemail left"),
        "elsewhere": _count(
            "grouped by extension: presented here, answered or voicemailed elsewhere"
        ),
        "abandon_rate": Number(
            required=True, allow_none=True, metadata=ex(0.05, "abandoned / offered; null if none")
        ),
        "service_level": Number(
            required=True,
            allow_none=True,
            metadata=ex(0.8, "answered within service_level_seconds / offered; null if none"),
        ),
        "answered_in_service_level": _count("answered within service_level_seconds"),
        "avg_wait_seconds": _seconds("mean wait of inbound calls"),
        "max_wait_seconds": _seconds("longest wait"),
        "avg_answer_seconds": _seconds("mean wait of answered calls"),
        "talk_seconds": _seconds("total talk time of answered inbound calls", nullable=False),
        "avg_talk_seconds": _seconds("mean talk time of answered calls"),
        "outbound": _count("outbound calls"),
        "outbound_talk_seconds": _seconds("total talk time of outbound calls", nullable=False),
    }


StatsFiguresSchema = Answer.from_dict(figures(), name="StatsFiguresSchema")
StatsFiguresSchema.__doc__ = (
    "Call-centre figures of a set of calls (each call counted once, at its latest revision)."
)
# The group's key comes first, as the answer lists it.
StatsGroupSchema = Answer.from_dict(
    {
        "key": text(
            "600", "the queue, extension, DID, hour, day or tenant; null: calls without one"
        ),
        **figures(),
    },
    name="StatsGroupSchema",
)
StatsGroupSchema.__doc__ = "The figures of one group."


class StatsWindowSchema(Answer):
    from_ = Timestamp(data_key="from", attribute="from", required=True, metadata=ex(EXAMPLE_TIME))
    to = Timestamp(required=True, metadata=ex(EXAMPLE_TIME))
    group_by = fields.String(
        required=True, allow_none=True, validate=validate.OneOf(GROUPINGS), metadata=ex("queue")
    )
    service_level_seconds = Number(required=True, metadata=ex(20.0))
    timezone = fields.String(
        required=True,
        metadata=ex("America/Chicago", "the time zone of the default window and of hours and days"),
    )
    tenants = fields.List(fields.String(), required=True, metadata=ex([EXAMPLE_TENANT]))
    source = fields.String(
        required=True,
        validate=validate.OneOf(("redis", "history")),
        metadata=ex(
            "redis", "history: the window reaches past Redis retention, read from DATABASE_URL"
        ),
    )


class FollowUpSchema(Answer):
    """What happened after a missed call: the number called back, or the caller answered later."""

    kind = fields.String(
        required=True,
        validate=validate.OneOf(values((ContactKind.CALLED_BACK, ContactKind.ANSWERED))),
        metadata=ex("called_back"),
    )
    at = time_field("when the later call started", nullable=False)
    call_uuid = text(EXAMPLE_CALL_UUID, nullable=False)


class MissedCallSchema(Answer):
    """A missed inbound call, for the callback list."""

    id = text(EXAMPLE_OUTCOME_ID, "the outcome record's id", nullable=False)
    call_uuid = text(EXAMPLE_CALL_UUID, nullable=False)
    tenant_id = text(EXAMPLE_TENANT, nullable=False)
    caller = party("who called")
    did = fields.Nested(DidSchema, required=True, allow_none=True)
    queue = text("600")
    ring_group = text(None)
    rang = fields.List(fields.Nested(PartySchema), required=True)
    missed_reason = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(MISSED_REASONS),
        metadata=ex("abandoned"),
    )
    started_at = time_field("the call's first event")
    ended_at = time_field("when it ended")
    wait_seconds = _seconds("how long the caller waited")
    follow_up = fields.Nested(
        FollowUpSchema, required=True, allow_none=True, metadata={"description": "null: none yet"}
    )


class StatsSchema(Answer):
    """Call-centre figures over a window of outcome decisions."""

    window = fields.Nested(StatsWindowSchema, required=True)
    cursor = fields.String(
        required=True,
        metadata=ex(
            EXAMPLE_OUTCOME_ID,
            "every record decided up to this id is counted: follow the outcome stream from it",
        ),
    )
    groups = fields.List(
        fields.Nested(StatsGroupSchema),
        required=True,
        metadata={"description": "sorted by key, null last; empty without group_by"},
    )
    totals = fields.Nested(StatsFiguresSchema, required=True)
    missed_calls = fields.List(
        fields.Nested(MissedCallSchema),
        required=True,
        metadata={"description": "the callback list: missed inbound calls, newest first"},
    )
