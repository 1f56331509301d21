"""Outcome records as Server-Sent Events: ``GET /v1/outcomes/stream``.

Each stream takes one of its web process's stream slots (app/web/sse.py) and
ends after ``sse.STREAM_MAX_SECONDS`` or when the process stops; a client resumes
with ``Last-Event-ID`` and loses nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Response, current_app, request

import app.web.sse as sse
from app.calls.schemas import (
    LastEventIdHeader,
    OutcomePageArgs,
    OutcomeRecordSchema,
    is_outcome_id,
)
from app.outcomes.routes import outcome_query
from app.web.errors import BadQuery
from app.web.fast_dump import compile_dump
from app.web.resources import get_store
from app.web.rest import TOO_MANY_STREAMS, ApiBlueprint, sse_event
from app.web.schema_fields import EXAMPLE_OUTCOME_ID
from statemachine.outcome import OutcomeRecord

bp = ApiBlueprint("stream", __name__, url_prefix="/v1")


# Longer than any outcome id ("<20 digits>-<20 digits>"): a client that sends
# more is not resuming anything of ours.
MAX_LAST_EVENT_ID = 41


@bp.before_app_request
def refuse_huge_last_event_id() -> None:
    """Refuse, on every path (the live stream's too), a Last-Event-ID no stream of
    ours could have sent. Raises BadQuery (400)."""
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id is not None and len(last_event_id) > MAX_LAST_EVENT_ID:
        raise BadQuery(
            f"Last-Event-ID is {len(last_event_id)} characters long; an outcome id has at "
            f"most {MAX_LAST_EVENT_ID}"
        )


# Planned from the schema (app/web/fast_dump.py): a stream catching up sends
# thousands of records a second.
dump_outcome_record = compile_dump(OutcomeRecordSchema())


def outcome_event(record: OutcomeRecord) -> str:
    """One outcome record as a Server-Sent Event, as its schema dumps it."""
    data = json.dumps(dump_outcome_record(record), sort_keys=True)
    return f"id: {record['id']}\nevent: outcome\ndata: {data}\n\n"


@bp.operation(
    "GET",
    "/outcomes/stream",
    "streamOutcomes",
    tag="outcomes",
    # limit is read (and checked) as on /v1/outcomes, though a stream pages by itself.
    query=OutcomePageArgs(),
    headers=LastEventIdHeader(),
    schema=sse_event("outcome", "OutcomeRecord", id_pattern=True),
    content_type="text/event-stream",
    answer="the event stream",
    example=f"id: {EXAMPLE_OUTCOME_ID}\nevent: outcome\n"
    f'data: {{"id": "{EXAMPLE_OUTCOME_ID}", "outcome": "missed", "revision": 1, ...}}\n\n',
    usual=(401, 403),
    errors={400: "a bad after, Last-Event-ID or outcome", 503: TOO_MANY_STREAMS},
)
def outcome_stream(
    args: dict[str, Any],
) -> Response | tuple[Response, int]:
    """Outcome records as Server-Sent Events

    Every record after Last-Event-ID (or after=), then new ones as they are decided:
    `id: <record id>`, `event: outcome`, `data: <the record as JSON, an OutcomeRecord>`,
    and a keep-alive comment every 15 s. The stream closes after STREAM_MAX_SECONDS;
    reconnect with Last-Event-ID and nothing is skipped.
    """
    query = outcome_query(args)
    # An EventSource reconnects to the URL it was made with (any ?after= too)
    # and sends the id of the last record it got: resume from there.
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id:
        if not is_outcome_id(last_event_id):
            raise BadQuery("Last-Event-ID must be an outcome id such as 1764063000123456-0")
        query["after"] = last_event_id
    if not sse.take_slot():
        return sse.too_many_streams()
    store = get_store()
    deadline = time.monotonic() + sse.STREAM_MAX_SECONDS
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def read(cursor: str | None) -> tuple[list[OutcomeRecord], str | None]:
        return store.outcomes.read_outcomes(
            store.tenants.all() if query["all_tenants"] else query["tenants"],
            after=cursor,
            limit=500,
            outcome=query["outcome"],
        )

    events = sse.follow_feed(
        read, outcome_event, query["after"], deadline, app.logger, "outcome stream"
    )
    return sse.event_stream(events)
