"""``GET /v1/stats``: the figures of ``app.stats`` over the outcome records
decided in a window (an id range of the outcome streams), or, for a window
reaching past Redis retention, over the history database
(``app.history_stats``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, request

from app import stats
from app.api import scoped_tenants
from app.auth import require_api_key
from app.errors import BadQuery
from app.history import get_history
from app.history_stats import HistoryWindow, reaches_past_retention, summarize_history
from app.resources import get_store
from statemachine.events import isoformat, micros
from statemachine.outcome import OutcomeId
from workers.settings import Settings

bp = Blueprint("stats_api", __name__)

MAX_WINDOW_RECORDS = 100_000
MAX_MISSED = 500


def _instant(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return stats.parse_instant(raw)
    except ValueError:
        raise BadQuery(f"{name} must be an ISO-8601 time such as 2026-11-25T00:00:00Z") from None


def _number(name: str, default: float, high: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= high:
        raise BadQuery(f"{name} must be a number from 0 to {high:g}")
    return value


@bp.get("/v1/stats")
@require_api_key
def get_stats() -> tuple[Response, int]:
    """Call-centre figures over ``from``..``to`` (default: today UTC so far), grouped."""
    settings: Settings = current_app.config["CALLSTATE_SETTINGS"]
    now = datetime.now(UTC)
    start = _instant("from") or stats.start_of_day(now)
    end = _instant("to") or now
    if start >= end:
        raise BadQuery("from must be before to")
    group_by = request.args.get("group_by") or None
    if group_by is not None and group_by not in stats.GROUPINGS:
        raise BadQuery(f"group_by must be one of {', '.join(stats.GROUPINGS)}")
    service_level = _number("service_level_seconds", settings.service_level_seconds, 86400)
    missed_limit = int(_number("missed_limit", 50, MAX_MISSED))
    tenants = scoped_tenants(request.args.get("tenant_id"))
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
            summary, missed = summarize_history(window, group_by, service_level, missed_limit)
            records, read_until = window.later, window.read_until
        else:
            records, read_until = store.read_outcome_window(
                tenants, start_us, end_us, max_records=MAX_WINDOW_RECORDS
            )
            calls = stats.calls_in_window(records)
            summary = stats.summarize(calls, group_by, service_level)
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
            "service_level_seconds": service_level,
            "tenants": tenants,
            "source": source,
        },
        "cursor": cursor,
        **summary,
        "missed_calls": missed,
    }
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False), mimetype="application/json"
    )
    return response, 200
