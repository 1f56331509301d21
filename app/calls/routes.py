"""The calls under /v1: live calls, one call, SMS conversations.

Every route needs an API key; a key bound to a tenant sees only that tenant,
and a call of another tenant is answered exactly like a call that does not
exist (404), so a key cannot probe for other tenants' call ids.
"""

from __future__ import annotations

from typing import Any

from app.calls.schemas import (
    CallSchema,
    LiveCallArgs,
    LiveCallListSchema,
    MessageListSchema,
)
from app.web.auth import require_api_key
from app.web.errors import error_response
from app.web.resources import get_store
from app.web.rest import ApiBlueprint, error_doc, path_param
from app.web.schema_fields import EXAMPLE_CALL_UUID, EXAMPLE_CONVERSATION
from app.web.scope import every_tenant_lookup, scoped_tenants
from statemachine.envelope import Envelope

bp = ApiBlueprint("api", __name__, url_prefix="/v1")


@bp.get("/calls/live", tags=["calls"])
@require_api_key
@bp.arguments(LiveCallArgs(), location="query")
@bp.response(200, LiveCallListSchema, description="the live calls")
@bp.errors(401, 403, 503)
@bp.doc(operationId="listLiveCalls")
def live_calls(args: dict[str, str]) -> dict[str, Any]:
    """Calls that have started and not ended, oldest first"""
    tenants = scoped_tenants(args.get("tenant_id"))
    calls = get_store().calls.live_calls(tenants)
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
    tenants = every_tenant_lookup(store, store.tenants.of_call(call_uuid))
    for tenant in tenants:
        call = store.calls.get_call(tenant, call_uuid)
        if call is not None:
            return call
    return error_response(404, "no such call")


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
    tenants = every_tenant_lookup(store, store.tenants.of_conversation(conversation_id))
    for tenant in tenants:
        found += store.logs.messages(tenant, conversation_id)
    if not found:
        return error_response(404, "no such conversation")
    found.sort(key=lambda r: (r["received_at"], r["id"]))
    return {"messages": found}
