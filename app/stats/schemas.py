"""What ``GET /v1/stats`` takes and answers (app/stats/routes.py): its query, parsed
with the API's own messages, and the figures, dumped and documented by these
schemas.

Over 400 lines on purpose: every argument and figure of the stats answers,
documented once, for the routes and the OpenAPI document alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from app.calls.schemas import MISSED_REASONS, DidSchema, PartySchema, party
from app.stats.figure_rules import (
    MAX_THRESHOLDS,
    AbandonsInServiceLevel,
)
from app.stats.figures import GROUPINGS, parse_instant, start_of_day
from app.stats.heatmap import METRICS
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
MAX_CALLBACK_MINUTES = 7 * 24 * 60


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


class NumberListArg(fields.Field[tuple[float, ...]]):
    """Up to MAX_THRESHOLDS numbers from 0 to ``high``, comma-separated, refused in the
    API's words."""

    def __init__(self, name: str, high: int, **kwargs: Any) -> None:
        self.high = high
        self.message = (
            f"{name} must be a number from 0 to {high:g}, "
            f"or up to {MAX_THRESHOLDS} of them comma-separated"
        )
        super().__init__(**kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[float, ...]:
        parts = [part.strip() for part in str(value).split(",")]
        if not 1 <= len(parts) <= MAX_THRESHOLDS:
            raise ValidationError(self.message)
        numbers = tuple(_bounded(part, self.high, self.message) for part in parts)
        if any(number != number for number in numbers):  # NaN
            raise ValidationError(self.message)
        return numbers


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
    service_level_seconds = NumberListArg(
        "service_level_seconds",
        MAX_SERVICE_LEVEL_SECONDS,
        metadata={
            "description": "answered within this wait counts toward the service level; up to "
            f"{MAX_THRESHOLDS} thresholds, comma-separated (20,30,60), the first giving "
            "service_level (default: the tenant's service level, SERVICE_LEVEL_SECONDS)",
            "type": "string",
            "example": "20,30,60",
        },
    )
    sl_abandons = fields.String(
        load_default=AbandonsInServiceLevel.COUNT.value,
        validate=validate.OneOf(
            values(AbandonsInServiceLevel),
            error="sl_abandons must be one of count, exclude, exclude_short",
        ),
        metadata={
            "description": "abandoned calls in the service level's denominator: count them "
            "(offered), exclude_short (offered less short abandons) or exclude (less every "
            "abandon)"
        },
    )
    callback_minutes = NumberListArg(
        "callback_minutes",
        MAX_CALLBACK_MINUTES,
        metadata={
            "description": "count missed callers called back within each of these minutes; "
            f"up to {MAX_THRESHOLDS}, comma-separated (default 15,60)",
            "type": "string",
            "example": "15,60",
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


class ServiceLevelSchema(Answer):
    """The service level at one threshold."""

    answered_within = _count("answered with a wait of at most the threshold")
    denominator = _count("offered, less the abandons sl_abandons takes out")
    value = Number(
        required=True,
        allow_none=True,
        metadata=ex(0.8, "answered_within / denominator; null if the denominator is 0"),
    )


class CallbackFiguresSchema(Answer):
    """Callback recovery: the missed callers of the group and how fast they were called back."""

    missed_callers = _count("callback items opened by the group's missed calls")
    called_back = _count("of those, called back by an outbound call within the window")
    called_back_within = fields.Dict(
        keys=fields.String(),
        values=Count(),
        required=True,
        metadata=ex({"15": 3, "60": 5}, "called back within each of callback_minutes"),
    )
    avg_callback_seconds = _seconds("mean time from the miss to the call-back")


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
        "answered_in_service_level": _count(
            "answered within the first service_level_seconds threshold"
        ),
        "avg_wait_seconds": _seconds("mean wait of inbound calls"),
        "max_wait_seconds": _seconds("longest wait"),
        "avg_answer_seconds": _seconds("mean wait of answered calls"),
        "talk_seconds": _seconds("total talk time of answered inbound calls", nullable=False),
        "avg_talk_seconds": _seconds("mean talk time of answered calls"),
        "outbound": _count("outbound calls"),
        "outbound_talk_seconds": _seconds("total talk time of outbound calls", nullable=False),
        "short_abandoned": _count("abandoned within the tenant's short_abandon_seconds"),
        "service_levels": fields.Dict(
            keys=fields.String(),
            values=fields.Nested(ServiceLevelSchema),
            required=True,
            metadata=ex(
                {"20": {"answered_within": 8, "denominator": 10, "value": 0.8}},
                "each service_level_seconds threshold (as written: 20, 7.5)",
            ),
        ),
        "callbacks": fields.Nested(CallbackFiguresSchema, required=True),
    }


def extension_figures() -> dict[str, fields.Field[Any]]:
    """What group_by=extension adds to each group."""
    return {
        "rang_unanswered": Count(
            validate=validate.Range(min=0),
            metadata=ex(2, "group_by=extension: calls that rang here and were not answered here"),
        ),
        "answer_rate": Number(
            allow_none=True,
            metadata=ex(
                0.75,
                "group_by=extension: answered / (answered + rang_unanswered); null if none",
            ),
        ),
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
        **extension_figures(),
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
    service_level_seconds = Number(
        required=True, metadata=ex(20.0, "the first service-level threshold")
    )
    service_level_thresholds = fields.List(
        Number(), required=True, metadata=ex([20.0, 30.0, 60.0], "every threshold asked for")
    )
    sl_abandons = fields.String(
        required=True,
        validate=validate.OneOf(values(AbandonsInServiceLevel)),
        metadata=ex("count"),
    )
    callback_minutes = fields.List(Number(), required=True, metadata=ex([15.0, 60.0]))
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


# -- the heatmap ---------------------------------------------------------------------------


class HeatmapArgs(StatsArgs):
    """The window, tenant and metric of ``GET /v1/stats/heatmap``."""

    class Meta:
        exclude = ("group_by", "missed_limit", "callback_minutes")

    metric = fields.String(
        load_default="offered",
        validate=validate.OneOf(METRICS, error=f"metric must be one of {', '.join(METRICS)}"),
        metadata={"description": "what each cell holds; service_level at the first threshold"},
    )


class HeatmapSchema(Answer):
    """The hour x weekday heatmap of a window's inbound calls, in the tenant's time zone."""

    timezone = text("Europe/Berlin", "the IANA time zone of the hours", nullable=False)
    metric = fields.String(required=True, validate=validate.OneOf(METRICS), metadata=ex("offered"))
    cells = fields.List(
        fields.List(Number(allow_none=True)),
        required=True,
        metadata=ex(
            [[None] * 8 + [3, 5] + [None] * 14] + [[None] * 24] * 6,
            "7 weekdays (Monday first) of 24 local hours; null where nothing was offered",
        ),
    )
