"""Hostile input at the edges: each gets a clear 4xx, never a 5xx, and nothing is stored.

- a body of 64 KiB full of fields; JSON nested thousands deep; invalid UTF-8
  in every field; a huge ``Last-Event-ID`` on the SSE endpoints;
- a burst of thousands of distinct calls from one token, with the per-token
  rate limit tight (429 + Retry-After) and at its default (every event taken).
"""

from __future__ import annotations

import math
import time
from urllib.parse import urlencode

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import MAX_BODY_BYTES, create_app
from core.settings import Settings
from core.store import PARTITIONS, pending_key
from tests.conftest import API_KEY, TENANT_TOKEN, TOKEN

FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
LIVE_STREAM = "/v1/calls/live/stream"
OUTCOME_STREAM = "/v1/outcomes/stream"


def post(
    client: FlaskClient, body: bytes, content_type: str = FORM_TYPE, token: str = TOKEN
) -> TestResponse:
    return client.post(
        f"/webhooks/primevox/{token}", data=body, headers={"Content-Type": content_type}
    )


def clear_4xx(answer: TestResponse) -> str:
    """The answer is a 4xx with a JSON error saying what was wrong; returns it."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.get_data(as_text=True))
    assert answer.mimetype == "application/json"
    error = answer.get_json()["error"]
    assert isinstance(error, str) and error
    return error


def hangup(call_uuid: str, tenant: str = "t1") -> dict[str, str]:
    return {"eventType": "HangupCall", "tenantId": tenant, "callUuid": call_uuid}


def queued(redis_client: fakeredis.FakeRedis, tenant: str = "t1") -> int:
    return sum(int(redis_client.zcard(pending_key(tenant, p))) for p in range(PARTITIONS))


# -- bodies -------------------------------------------------------------------------


def _fill(prefix: bytes, item: bytes, suffix: bytes = b"") -> bytes:
    """``prefix`` + as many ``item``s as fit in 64 KiB + ``suffix``."""
    room = MAX_BODY_BYTES - len(prefix) - len(suffix)
    return prefix + item * (room // len(item)) + suffix


FIELDS_FORM = _fill(b"eventType=HangupCall&tenantId=t1&callUuid=c1", b"&f=1")
FIELDS_JSON = (
    b'{"eventType":"HangupCall","tenantId":"t1","callUuid":"c1",'
    + b",".join(b'"k%05d":"v"' % n for n in range(5000))
    + b"}"
)
DEEP_JSON = b"[" * (MAX_BODY_BYTES // 2) + b"]" * (MAX_BODY_BYTES // 2)
DEEP_OBJECT = b'{"eventType":"HangupCall","tenantId":"t1","callUuid":"c1","x":' + (
    b'{"a":' * 10000 + b"1" + b"}" * 10000 + b"}"
)
BAD_UTF8 = b"\xff\xfe\xc3("  # never valid UTF-8
BAD_UTF8_FORM = b"&".join(
    b"%s=%s" % (key.encode(), BAD_UTF8 + value.encode()) for key, value in hangup("c1").items()
)
BAD_UTF8_ESCAPED_FORM = b"&".join(
    b"%s=%%FF%%FE%s" % (key.encode(), value.encode()) for key, value in hangup("c1").items()
)
BAD_UTF8_KEYS_FORM = b"&".join(
    b"%s%s=%s" % (key.encode(), BAD_UTF8, value.encode()) for key, value in hangup("c1").items()
)
BAD_UTF8_JSON = (
    b"{"
    + b",".join(
        b'"%s":"%s%s"' % (key.encode(), BAD_UTF8, value.encode())
        for key, value in hangup("c1").items()
    )
    + b"}"
)

HOSTILE_BODIES = {
    "64 KiB of form fields": (FIELDS_FORM, FORM_TYPE),
    "thousands of JSON fields": (FIELDS_JSON, JSON_TYPE),
    "JSON arrays nested 32k deep": (DEEP_JSON, JSON_TYPE),
    "a JSON value nested 10k deep": (DEEP_OBJECT, JSON_TYPE),
    "invalid UTF-8 in every form value": (BAD_UTF8_FORM, FORM_TYPE),
    "percent-escaped invalid UTF-8 in every form value": (BAD_UTF8_ESCAPED_FORM, FORM_TYPE),
    "invalid UTF-8 in every form field name": (BAD_UTF8_KEYS_FORM, FORM_TYPE),
    "invalid UTF-8 in every JSON value": (BAD_UTF8_JSON, JSON_TYPE),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_a_hostile_body_gets_a_clear_4xx_and_nothing_is_stored(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, name: str
) -> None:
    """Each hostile body (64 KiB or less) is refused with a 400 that says why;
    Redis holds nothing afterwards (no event, no tenant, no call)."""
    body, content_type = HOSTILE_BODIES[name]
    assert len(body) <= MAX_BODY_BYTES
    answer = post(client, body, content_type)
    assert answer.status_code == 400
    clear_4xx(answer)
    assert redis_client.dbsize() == 0


def test_latin1_names_with_ascii_identifiers_are_still_taken(client: FlaskClient) -> None:
    """The Latin-1 leniency stays for text: only identifiers must be valid UTF-8."""
    body = b"eventType=HangupCall&tenantId=t1&callUuid=c-l1&callerIdName=Jos\xe9"
    assert post(client, body).status_code == 202


# -- Last-Event-ID -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [OUTCOME_STREAM, LIVE_STREAM])
@pytest.mark.parametrize("size", [100, 8000, 60_000])
def test_a_huge_last_event_id_on_a_stream_is_a_clear_400(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, path: str, size: int
) -> None:
    """A Last-Event-ID far longer than any outcome id: 400 before any stream opens."""
    answer = client.get(
        path, headers={"Authorization": f"Bearer {API_KEY}", "Last-Event-ID": "9" * size}
    )
    assert answer.status_code == 400
    assert "Last-Event-ID" in clear_4xx(answer)
    assert redis_client.dbsize() == 0


# -- the per-token rate limit -----------------------------------------------------------


def limited_app(
    redis_client: fakeredis.FakeRedis, settings: Settings, rate: float, burst: int
) -> Flask:
    limited = Settings(
        **{**settings.__dict__, "webhook_rate_limit": rate, "webhook_rate_burst": burst}
    )
    return create_app(
        {"TESTING": True, "REDIS_CLIENT": redis_client, "CALLSTATE_SETTINGS": limited}
    )


def burst_of_calls(client: FlaskClient, count: int, token: str = TOKEN) -> list[TestResponse]:
    return [
        post(client, urlencode(hangup(f"burst-{token}-{n}")).encode(), token=token)
        for n in range(count)
    ]


def test_by_default_a_burst_of_distinct_calls_is_all_taken(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """The default limit is far above real traffic: 2,000 distinct calls from one token
    at once are all 202."""
    answers = burst_of_calls(client, 2000)
    assert {a.status_code for a in answers} == {202}
    assert queued(redis_client) == 2000


def test_over_the_rate_a_token_gets_429_with_retry_after_and_nothing_is_queued(
    redis_client: fakeredis.FakeRedis, settings: Settings
) -> None:
    """With WEBHOOK_RATE_LIMIT=5 and a burst of 50, a burst of 1,000 distinct calls:
    about the burst is taken, the rest get 429 + Retry-After and are not queued."""
    client = limited_app(redis_client, settings, rate=5, burst=50).test_client()
    began = time.monotonic()
    answers = burst_of_calls(client, 1000)
    took = time.monotonic() - began
    taken = [a for a in answers if a.status_code == 202]
    limited = [a for a in answers if a.status_code == 429]
    assert len(taken) + len(limited) == 1000
    # The burst, plus what the rate refilled while the burst was being posted
    # (however long a busy machine took to post it).
    assert 50 <= len(taken) <= 50 + math.ceil(5 * took) + 1
    assert queued(redis_client) == len(taken)
    for answer in limited[:5]:
        assert "events a second" in clear_4xx(answer)
        assert int(answer.headers["Retry-After"]) >= 1


def test_each_token_has_its_own_bucket(
    redis_client: fakeredis.FakeRedis, settings: Settings
) -> None:
    """One token over its limit does not limit another token."""
    client = limited_app(redis_client, settings, rate=1, burst=10).test_client()
    assert any(a.status_code == 429 for a in burst_of_calls(client, 30, TOKEN))
    assert [a.status_code for a in burst_of_calls(client, 10, TENANT_TOKEN)] == [202] * 10


def test_normal_traffic_under_the_limit_is_untouched(
    redis_client: fakeredis.FakeRedis, settings: Settings
) -> None:
    """A limit well above the traffic changes nothing: every event taken, and the
    bucket's key names no token."""
    client = limited_app(redis_client, settings, rate=1000, burst=10_000).test_client()
    assert {a.status_code for a in burst_of_calls(client, 300)} == {202}
    keys = [key.decode() for key in redis_client.keys("cs:rate:*")]
    assert len(keys) == 1 and TOKEN not in keys[0]


