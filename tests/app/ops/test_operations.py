"""Operations: /metrics counts what happened, logs are JSON without secrets, data expires."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
import structlog
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

from app.web.access_log import AccessLog
from core.observability import JsonFormatter
from core.settings import Settings
from core.store import Store, call_key
from tests.conftest import API_KEY, TOKEN
from workers.engine import Engine

CALL = "eventType={t}&tenantId=t1&callUuid=m1&callerIdNum=1"


def samples(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_received_rejected_applied_and_outcomes(
    client: FlaskClient, drain: Any, engine: Engine
) -> None:
    """After traffic, /metrics shows it: received, rejected by reason, applied, outcomes."""
    before = samples(client)
    client.post(f"/webhooks/primevox/{TOKEN}", data=CALL.format(t="InboundCall"))
    client.post(f"/webhooks/primevox/{TOKEN}", data=CALL.format(t="HangupCall"))
    client.post("/webhooks/primevox/wrong-token", data=CALL.format(t="InboundCall"))
    client.post(f"/webhooks/primevox/{TOKEN}", data="not an event")
    pending = samples(client)[("callstate_events_pending", ())]
    assert pending == 2
    drain()
    engine.decide("t1", "m1")
    after = samples(client)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("callstate_events_received_total", event_type="InboundCall") == 1
    assert grew("callstate_events_rejected_total", reason="unauthorized") == 1
    assert grew("callstate_events_rejected_total", reason="invalid") == 1
    assert after[("callstate_events_applied_total", (("event_type", "HangupCall"),))] == 1
    assert after[("callstate_outcomes_total", (("outcome", "missed"),))] == 1
    assert after[("callstate_apply_seconds_count", ())] == 2
    assert after[("callstate_event_to_state_seconds_count", ())] == 2
    assert after[("callstate_events_pending", ())] == 0
    assert after[("callstate_queue_depth", ())] == 0


def test_metrics_answer_while_redis_is_down() -> None:
    """A scrape during an outage still answers 200 (figures from Redis are NaN)."""
    from app import create_app
    from core.store import connect

    app = create_app({"TESTING": True, "REDIS_CLIENT": connect("redis://127.0.0.1:1")})
    answer = app.test_client().get("/metrics")
    assert answer.status_code == 200
    assert "callstate_queue_depth NaN" in answer.get_data(as_text=True)


def test_log_lines_are_json_with_the_call_bound_and_no_secrets() -> None:
    """A stdlib log line under bound call context is one JSON object with tenant and call."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("callstate.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with structlog.contextvars.bound_contextvars(tenant="t1", call_uuid="c7"):
            logger.info("applied")
    finally:
        logger.removeHandler(handler)
        structlog.contextvars.clear_contextvars()
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "applied" and record["tenant"] == "t1"
    assert record["call_uuid"] == "c7"
    assert record["level"] == "info" and record["logger"] == "callstate.test"


def test_stdlib_log_lines_are_stamped_in_utc_like_structlog_lines() -> None:
    """A stdlib line's timestamp is ISO 8601 in UTC (a trailing Z), whatever the local zone."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("callstate.test.utc")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    zone = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        if zone is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = zone
        time.tzset()
    record = json.loads(stream.getvalue())
    assert record["timestamp"].endswith("Z")
    stamped = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - stamped).total_seconds()) < 60
    assert record["level"] == "error" and "ValueError: boom" in record["exception"]


def test_intake_never_logs_the_token(client: FlaskClient, caplog: Any) -> None:
    """Neither an accepted nor a refused webhook writes its token to the log."""
    caplog.set_level(logging.DEBUG)
    client.post(f"/webhooks/primevox/{TOKEN}", data=CALL.format(t="InboundCall"))
    client.post("/webhooks/primevox/some-guess", data=CALL.format(t="InboundCall"))
    client.get("/v1/calls/live", headers={"Authorization": f"Bearer {API_KEY}"})
    assert TOKEN not in caplog.text and "some-guess" not in caplog.text
    assert API_KEY not in caplog.text


def test_access_log_redacts_the_token(app: Flask) -> None:
    """The web server's access log writes one JSON line a request, with no webhook token."""
    read, write = os.pipe()
    try:
        logged = Client(AccessLog(app.wsgi_app, fd=write))
        logged.post(f"/webhooks/primevox/{TOKEN}", data=CALL.format(t="InboundCall"))
        logged.get("/healthz")
        os.close(write)
        with os.fdopen(read, "rb") as stream:
            raw = stream.read()
        lines = [json.loads(line) for line in raw.splitlines()]
    finally:
        with contextlib.suppress(OSError):
            os.close(write)
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("POST", "/webhooks/[redacted]", 202),
        ("GET", "/healthz", 200),
    ]
    assert all(x["event"] == "request" and x["ms"] >= 0 for x in lines)
    assert TOKEN.encode() not in raw


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/primevox/SeCrEt-ToKeN",
        "/webhooks/PRIMEVOX/SeCrEt-ToKeN",
        "/WEBHOOKS/primevox/SeCrEt-ToKeN",
        "/webhooks/x/../primevox/SeCrEt-ToKeN",
        "/webhooks/SeCrEt-ToKeN",
        "/webhooks/primevox/SeCrEt-ToKeN/extra",
    ],
)
def test_access_log_redacts_whatever_follows_webhooks(app: Flask, path: str) -> None:
    """Whatever follows /webhooks/ (any case, any segments: a mistyped path still
    carries the sender's token) is redacted in the access log."""
    read, write = os.pipe()
    try:
        Client(AccessLog(app.wsgi_app, fd=write)).post(path, data="eventType=x")
        os.close(write)
        with os.fdopen(read, "rb") as stream:
            raw = stream.read()
    finally:
        with contextlib.suppress(OSError):
            os.close(write)
    assert b"SeCrEt-ToKeN" not in raw
    assert json.loads(raw)["path"].lower().endswith("/webhooks/[redacted]")


