"""The read API under /v1: live calls, one call, outcomes, SMS conversations.

Every route needs an API key; a key bound to a tenant sees only that tenant,
and a call of another tenant is answered exactly like a call that does not
exist (404), so a key cannot probe for other tenants' call ids.
"""

from __future__ import annotations

import re
import time
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from app.auth import ALL_TENANTS, require_api_key
from app.errors import BadQuery, TenantForbidden, error_response
from app.resources import get_store
from workers.store import Store

bp = Blueprint("api", __name__, url_prefix="/v1")
# ASCII digits only (``\d`` also takes other scripts' digits) and no trailing
# newline (``$`` allows one): Redis refuses both, which would read as a 503.
OUTCOME_ID = re.compile(r"^[0-9]{1,20}(-[0-9]{1,20})?\Z")
MAX_STREAM_ID_PART = 2**64 - 1
MAX_LIMIT = 1000
OUTCOME_KINDS = ("answered", "missed", "voicemail", "outbound")


def scoped_tenant(requested: str | None = None) -> str | None:
    """The one tenant the request reads, or None for every tenant (an admin key
    that named none). Raises TenantForbidden for another tenant's name."""
    scope: str = g.scope
    if scope != ALL_TENANTS:
        if requested and requested != scope:
            raise TenantForbidden(f"this API key may not read tenant {requested!r}")
        return scope
    return requested or None


def scoped_tenants(requested: str | None = None) -> list[str]:
    """Tenants the key may read, narrowed to ``requested``. Raises TenantForbidden."""
    tenant = scoped_tenant(requested)
    return [tenant] if tenant is not None else get_store().tenants()


def every_tenant_lookup(store: Store, indexed: list[str]) -> list[str]:
    """Where to look for one call or conversation: for a tenant-bound key its
    tenant; for an every-tenant key the tenants the intake index names, and
    every tenant only while the index does not yet cover all that is kept (an
    upgrade, for one retention period)."""
    if g.scope != ALL_TENANTS:
        return scoped_tenants()
    if indexed or store.call_index_complete(time.time()):
        return indexed
    return store.tenants()


def is_outcome_id(text: str) -> bool:
    """Whether ``text`` is an outcome id Redis can read after: ``<us>[-<seq>]``, each a
    64-bit unsigned, short of the very last id (nothing can follow that one)."""
    if not OUTCOME_ID.match(text):
        return False
    parts = [int(part) for part in text.split("-")]
    return max(parts) <= MAX_STREAM_ID_PART and parts != [MAX_STREAM_ID_PART] * 2


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    # isascii: "²".isdigit() is true but int("²") raises.
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise BadQuery(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def outcome_query() -> dict[str, Any]:
    """Parse ``after``, ``limit``, ``tenant_id``, ``outcome``. Raises BadQuery/TenantForbidden."""
    after = request.args.get("after") or request.headers.get("Last-Event-ID") or None
    if after is not None and not is_outcome_id(after):
        raise BadQuery("after must be an outcome id such as 1764063000123456-0")
    outcome = request.args.get("outcome") or None
    if outcome is not None and outcome not in OUTCOME_KINDS:
        raise BadQuery(f"outcome must be one of {', '.join(OUTCOME_KINDS)}")
    return {
        "after": after,
        "limit": _int_arg("limit", 100, 1, MAX_LIMIT),
        "outcome": outcome,
        "tenants": scoped_tenants(request.args.get("tenant_id")),
        # An admin key with no tenant filter follows tenants that appear later too.
        "all_tenants": g.scope == ALL_TENANTS and not request.args.get("tenant_id"),
    }


@bp.get("/calls/live")
@require_api_key
def live_calls() -> Response:
    """Calls that started and have not ended, optionally filtered."""
    tenants = scoped_tenants(request.args.get("tenant_id"))
    container = request.args.get("container_id")
    queue = request.args.get("queue")
    return jsonify({"calls": filter_live(get_store().live_calls(tenants), container, queue)})


def filter_live(
    calls: list[dict[str, Any]], container: str | None, queue: str | None
) -> list[dict[str, Any]]:
    """Live calls narrowed to a container and/or a queue (None: any)."""
    return [
        call
        for call in calls
        if (container is None or call.get("container_id") == container)
        and (queue is None or call.get("queue") == queue)
    ]


@bp.get("/calls/<call_uuid>")
@require_api_key
def get_call(call_uuid: str) -> tuple[Response, int]:
    """One call with its outcome and event log; 404 if unknown or another tenant's."""
    store = get_store()
    # An every-tenant key looks only where the call was posted (an index kept at
    # intake), never tenant by tenant.
    tenants = every_tenant_lookup(store, store.call_tenants(call_uuid))
    for tenant in tenants:
        call = store.get_call(tenant, call_uuid)
        if call is not None:
            return jsonify(call), 200
    return error_response(404, "no such call")


@bp.get("/outcomes")
@require_api_key
def outcomes() -> Response:
    """Outcome records in the order they were decided, paged with ``after``."""
    query = outcome_query()
    records, cursor = get_store().read_outcomes(
        query["tenants"], after=query["after"], limit=query["limit"], outcome=query["outcome"]
    )
    more = len(records) >= query["limit"]
    return jsonify({"outcomes": records, "next": cursor if more else None})


@bp.get("/conversations/<conversation_id>/messages")
@require_api_key
def messages(conversation_id: str) -> tuple[Response, int]:
    """The messages of one SMS conversation, oldest first."""
    store = get_store()
    found: list[dict[str, Any]] = []
    tenants = every_tenant_lookup(store, store.conversation_tenants(conversation_id))
    for tenant in tenants:
        found += store.messages(tenant, conversation_id)
    if not found:
        return error_response(404, "no such conversation")
    found.sort(key=lambda r: (r["received_at"], r["id"]))
    return jsonify({"messages": [_message(r) for r in found]}), 200


def _message(record: dict[str, Any]) -> dict[str, Any]:
    data = record["data"]
    return {
        "id": record["id"],
        "conversation_id": data["conversation_id"],
        "tenant_id": record["tenant_id"],
        "container_id": record["container_id"],
        "direction": data["direction"],
        "from": data["from_number"],
        "to": data["to_number"],
        "text": data["text"],
        "received_at": record["received_at"],
    }