def test_processes_taking_tokens_ahead_never_take_more_than_the_bucket(
    redis_client: fakeredis.FakeRedis, settings: Settings
) -> None:
    """Two web processes on one bucket (200 a second: each takes 2 tokens a round trip,
    the second spent locally), a burst of 30: together they take the burst and what the
    rate refilled meanwhile, no more."""
    processes = [
        limited_app(redis_client, settings, rate=200, burst=30).test_client() for _ in range(2)
    ]
    began = time.monotonic()
    answers = [
        post(processes[n % 2], urlencode(hangup(f"ahead-{n}")).encode()) for n in range(200)
    ]
    took = time.monotonic() - began
    taken = sum(a.status_code == 202 for a in answers)
    # Whether any 429 comes depends on how fast this machine posts against the
    # refill (a busy one posts slower than 200 a second); the bound does not.
    assert {a.status_code for a in answers} <= {202, 429}
    assert 30 <= taken <= 30 + math.ceil(200 * took) + 2
    assert queued(redis_client) == taken


def test_the_limit_comes_from_the_environment() -> None:
    """WEBHOOK_RATE_LIMIT / WEBHOOK_RATE_BURST: on by default at 1,000 a second with a
    burst of 10,000 (10 s of the rate), 0 turns it off."""
    default = Settings.from_env({})
    assert (default.webhook_rate_limit, default.webhook_burst) == (1000, 10_000)
    assert Settings.from_env({"WEBHOOK_RATE_LIMIT": "0"}).webhook_rate_limit == 0
    configured = Settings.from_env({"WEBHOOK_RATE_LIMIT": "20"})
    assert (configured.webhook_rate_limit, configured.webhook_burst) == (20, 200)
    assert (
        Settings.from_env({"WEBHOOK_RATE_LIMIT": "20", "WEBHOOK_RATE_BURST": "7"}).webhook_burst
        == 7
    )
