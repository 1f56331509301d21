"""The API described: ``GET /openapi.json`` (OpenAPI 3.1) and ``GET /docs`` (the same, for people).

The document is built with apispec from marshmallow schemas: the webhook
request bodies from the intake's own schemas (``app.schemas``, by their
``data_key`` names, so what is documented is what is validated), the
subscription bodies from ``app.subscriptions``, and the answers from the
response schemas below, which say what the read API returns. It is built
once per process and served as is; it needs no credentials to read.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from typing import Any

from flask import Blueprint, Flask, Response, jsonify
from marshmallow import Schema, fields, validate

from app import supervisor_schemas
from app.call_schemas import (
    OUTCOME_KINDS,
    CallEventSchema,
    CallHistoryPageSchema,
    CallSchema,
    DidSchema,
    LiveCallListSchema,
    LiveCallSchema,
    LiveSnapshotSchema,
    MessageListSchema,
    MessageSchema,
    OutcomePageSchema,
    OutcomeRecordSchema,
    PartySchema,
    party,
)
from app.docs_page import json_text, prose
from app.docs_page import render as render_docs_page
from app.openapi_webhooks import add_webhook_schemas
from app.rest import ApiBlueprint, DocumentedApi, sse_event
from app.schema_fields import (
    EXAMPLE_CALL_UUID,
    EXAMPLE_CONVERSATION,
    EXAMPLE_OUTCOME_ID,
    EXAMPLE_SUBSCRIPTION,
    EXAMPLE_TENANT,
    EXAMPLE_TIME,
    OUTCOME_ID_PATTERN,
    Answer,
    ErrorAnswer,
    Timestamp,
    ex,
    text,
    time_field,
)
from app.stats import GROUPINGS
from app.subscription_schemas import (
    DeliveryListSchema,
    DeliverySchema,
    ReplayedSchema,
    RotateSchema,
    SubscriptionAnswer,
    SubscriptionListSchema,
    SubscriptionSchema,
    SubscriptionWithSecretAnswer,
)
from workers.store import POOL_WAIT_SECONDS

bp = Blueprint("openapi", __name__)
bp.add_app_template_filter(prose, "prose")
bp.add_app_template_filter(json_text, "json_text")

OPENAPI_VERSION = "3.1.0"
_ex = ex
_text = text
_time = time_field
Doc = Answer

# -- response schemas ----------------------------------------------------------------


class AcceptedDoc(Doc):
    """The intake's answer: the event is durably queued."""

    status = fields.String(required=True, validate=validate.OneOf(("accepted",)))
    event_id = _text(
        "9b2f3c4d5e6f7a8b9c0d1e2f3a4b5c6d", "the event's id (a hash of its content)", nullable=False
    )
    event_type = _text("ringAttempt", "the eventType, as the PBX spells it", nullable=False)
    received_at = _time("when it was received", nullable=False)
    call_uuid = fields.String(metadata=_ex(EXAMPLE_CALL_UUID, "call events"))
    conversation_id = fields.String(metadata=_ex(EXAMPLE_CONVERSATION, "SMS events"))


class HealthDoc(Doc):
    status = fields.String(required=True, validate=validate.OneOf(("ok",)))


class HistoryHealthDoc(Doc):
    """The call history archive (DATABASE_URL), as /readyz sees it."""

    configured = fields.Boolean(required=True, metadata=_ex(True, "DATABASE_URL is set"))
    reachable = fields.Boolean(
        required=True, allow_none=True, metadata=_ex(True, "the database answered; null: none")
    )
    lag_seconds = fields.Float(
        required=True,
        allow_none=True,
        metadata=_ex(0.0, "age of the oldest outcome record not archived yet; 0: none waits"),
    )
    archived_to = fields.String(
        required=True,
        allow_none=True,
        metadata=_ex(EXAMPLE_OUTCOME_ID, "every outcome record up to this id is archived"),
    )


class ReadyDoc(Doc):
    status = fields.String(required=True, validate=validate.OneOf(("ready",)))
    warnings = fields.List(
        fields.String(),
        required=True,
        metadata=_ex([], "Redis settings that put accepted events at risk; archive lag"),
    )
    history = fields.Nested(HistoryHealthDoc, required=True)


def _count(description: str) -> fields.Integer:
    return fields.Integer(
        required=True, validate=validate.Range(min=0), metadata=_ex(0, description)
    )


def _seconds(description: str, *, nullable: bool = True) -> fields.Float:
    return fields.Float(required=True, allow_none=nullable, metadata=_ex(14.2, description))


