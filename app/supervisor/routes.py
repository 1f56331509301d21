"""The supervisor's view: the extension board, a call's timeline, callbacks.

- ``GET /v1/extensions/live`` (and ``/stream``): who rings, talks or idles now,
  with today's figures (the tenant's day, in its time zone).
- ``GET /v1/calls/<uuid>/timeline``: the call's story, told by the pure model
  from its log and its outcome revisions.
- ``GET /v1/callbacks`` (and ``/stream``), ``POST /v1/callbacks/<id>/resolve``.

Tenant scope: a tenant's key reads its own tenant; an admin key (``*``) reads
the tenant named by ``tenant_id``, or every tenant, each entry saying whose it
is (``tenant_id``). Streams are snapshots (``event: extensions`` /
``event: callbacks``) sent whenever the answer changes, sharing the outcome
stream's per-process slots, keep-alives and deadline: a reconnect gets the
current snapshot first, so no ``Last-Event-ID`` is needed or used.

Over 400 lines on purpose: the supervisor's routes share one scope rule and one
snapshot-stream shape; apart they would repeat both.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import redis
from flask import Response, current_app, g

import app.web.sse as sse
from app.calls.routes import CALL_UUID, NO_SUCH_CALL
from app.supervisor.schemas import (
    EXAMPLE_CALLBACK,
    SCOPE,
    BoardArgs,
    CallbackArgs,
    CallbackPageArgs,
    CallbackPageSchema,
    CallbackSchema,
    ExtensionBoardSchema,
    ExtensionSchema,
    ResolveSchema,
    TimelineSchema,
    documented_stream,
)
from app.web.auth import ALL_TENANTS
from app.web.errors import error_response
from app.web.fast_dump import compile_dump
from app.web.pages import WholePageArgs, page_of
from app.web.resources import get_store
from app.web.rest import (
    ApiBlueprint,
    path_param,
)
from app.web.scope import every_tenant_lookup, scoped_tenants
from core.local_time import UTC_ZONE
from core.store import SupervisorView, dumps
from core.supervisor import board, callback_json, callbacks, day_start
from core.tenant_settings import for_tenant
from statemachine import CallEvent, from_record
from statemachine.callbacks import ResolutionKind
from statemachine.events import isoformat, micros
from statemachine.state import CallView, fold
from statemachine.timeline import OutcomeRevision, timeline

bp = ApiBlueprint("supervisor", __name__, url_prefix="/v1")

T = TypeVar("T")
MEMO = "callstate_supervisor_memo"
POLL_SECONDS = 0.5
REFRESH_SECONDS = 60.0
# Outcome ids are Redis server time; a call's are read from a little before it began.
REVISION_MARGIN = timedelta(minutes=1)


def _supervisor() -> SupervisorView:
    return get_store().supervisor


def _tenants(args: dict[str, str]) -> tuple[list[str], bool]:
    """The tenants to read, and whether to follow tenants that appear later (admin, no filter)."""
    requested = args.get("tenant_id")
    return scoped_tenants(requested), g.scope == ALL_TENANTS and requested is None


# -- the extension board ------------------------------------------------------------


class Memo:
    """Each tenant's latest board and callbacks in this process, reused while the tenant's
    stamp stands (within one of the tenant's days, for at most REFRESH_SECONDS): the streams and
    requests of a process share one computation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[int, datetime, float, Any]] = {}

    def get(
        self,
        what: str,
        tenant: str,
        stamp: int,
        now: datetime,
        compute: Callable[[], T],
        zone: ZoneInfo = UTC_ZONE,
    ) -> T:
        key, day = (what, tenant), day_start(now, zone)
        with self._lock:
            entry = self._entries.get(key)
        if (
            entry is not None
            and entry[:2] == (stamp, day)
            and time.monotonic() - entry[2] < REFRESH_SECONDS
        ):
            found: T = entry[3]
            return found
        value = compute()
        with self._lock:
            self._entries[key] = (stamp, day, time.monotonic(), value)
        return value


def _memo() -> Memo:
    memo: Memo | None = current_app.extensions.get(MEMO)
    if memo is None:
        memo = current_app.extensions.setdefault(MEMO, Memo())
    return memo


dump_extension = compile_dump(ExtensionSchema())
dump_callback = compile_dump(CallbackSchema())


def extensions_of(tenants: list[str], now: datetime, tz: str | None = None) -> list[dict[str, Any]]:
    """The board's entries, as ExtensionSchema shows them; today is each tenant's
    (or ``tz``'s)."""
    store, memo = _supervisor(), _memo()
    entries = []
    for tenant, stamp in zip(tenants, store.stamps(tenants), strict=True):
        zone = ZoneInfo(tz) if tz else tenant_zone(tenant)
        compute = partial(board, store, tenant, now, zone)
        for status in memo.get("board", tenant, stamp, now, compute, zone):
            entries.append(dump_extension({**status.as_json(), "tenant_id": tenant}))
    return entries


def tenant_zone(tenant: str) -> ZoneInfo:
    """The time zone of ``tenant``'s day (its "today")."""
    return for_tenant(get_store(), current_app.config["CALLSTATE_SETTINGS"], tenant).zone


