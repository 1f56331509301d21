"""``GET /v1/calls/live/stream``: Server-Sent Events, ``event: live`` with the
whole list of live calls each time it changes. It shares the outcome stream's
per-process slots (``app.outcomes.stream``), so a web process never parks more than
``MAX_STREAMS_PER_PROCESS`` threads on streams of either kind."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import redis
from flask import Response, current_app, g

import app.web.sse as sse
from app.calls.routes import filter_live
from app.calls.schemas import LiveCallArgs, LiveCallSchema
from app.web.auth import ALL_TENANTS
from app.web.fast_dump import compile_dump
from app.web.resources import get_store
from app.web.rest import TOO_MANY_STREAMS, ApiBlueprint, sse_event
from app.web.schema_fields import EXAMPLE_TIME
from app.web.scope import scoped_tenants
from statemachine.events import isoformat

bp = ApiBlueprint("live_stream", __name__)
# Planned from the schema (app/web/fast_dump.py): every stream polls four times a second.
dump_live_call = compile_dump(LiveCallSchema())

LIVE_POLL_SECONDS = 0.25


@bp.operation(
    "GET",
    "/v1/calls/live/stream",
    "streamLiveCalls",
    tag="calls",
    query=LiveCallArgs(),
    schema=sse_event("live", "LiveSnapshot"),
    content_type="text/event-stream",
    answer="the event stream",
    example=f'event: live\ndata: {{"calls": [...], "server_time": "{EXAMPLE_TIME}"}}\n\n',
    usual=(401, 403),
    errors={503: TOO_MANY_STREAMS},
)
def live_stream(args: dict[str, str]) -> Response | tuple[Response, int]:
    """Live calls as Server-Sent Events, on every change

    `event: live` with every live call (the same filters as /v1/calls/live) when the list
    changes, and a keep-alive comment every 15 s. The stream closes after
    STREAM_MAX_SECONDS; reconnect.
    """
    requested = args.get("tenant_id")
    tenants = scoped_tenants(requested)
    follow_all = g.scope == ALL_TENANTS and not requested
    container = args.get("container_id")
    queue = args.get("queue")
    if not sse.take_slot():
        return sse.too_many_streams()
    store = get_store()
    deadline = time.monotonic() + sse.STREAM_MAX_SECONDS
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def events() -> Iterator[str]:
        last_body: str | None = None
        last_sent = time.monotonic()
        yield "retry: 1000\n: connected\n\n"
        while sse.open_until(deadline):
            try:
                calls = store.calls.live_calls(store.tenants.all() if follow_all else tenants)
            except redis.RedisError:
                app.logger.warning("live stream: redis unavailable")
                yield ": redis unavailable, waiting\n\n"
                time.sleep(1.0)
                continue
            shown = [dump_live_call(call) for call in filter_live(calls, container, queue)]
            body = json.dumps(shown, sort_keys=True, ensure_ascii=False)
            if body != last_body:
                server_time = isoformat(datetime.now(UTC))
                yield (
                    f'event: live\ndata: {{"calls": {body}, "server_time": "{server_time}"}}\n\n'
                )
                last_body = body
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= sse.KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            time.sleep(LIVE_POLL_SECONDS)

    return sse.event_stream(events())
