"""The webhook intake over HTTP: POST /webhooks/primevox[/<token>] as CONTRACT.md says."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from typing import Any

import fakeredis
import pytest
import redis
from flask.testing import FlaskClient
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.test import TestResponse

from app import MAX_BODY_BYTES, create_app
from core.queue import events_queue
from core.settings import Settings
from core.store import PARTITIONS, TENANTS_KEY, Store, pending_key
from tests.conftest import API_KEY, TENANT_KEY, TENANT_TOKEN, TOKEN
from tests.kit.examples import (
    ANSWERED_CALL,
    CALL_UUID,
    CONTENT_TYPES,
    CONVERSATION_ID,
    EXAMPLES,
    FIELDS,
    FORM,
    JSON,
    MESSAGE_EXAMPLES,
    body_for,
    call_bodies,
    fields_for,
    form_body,
    json_body,
)

FORM_TYPE = CONTENT_TYPES[FORM]
JSON_TYPE = CONTENT_TYPES[JSON]
EVENT_ID_LENGTH = 32
Drain = Callable[[], None]


# -- helpers ----------------------------------------------------------------------


def post(
    client: FlaskClient,
    body: str | bytes,
    *,
    token: str | None = TOKEN,
    content_type: str | None = FORM_TYPE,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    url = "/webhooks/primevox" if token is None else f"/webhooks/primevox/{token}"
    data = body.encode("utf-8") if isinstance(body, str) else body
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    return client.post(url, data=data, headers=all_headers)


def post_example(client: FlaskClient, name: str, **changes: str) -> TestResponse:
    content_type, body = body_for(name, **changes)
    return post(client, body, content_type=content_type)


def read(client: FlaskClient, path: str, key: str = API_KEY) -> TestResponse:
    return client.get(path, headers={"Authorization": f"Bearer {key}"})


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {encoded}"}


def accepted(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 202, response.get_data(as_text=True)
    answer = response.get_json()
    assert isinstance(answer, dict)
    assert answer["status"] == "accepted"
    assert isinstance(answer["event_id"], str)
    assert len(answer["event_id"]) == EVENT_ID_LENGTH
    return answer


def refused(response: TestResponse, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    answer = response.get_json()
    assert isinstance(answer, dict)
    assert isinstance(answer["error"], str)
    assert answer["error"]
    return answer["error"]


def queued_envelopes(client: redis.Redis) -> list[dict[str, Any]]:
    """Every accepted, not yet applied event (all known tenants), in received order."""
    store = Store(client)
    found = [
        envelope for t in store.tenants.all() for _, envelope in store.pending.pending_events(t)
    ]
    return sorted(found, key=lambda e: e["received_at"])


def pending_members(client: redis.Redis, tenant: str) -> list[str]:
    return [field for field, _ in Store(client).pending.pending_events(tenant)]


def backlog(client: redis.Redis, tenants: Iterable[str] = ("t1", "t2")) -> tuple[int, int]:
    """(drain jobs on the events queue, pending entries over the given and all known tenants)."""
    known = {m.decode("utf-8") for m in client.smembers(TENANTS_KEY)}
    pending = sum(
        client.zcard(pending_key(t, p)) for t in {*tenants, *known} for p in range(PARTITIONS)
    )
    return events_queue(client).count, pending


# -- accepted -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_is_accepted_queued_and_pending(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, name: str
) -> None:
    """Every PrimeVOX example gets 202 with an event_id, one queued job and one pending entry."""
    encoding, body = EXAMPLES[name]
    answer = accepted(post(client, body, content_type=CONTENT_TYPES[encoding]))
    assert answer["event_type"] == FIELDS[name]["eventType"]
    if encoding == JSON:
        assert answer["conversation_id"] == CONVERSATION_ID
    else:
        assert answer["call_uuid"] == FIELDS[name]["callUuid"]
    envelopes = queued_envelopes(redis_client)
    assert len(envelopes) == 1
    assert envelopes[0]["id"] == answer["event_id"]
    assert envelopes[0]["fields"] == FIELDS[name]
    assert envelopes[0]["received_at"] == answer["received_at"]
    members = pending_members(redis_client, "t1")
    assert len(members) == 1
    assert members[0].startswith(f"{answer['event_id']}@")


CROSSED_TYPES = [
    ("HangupCall", JSON_TYPE),
    ("HangupCall", "text/plain"),
    ("HangupCall", "multipart/form-data; boundary=xyz"),
    ("HangupCall", None),
    ("ExtensionAnswered", "application/json; charset=utf-8"),
    ("inboundMessage", "text/plain"),
    ("inboundMessage", FORM_TYPE),
    ("inboundMessage", "application/octet-stream"),
    ("outboundMessage", None),
]


@pytest.mark.parametrize(("name", "content_type"), CROSSED_TYPES)
def test_body_decides_not_content_type(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, name: str, content_type: str | None
) -> None:
    """A form body labelled JSON and a JSON body labelled text or form are both read right."""
    _, body = EXAMPLES[name]
    answer = accepted(post(client, body, content_type=content_type))
    [envelope] = queued_envelopes(redis_client)
    assert envelope["id"] == answer["event_id"]
    assert envelope["fields"] == FIELDS[name]


@pytest.mark.parametrize("name", ["HangupCall", "inboundMessage"])
def test_same_event_in_either_encoding(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, name: str
) -> None:
    """An event sent as JSON or as a form is the same event (same fields, same id)."""
    as_form = accepted(post(client, form_body(name), content_type=FORM_TYPE))
    as_json = accepted(post(client, json_body(name), content_type=JSON_TYPE))
    assert as_form["event_id"] == as_json["event_id"]
    assert [e["fields"] for e in queued_envelopes(redis_client)] == [FIELDS[name]] * 2


@pytest.mark.parametrize(("user", "token"), [("primevox", TOKEN), ("", TOKEN), ("x", TENANT_TOKEN)])
def test_basic_auth_password_is_the_token(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, user: str, token: str
) -> None:
    """POST /webhooks/primevox with the token as HTTP Basic password is accepted."""
    _, body = EXAMPLES["HangupCall"]
    accepted(post(client, body, token=None, headers=basic(user, token)))
    assert backlog(redis_client) == (1, 1)


def test_form_values_that_are_not_utf8_are_read_as_latin1(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """A form body in Latin-1 (raw or percent-encoded) is kept, accents and all."""
    raw = b"eventType=HangupCall&tenantId=t1&callUuid=c-l1&callerIdName=Jos\xe9+N\xfa\xf1ez"
    escaped = b"eventType=HangupCall&tenantId=t1&callUuid=c-l2&callerIdName=Jos%E9"
    accepted(post(client, raw))
    accepted(post(client, escaped))
    names = [e["fields"]["callerIdName"] for e in queued_envelopes(redis_client)]
    assert names == ["José Núñez", "José"]


def test_json_scalars_are_kept_as_text(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """JSON numbers, booleans and null are accepted and stored as text."""
    body = json.dumps({"eventType": "HangupCall", "tenantId": "t1", "callUuid": 42,
                       "extNumber": 101, "extName": None, "recorded": True, "cost": 0.5})
    answer = accepted(post(client, body, content_type=JSON_TYPE))
    assert answer["call_uuid"] == "42"
    [envelope] = queued_envelopes(redis_client)
    assert envelope["fields"] == {"eventType": "HangupCall", "tenantId": "t1", "callUuid": "42",
                                  "extNumber": "101", "extName": "", "recorded": "true",
                                  "cost": "0.5"}


def test_tenant_token_may_post_its_own_tenant(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """A token bound to tenant t1 may post t1's calls and messages."""
    for name in ("HangupCall", "inboundMessage"):
        content_type, body = body_for(name)
        accepted(post(client, body, token=TENANT_TOKEN, content_type=content_type))
    assert backlog(redis_client) == (2, 2)


