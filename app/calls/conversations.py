"""``GET /v1/conversations``: a tenant's SMS conversations, the latest first.

The workers keep an index of each tenant's conversations as messages arrive
(core/store/logs.py): the last message's time, the numbers on either side and
how many messages Redis keeps. A conversation leaves the list with its
messages (``RETENTION_SECONDS``).

Pages are keyset pages over (last message, tenant, conversation id), newest
first: ``next`` is the cursor of the page after, valid however the list
changes meanwhile (a conversation with a newer message moves to the front and
is not seen twice on the later pages).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from marshmallow import Schema, fields, validate

from app.calls.schemas import MAX_LIMIT, WholeNumberArg, next_page, tenant_filter
from app.history.routes import Instant
from app.web.errors import BadQuery
from app.web.resources import get_store
from app.web.rest import ApiBlueprint
from app.web.schema_fields import EXAMPLE_CONVERSATION, EXAMPLE_TENANT, Answer, ex
from app.web.scope import scoped_tenants
from core.settings import Settings
from core.store import Conversation
from statemachine.events import micros
from statemachine.phone_numbers import e164

bp = ApiBlueprint("conversations", __name__, url_prefix="/v1")
DEFAULT_LIMIT = 100
# A position: (last message us, tenant, conversation id), newest first.
Position = tuple[int, str, str]


class ConversationArgs(Schema):
    tenant_id = tenant_filter()
    number = fields.String(
        validate=validate.Length(min=1, max=64, error="number must be 1 to 64 characters"),
        metadata={"description": "only conversations with this number on either side, "
                  "however it is written (+15551234567, 5551234567)"},
    )  # fmt: skip
    from_ = Instant(
        data_key="from",
        metadata={"description": "only conversations whose last message is at or after this"},
    )
    to = Instant(metadata={"description": "only conversations whose last message is before this"})
    limit = WholeNumberArg(
        "limit", 1, MAX_LIMIT, load_default=DEFAULT_LIMIT, metadata={"description": "page size"}
    )
    cursor = fields.String(metadata={"description": "the previous page's next"})


class ConversationSchema(Answer):
    conversation_id = fields.String(required=True, metadata=ex(EXAMPLE_CONVERSATION))
    tenant_id = fields.String(required=True, metadata=ex(EXAMPLE_TENANT))
    numbers = fields.List(
        fields.String(),
        required=True,
        metadata=ex(["+15551230000", "+15559870000"], "the numbers on either side, as sent"),
    )
    last_message_at = fields.String(
        required=True, metadata=ex("2026-11-25T14:03:07.412000Z", "the latest message (UTC)")
    )
    messages = fields.Integer(required=True, metadata=ex(3, "messages Redis keeps"))


class ConversationPageSchema(Answer):
    conversations = fields.List(fields.Nested(ConversationSchema), required=True)
    next = next_page(None, "pass as cursor= for the next page; null: this was the last")


def encode(position: Position) -> str:
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Position:
    """A cursor this service handed out. Raises BadQuery for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        us, tenant, conversation = json.loads(raw)
        if isinstance(us, int) and isinstance(tenant, str) and isinstance(conversation, str):
            return us, tenant, conversation
    except (ValueError, binascii.Error, TypeError):
        pass
    raise BadQuery("cursor is not one this service handed out")


def _before_for(tenant: str, cursor: Position | None) -> tuple[int, str] | None:
    """What of ``tenant``'s comes after ``cursor`` in (us, tenant, id) order, newest
    first: (us, id) keys below the returned one."""
    if cursor is None:
        return None
    us, cursor_tenant, conversation = cursor
    if tenant < cursor_tenant:
        return us, "\U0010ffff"  # every id at the cursor's instant still follows
    if tenant == cursor_tenant:
        return us, conversation
    return us, ""  # only what is older than the cursor's instant


def _utc(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _matches(conversation: Conversation, wanted: str, written: str, country: str) -> bool:
    return any(
        number == written or (wanted and e164(number, country) == wanted)
        for number in conversation.numbers
    )


@bp.operation(
    "GET",
    "/conversations",
    "listConversations",
    tag="sms",
    query=ConversationArgs(),
    schema=ConversationPageSchema,
    answer="a page of conversations",
    usual=(401, 403, 503),
    errors={400: "a bad filter, limit or cursor"},
)
def list_conversations(args: dict[str, Any]) -> dict[str, Any]:
    """SMS conversations, the one with the latest message first"""
    settings: Settings = current_app.config["CALLSTATE_SETTINGS"]
    store = get_store()
    tenants = scoped_tenants(args.get("tenant_id"))
    limit: int = args["limit"]
    cursor = decode(args["cursor"]) if args.get("cursor") else None
    since = micros(args["from_"]) if args.get("from_") else None
    until = micros(args["to"]) if args.get("to") else None
    written = args.get("number") or ""
    wanted = e164(written, settings.default_country) or "" if written else ""
    found: list[tuple[Position, Conversation]] = []
    for tenant in tenants:
        before = _before_for(tenant, cursor)
        matched = 0
        # One more than a page, to know whether a next page exists; with a number
        # filter, batch after batch until enough match or the tenant has no more.
        while matched <= limit:
            batch = store.logs.conversations(tenant, before, since, until, limit + 1)
            for conversation in batch:
                if not written or _matches(conversation, wanted, written, settings.default_country):
                    key = (conversation.last_message_us, tenant, conversation.conversation_id)
                    found.append((key, conversation))
                    matched += 1
            if not written or len(batch) <= limit:
                break
            before = (batch[-1].last_message_us, batch[-1].conversation_id)
    found.sort(key=lambda item: item[0], reverse=True)
    page = found[:limit]
    more = len(found) > limit
    return {
        "conversations": [
            {
                "conversation_id": c.conversation_id,
                "tenant_id": c.tenant_id,
                "numbers": c.numbers,
                "last_message_at": _utc(c.last_message_us),
                "messages": c.messages,
            }
            for _, c in page
        ],
        "next": encode(page[-1][0]) if more else None,
    }
