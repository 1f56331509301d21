"""Live call events and alerts as Server-Sent Events: ``GET /v1/events/stream``.

Read like the outcome stream (app/outcomes/stream.py): one of the process's
stream slots, closed after STREAM_MAX_SECONDS or when the process stops,
resumed with ``Last-Event-ID`` (or ``after=``) with nothing skipped.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Response, current_app, g, request
from marshmallow import EXCLUDE, Schema, fields, pre_load, validate

import app.web.sse as sse
from app.calls.schemas import LastEventIdHeader, OutcomeIdArg, tenant_filter
from app.events.schemas import EVENT_TYPES, EXAMPLE_EVENT_ID, LiveEventSchema
from app.web.auth import ALL_TENANTS
from app.web.resources import get_store
from app.web.rest import TOO_MANY_STREAMS, ApiBlueprint, sse_event
from app.web.schema_fields import OUTCOME_ID_PATTERN
from app.web.scope import scoped_tenants

bp = ApiBlueprint("events", __name__, url_prefix="/v1")
dump_event = LiveEventSchema().dump


class EventStreamArgs(Schema):
    """Which events to stream; an empty value counts as not given."""

    class Meta:
        unknown = EXCLUDE

    after = OutcomeIdArg(
        metadata={
            "description": "only events after this id (exclusive); Last-Event-ID does the same",
            "pattern": OUTCOME_ID_PATTERN,
            "example": EXAMPLE_EVENT_ID,
        }
    )
    tenant_id = tenant_filter()
    type = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        metadata={"description": "only these types (repeat the parameter for several)"},
    )

    @pre_load
    def _given(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        given = {key: data.getlist(key) if key == "type" else data[key] for key in data}
        given = {key: value for key, value in given.items() if value not in ("", [])}
        if request.headers.get("Last-Event-ID"):
            given["after"] = request.headers["Last-Event-ID"]
        return given


def sse_text(event: dict[str, Any]) -> str:
    data = json.dumps(dump_event(event), sort_keys=True)
    return f"id: {event['id']}\nevent: {event['type']}\ndata: {data}\n\n"


@bp.operation(
    "GET",
    "/events/stream",
    "streamEvents",
    tag="calls",
    query=EventStreamArgs(),
    headers=LastEventIdHeader(),
    schema=sse_event(EVENT_TYPES, "LiveEvent", id_pattern=True),
    content_type="text/event-stream",
    answer="the event stream",
    example=f"id: {EXAMPLE_EVENT_ID}\nevent: call.ringing\n"
    f'data: {{"id": "{EXAMPLE_EVENT_ID}", "type": "call.ringing", '
    '"extension": {"number": "101", "name": "Ana"}, ...}\n\n',
    usual=(401, 403),
    errors={400: "a bad after, Last-Event-ID or type", 503: TOO_MANY_STREAMS},
)
def event_stream(args: dict[str, Any]) -> Response | tuple[Response, int]:
    """Live call events and alerts as Server-Sent Events

    Every event after Last-Event-ID (or after=), then new ones as they happen:
    `id: <event id>`, `event: <its type>` (call.started, call.queued, call.ringing,
    call.answered, call.ended, alert.long_wait, alert.service_level,
    alert.callback_overdue), `data: <the event as JSON, a LiveEvent>`, and a
    keep-alive comment every 15 s. Closes after STREAM_MAX_SECONDS; reconnect with
    Last-Event-ID and nothing is skipped.
    """
    tenants = scoped_tenants(args.get("tenant_id"))
    follow_new_tenants = g.scope == ALL_TENANTS and not args.get("tenant_id")
    wanted = set(args.get("type") or ())
    if not sse.take_slot():
        return sse.too_many_streams()
    store = get_store()
    deadline = time.monotonic() + sse.STREAM_MAX_SECONDS
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def read(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return store.live_events.read(
            store.tenants.all() if follow_new_tenants else tenants, after=cursor, limit=500
        )

    def render(event: dict[str, Any]) -> str | None:
        return sse_text(event) if not wanted or event["type"] in wanted else None

    events = sse.follow_feed(read, render, args.get("after"), deadline, app.logger, "event stream")
    return sse.event_stream(events)