def test_an_ended_calls_data_expires_after_retention(
    redis_client: fakeredis.FakeRedis, client: FlaskClient, drain: Any
) -> None:
    """A call's log, records and state carry a TTL of RETENTION_SECONDS; nothing is kept forever."""
    client.post(f"/webhooks/primevox/{TOKEN}", data=CALL.format(t="InboundCall"))
    client.post(f"/webhooks/primevox/{TOKEN}", data=CALL.format(t="HangupCall"))
    drain()
    retention = Settings().retention_seconds
    for key in (call_key("t1", "m1"), call_key("t1", "m1") + ":log",
                call_key("t1", "m1") + ":records"):  # fmt: skip
        ttl = redis_client.ttl(key)
        assert 0 < ttl <= retention, (key, ttl)
    assert not any(redis_client.ttl(k) == -1 for k in redis_client.keys("rq:job:*"))


def test_the_outcome_stream_is_trimmed_by_age(redis_client: fakeredis.FakeRedis) -> None:
    """Records older than the retention leave the stream when a new one is added."""
    store = Store(redis_client, retention_seconds=1)
    engine = Engine(store, Settings(outcome_grace_seconds=0, retention_seconds=1))
    from tests.workers.test_engine import apply, hangup, inbound

    apply(engine, inbound(0, "old"), hangup(5, "old"))
    engine.decide("t1", "old")
    time.sleep(1.2)
    apply(engine, inbound(0, "new"), hangup(5, "new"))
    engine.decide("t1", "new")
    records, _ = store.outcomes.read_outcomes(["t1"], after=None, limit=10)
    assert [r["call_uuid"] for r in records] == ["new"]


def test_a_bad_stream_limit_stops_the_process_instead_of_falling_back(
    monkeypatch: Any,
) -> None:
    """MAX_STREAMS_PER_PROCESS or STREAM_MAX_SECONDS that is not a number is a ConfigError."""
    import importlib

    import pytest

    import app.web.sse as stream
    from core.settings import ConfigError

    try:
        for name, value in (("MAX_STREAMS_PER_PROCESS", "lots"), ("STREAM_MAX_SECONDS", "-5")):
            monkeypatch.setenv(name, value)
            with pytest.raises(ConfigError, match=name):
                importlib.reload(stream)
            monkeypatch.delenv(name)
    finally:
        importlib.reload(stream)
    assert stream.MAX_STREAMS_PER_PROCESS == 8 and stream.STREAM_MAX_SECONDS == 300


def test_server_settings_are_checked_like_every_other_setting() -> None:
    """PORT, WEB_CONCURRENCY and WEB_THREADS that are not whole numbers >= 1 are a ConfigError."""
    import pytest

    from app.web.serve import server_options
    from core.settings import ConfigError, Settings

    assert server_options(Settings.from_env({"PORT": "8080"}))["port"] == 8080
    for name in ("PORT", "WEB_CONCURRENCY", "WEB_THREADS"):
        with pytest.raises(ConfigError, match=name):
            server_options(Settings.from_env({name: "0"}))
        with pytest.raises(ConfigError, match=name):
            server_options(Settings.from_env({name: "two"}))
