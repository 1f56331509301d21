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
from app.web.errors import error_response
from app.web.pages import WholePageArgs, page_of
from app.web.resources import get_store
from app.web.rest import ApiBlueprint, path_param
from app.web.schema_fields import EXAMPLE_CALL_UUID, EXAMPLE_CONVERSATION
from app.web.scope import every_tenant_lookup, scoped_tenants
from core.store import log_order
from statemachine.envelope import Envelope

bp = ApiBlueprint("api", __name__, url_prefix="/v1")
# A call named in the path, and the answer when the key may not see it.
CALL_UUID = path_param("call_uuid", "the PBX's callUuid", EXAMPLE_CALL_UUID)
NO_SUCH_CALL = "no such call, or another tenant's"


@bp.operation(
    "GET",
    "/calls/live",
    "listLiveCalls",
    tag="calls",
    query=LiveCallArgs(),
    schema=LiveCallListSchema,
    answer="the live calls",
    usual=(401, 403, 503),
)
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


@bp.operation(
    "GET",
    "/calls/<call_uuid>",
    "getCall",
    tag="calls",
    path_params=[CALL_UUID],
    query=WholePageArgs(),
    schema=CallSchema,
    answer="the call",
    usual=(401, 503),
    errors={400: "a bad limit or cursor", 404: NO_SUCH_CALL},
)
def get_call(args: dict[str, Any], call_uuid: str) -> Any:
    """One call with its latest outcome and its event log

    The log in pages of `limit` events (default and most 1000); `next`, when not null,
    is the `cursor` of the next.
    """
    store = get_store()
    # An every-tenant key looks only where the call was posted (an index kept at
    # intake), never tenant by tenant.
    tenants = every_tenant_lookup(store, store.tenants.of_call(call_uuid))
    for tenant in tenants:
        call = store.calls.get_call(tenant, call_uuid)
        if call is not None:
            events, after = page_of(call["events"], log_order, args, (int, str))
            return {**call, "events": events, "next": after}
    return error_response(404, "no such call")


@bp.operation(
    "GET",
    "/conversations/<conversation_id>/messages",
    "listMessages",
    tag="sms",
    path_params=[path_param("conversation_id", "the PBX's conversationID", EXAMPLE_CONVERSATION)],
    schema=MessageListSchema,
    answer="the messages",
    usual=(401, 503),
    errors={404: "no such conversation, or another tenant's"},
)
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