def board_zone(tenants: list[str], tz: str | None) -> str | None:
    """The one time zone of a board's today, or None when its tenants keep different ones."""
    if tz:
        return tz
    zones = {tenant_zone(tenant).key for tenant in tenants}
    return zones.pop() if len(zones) == 1 else None


@bp.operation(
    "GET",
    "/extensions/live",
    "listExtensions",
    tag="supervisor",
    query=BoardArgs(),
    schema=ExtensionBoardSchema,
    answer="the board",
    usual=(401, 403, 503),
    errors={400: "a bad parameter (an unknown time zone)"},
    description="Derived from the call events (PrimeVOX sends no agent status). Lists every "
    "extension with a leg live now or ended today or in the last 24 h, in number order. "
    "Today is the tenant's day (its time zone, DEFAULT_TIMEZONE unless set)." + SCOPE,
)
def extensions_live(args: dict[str, str]) -> dict[str, Any]:
    """The extension board: who rings, talks or is idle, with today's figures"""
    tenants, _ = _tenants(args)
    now, tz = datetime.now(UTC), args.get("tz")
    return {
        "extensions": extensions_of(tenants, now, tz),
        "server_time": isoformat(now),
        "timezone": board_zone(tenants, tz),
    }


@bp.operation(
    "GET",
    "/extensions/live/stream",
    "streamExtensions",
    tag="supervisor",
    query=BoardArgs(),
    **documented_stream("extensions", "ExtensionBoard"),
)
def extensions_stream(args: dict[str, str]) -> Response | tuple[Response, int]:
    """The extension board as Server-Sent Events, on every change"""
    tenants, follow_all = _tenants(args)
    store = get_store()
    return snapshot_stream(
        "extensions",
        lambda now, read: extensions_of(read, now, args.get("tz")),
        lambda: store.tenants.all() if follow_all else tenants,
    )


# -- callbacks --------------------------------------------------------------------------


def callbacks_of(tenants: list[str], status: str | None) -> list[dict[str, Any]]:
    """The callback items, as CallbackSchema shows them."""
    store, memo, now = _supervisor(), _memo(), datetime.now(UTC)
    items = [
        dump_callback(callback_json(item, tenant))
        for tenant, stamp in zip(tenants, store.stamps(tenants), strict=True)
        for item in memo.get("callbacks", tenant, stamp, now, partial(callbacks, store, tenant))
        if status is None or item.status.value == status
    ]
    items.sort(key=_callback_position)
    return items


def _callback_position(item: dict[str, Any]) -> tuple[str, str, str]:
    """Where an item is in the list (oldest miss first), as its page's cursor says it."""
    return item["missed_at"], item["id"], item["tenant_id"]


@bp.operation(
    "GET",
    "/callbacks",
    "listCallbacks",
    tag="supervisor",
    query=CallbackPageArgs(),
    schema=CallbackPageSchema,
    answer="the items, oldest miss first",
    usual=(401, 403, 503),
    errors={400: "status is not open or resolved, a bad limit or cursor"},
    description="An abandoned or no_answer inbound call opens an item for the caller's "
    "number; the first later outbound call to that number, or inbound call from it that was "
    "answered, resolves it (numbers compared as E.164, national ones read in "
    "DEFAULT_COUNTRY). A page of `limit` items (default 100); `next`, when not null, is "
    "the `cursor` of the next." + SCOPE,
)
def list_callbacks(args: dict[str, Any]) -> dict[str, Any]:
    """Missed callers and whether somebody reached them since"""
    tenants, _ = _tenants(args)
    now = isoformat(datetime.now(UTC))
    items = callbacks_of(tenants, args.get("status"))
    page, after = page_of(items, _callback_position, args, (str, str, str))
    return {"callbacks": page, "next": after, "server_time": now}


@bp.operation(
    "GET",
    "/callbacks/stream",
    "streamCallbacks",
    tag="supervisor",
    query=CallbackArgs(),
    **documented_stream("callbacks", "CallbackList"),
)
def callbacks_stream(args: dict[str, str]) -> Response | tuple[Response, int]:
    """Callback items as Server-Sent Events, on every change"""
    status = args.get("status")
    tenants, follow_all = _tenants(args)
    store = get_store()
    return snapshot_stream(
        "callbacks",
        lambda _, read: callbacks_of(read, status),
        lambda: store.tenants.all() if follow_all else tenants,
    )


@bp.operation(
    "POST",
    "/callbacks/<callback_id>/resolve",
    "resolveCallback",
    tag="supervisor",
    path_params=[path_param("callback_id", "the item's id", EXAMPLE_CALLBACK)],
    body=ResolveSchema(),
    schema=CallbackSchema,
    answer="the item, resolved",
    usual=(401, 503),
    errors={
        400: "no JSON object, or a missing, blank or too long note",
        404: "no such item, or another tenant's",
        409: "resolved already (the body's `callback` says how)",
    },
)
def resolve(body: dict[str, str], callback_id: str) -> Any:
    """Mark a callback item resolved by hand, with a note

    The same note again answers 200 (a retry); an item resolved already otherwise answers
    409 with the item. A call that reached the number before the note was given still
    wins: the earliest resolution counts.
    """
    note = body["note"].strip()
    if not note:
        return error_response(400, "invalid resolution", fields={"note": ["must not be blank"]})
    store = _supervisor()
    for tenant in scoped_tenants(None):
        item = next((i for i in callbacks(store, tenant) if i.id == callback_id), None)
        if item is None:
            continue
        if item.resolution is None:
            at = isoformat(datetime.now(UTC))
            store.resolve_by_hand(tenant, callback_id, {"at": at, "note": note})
            item = next(i for i in callbacks(store, tenant) if i.id == callback_id)
        resolution = item.resolution
        if resolution is not None and (
            resolution.kind is not ResolutionKind.MANUAL or resolution.note != note
        ):
            return error_response(
                409,
                "this callback is resolved already",
                callback=dump_callback(callback_json(item, tenant)),
            )
        return callback_json(item, tenant)
    return error_response(404, "no such callback")


# -- a call's timeline ------------------------------------------------------------------


@bp.operation(
    "GET",
    "/calls/<call_uuid>/timeline",
    "getCallTimeline",
    tag="calls",
    path_params=[CALL_UUID],
    query=WholePageArgs(),
    schema=TimelineSchema,
    answer="the story",
    usual=(401, 503),
    errors={400: "a bad limit or cursor", 404: NO_SUCH_CALL},
)
def call_timeline(args: dict[str, Any], call_uuid: str) -> Any:
    """A call's story: every webhook in received order, in words

    With the waits, rings and talks it tells and the outcome and its revisions, computed
    from the call's log. In pages of `limit` steps (default and most 1000); `next`, when
    not null, is the `cursor` of the next.
    """
    store = get_store()
    # As GET /v1/calls/<uuid>: an every-tenant key looks only where the call was posted.
    tenants = every_tenant_lookup(store, store.tenants.of_call(call_uuid))
    for tenant in tenants:
        log = store.calls.load_call(tenant, call_uuid)
        if not log.records:
            continue
        events = [e for e in map(from_record, log.records) if isinstance(e, CallEvent)]
        revisions: list[OutcomeRevision] = []
        if log.outcome is not None:
            started = CallView(fold(tenant, call_uuid, events)).started_at
            start_us = micros(started - REVISION_MARGIN) if started else 0
            found = dict(
                _supervisor().outcome_revisions(tenant, call_uuid, start_us, log.outcome["id"])
            )
            found.setdefault(log.outcome["id"], log.outcome)
            revisions = [
                OutcomeRevision.from_record(record, _decided_at(entry_id))
                for entry_id, record in found.items()
            ]
        # A step's place is its rank in the story, which is told from the log in one
        # order (statemachine.timeline): the pages of a call's story that no new
        # event changed in between are one story.
        placed = list(enumerate(step.as_json() for step in timeline(events, revisions)))
        page, after = page_of(placed, lambda item: (item[0],), args, (int,))
        steps = [step for _, step in page]
        return {"call_uuid": call_uuid, "tenant_id": tenant, "timeline": steps, "next": after}
    return error_response(404, "no such call")


def _decided_at(entry_id: str) -> datetime:
    """When an outcome record was decided: its stream id is Redis server time (us)."""
    us = int(entry_id.partition("-")[0])
    return datetime.fromtimestamp(us / 1_000_000, UTC)


# -- snapshot streams ---------------------------------------------------------------


def snapshot_stream(
    event: str,
    read: Callable[[datetime, list[str]], list[dict[str, Any]]],
    tenants: Callable[[], list[str]],
) -> Response | tuple[Response, int]:
    """``event: <event>`` with ``{"<event>": read(now, tenants), "server_time"}`` whenever
    it changes. Each poll reads the tenants' change stamps only; the answer is computed
    again when a stamp moved, or every REFRESH_SECONDS (the day rolls over)."""
    if not sse.take_slot():
        return sse.too_many_streams()
    deadline = time.monotonic() + sse.STREAM_MAX_SECONDS
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    store = _supervisor()

    def events() -> Iterator[str]:
        last_body: str | None = None
        last_stamp: tuple[list[str], list[int]] | None = None
        last_sent = computed = time.monotonic()
        yield "retry: 1000\n: connected\n\n"
        while sse.open_until(deadline):
            now = datetime.now(UTC)
            try:
                names = tenants()
                stamp = (names, store.stamps(names))
                body = last_body
                if stamp != last_stamp or time.monotonic() - computed >= REFRESH_SECONDS:
                    body = dumps(read(now, names))
                    last_stamp, computed = stamp, time.monotonic()
            except redis.RedisError:
                app.logger.warning("%s stream: redis unavailable", event)
                yield ": redis unavailable, waiting\n\n"
                time.sleep(1.0)
                continue
            if body is not None and body != last_body:
                data = json.dumps({event: json.loads(body), "server_time": isoformat(now)})
                yield f"event: {event}\ndata: {data}\n\n"
                last_body, last_sent = body, time.monotonic()
            elif time.monotonic() - last_sent >= sse.KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            time.sleep(POLL_SECONDS)

    return sse.event_stream(events())
