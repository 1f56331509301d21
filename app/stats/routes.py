"""``GET /v1/stats``: the figures of ``app.stats.figures`` over the outcome records
decided in a window (an id range of the outcome streams), or, for a window
reaching past Redis retention, over the history database
(``app.stats.from_history``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app

import app.stats.figures as stats
from app.history.routes import get_history
from app.stats.from_history import HistoryWindow, reaches_past_retention, summarize_history
from app.stats.local_day import zone_of_request
from app.stats.schemas import StatsArgs, StatsSchema
from app.web.errors import BadQuery
from app.web.fast_dump import compile_dump
from app.web.resources import get_store
from app.web.rest import ApiBlueprint
from app.web.scope import scoped_tenants
from core.local_time import local_midnight
from core.settings import Settings
from statemachine.events import isoformat, micros
from statemachine.outcome import OutcomeId

bp = ApiBlueprint("stats_api", __name__)

MAX_WINDOW_RECORDS = 100_000
# The answer's bytes follow the order the body is built in (json.dumps, unsorted).
dump_stats = compile_dump(StatsSchema())


@bp.operation(
    "GET",
    "/v1/stats",
    "getStats",
    tag="statistics",
    query=StatsArgs(),
    schema=StatsSchema,
    answer="the figures",
    usual=(401, 403, 503),
    errors={400: "a bad parameter, or a window with too many records"},
)
def get_stats(args: dict[str, Any]) -> tuple[Response, int]:
    """Call-centre figures over a window, grouped, with the callback list

    The window holds the calls whose first outcome revision was decided in it, each
    counted once with its latest revision there. Default window: today so far, from
    midnight in the tenant's time zone (`tz=` overrides; every tenant: DEFAULT_TIMEZONE);
    `group_by=hour|day` buckets are local hours and dates in that zone.
    """
    settings: Settings = current_app.config["CALLSTATE_SETTINGS"]
    now = datetime.now(UTC)
    zone = zone_of_request(args.get("tz"), args.get("tenant_id"))
    start = args.get("from_") or local_midnight(now, zone)
    end = args.get("to") or now
    group_by = args.get("group_by")
    service_level = args.get("service_level_seconds", settings.service_level_seconds)
    missed_limit = args["missed_limit"]
    tenants = scoped_tenants(args.get("tenant_id"))
    # Before 1970 there are no records (and no stream ids): start there.
    start_us, end_us = max(0, micros(start)), micros(end) - 1
    store = get_store()
    history = get_history()
    source = "redis"
    try:
        if history is not None and reaches_past_retention(store, start_us):
            source = "history"
            window = HistoryWindow(
                history, store, tenants, start_us, end_us, max_later_records=MAX_WINDOW_RECORDS
            )
            summary, missed = summarize_history(
                window, group_by, service_level, missed_limit, zone
            )
            records, read_until = window.later, window.read_until
        else:
            records, read_until = store.outcomes.read_outcome_window(
                tenants, start_us, end_us, max_records=MAX_WINDOW_RECORDS
            )
            calls = stats.calls_in_window(records)
            summary = stats.summarize(calls, group_by, service_level, zone)
            missed = stats.missed_calls(calls, missed_limit)
    except OverflowError:
        raise BadQuery(
            f"the window holds more than {MAX_WINDOW_RECORDS} outcome records: ask for less"
        ) from None
    # Everything decided up to the cursor is in this answer: the outcome stream
    # continues from it (?after= / Last-Event-ID) without a gap.
    cursor = max([f"{max(read_until, 0)}-0", *(r["id"] for r in records[-1:])], key=OutcomeId.parse)
    body = {
        "window": {
            "from": isoformat(start),
            "to": isoformat(end),
            "group_by": group_by,
            "timezone": zone.key,
            "service_level_seconds": service_level,
            "tenants": tenants,
            "source": source,
        },
        "cursor": cursor,
        **summary,
        "missed_calls": missed,
    }
    response = current_app.response_class(
        json.dumps(dump_stats(body), ensure_ascii=False), mimetype="application/json"
    )
    return response, 200