class StatsFiguresDoc(Doc):
    """Call-centre figures of a set of calls (each call counted once, at its latest revision)."""

    offered = _count("inbound calls")
    answered = _count("inbound calls answered (by this extension, when grouped by extension)")
    missed = _count("abandoned + no_answer + unrouted")
    abandoned = _count("the caller gave up in a queue")
    no_answer = _count("extensions rang, nobody answered")
    unrouted = _count("never queued or rung")
    voicemail = _count("voicemail left")
    elsewhere = _count("grouped by extension: presented here, answered or voicemailed elsewhere")
    abandon_rate = fields.Float(
        required=True, allow_none=True, metadata=_ex(0.05, "abandoned / offered; null if none")
    )
    service_level = fields.Float(
        required=True,
        allow_none=True,
        metadata=_ex(0.8, "answered within service_level_seconds / offered; null if none"),
    )
    answered_in_service_level = _count("answered within service_level_seconds")
    avg_wait_seconds = _seconds("mean wait of inbound calls")
    max_wait_seconds = _seconds("longest wait")
    avg_answer_seconds = _seconds("mean wait of answered calls")
    talk_seconds = _seconds("total talk time of answered inbound calls", nullable=False)
    avg_talk_seconds = _seconds("mean talk time of answered calls")
    outbound = _count("outbound calls")
    outbound_talk_seconds = _seconds("total talk time of outbound calls", nullable=False)


class StatsGroupDoc(StatsFiguresDoc):
    """The figures of one group."""

    key = _text("600", "the queue, extension, DID, hour, day or tenant; null: calls without one")


class StatsWindowDoc(Doc):
    from_ = fields.DateTime(data_key="from", required=True, metadata=_ex(EXAMPLE_TIME))
    to = fields.DateTime(required=True, metadata=_ex(EXAMPLE_TIME))
    group_by = fields.String(
        required=True, allow_none=True, validate=validate.OneOf(GROUPINGS), metadata=_ex("queue")
    )
    service_level_seconds = fields.Float(required=True, metadata=_ex(20.0))
    tenants = fields.List(fields.String(), required=True, metadata=_ex([EXAMPLE_TENANT]))
    source = fields.String(
        required=True,
        validate=validate.OneOf(("redis", "history")),
        metadata=_ex(
            "redis", "history: the window reaches past Redis retention, read from DATABASE_URL"
        ),
    )


class FollowUpDoc(Doc):
    """What happened after a missed call: the number called back, or the caller answered later."""

    kind = fields.String(
        required=True,
        validate=validate.OneOf(("called_back", "answered")),
        metadata=_ex("called_back"),
    )
    at = _time("when the later call started", nullable=False)
    call_uuid = _text(EXAMPLE_CALL_UUID, nullable=False)


class MissedCallDoc(Doc):
    """A missed inbound call, for the callback list."""

    id = _text(EXAMPLE_OUTCOME_ID, "the outcome record's id", nullable=False)
    call_uuid = _text(EXAMPLE_CALL_UUID, nullable=False)
    tenant_id = _text(EXAMPLE_TENANT, nullable=False)
    caller = party("who called")
    did = fields.Nested(DidSchema, required=True, allow_none=True)
    queue = _text("600")
    ring_group = _text(None)
    rang = fields.List(fields.Nested(PartySchema), required=True)
    missed_reason = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(("abandoned", "no_answer", "unrouted")),
        metadata=_ex("abandoned"),
    )
    started_at = _time("the call's first event")
    ended_at = _time("when it ended")
    wait_seconds = _seconds("how long the caller waited")
    follow_up = fields.Nested(
        FollowUpDoc, required=True, allow_none=True, metadata={"description": "null: none yet"}
    )


class StatsDoc(Doc):
    """Call-centre figures over a window of outcome decisions."""

    window = fields.Nested(StatsWindowDoc, required=True)
    cursor = fields.String(
        required=True,
        metadata=_ex(
            EXAMPLE_OUTCOME_ID,
            "every record decided up to this id is counted: follow the outcome stream from it",
        ),
    )
    groups = fields.List(
        fields.Nested(StatsGroupDoc),
        required=True,
        metadata={"description": "sorted by key, null last; empty without group_by"},
    )
    totals = fields.Nested(StatsFiguresDoc, required=True)
    missed_calls = fields.List(
        fields.Nested(MissedCallDoc),
        required=True,
        metadata={"description": "the callback list: missed inbound calls, newest first"},
    )


