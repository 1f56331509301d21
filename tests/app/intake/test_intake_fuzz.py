"""Fuzzing the webhook intake: whatever arrives, never a 5xx, and a 4xx queues nothing.

Each example starts from an empty (fake) Redis, so "nothing queued" is simply
an empty queue, no pending entry and no tenant registered.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import fakeredis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from app import MAX_BODY_BYTES
from app.intake.loading import BadEvent, load_event
from app.intake.routes import decode_body
from core.queue import events_queue
from core.store import PARTITIONS, TENANTS_KEY, Store, pending_key
from statemachine.events import isoformat, parse_time
from tests.conftest import TENANT_TOKEN, TOKEN
from tests.kit.examples import FIELDS

FUZZ = fuzz_settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
FAST_FUZZ = fuzz_settings(FUZZ, max_examples=600)

KNOWN_KEYS = sorted({key for fields in FIELDS.values() for key in fields})
STATUSES = {202, 400, 401, 413}

# -- strategies ---------------------------------------------------------------------

# Text as a hostile sender may produce it: any Unicode, NUL and other controls,
# lone surrogates (which only JSON "\ud800" escapes can carry over the wire).
nasty_char = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.sampled_from(["\x00", "\n", "\r", "\x7f", "&", "=", "%", "+", ";", '"', "\\"]),
)
nasty_text = st.lists(nasty_char, max_size=40).map("".join)
field_value = st.one_of(
    nasty_text,
    st.sampled_from(["", "+15551234567", "5551234567", "anonymous", "t1", "t2", "*"]),
    st.integers(0, MAX_BODY_BYTES).map(lambda n: "x" * n),
)
field_key = st.one_of(st.sampled_from(KNOWN_KEYS), nasty_text)
event_type = st.one_of(
    st.sampled_from(sorted({f["eventType"] for f in FIELDS.values()})),
    st.sampled_from(["callstate.timeout", "INBOUNDCALL", "ringattempt", "faxReceived"]),
    nasty_text,
)


@st.composite
def event_like(draw: st.DrawFn) -> dict[str, Any]:
    """An example's fields with some removed, some replaced, some added."""
    fields: dict[str, Any] = dict(FIELDS[draw(st.sampled_from(sorted(FIELDS)))])
    for key in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3)):
        fields.pop(key, None)
    fields.update(draw(st.dictionaries(field_key, field_value, max_size=4)))
    if draw(st.booleans()):
        fields["eventType"] = draw(event_type)
    return fields


def form_encode(fields: dict[str, Any]) -> bytes:
    """URL-encode as a sender would; lone surrogates go out as their raw (invalid) bytes."""
    return urlencode(fields, encoding="utf-8", errors="surrogatepass").encode("ascii")


def json_encode(value: Any, ascii_only: bool) -> bytes:
    """JSON as a sender would; lone surrogates go out as \\ud800 escapes or invalid bytes."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | nasty_text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.one_of(field_key, nasty_text), children, max_size=4),
    max_leaves=12,
)
json_with_scalars = st.dictionaries(
    field_key, st.none() | st.booleans() | st.integers() | st.floats() | field_value, max_size=8
)
deep_nesting = st.builds(
    lambda opener, depth, tail: opener * depth + tail,
    st.sampled_from([b"[", b'{"a":', b'{"eventType":[', b"[{"]),
    st.integers(1, 20_000),
    st.sampled_from([b"", b"1", b"]", b"}"]),
)
form_bodies = st.one_of(
    st.dictionaries(field_key, field_value, max_size=12).map(form_encode),
    event_like().map(form_encode),
)
json_bodies = st.one_of(
    st.builds(json_encode, json_value, st.booleans()),
    st.builds(json_encode, json_with_scalars, st.booleans()),
    st.builds(json_encode, event_like(), st.booleans()),
    deep_nesting,
)
near_limit = st.builds(
    lambda fields, size, as_json: (json_encode if as_json else lambda f, _: form_encode(f))(
        {**fields, "messageText": "é" * size}, True
    ),
    event_like(),
    st.integers(MAX_BODY_BYTES // 2 - 1000, MAX_BODY_BYTES + 10),
    st.booleans(),
)
any_body = st.one_of(st.binary(max_size=3000), form_bodies, json_bodies, near_limit)
content_type = st.one_of(
    st.none(),
    st.sampled_from([
        "application/x-www-form-urlencoded",
        "application/json",
        "application/json; charset=latin-1",
        "text/plain",
        "multipart/form-data; boundary=----x",
        "multipart/form-data",
        "application/octet-stream",
        "",
    ]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)
credentials = st.sampled_from(["path", "basic", "path-guess", "basic-guess", "none"])
token = st.sampled_from([TOKEN, TENANT_TOKEN])


# -- the property -------------------------------------------------------------------


def backlog(client: fakeredis.FakeRedis) -> tuple[int, int, int]:
    """(queued jobs, pending entries of every known tenant, known tenants)."""
    tenants = [t.decode("utf-8", "surrogateescape") for t in client.smembers(TENANTS_KEY)]
    pending = sum(client.zcard(pending_key(t, p)) for t in tenants for p in range(PARTITIONS))
    return events_queue(client).count, pending, len(tenants)


def send(
    client: FlaskClient, body: bytes, content_type: str | None, how: str, token: str
) -> TestResponse:
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if how.startswith("basic"):
        password = token if how == "basic" else "tok-guess"
        headers["Authorization"] = "Basic " + base64.b64encode(
            f"primevox:{password}".encode()
        ).decode("ascii")
        url = "/webhooks/primevox"
    elif how == "none":
        url = "/webhooks/primevox"
    else:
        url = f"/webhooks/primevox/{token if how == 'path' else 'tok-guess'}"
    return client.post(url, data=body, headers=headers)


def check(
    client: FlaskClient,
    redis_client: fakeredis.FakeRedis,
    body: bytes,
    content_type: str | None,
    how: str,
    token: str,
) -> int:
    """Post once on an empty Redis and check the intake's promises; returns the status."""
    redis_client.flushall()
    response = send(client, body, content_type, how, token)
    status = response.status_code
    assert status < 500, response.get_data(as_text=True)
    assert status in STATUSES, status
    answer = response.get_json(silent=True)
    assert isinstance(answer, dict), response.get_data()
    if status >= 400:
        assert isinstance(answer.get("error"), str)
        assert answer["error"]
        assert backlog(redis_client) == (0, 0, 0)
    else:
        assert isinstance(answer.get("event_id"), str)
        assert backlog(redis_client) == (1, 1, 1)
    if how.endswith("guess") or how == "none":
        assert status != 202
    elif len(body) > MAX_BODY_BYTES:
        assert status == 413
    if status == 202 and token == TENANT_TOKEN:
        [job] = events_queue(redis_client).jobs
        assert job.args[0] == "t1"  # drain jobs name their tenant and partition
    return status


