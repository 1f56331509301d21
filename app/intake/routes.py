"""Webhook intake: PrimeVOX posts here; we answer 202 once the event is queued.

The PBX cannot sign requests or add headers, so the token in the URL (or the
password of HTTP Basic auth, for senders that put credentials in the URL) is
the only credential. Bodies may be JSON or URL-encoded whatever Content-Type
says: the first non-blank byte decides.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import redis
from flask import Response, current_app, jsonify, request

from app.intake.answers import INTAKE_DESCRIPTION, documented_intake, dump_accepted
from app.intake.event_schemas import LINES_CHARACTERS, TEXT_CHARACTERS
from app.intake.loading import BadEvent, load_event
from app.ops.metrics import EVENTS_RECEIVED, EVENTS_REJECTED
from app.web.auth import ALL_TENANTS, may_access
from app.web.errors import unavailable_answer
from app.web.resources import Resources, get_resources
from app.web.rest import ApiBlueprint, path_param
from core.queue import enqueue_event
from core.settings import Settings
from core.store import CredentialKind
from statemachine.event_log import to_record
from statemachine.events import CallEvent, MessageEvent
from statemachine.primevox import EVENTS

bp = ApiBlueprint("intake", __name__)
# The app's own logger (Flask names it after the import name, "app").
log = logging.getLogger("app")
MAX_FIELDS = 200
# Fields that name things (every spelling the PBX uses).
IDENTIFIERS = frozenset(
    {
        "eventType",
        "tenantId",
        "tenantID",
        "callUuid",
        "containerId",
        "containerID",
        "conversationId",
        "conversationID",
    }
)


def decode_body(body: bytes) -> dict[str, Any]:
    """Turn a body into a flat dict of fields. Raises BadEvent.

    Form values that are not UTF-8 are read as Latin-1, which maps every byte
    to a character: an odd carrier encoding costs accents, never the event.
    Identifiers (the event type, tenant, call, container, conversation) are
    not guessed that way: in such a body they must be plain ASCII, or the
    event would be filed under a name the PBX never meant.
    """
    stripped = body.lstrip()
    if not stripped:
        raise BadEvent("not an event: the body is empty")
    if stripped[:1] in (b"{", b"["):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise BadEvent(f"body looks like JSON but does not parse: {exc}") from exc
        if not isinstance(data, dict):
            raise BadEvent("JSON body must be an object")
        return _scalars(data)
    try:
        text = body.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        text, encoding = body.decode("latin-1"), "latin-1"
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding=encoding,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        encoding = "latin-1"  # percent-escapes that are not UTF-8
        pairs = parse_qsl(
            text, keep_blank_values=True, encoding="latin-1", max_num_fields=MAX_FIELDS
        )
    except ValueError as exc:
        raise BadEvent(f"form body has more than {MAX_FIELDS} fields") from exc
    fields: dict[str, Any] = {}
    for key, value in pairs:
        fields.setdefault(key, value)  # a repeated key: the first one counts
    if encoding != "utf-8":
        for key in IDENTIFIERS.intersection(fields):
            if not fields[key].isascii():
                raise BadEvent(f"{key} is not valid UTF-8")
        if not all(key.isascii() for key in fields):
            # Binary data (a gzip, an image) lands here: say what it is not.
            raise BadEvent(
                "not an event: the body is neither a form nor a JSON object "
                "(its field names are not valid UTF-8: binary data?)"
            )
    return _scalars(fields)


def _scalars(data: dict[str, Any]) -> dict[str, Any]:
    """Check every value is text we can store; numbers and booleans become text."""
    if len(data) > MAX_FIELDS:
        raise BadEvent(f"body has more than {MAX_FIELDS} fields")
    if _plain_text(data):
        return dict(data)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        elif value is None:
            value = ""
        elif not isinstance(value, str):
            raise BadEvent(f"field {key!r} must be text, not {type(value).__name__}")
        for text in (key, value):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate, from a JSON escape
                raise BadEvent(f"field {key[:50]!r} is not valid Unicode") from exc
        # Every field is kept as sent, read or not: a NUL in any of them would stop
        # the history archive (PostgreSQL refuses it), and other control characters
        # break log lines and CSV rows. Tab and line breaks are free text's (an SMS);
        # a field the event reads is held to its own declaration after this.
        if TEXT_CHARACTERS.refused.search(key):
            raise BadEvent(f"field {key[:50]!r}: its name {TEXT_CHARACTERS.message}")
        if LINES_CHARACTERS.refused.search(value):
            raise BadEvent(f"field {key[:50]!r} {LINES_CHARACTERS.message}")
        out[key] = value
    return out


def _plain_text(data: dict[str, Any]) -> bool:
    """Whether every value is already text and nothing in any key or value is
    refused: then ``_scalars`` keeps the fields as they are. Checked over all the
    fields at once (a webhook has dozens); anything else goes through the
    field-by-field checks, which say what is wrong."""
    try:
        values = "\t".join(data.values())  # a tab is free text's: refused nowhere
    except TypeError:  # a number, a boolean, null, a list...
        return False
    keys = "".join(data)
    if TEXT_CHARACTERS.refused.search(keys) or LINES_CHARACTERS.refused.search(values):
        return False
    try:
        keys.encode("utf-8")
        values.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a JSON escape
        return False
    return True


def _token(path_token: str | None) -> str | None:
    if path_token:
        return path_token
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        return auth.password or None
    return None


@bp.operation(
    "POST",
    "/webhooks/primevox/<token>",
    "receiveWebhook",
    path_params=[
        path_param(
            "token",
            "a webhook token from WEBHOOK_TOKENS; it may post only its tenant's events",
            "whk_0123456789abcdef",
        )
    ],
    **documented_intake(
        summary="Receive one PrimeVOX event (token in the URL)",
        description=INTAKE_DESCRIPTION,
    ),
)
def receive(token: str) -> tuple[Response, int]:
    """Accept one PrimeVOX event (app/intake/fast_path.py answers it before Flask does)."""
    return _receive(token)


@bp.operation(
    "POST",
    "/webhooks/primevox",
    "receiveWebhookBasicAuth",
    **documented_intake(
        summary="Receive one PrimeVOX event (token as the Basic-auth password)",
        description=INTAKE_DESCRIPTION
        + " For senders that put credentials in the URL (https://user:<token>@host/…).",
        security=[{"webhookBasic": []}],
    ),
)
def receive_basic_auth() -> tuple[Response, int]:
    """Accept one PrimeVOX event, the token as the Basic-auth password."""
    return _receive(None)


def _receive(token: str | None) -> tuple[Response, int]:
    status, answer, headers = accept_webhook(
        current_app.config["CALLSTATE_SETTINGS"],
        get_resources(),
        _token(token),
        lambda: request.get_data(cache=False),
    )
    response = jsonify(answer)
    response.headers.update(headers)
    return response, status


NO_HEADERS: dict[str, str] = {}


def accept_webhook(
    settings: Settings, resources: Resources, token: str | None, read_body: Callable[[], bytes]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Accept one PrimeVOX event: (status, JSON answer, extra headers). The body is
    read only once the token is known (``read_body`` may raise 413 for a body too large)."""
    try:
        credential = resources.credentials.find(token, CredentialKind.WEBHOOK_TOKEN)
    except redis.RedisError as exc:
        EVENTS_REJECTED.labels("unavailable").inc()
        log.warning("could not read the credentials: %s", type(exc).__name__)
        return 503, *unavailable_answer(exc, "event store unavailable, retry later")
    if credential is None:
        EVENTS_REJECTED.labels("unauthorized").inc()
        return 401, {"error": "unknown webhook token"}, NO_HEADERS
    received_at = datetime.now(UTC)
    body = read_body()
    try:
        fields_as_sent = decode_body(body)
        event_type, event = load_event(fields_as_sent, received_at)
    except BadEvent as exc:
        EVENTS_REJECTED.labels("invalid").inc()
        return 400, {"error": exc.message, **exc.details}, NO_HEADERS
    if not may_access(credential.tenant_id, event.tenant_id) or (
        credential.tenant_id == ALL_TENANTS
        and resources.credentials.tenant_disabled(event.tenant_id)
    ):
        EVENTS_REJECTED.labels("wrong_tenant").inc()
        return 401, {"error": "this webhook token may not post events of that tenant"}, NO_HEADERS
    # The rate is taken once the body is judged an event this token may post: a
    # refused body writes nothing to Redis, not even a bucket.
    if settings.webhook_rate_limit > 0 and token:
        try:
            wait = resources.store.rate_limit.take(
                token, settings.webhook_rate_limit, settings.webhook_burst
            )
        except redis.RedisError as exc:
            EVENTS_REJECTED.labels("unavailable").inc()
            log.warning("could not check the rate limit: %s", type(exc).__name__)
            return 503, *unavailable_answer(exc, "event store unavailable, retry later")
        if wait > 0:
            EVENTS_REJECTED.labels("rate_limited").inc()
            return (
                429,
                {"error": f"over {settings.webhook_rate_limit:g} events a second for this token"},
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
    envelope = to_record(event, fields_as_sent, event_type)
    try:
        enqueue_event(resources.store, resources.queue, envelope)
    except redis.RedisError as exc:
        EVENTS_REJECTED.labels("unavailable").inc()
        log.warning("could not queue an event: %s", type(exc).__name__)
        return 503, *unavailable_answer(exc, "event store unavailable, retry later")
    EVENTS_RECEIVED.labels(event_type if event_type in _KNOWN else "unknown").inc()
    answer: dict[str, Any] = {
        "status": "accepted",
        "event_id": envelope["id"],
        "event_type": event_type,
        "received_at": envelope["received_at"],
    }
    if isinstance(event, CallEvent):
        answer["call_uuid"] = event.call_uuid
    elif isinstance(event, MessageEvent):
        answer["conversation_id"] = event.conversation_id
    return 202, dump_accepted(answer), NO_HEADERS


_KNOWN = set(EVENTS.known_types)
