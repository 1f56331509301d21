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

from flask import Flask, Response, jsonify
from marshmallow import Schema, fields

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
)
from app.docs_page import json_text, prose
from app.docs_page import render as render_docs_page
from app.health import HealthAnswer, HistoryHealthAnswer, ReadyAnswer
from app.intake_schemas import AcceptedSchema
from app.openapi_webhooks import add_webhook_schemas
from app.rest import ApiBlueprint, DocumentedApi
from app.schema_fields import (
    EXAMPLE_OUTCOME_ID,
    EXAMPLE_SUBSCRIPTION,
    OUTCOME_ID_PATTERN,
    Answer,
    ErrorAnswer,
    Timestamp,
    ex,
    text,
    time_field,
)
from app.stats_schemas import (
    FollowUpSchema,
    MissedCallSchema,
    StatsFiguresSchema,
    StatsGroupSchema,
    StatsSchema,
    StatsWindowSchema,
)
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

bp = ApiBlueprint("openapi", __name__)
bp.add_app_template_filter(prose, "prose")
bp.add_app_template_filter(json_text, "json_text")

OPENAPI_VERSION = "3.1.0"
_ex = ex
_text = text
_time = time_field
Doc = Answer

# -- response schemas ----------------------------------------------------------------


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
    "Accepted": AcceptedSchema,
    "Health": HealthAnswer,
    "HistoryHealth": HistoryHealthAnswer,
    "Ready": ReadyAnswer,
    "CallHistoryPage": CallHistoryPageSchema,
    "LiveSnapshot": LiveSnapshotSchema,
    "StatsFigures": StatsFiguresSchema,
    "StatsGroup": StatsGroupSchema,
    "StatsWindow": StatsWindowSchema,
    "FollowUp": FollowUpSchema,
    "MissedCall": MissedCallSchema,
    "Stats": StatsSchema,
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
    return {
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
    from app import (
        api,
        health,
        history,
        intake,
        live_stream,
        metrics,
        stats_api,
        stream,
        subscriptions,
        supervisor,
    )

    return [
        intake.bp,
        api.bp,
        live_stream.bp,
        stream.bp,
        history.bp,
        stats_api.bp,
        subscriptions.bp,
        supervisor.bp,
        health.bp,
        metrics.bp,
        bp,
    ]


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


@bp.get("/openapi.json", tags=["operations"])
@bp.response(200, {"type": "object"}, description="the OpenAPI document")
@bp.doc(operationId="openapi", security=[])
def openapi_json() -> Response:
    """This description of the API (OpenAPI 3.1)"""
    response = jsonify(openapi_document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/docs", tags=["operations"])
@bp.response(200, {"type": "string"}, content_type="text/html", description="an HTML page")
@bp.doc(operationId="docs", security=[])
def docs() -> Response:
    """This description of the API, as a page to read"""
    return Response(render_docs_page(openapi_document()), mimetype="text/html")