def test_unknown_event_type_with_call_uuid_is_accepted(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """An eventType we do not know, with a callUuid, gets 202 and is queued as sent."""
    answer = accepted(post(client, form_body("HangupCall", eventType="callParked")))
    assert answer["event_type"] == "callParked"
    assert answer["call_uuid"] == CALL_UUID
    [envelope] = queued_envelopes(redis_client)
    assert envelope["fields"]["eventType"] == "callParked"
    assert backlog(redis_client) == (1, 1)


def test_unknown_event_type_without_call_uuid_is_accepted(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """An unknown eventType with a tenant but no callUuid is still recognisable: 202, kept."""
    body = "eventType=faxReceived&tenantId=t1&containerId=c-4711&pages=3"
    answer = accepted(post(client, body))
    assert answer["event_type"] == "faxReceived"
    assert backlog(redis_client) == (1, 1)


def test_body_of_exactly_64_kib_is_accepted(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """A body of exactly 64 KiB (an MMS with an attachment) is not too large."""
    base = fields_for("inboundMessage", messageText="")
    padding = MAX_BODY_BYTES - len(json.dumps(base).encode("utf-8"))
    body = json.dumps({**base, "messageText": "A" * padding})
    assert len(body.encode("utf-8")) == MAX_BODY_BYTES
    accepted(post(client, body, content_type=JSON_TYPE))
    assert backlog(redis_client) == (1, 1)


# -- refused: nothing queued --------------------------------------------------------

HANGUP = dict(FIELDS["HangupCall"])
BAD_BODIES: list[tuple[str, bytes, str | None, int]] = [
    ("empty", b"", FORM_TYPE, 400),
    ("blank", b"  \r\n\t ", FORM_TYPE, 400),
    ("garbage bytes", b"\x00\xff\xfe\x80garbage\x1b[0m", "application/octet-stream", 400),
    ("plain text", b"hello, is this the webhook?", "text/plain", 400),
    ("json array", json.dumps([HANGUP]).encode(), JSON_TYPE, 400),
    ("json string", b'"eventType=HangupCall"', JSON_TYPE, 400),
    ("json number", b"42", JSON_TYPE, 400),
    ("json null", b"null", JSON_TYPE, 400),
    ("broken json", json.dumps(HANGUP).encode()[:-7], JSON_TYPE, 400),
    ("json nested object", json.dumps({**HANGUP, "extName": {"first": "Zoë"}}).encode(),
     JSON_TYPE, 400),
    ("json list value", json.dumps({**HANGUP, "extNumber": ["101", "102"]}).encode(),
     JSON_TYPE, 400),
    ("deeply nested json array", b"[" * 60_000, JSON_TYPE, 400),
    ("deeply nested json object", b'{"eventType":' * 5_000, JSON_TYPE, 400),
    ("json lone surrogate", json.dumps(HANGUP).replace("Zo", "\\ud800Zo").encode(),
     JSON_TYPE, 400),
    ("form no eventType", form_body("HangupCall", eventType="").encode(), FORM_TYPE, 400),
    ("form without eventType",
     "&".join(p for p in form_body("HangupCall").split("&") if not p.startswith("eventType="))
     .encode(), FORM_TYPE, 400),
    ("form no callUuid",
     "&".join(p for p in form_body("HangupCall").split("&") if not p.startswith("callUuid="))
     .encode(), FORM_TYPE, 400),
    ("form empty callUuid", form_body("HangupCall", call_uuid="").encode(), FORM_TYPE, 400),
    ("form no tenant",
     "&".join(p for p in form_body("HangupCall").split("&") if not p.startswith("tenantId="))
     .encode(), FORM_TYPE, 400),
    ("json message no tenant",
     json.dumps({k: v for k, v in FIELDS["inboundMessage"].items() if k != "tenantID"}).encode(),
     JSON_TYPE, 400),
    ("control char in callUuid", form_body("HangupCall", call_uuid="abc\x00def").encode(),
     FORM_TYPE, 400),
    ("overlong tenant", form_body("HangupCall", tenant_id="t" * 201).encode(), FORM_TYPE, 400),
    ("reserved eventType", form_body("HangupCall", eventType="callstate.timeout").encode(),
     FORM_TYPE, 400),
    ("too many fields", "&".join(f"f{i}=v" for i in range(500)).encode() + b"&eventType=x",
     FORM_TYPE, 400),
    ("over 64 KiB", (form_body("HangupCall") + "&pad=" + "x" * MAX_BODY_BYTES).encode(),
     FORM_TYPE, 413),
]


def test_a_binary_body_is_told_it_is_not_a_form_or_json(client: FlaskClient) -> None:
    """Binary data is not called empty, nor anything else it is not."""
    answer = post(client, b"\x00\xff\xfe\x80\x1b[0m", content_type="application/octet-stream")
    assert answer.status_code == 400
    assert "neither a form nor a JSON object" in answer.get_json()["error"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_bad_body_is_refused_and_nothing_queued(
    client: FlaskClient,
    redis_client: fakeredis.FakeRedis,
    body: bytes,
    content_type: str | None,
    status: int,
) -> None:
    """Each body that is not an event gets its contract status, a JSON error, and nothing queued."""
    refused(post(client, body, content_type=content_type), status)
    assert backlog(redis_client) == (0, 0)
    assert not redis_client.exists(TENANTS_KEY)


def test_refusal_says_which_field(client: FlaskClient) -> None:
    """A 400 for a missing field names the field, so the PBX admin can fix the webhook."""
    body = "&".join(p for p in form_body("HangupCall").split("&") if not p.startswith("tenantId="))
    assert "tenantId" in refused(post(client, body), 400)


BAD_CREDENTIALS: list[tuple[str, str | None, dict[str, str], str]] = [
    ("unknown token", "tok-guess", {}, "HangupCall"),
    ("empty-ish token", " ", {}, "HangupCall"),
    ("no token at all", None, {}, "HangupCall"),
    ("unknown basic password", None, basic("primevox", "tok-guess"), "HangupCall"),
    ("basic without password", None, basic(TOKEN, ""), "HangupCall"),
    ("broken basic header", None, {"Authorization": "Basic %%%not-base64"}, "HangupCall"),
    ("bearer is not basic", None, {"Authorization": f"Bearer {TOKEN}"}, "HangupCall"),
]


@pytest.mark.parametrize(
    ("token", "headers", "name"),
    [case[1:] for case in BAD_CREDENTIALS],
    ids=[case[0] for case in BAD_CREDENTIALS],
)
def test_unknown_token_is_refused_and_nothing_queued(
    client: FlaskClient,
    redis_client: fakeredis.FakeRedis,
    token: str | None,
    headers: dict[str, str],
    name: str,
) -> None:
    """A missing or unknown token (in the path or as Basic password) gets 401, nothing queued."""
    _, body = EXAMPLES[name]
    refused(post(client, body, token=token, headers=headers), 401)
    assert backlog(redis_client) == (0, 0)


@pytest.mark.parametrize("name", ["HangupCall", "ExtensionAnswered", "inboundMessage"])
@pytest.mark.parametrize("auth", ["path", "basic"])
def test_tenant_token_cannot_post_another_tenants_event(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, name: str, auth: str
) -> None:
    """A token bound to t1 posting an event of tenant t2 gets 401, nothing queued."""
    content_type, body = body_for(name, tenant_id="t2")
    if auth == "path":
        response = post(client, body, token=TENANT_TOKEN, content_type=content_type)
    else:
        response = post(client, body, token=None, content_type=content_type,
                        headers=basic("primevox", TENANT_TOKEN))
    refused(response, 401)
    assert backlog(redis_client) == (0, 0)


def test_tenant_token_cannot_post_tenant_star(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """A tenant-bound token cannot smuggle an event in by naming tenant "*"."""
    refused(post(client, form_body("HangupCall", tenant_id="*"), token=TENANT_TOKEN), 401)
    assert backlog(redis_client, ("*",)) == (0, 0)


def test_redis_unavailable_is_503(settings: Settings) -> None:
    """When Redis cannot take the event the sender gets 503 (so it retries) and a JSON error."""
    down = redis.Redis(port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    app = create_app({"TESTING": True, "REDIS_CLIENT": down, "CALLSTATE_SETTINGS": settings})
    client = app.test_client()
    for name in ("HangupCall", "inboundMessage"):
        content_type, body = body_for(name)
        response = post(client, body, content_type=content_type)
        refused(response, 503)
        assert TOKEN not in response.get_data(as_text=True)


def test_get_on_webhook_is_405_json(client: FlaskClient) -> None:
    """Only POST is served on the webhook URL; anything else is a JSON 405."""
    refused(client.get(f"/webhooks/primevox/{TOKEN}"), 405)


# -- read back after the worker -----------------------------------------------------


def test_events_read_back_in_received_order_with_fields_as_sent(
    client: FlaskClient, drain: Drain
) -> None:
    """After the worker ran, GET /v1/calls/<uuid> lists the events as received, fields as sent."""
    uuid = "c0ffee00-1234-4abc-9def-000000000001"
    answers = [accepted(post(client, body)) for _, body in call_bodies(uuid)]
    drain()
    response = read(client, f"/v1/calls/{uuid}")
    assert response.status_code == 200
    call = response.get_json()
    assert call["call_uuid"] == uuid
    assert call["tenant_id"] == "t1"
    sent_types = [FIELDS[name]["eventType"] for name in ANSWERED_CALL]
    assert [e["event_type"] for e in call["events"]] == sent_types
    assert [e["received_at"] for e in call["events"]] == [a["received_at"] for a in answers]
    assert [e["fields"] for e in call["events"]] == [
        fields_for(name, call_uuid=uuid) for name in ANSWERED_CALL
    ]


def test_json_numbers_read_back_as_text(client: FlaskClient, drain: Drain) -> None:
    """A JSON call event's fields are read back as the text that was stored."""
    body = json.dumps({"eventType": "InboundCall", "tenantID": "t1", "callUuid": "c-num",
                       "didNumber": 15551234567})
    accepted(post(client, body, content_type=JSON_TYPE))
    drain()
    [event] = read(client, "/v1/calls/c-num").get_json()["events"]
    assert event["fields"] == {"eventType": "InboundCall", "tenantID": "t1", "callUuid": "c-num",
                               "didNumber": "15551234567"}


def test_duplicate_delivery_is_stored_once_and_changes_nothing(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, drain: Drain
) -> None:
    """The same event posted again (a sender's retry) gets the same id and changes nothing."""
    uuid = "dup-0001"
    first = accepted(post(client, form_body("InboundCall", call_uuid=uuid)))
    again = accepted(post(client, form_body("InboundCall", call_uuid=uuid)))
    assert again["event_id"] == first["event_id"]
    drain()
    once = read(client, f"/v1/calls/{uuid}").get_json()
    assert len(once["events"]) == 1
    assert once["events"][0]["received_at"] == first["received_at"]
    accepted(post(client, form_body("InboundCall", call_uuid=uuid)))
    drain()
    assert read(client, f"/v1/calls/{uuid}").get_json() == once
    assert backlog(redis_client) == (0, 0)


def test_unknown_event_type_is_kept_without_changing_the_call(
    client: FlaskClient, drain: Drain
) -> None:
    """An unknown eventType lands in the call's log and leaves its state as it was."""
    uuid = "unk-0001"
    accepted(post(client, form_body("InboundCall", call_uuid=uuid)))
    drain()
    before = read(client, f"/v1/calls/{uuid}").get_json()
    accepted(post(client, form_body("HangupCall", call_uuid=uuid, eventType="callParked")))
    drain()
    after = read(client, f"/v1/calls/{uuid}").get_json()
    assert [e["event_type"] for e in after["events"]] == ["InboundCall", "callParked"]
    assert after["state"] == before["state"] == "new"
    assert after["ended_at"] is None


def test_tenant_key_cannot_read_another_tenants_call(client: FlaskClient, drain: Drain) -> None:
    """A key bound to t1 gets 404 for a t2 call (as if unknown); the admin key reads it."""
    accepted(post(client, form_body("InboundCall", call_uuid="t2-call", tenant_id="t2")))
    accepted(post(client, form_body("InboundCall", call_uuid="t1-call", tenant_id="t1")))
    drain()
    refused(read(client, "/v1/calls/t2-call", TENANT_KEY), 404)
    assert read(client, "/v1/calls/t2-call", API_KEY).get_json()["tenant_id"] == "t2"
    assert read(client, "/v1/calls/t1-call", TENANT_KEY).get_json()["tenant_id"] == "t1"
    refused(read(client, "/v1/calls/no-such-call", API_KEY), 404)


def test_sms_is_readable_as_a_conversation(client: FlaskClient, drain: Drain) -> None:
    """Inbound and outbound messages read back at /v1/conversations/<id>/messages, oldest first."""
    answers = [accepted(post_example(client, name)) for name in MESSAGE_EXAMPLES]
    drain()
    response = read(client, f"/v1/conversations/{CONVERSATION_ID}/messages")
    assert response.status_code == 200
    messages = response.get_json()["messages"]
    assert [m["direction"] for m in messages] == ["inbound", "outbound"]
    for message, name, answer in zip(messages, MESSAGE_EXAMPLES, answers, strict=True):
        sent = FIELDS[name]
        assert message["from"] == sent["fromNumber"]
        assert message["to"] == sent["toNumber"]
        assert message["text"] == sent["messageText"]
        assert message["received_at"] == answer["received_at"]
    refused(read(client, f"/v1/conversations/{CONVERSATION_ID}/messages", "key-guess"), 401)


def test_tenant_key_cannot_read_another_tenants_conversation(
    client: FlaskClient, drain: Drain
) -> None:
    """A key bound to t1 gets 404 for a conversation of t2."""
    accepted(post_example(client, "inboundMessage", tenant_id="t2"))
    drain()
    refused(read(client, f"/v1/conversations/{CONVERSATION_ID}/messages", TENANT_KEY), 404)
    assert read(client, f"/v1/conversations/{CONVERSATION_ID}/messages").status_code == 200


def test_responses_never_echo_the_token(client: FlaskClient) -> None:
    """No intake answer (accepted, refused, too large, wrong tenant) contains a token."""
    guess = "tok-secret-guess-123"
    responses = [
        post(client, EXAMPLES["HangupCall"][1]),
        post(client, EXAMPLES["HangupCall"][1], token=None, headers=basic("pv", TOKEN)),
        post(client, b"garbage"),
        post(client, form_body("HangupCall", tenant_id="t2"), token=TENANT_TOKEN),
        post(client, EXAMPLES["HangupCall"][1], token=guess),
        post(client, EXAMPLES["HangupCall"][1], token=None, headers=basic("pv", guess)),
        post(client, b"x" * (MAX_BODY_BYTES + 1)),
        client.get(f"/webhooks/primevox/{TOKEN}"),
        client.post(f"/webhooks/primevox/{TOKEN}/extra", data=b"x"),
    ]
    for response in responses:
        text = response.get_data(as_text=True) + str(response.headers)
        for secret in (TOKEN, TENANT_TOKEN, guess):
            assert secret not in text, (response.status_code, text)