RESPONSE_SCHEMAS: dict[str, type[Schema]] = {
    "Party": PartySchema,
    "Did": DidSchema,
    "LiveCall": LiveCallSchema,
    "CallEvent": CallEventSchema,
    "OutcomeRecord": OutcomeRecordSchema,
    "Call": CallSchema,
    "Message": MessageSchema,
    "Subscription": SubscriptionAnswer,
    "SubscriptionWithSecret": SubscriptionWithSecretAnswer,
    "Delivery": DeliverySchema,
    "Error": ErrorAnswer,
    "LiveCallList": LiveCallListSchema,
    "OutcomePage": OutcomePageSchema,
    "MessageList": MessageListSchema,
    "SubscriptionList": SubscriptionListSchema,
    "DeliveryList": DeliveryListSchema,
    "Replayed": ReplayedSchema,
    "Accepted": AcceptedDoc,
    "Health": HealthDoc,
    "HistoryHealth": HistoryHealthDoc,
    "Ready": ReadyDoc,
    "CallHistoryPage": CallHistoryPageSchema,
    "LiveSnapshot": LiveSnapshotSchema,
    "StatsFigures": StatsFiguresDoc,
    "StatsGroup": StatsGroupDoc,
    "StatsWindow": StatsWindowDoc,
    "FollowUp": FollowUpDoc,
    "MissedCall": MissedCallDoc,
    "Stats": StatsDoc,
    "SubscriptionRequest": SubscriptionSchema,
    "RotateSecretRequest": RotateSchema,
    **supervisor_schemas.SCHEMAS,
}


# -- the document ----------------------------------------------------------------------


def _json(schema: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json("Error", description)


UNAUTHORIZED = _error("missing or unknown API key")
FORBIDDEN = _error("a tenant key asked for another tenant")
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
UNAVAILABLE = {
    **_error(
        "Redis is unavailable, or every Redis connection of this web process stayed "
        f"busy for {POOL_WAIT_SECONDS:g} s (WEB_REDIS_CONNECTIONS): retry after Retry-After "
        "seconds"
    ),
    "headers": RETRY_AFTER,
}
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "in": "query",
        "name": name,
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "in": "path",
        "name": name,
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
        "example": example,
    }


TENANT_FILTER = _query("tenant_id", "only this tenant (a tenant key may name only its own)")
OUTCOME_FILTERS = [
    _query(
        "after",
        "only records after this id (exclusive); the Last-Event-ID header does the same",
        {"type": "string", "pattern": OUTCOME_ID_PATTERN, "example": EXAMPLE_OUTCOME_ID},
    ),
    TENANT_FILTER,
    _query("outcome", "only this outcome", {"type": "string", "enum": list(OUTCOME_KINDS)}),
]
LAST_EVENT_ID = {
    "in": "header",
    "name": "Last-Event-ID",
    "required": False,
    "description": "resume after this record id (wins over after=)",
    "schema": {"type": "string", "pattern": OUTCOME_ID_PATTERN},
}
SUBSCRIPTION_ID = _path("subscription_id", "the subscription's id", EXAMPLE_SUBSCRIPTION)
LIVE_FILTERS = [
    TENANT_FILTER,
    _query("container_id", "only this container"),
    _query("queue", "only calls in this queue"),
]
TOO_MANY_STREAMS = {
    **_error("too many open streams in this process: retry after Retry-After seconds"),
    "headers": RETRY_AFTER,
}


