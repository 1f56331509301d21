"""The read API under /v1: live calls, one call, outcomes, SMS conversations.

Every route needs an API key; a key bound to a tenant sees only that tenant,
and a call of another tenant is answered exactly like a call that does not
exist (404), so a key cannot probe for other tenants' call ids.
"""

from __future__ import annotations

import time
from typing import Any

from flask import g

from app.auth import ALL_TENANTS, require_api_key
from app.call_schemas import (
    CallSchema,
    LastEventIdHeader,
    LiveCallArgs,
    LiveCallListSchema,
    MessageListSchema,
    OutcomePageArgs,
    OutcomePageSchema,
)
from app.errors import TenantForbidden, error_response
from app.resources import get_store
from app.rest import ApiBlueprint, error_doc, path_param
from app.schema_fields import EXAMPLE_CALL_UUID, EXAMPLE_CONVERSATION
from statemachine.envelope import Envelope
from workers.store import Store

bp = ApiBlueprint("api", __name__, url_prefix="/v1")


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


def outcome_query(args: dict[str, Any]) -> dict[str, Any]:
    """The outcome reading ``args`` (OutcomeArgs) asks for, in the key's tenants.
    Raises TenantForbidden."""
    return {
        "after": args.get("after"),
        "limit": args.get("limit"),
        "outcome": args.get("outcome"),
        "tenants": scoped_tenants(args.get("tenant_id")),
        # An admin key with no tenant filter follows tenants that appear later too.
        "all_tenants": g.scope == ALL_TENANTS and not args.get("tenant_id"),
    }


@bp.get("/calls/live", tags=["calls"])
@require_api_key
@bp.arguments(LiveCallArgs(), location="query")
@bp.response(200, LiveCallListSchema, description="the live calls")
@bp.errors(401, 403, 503)
@bp.doc(operationId="listLiveCalls")
def live_calls(args: dict[str, str]) -> dict[str, Any]:
    """Calls that have started and not ended, oldest first"""
    tenants = scoped_tenants(args.get("tenant_id"))
    calls = get_store().live_calls(tenants)
    return {"calls": filter_live(calls, args.get("container_id"), args.get("queue"))}


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


@bp.get(
    "/calls/<call_uuid>",
    tags=["calls"],
    parameters=[path_param("call_uuid", "the PBX's callUuid", EXAMPLE_CALL_UUID)],
)
@require_api_key
@bp.response(200, CallSchema, description="the call")
@bp.errors(401, 503)
@bp.alt_response(404, **error_doc("no such call, or another tenant's"))
@bp.doc(operationId="getCall")
def get_call(call_uuid: str) -> Any:
    """One call with its latest outcome and its event log"""
    store = get_store()
    # An every-tenant key looks only where the call was posted (an index kept at
    # intake), never tenant by tenant.
    tenants = every_tenant_lookup(store, store.call_tenants(call_uuid))
    for tenant in tenants:
        call = store.get_call(tenant, call_uuid)
        if call is not None:
            return call
    return error_response(404, "no such call")


@bp.get("/outcomes", tags=["outcomes"])
@require_api_key
@bp.documents_arguments(LastEventIdHeader(), location="headers")
@bp.arguments(OutcomePageArgs(), location="query")
@bp.response(200, OutcomePageSchema, description="a page of records")
@bp.alt_response(400, **error_doc("a bad after, limit or outcome"))
@bp.errors(401, 403, 503)
@bp.doc(operationId="listOutcomes")
def outcomes(args: dict[str, Any]) -> dict[str, Any]:
    """Final outcome records in the order they were decided"""
    query = outcome_query(args)
    records, cursor = get_store().read_outcomes(
        query["tenants"], after=query["after"], limit=query["limit"], outcome=query["outcome"]
    )
    more = len(records) >= query["limit"]
    return {"outcomes": records, "next": cursor if more else None}


@bp.get(
    "/conversations/<conversation_id>/messages",
    tags=["sms"],
    parameters=[path_param("conversation_id", "the PBX's conversationID", EXAMPLE_CONVERSATION)],
)
@require_api_key
@bp.response(200, MessageListSchema, description="the messages")
@bp.errors(401, 503)
@bp.alt_response(404, **error_doc("no such conversation, or another tenant's"))
@bp.doc(operationId="listMessages")
def messages(conversation_id: str) -> Any:
    """The messages of one SMS conversation, oldest first"""
    store = get_store()
    found: list[Envelope] = []
    tenants = every_tenant_lookup(store, store.conversation_tenants(conversation_id))
    for tenant in tenants:
        found += store.messages(tenant, conversation_id)
    if not found:
        return error_response(404, "no such conversation")
    found.sort(key=lambda r: (r["received_at"], r["id"]))
    return {"messages": found}
