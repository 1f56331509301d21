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
from app.stats.figure_rules import figure_rules
from app.stats.from_history import (
    HistoryWindow,
    heatmap_history,
    reaches_past_retention,
    summarize_history,
)
from app.stats.heatmap import heatmap
from app.stats.local_day import zone_of_request
from app.stats.schemas import HeatmapArgs, HeatmapSchema, StatsArgs, StatsSchema
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
    missed_limit = args["missed_limit"]
    tenants = scoped_tenants(args.get("tenant_id"))
    store = get_store()
    rules, country_of = figure_rules(store, settings, tenants, args)
    service_level = rules.service_level_seconds[0]
    # Before 1970 there are no records (and no stream ids): start there.
    start_us, end_us = max(0, micros(start)), micros(end) - 1
    history = get_history()
    source = "redis"
    try:
        if history is not None and reaches_past_retention(store, start_us):
            source = "history"
            window = HistoryWindow(
                history, store, tenants, start_us, end_us, max_later_records=MAX_WINDOW_RECORDS
            )
            summary, missed = summarize_history(
                window, group_by, rules, missed_limit, country_of, zone
            )
            records, read_until = window.later, window.read_until
        else:
            records, read_until = store.outcomes.read_outcome_window(
                tenants, start_us, end_us, max_records=MAX_WINDOW_RECORDS
            )
            calls = stats.calls_in_window(records)
            summary = stats.summarize(calls, group_by, rules, country_of, zone)
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
            "service_level_thresholds": list(rules.service_level_seconds),
            "sl_abandons": rules.sl_abandons.value,
            "callback_minutes": list(rules.callback_minutes),
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


@bp.operation(
    "GET",
    "/v1/stats/heatmap",
    "getStatsHeatmap",
    tag="statistics",
    query=HeatmapArgs(),
    schema=HeatmapSchema,
    answer="the heatmap",
    usual=(401, 403, 503),
    errors={400: "a bad parameter, or a window with too many records"},
)
def get_heatmap(args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Inbound calls by local weekday and hour

    The window's calls (as /v1/stats counts them) in 7 rows, Monday first, of 24
    hours in the tenant's time zone (the deployment's DEFAULT_TIMEZONE for more
    than one tenant); a cell is null where nothing was offered.
    """
    settings: Settings = current_app.config["CALLSTATE_SETTINGS"]
    now = datetime.now(UTC)
    zone = zone_of_request(args.get("tz"), args.get("tenant_id"))
    start = args.get("from_") or local_midnight(now, zone)
    end = args.get("to") or now
    tenants = scoped_tenants(args.get("tenant_id"))
    store = get_store()
    rules, _ = figure_rules(store, settings, tenants, args)
    start_us, end_us = max(0, micros(start)), micros(end) - 1
    history = get_history()
    try:
        if history is not None and reaches_past_retention(store, start_us):
            window = HistoryWindow(
                history, store, tenants, start_us, end_us, max_later_records=MAX_WINDOW_RECORDS
            )
            cells = heatmap_history(window, zone, args["metric"], rules)
        else:
            records, _ = store.outcomes.read_outcome_window(
                tenants, start_us, end_us, max_records=MAX_WINDOW_RECORDS
            )
            cells = heatmap(stats.calls_in_window(records), zone, args["metric"], rules)
    except OverflowError:
        raise BadQuery(
            f"the window holds more than {MAX_WINDOW_RECORDS} outcome records: ask for less"
        ) from None
    return {"timezone": zone.key, "metric": args["metric"], "cells": cells}, 200
