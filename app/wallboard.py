"""The wallboard and what feeds it: ``GET /wallboard``, ``GET /v1/stats`` and
``GET /v1/calls/live/stream``.

- ``/v1/stats`` computes the figures of ``app.stats`` over the outcome records
  decided in a window (an id range of the outcome streams), or, for a window
  reaching past Redis retention, over the history database
  (``app.history_stats``).
- ``/v1/calls/live/stream`` is Server-Sent Events: ``event: live`` with the
  whole list of live calls each time it changes. It shares the outcome
  stream's per-process slots (``app.stream``), so a web process never parks
  more than ``MAX_STREAMS_PER_PROCESS`` threads on streams of either kind.
- ``/wallboard`` is one static page (inline script and style, no build step,
  nothing fetched from elsewhere). It carries no data: the page asks for the
  API key (or reads it from the URL fragment, which browsers never send) and
  reads the API with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from importlib import resources

import redis
from flask import Blueprint, Response, current_app, g, request

import app.stream as outcome_stream
from app import stats
from app.api import filter_live, scoped_tenants
from app.auth import ALL_TENANTS, require_api_key
from app.errors import BadQuery
from app.history import get_history
from app.history_stats import HistoryWindow, reaches_past_retention, summarize_history
from app.resources import get_store
from statemachine.events import isoformat, micros
from statemachine.outcome import OutcomeId
from workers.settings import Settings

bp = Blueprint("wallboard", __name__)

LIVE_POLL_SECONDS = 0.25
MAX_WINDOW_RECORDS = 100_000
MAX_MISSED = 500


# -- GET /v1/stats ----------------------------------------------------------------------


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
    cursor = max([f"{max(read_until, 0)}-0", *(r["id"] for r in records[-1:])], key=_id_order)
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


def _id_order(entry_id: str) -> OutcomeId:
    return OutcomeId.parse(entry_id)


# -- GET /v1/calls/live/stream ---------------------------------------------------------


@bp.get("/v1/calls/live/stream")
@require_api_key
def live_stream() -> Response | tuple[Response, int]:
    """``event: live`` with every live call (same filters as /v1/calls/live) on each change."""
    requested = request.args.get("tenant_id")
    tenants = scoped_tenants(requested)
    follow_all = g.scope == ALL_TENANTS and not requested
    container = request.args.get("container_id")
    queue = request.args.get("queue")
    if not outcome_stream._slots.acquire(blocking=False):
        return outcome_stream.too_many_streams()
    store = get_store()
    deadline = time.monotonic() + outcome_stream.STREAM_MAX_SECONDS
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def events() -> Iterator[str]:
        last_body: str | None = None
        last_sent = time.monotonic()
        yield "retry: 1000\n: connected\n\n"
        while outcome_stream.open_until(deadline):
            try:
                calls = store.live_calls(store.tenants() if follow_all else tenants)
            except redis.RedisError:
                app.logger.warning("live stream: redis unavailable")
                yield ": redis unavailable, waiting\n\n"
                time.sleep(1.0)
                continue
            calls = filter_live(calls, container, queue)
            body = json.dumps(calls, sort_keys=True, ensure_ascii=False)
            if body != last_body:
                server_time = isoformat(datetime.now(UTC))
                yield (
                    f'event: live\ndata: {{"calls": {body}, "server_time": "{server_time}"}}\n\n'
                )
                last_body = body
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= outcome_stream.KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            time.sleep(LIVE_POLL_SECONDS)

    return outcome_stream.event_stream(events())


# -- GET /wallboard -------------------------------------------------------------------------


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def _page() -> tuple[str, str]:
    """The page and its Content-Security-Policy: only its own inline script and
    style run, and it talks to this origin only."""
    html = resources.files("app").joinpath("wallboard.html").read_text("utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(_digest(s) for s in scripts),
            "style-src " + " ".join(_digest(s) for s in styles),
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return html, policy


@bp.get("/wallboard")
def wallboard() -> Response:
    """The wallboard page: static, no data, no credentials needed to load it."""
    html, policy = _page()
    return Response(
        html,
        mimetype="text/html",
        headers={
            "Content-Security-Policy": policy,
            "Cache-Control": "no-cache",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )
