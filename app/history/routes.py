"""Call history: ``GET /v1/calls`` searches the SQL archive (``DATABASE_URL``).

The archive holds every outcome revision the workers' archiver copied from
the outcome streams, so calls stay searchable long after Redis retention.
JSON pages (``{"calls": [<outcome record>...], "next": <cursor or null>}``,
newest ``started_at`` first) or, with ``Accept: text/csv`` or
``?format=csv``, a CSV of every matching call, streamed row by row.

Without ``DATABASE_URL`` the route answers 501 (history is not configured);
with the database away, 503.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import redis
import sqlalchemy as sa
from flask import Flask, Response, current_app, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import app.history.csv_export as history_csv
import app.history.exports as exports
import app.stats.figures as stats
from app.calls.schemas import (
    DIRECTIONS,
    MAX_LIMIT,
    MISSED_REASONS,
    OUTCOME_KINDS,
    CallHistoryPageSchema,
)
from app.web.errors import BadQuery, error_response
from app.web.resources import get_store
from app.web.rest import ApiBlueprint
from app.web.scope import scoped_tenant
from core.history.archive import lag
from core.history.database import create_engine
from core.history.exceptions import BadCursor
from core.history.numbers import tenant_countries
from core.history.search import CallFilter, Position, page, stream
from core.history.writer import set_aside_count
from core.settings import Settings
from core.store import Store
from statemachine.events import micros

bp = ApiBlueprint("history", __name__, url_prefix="/v1")

EXTENSION = "callstate_history"
NOT_CONFIGURED = "call history is not configured: set DATABASE_URL"
UNAVAILABLE = "history database unavailable, try again"
# The database could not be reached or dropped the connection: a 503, not a bug.
UNREACHABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


class HistoryNotConfigured(Exception):
    """DATABASE_URL is not set (501)."""


def init_app(app: Flask) -> None:
    """Open the history engine (lazily: nothing connects yet) when DATABASE_URL is set."""
    settings: Settings = app.config["CALLSTATE_SETTINGS"]
    url = settings.database_url
    app.extensions[EXTENSION] = create_engine(url, role="web") if url else None

    @app.errorhandler(HistoryNotConfigured)
    def _not_configured(_: HistoryNotConfigured) -> tuple[Response, int]:
        return error_response(501, NOT_CONFIGURED)

    for error in UNREACHABLE:
        app.register_error_handler(error, lambda _: error_response(503, UNAVAILABLE))


def get_history() -> sa.Engine | None:
    """The history database's engine, or None without DATABASE_URL."""
    engine: sa.Engine | None = current_app.extensions.get(EXTENSION)
    return engine


def require_history() -> sa.Engine:
    """The history engine. Raises HistoryNotConfigured (501) without DATABASE_URL."""
    engine = get_history()
    if engine is None:
        raise HistoryNotConfigured(NOT_CONFIGURED)
    return engine