@FUZZ
@given(body=any_body, ctype=content_type, how=credentials, tok=token)
def test_any_body_never_5xx_and_4xx_queues_nothing(
    client: FlaskClient,
    redis_client: fakeredis.FakeRedis,
    body: bytes,
    ctype: str | None,
    how: str,
    tok: str,
) -> None:
    """Any body, Content-Type and credentials: never a 5xx; a 4xx is JSON and queues nothing."""
    check(client, redis_client, body, ctype, how, tok)


@FUZZ
@given(fields=event_like(), as_json=st.booleans(), ctype=content_type)
def test_mutated_events_never_5xx_and_4xx_queues_nothing(
    client: FlaskClient,
    redis_client: fakeredis.FakeRedis,
    fields: dict[str, Any],
    as_json: bool,
    ctype: str | None,
) -> None:
    """Real events with fields dropped, replaced or added: 202 or a clean 4xx, nothing between."""
    body = json_encode(fields, True) if as_json else form_encode(fields)
    check(client, redis_client, body, ctype, "path", TOKEN)


@st.composite
def example_with_new_values(draw: st.DrawFn) -> dict[str, str]:
    """A real example with some of its values replaced by arbitrary text."""
    fields = dict(FIELDS[draw(st.sampled_from(sorted(FIELDS)))])
    keys = draw(st.lists(st.sampled_from(sorted(fields)), max_size=4, unique=True))
    fields.update({key: draw(field_value) for key in keys})
    return fields


@FUZZ
@given(fields=example_with_new_values())
def test_accepted_fields_are_queued_exactly_as_sent(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, fields: dict[str, str]
) -> None:
    """Whenever an event is accepted, the queued envelope holds the fields exactly as sent."""
    body = json_encode(fields, True)
    if check(client, redis_client, body, "application/json", "path", TOKEN) == 202:
        store = Store(redis_client)
        [tenant] = store.tenants.all()
        [(_, envelope)] = store.pending.pending_events(tenant)
        # As sent on the wire: an escaped surrogate *pair* is one character.
        assert envelope["fields"] == json.loads(body)


# -- the same promises one level down, many more examples ---------------------------


@FAST_FUZZ
@given(body=st.one_of(any_body, st.binary(max_size=200)))
def test_decode_body_returns_text_fields_or_bad_event(body: bytes) -> None:
    """decode_body gives a flat dict of valid-Unicode text, or raises BadEvent, nothing else."""
    try:
        fields = decode_body(body)
    except BadEvent as exc:
        assert exc.message
        return
    for key, value in fields.items():
        assert isinstance(key, str)
        assert isinstance(value, str)
        key.encode("utf-8")
        value.encode("utf-8")


@FAST_FUZZ
@given(fields=st.one_of(event_like(), st.dictionaries(field_key, field_value, max_size=10)))
def test_load_event_returns_event_or_bad_event(fields: dict[str, Any]) -> None:
    """load_event on text fields gives a typed event of the body's tenant, or raises BadEvent."""
    text_fields = {k: v for k, v in fields.items() if isinstance(v, str)}
    at = parse_time("2025-11-25T09:41:00.000000Z")
    try:
        _, event = load_event(text_fields, at)
    except BadEvent as exc:
        assert exc.message
        return
    tenant = text_fields.get("tenantId", text_fields.get("tenantID"))
    assert event.tenant_id == tenant
    assert isoformat(event.received_at) == isoformat(at)