def _paths() -> dict[str, dict[str, Any]]:
    """Every endpoint: path -> method -> operation (schemas named or as marshmallow classes)."""
    intake_responses = {
        "202": _json(AcceptedDoc, "the event is durably queued and will be applied"),
        "400": _error("not an event: unparseable, no eventType, no callUuid, no tenant"),
        "401": _error("unknown webhook token, or a token of another tenant"),
        "408": _error("the body did not arrive within 10 s of the headers; nothing was queued"),
        "413": _error("body larger than 64 KiB"),
        "429": {
            **_error(
                "the token posted more than WEBHOOK_RATE_LIMIT events a second (only when "
                "set): nothing was queued, retry after Retry-After seconds"
            ),
            "headers": RETRY_AFTER,
        },
        "503": {
            **_error(
                "Redis unavailable, or every Redis connection of this web process stayed "
                f"busy for {POOL_WAIT_SECONDS:g} s: nothing was queued, retry after "
                "Retry-After seconds"
            ),
            "headers": RETRY_AFTER,
        },
    }
    intake_body = {
        "required": True,
        "description": "One PrimeVOX event, JSON or URL-encoded; the body decides, "
        "whatever the Content-Type says.",
        "content": {
            "application/x-www-form-urlencoded": {"schema": "WebhookEvent"},
            "application/json": {"schema": "WebhookEvent"},
        },
    }
    intake_description = (
        "PrimeVOX posts every call step and SMS here. Answers 202 only once the event "
        "is durably queued; the same event twice changes nothing; an unknown eventType "
        "is kept without changing any state."
    )
    return {
        "/webhooks/primevox/{token}": {
            "post": {
                "tags": ["webhook intake"],
                "operationId": "receiveWebhook",
                "summary": "Receive one PrimeVOX event (token in the URL)",
                "description": intake_description,
                "parameters": [
                    _path(
                        "token",
                        "a webhook token from WEBHOOK_TOKENS; it may post only its tenant's events",
                        "whk_0123456789abcdef",
                    )
                ],
                "requestBody": intake_body,
                "responses": intake_responses,
                "security": [],
            }
        },
        "/webhooks/primevox": {
            "post": {
                "tags": ["webhook intake"],
                "operationId": "receiveWebhookBasicAuth",
                "summary": "Receive one PrimeVOX event (token as the Basic-auth password)",
                "description": intake_description
                + " For senders that put credentials in the URL (https://user:<token>@host/…).",
                "requestBody": intake_body,
                "responses": intake_responses,
                "security": [{"webhookBasic": []}],
            }
        },
        "/v1/calls/live/stream": {
            "get": {
                "tags": ["calls"],
                "operationId": "streamLiveCalls",
                "summary": "Live calls as Server-Sent Events, on every change",
                "description": "`event: live` with every live call (the same filters as "
                "/v1/calls/live) when the list changes, and a keep-alive comment every 15 s. "
                "The stream closes after STREAM_MAX_SECONDS; reconnect.",
                "parameters": LIVE_FILTERS,
                "responses": {
                    "200": {
                        "description": "the event stream",
                        "content": {
                            "text/event-stream": {
                                "schema": sse_event("live", "LiveSnapshot"),
                                "example": 'event: live\ndata: {"calls": [...], '
                                f'"server_time": "{EXAMPLE_TIME}"}}\n\n',
                            }
                        },
                    },
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "503": TOO_MANY_STREAMS,
                },
            }
        },
        "/v1/stats": {
            "get": {
                "tags": ["statistics"],
                "operationId": "getStats",
                "summary": "Call-centre figures over a window, grouped, with the callback list",
                "description": "The window holds the calls whose first outcome revision was "
                "decided in it, each counted once with its latest revision there. Default "
                "window: today (UTC) so far.",
                "parameters": [
                    _query(
                        "from",
                        "window start, ISO-8601 date or time (no offset: UTC); default: "
                        "today's midnight UTC",
                        {"type": "string", "example": "2025-11-25T00:00:00Z"},
                    ),
                    _query(
                        "to",
                        "window end (exclusive), ISO-8601; default: now",
                        {"type": "string", "example": "2025-11-26T00:00:00Z"},
                    ),
                    _query(
                        "group_by", "group the figures", {"type": "string", "enum": list(GROUPINGS)}
                    ),
                    _query(
                        "service_level_seconds",
                        "answered within this wait counts toward the service level "
                        "(default SERVICE_LEVEL_SECONDS)",
                        {"type": "number", "minimum": 0, "maximum": 86400},
                    ),
                    _query(
                        "missed_limit",
                        "at most this many missed calls",
                        {"type": "integer", "minimum": 0, "maximum": 500, "default": 50},
                    ),
                    TENANT_FILTER,
                ],
                "responses": {
                    "200": _json(StatsDoc, "the figures"),
                    "400": _error("a bad parameter, or a window with too many records"),
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "503": UNAVAILABLE,
                },
            }
        },
        "/wallboard": {
            "get": {
                "tags": ["statistics"],
                "operationId": "wallboard",
                "summary": "The wallboard: live calls and today's figures, for a wall screen",
                "description": "A static page (no data in it): it asks for an API key, or reads "
                "it from the URL fragment (`/wallboard#key=<api key>`, never sent to the "
                "server), and reads /v1/stats and /v1/calls/live/stream with it.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "an HTML page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/healthz": {
            "get": {
                "tags": ["operations"],
                "operationId": "healthz",
                "summary": "The process is up (says nothing about Redis)",
                "security": [],
                "responses": {"200": _json(HealthDoc, "up")},
            }
        },
        "/readyz": {
            "get": {
                "tags": ["operations"],
                "operationId": "readyz",
                "summary": "Redis answers; lists Redis settings that put events at risk, "
                "and the call history archive's state",
                "security": [],
                "responses": {
                    "200": _json(ReadyDoc, "ready"),
                    "503": UNAVAILABLE,
                },
            }
        },
        "/metrics": {
            "get": {
                "tags": ["operations"],
                "operationId": "metrics",
                "summary": "Prometheus metrics: events received/rejected/applied, queue depth, "
                "latencies, outcomes, deliveries",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {
                            "text/plain": {
                                "schema": {"type": "string"},
                                "example": "# TYPE callstate_events_pending gauge\n"
                                "callstate_events_pending 0.0\n",
                            }
                        },
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["operations"],
                "operationId": "openapi",
                "summary": "This description of the API (OpenAPI 3.1)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "the OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/docs": {
            "get": {
                "tags": ["operations"],
                "operationId": "docs",
                "summary": "This description of the API, as a page to read",
                "security": [],
                "responses": {
                    "200": {
                        "description": "an HTML page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def _version() -> str:
    try:
        return metadata.version("callstate")
    except metadata.PackageNotFoundError:
        return "0"


INFO = {
    "description": "What happened to every call, live and afterwards: callstate "
    "receives the webhooks a PrimeVOX PBX posts for every call step and SMS, and "
    "answers live calls, outcome records and SMS conversations. Every list answers "
    "a JSON object with the list under a plural key; every error answers "
    '`{"error": "<what was wrong>"}` with its status. Timestamps are ISO-8601 UTC.'
}
TAGS = [
    {"name": "webhook intake", "description": "where the PBX posts"},
    {"name": "calls", "description": "live calls and one call's history"},
    {"name": "outcomes", "description": "what happened to each call that ended"},
    {"name": "sms", "description": "SMS/MMS conversations"},
    {"name": "subscriptions", "description": "outcome records pushed as webhooks"},
    {"name": "statistics", "description": "call-centre figures and the wallboard"},
    {"name": "supervisor", "description": "the extension board and callbacks"},
    {"name": "operations", "description": "health, metrics and this description"},
]


def _documented_blueprints() -> list[ApiBlueprint]:
    """The blueprints whose operations are generated from their routes' schemas."""
    from app import api, history, stream, subscriptions, supervisor

    return [api.bp, stream.bp, history.bp, subscriptions.bp, supervisor.bp]


def build_spec() -> dict[str, Any]:
    """Build the OpenAPI document as a dict.

    The operations of the documented blueprints are generated by flask-smorest
    from their routes, on an app of their own (the document needs no Redis
    and no settings); the other operations are written out in ``_paths()``.
    """
    api = DocumentedApi(
        Flask(__name__),
        spec_kwargs={
            "title": "callstate",
            "version": _version(),
            "openapi_version": OPENAPI_VERSION,
            "info": INFO,
            "security": BEARER,
        },
    )
    api.register_field(fields.Url, "string", "uri")
    api.register_field(Timestamp, "string", "date-time")
    spec, plugin = api.spec, api.ma_plugin
    spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "an API key from API_KEYS; a tenant's key sees only that tenant",
        },
    )
    spec.components.security_scheme(
        "webhookBasic",
        {
            "type": "http",
            "scheme": "basic",
            "description": "any user name; the password is a webhook token",
        },
    )
    for name, schema in RESPONSE_SCHEMAS.items():
        doc = schema.__dict__.get("__doc__")
        spec.components.schema(name, {"description": doc} if doc else None, schema=schema)
    add_webhook_schemas(spec, plugin)
    for blueprint in _documented_blueprints():
        api.register_blueprint(blueprint)
    for path, operations in _paths().items():
        spec.path(path=path, operations=operations)
    document: dict[str, Any] = spec.to_dict()
    # flask-smorest adds a tag per blueprint; the document's tags are ours.
    document["tags"] = TAGS
    _as_written_out(document["paths"])
    return document


def _as_written_out(paths: dict[str, dict[str, Any]]) -> None:
    """Generated operations in the shape of the rest of the document: path-level
    parameters (where flask-smorest puts a route's) moved into each operation,
    where /docs reads them, and a docstring's wrapped lines joined into one paragraph."""
    for item in paths.values():
        shared = item.pop("parameters", [])
        for operation in item.values():
            if shared:
                operation["parameters"] = [*shared, *operation.get("parameters", [])]
            if "description" in operation:
                operation["description"] = " ".join(operation["description"].split("\n"))


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The document, built once per process."""
    return build_spec()


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """Serve the OpenAPI document (no credentials needed)."""
    response = jsonify(openapi_document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/docs")
def docs() -> Response:
    """Serve the document as a self-contained HTML page."""
    return Response(render_docs_page(openapi_document()), mimetype="text/html")