class Instant(fields.String):
    """An ISO-8601 date or time (no offset: UTC), loaded as an aware UTC datetime."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return stats.parse_instant(text)
        except ValueError:
            raise ValidationError("must be an ISO-8601 time such as 2026-11-01T00:00:00Z") from None


# PostgreSQL text cannot hold NUL: refused at the edge (400), never a database error.
NO_NUL = validate.Regexp(r"^[^\x00]*$", error="must not contain NUL characters")


def one_of(choices: tuple[str, ...] | list[str]) -> validate.OneOf:
    return validate.OneOf(choices, error="must be one of " + ", ".join(choices))


def _text(description: str | None = None, **options: Any) -> fields.String:
    validators = [NO_NUL, *options.pop("validators", [])]
    meta = {"description": description} if description else {}
    return fields.String(validate=validators, metadata=meta, **options)


class CallSearchArgs(Schema):
    """The query of ``GET /v1/calls``."""

    class Meta:
        unknown = EXCLUDE

    from_ = Instant(
        data_key="from",
        metadata={"description": "calls started at or after this (ISO-8601; no offset: UTC)"},
    )
    to = Instant(metadata={"description": "calls started before this (exclusive)"})
    tenant_id = _text("only this tenant")
    outcome = fields.String(validate=one_of(OUTCOME_KINDS))
    missed_reason = fields.String(validate=one_of(MISSED_REASONS))
    direction = fields.String(validate=one_of(DIRECTIONS))
    queue = _text("only calls that entered this queue")
    ring_group = _text("only calls that entered this ring group")
    extension = _text(
        "only calls this extension answered, rang for, took to voicemail or placed "
        "(outbound); a number outside matches however the PBX wrote it"
    )
    caller = _text(
        "only this caller: a full number matches however the PBX wrote it (7615557843 "
        "finds +17615557843, national numbers read in the tenant's country); part of a "
        "number matches callers starting with it (e.g. +1555)",
        validators=[validate.Length(min=1, error="must not be empty")],
    )
    limit = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1, error="must be a whole number from 1 up"),
        error_messages={"invalid": "must be a whole number from 1 up"},
        metadata={
            "description": f"JSON: page size, 1 to {MAX_LIMIT}, default 100; "
            "CSV: at most this many calls (default: every matching call)"
        },
    )
    cursor = _text("continue after the page that answered this as next")
    format = fields.String(
        validate=one_of(("json", "csv")),
        metadata={"description": "csv: the same as Accept: text/csv"},
    )

    @staticmethod
    def error_text(messages: Any) -> str:
        """Every problem, each as ``<argument> <what is wrong>`` the way the other
        queries word theirs (app/web/rest.py answers those with the first alone)."""
        named = messages if isinstance(messages, dict) else {"query": messages}
        return "; ".join(f"{name} {' '.join(map(str, why))}" for name, why in named.items())


def _micros(moment: datetime | None) -> int | None:
    return micros(moment) if moment is not None else None


def filter_country(tenant: str | None) -> str:
    """What a national number in a filter is read in: the tenant's country, or
    DEFAULT_COUNTRY for a search across tenants."""
    settings: Settings = current_app.config["CALLSTATE_SETTINGS"]
    if tenant is None:
        return settings.default_country
    return tenant_countries(get_store(), settings)(tenant)


def search_query(args: dict[str, Any]) -> tuple[CallFilter, Position | None]:
    """The search the loaded query asks for. Raises BadQuery (400) or TenantForbidden (403)."""
    start, end = args.get("from_"), args.get("to")
    if start is not None and end is not None and start >= end:
        raise BadQuery("from must be before to")
    tenant = scoped_tenant(args.get("tenant_id"))
    where = CallFilter(
        tenant_id=tenant,
        started_from_us=_micros(start),
        started_to_us=_micros(end),
        outcome=args.get("outcome"),
        missed_reason=args.get("missed_reason"),
        direction=args.get("direction"),
        queue=args.get("queue"),
        ring_group=args.get("ring_group"),
        extension=args.get("extension"),
        caller_prefix=args.get("caller"),
        country=filter_country(tenant),
    )
    try:
        after = Position.decode(args["cursor"]) if args.get("cursor") else None
    except BadCursor as exc:
        raise BadQuery(str(exc)) from None
    if after is not None and where.tenant_id is not None and after.tenant_id != where.tenant_id:
        raise BadQuery("cursor belongs to another search")
    return where, after


def wants_csv(args: dict[str, Any]) -> bool:
    """``?format=`` decides; else the Accept header (JSON unless CSV is preferred)."""
    if args.get("format"):
        return bool(args["format"] == "csv")
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    return best == "text/csv"


@bp.operation(
    "GET",
    "/calls",
    "searchCallHistory",
    tag="calls",
    # Answered after the check that history is configured (501 first).
    before=require_history,
    query=CallSearchArgs(),
    answer="a page of calls, or the CSV",
    usual=(401, 403),
    errors={
        400: "a bad filter, limit or cursor",
        501: "history is not configured (no DATABASE_URL)",
        503: "the history database is unavailable, or exports are at their cap: retry",
    },
    responses={
        200: {
            "content": {
                "application/json": {"schema": CallHistoryPageSchema},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
def search_calls(args: dict[str, Any]) -> Response | tuple[Response, int]:
    """Call history: search every archived call, JSON pages or CSV

    Calls from the history database (DATABASE_URL), found long after Redis retention:
    each as its latest outcome record, newest started_at first. Page with limit and the
    answer's next as cursor. With Accept: text/csv or format=csv: a CSV of every
    matching call (limit caps it), one call a row, columns as docs/history.md lists.
    """
    engine = require_history()
    where, after = search_query(args)
    csv_wanted = wants_csv(args)
    limit = args.get("limit") or exports.LARGE_PAGE
    if not csv_wanted and limit > MAX_LIMIT:
        raise BadQuery(f"limit: a page holds at most {MAX_LIMIT} calls (the CSV has no limit)")
    if not csv_wanted and limit <= exports.LARGE_PAGE:
        return json_page(engine, where, after, limit)
    release = exports.take_slot()
    if release is None:
        return exports.too_many_exports()
    try:
        if csv_wanted:
            return csv_response(engine, where, after, args.get("limit"), release)
        return json_page(engine, where, after, limit)
    finally:
        if not csv_wanted:
            release()


def json_page(engine: sa.Engine, where: CallFilter, after: Position | None, limit: int) -> Response:
    """A page of up to ``limit`` calls as JSON, with the cursor of the next."""
    records, position = page(engine, where, after, limit)
    # The records are stored as the JSON text they were published as, each the keys
    # OutcomeRecordSchema shows (tests/app/history/test_calls_schema.py): a page of up to
    # 1,000 is answered without parsing and dumping them again.
    following = json.dumps(position.encode() if position is not None else None)
    body = '{"calls":[' + ",".join(records) + '],"next":' + following + "}"
    return Response(body, mimetype="application/json")


def csv_response(
    engine: sa.Engine,
    where: CallFilter,
    after: Position | None,
    limit: int | None,
    release: Callable[[], None],
) -> Response:
    """Stream the CSV, holding an export slot (``release`` gives it back) until
    the response is closed. The query runs before the answer starts, so a
    database that is away is a 503, not a cut-off file."""
    settings: Settings = current_app.config["CALLSTATE_SETTINGS"]
    try:
        connection = engine.connect()
        try:
            records = stream(connection, where, after, limit)
            first = next(records, None)
        except Exception:
            connection.close()
            raise
    except Exception:
        release()
        raise

    def body() -> Iterator[str]:
        try:
            head = [first] if first is not None else []
            pieces = history_csv.chunks(itertools.chain(head, records))
            yield from exports.cut_off_when_idle(pieces, settings.export_idle_seconds)
        finally:
            connection.close()
            release()  # the rest is the server's to send: the export's work is done

    response = Response(
        body(),
        mimetype="text/csv",
        headers={
            "Content-Type": "text/csv; charset=utf-8; header=present",
            "Content-Disposition": 'attachment; filename="calls.csv"',
        },
    )
    response.call_on_close(release)
    return response


# -- health: /readyz and /metrics ------------------------------------------------------

LAG_WARNING_SECONDS = 60.0


def history_health(store: Store) -> dict[str, Any]:
    """The archive's state for /readyz and /metrics. Never raises.

    ``reachable``: the database answered; ``lag_seconds``: the age of the
    oldest outcome record not archived yet (0 when none waits).
    """
    engine = get_history()
    unknown = {"lag_seconds": None, "archived_to": None, "set_aside": None}
    if engine is None:
        return {"configured": False, "reachable": None, **unknown}
    try:
        with engine.connect() as connection:
            set_aside = set_aside_count(connection)
        found = lag(store, engine)
    except sa.exc.SQLAlchemyError:
        return {"configured": True, "reachable": False, **unknown}
    except redis.RedisError:
        return {"configured": True, "reachable": True, **unknown, "set_aside": set_aside}
    return {
        "configured": True,
        "reachable": True,
        "lag_seconds": round(found.seconds(store.outcomes.server_time_us()), 3),
        "archived_to": found.archived_to,
        "set_aside": set_aside,
    }


def history_warnings(health: dict[str, Any]) -> list[str]:
    """What an operator should know about the archive, as /readyz warnings."""
    if health["reachable"] is False:
        return ["history database unreachable: the archive is falling behind"]
    warnings = []
    lag_seconds = health["lag_seconds"]
    if lag_seconds is not None and lag_seconds > LAG_WARNING_SECONDS:
        warnings.append(f"history archive is {lag_seconds:.0f} s behind the outcome streams")
    if health["set_aside"]:
        warnings.append(
            f"{health['set_aside']} outcome record(s) set aside: the history database refused "
            "them (flask history status lists them)"
        )
    return warnings


class HistoryCollector(Collector):
    """``callstate_history_up`` and ``callstate_history_archive_lag_seconds`` when configured."""

    def collect(self) -> Iterator[Metric]:
        health = history_health(get_store())
        if not health["configured"]:
            return
        yield GaugeMetricFamily(
            "callstate_history_up",
            "1 if the history database answered this scrape",
            value=1.0 if health["reachable"] else 0.0,
        )
        lag_seconds = health["lag_seconds"]
        set_aside = health["set_aside"]
        yield GaugeMetricFamily(
            "callstate_history_set_aside_records",
            "Outcome records the history database refused, kept aside (flask history status)",
            value=float("nan") if set_aside is None else float(set_aside),
        )
        yield GaugeMetricFamily(
            "callstate_history_archive_lag_seconds",
            "Age of the oldest outcome record not yet archived (0: none waits)",
            value=float("nan") if lag_seconds is None else lag_seconds,
        )
