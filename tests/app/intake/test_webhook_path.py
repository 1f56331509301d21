"""app.intake.fast_path: the hot path answers as the Flask view does, and defers the rest."""

from __future__ import annotations

import base64
import io
import json
import threading
from typing import Any

import fakeredis
import pytest
from flask import Flask
from hypothesis import given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from werkzeug.test import Client, TestResponse

from app.intake.fast_path import BodyReader, WebhookPath, _quick_json
from tests.conftest import TENANT_TOKEN, TOKEN
from tests.kit.examples import CONTENT_TYPES, EXAMPLES

BAD_BODIES = [
    ("", "text/plain"),
    ("{not json", "application/json"),
    ("eventType=InboundCall&tenantId=t1", "application/x-www-form-urlencoded"),
    ("eventType=callstate.timeout&tenantId=t1&callUuid=x", "text/plain"),
    ("eventType=InboundCall&tenantId=t2&callUuid=x", "text/plain"),
    ('{"eventType": "HangupCall", "tenantId": "t1", "callUuid": ["x"]}', "application/json"),
    ("eventType=InboundCall&tenantId=t1&callUuid=" + "x" * 201, "text/plain"),
]


def _both(app: Flask) -> tuple[Client, Client]:
    assert isinstance(app.wsgi_app, WebhookPath)
    return Client(app.wsgi_app), Client(app.wsgi_app.wsgi_app)


def _same(hot: TestResponse, flask: TestResponse) -> dict[str, Any]:
    """Both answers alike (received_at aside, a clock reading); returns the hot one's JSON."""
    assert hot.status == flask.status
    assert hot.headers["Content-Type"] == flask.headers["Content-Type"]
    mine, theirs = json.loads(hot.get_data()), json.loads(flask.get_data())
    mine.pop("received_at", None)
    theirs.pop("received_at", None)
    assert mine == theirs
    if hot.status_code != 202:  # no clock in it: byte for byte
        assert hot.get_data() == flask.get_data()
    return dict(mine)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_gets_the_flask_views_answer(app: Flask, name: str) -> None:
    """Each PrimeVOX body, posted to both, gets the same status, type and JSON."""
    encoding, body = EXAMPLES[name]
    hot, flask = _both(app)
    path = f"/webhooks/primevox/{TOKEN}"
    headers = {"Content-Type": CONTENT_TYPES[encoding]}
    answer = _same(
        hot.post(path, data=body, headers=headers), flask.post(path, data=body, headers=headers)
    )
    assert answer["status"] == "accepted"


@pytest.mark.parametrize(("body", "content_type"), BAD_BODIES)
@pytest.mark.parametrize("token", [TOKEN, TENANT_TOKEN, "nobody"])
def test_refusals_are_the_flask_views_refusals(
    app: Flask, body: str, content_type: str, token: str
) -> None:
    """400s and 401s are byte-for-byte the Flask view's (and an admin token's 202 alike)."""
    hot, flask = _both(app)
    path = f"/webhooks/primevox/{token}"
    headers = {"Content-Type": content_type}
    answer = _same(
        hot.post(path, data=body, headers=headers), flask.post(path, data=body, headers=headers)
    )
    assert ("error" in answer) == (token != TOKEN or "t2" not in body)


def test_what_the_hot_path_does_not_serve_still_gets_flasks_answer(app: Flask) -> None:
    """Basic auth, a body over the limit, another method or a nested path: Flask answers."""
    hot, flask = _both(app)
    encoding, body = EXAMPLES["InboundCall"]
    basic = base64.b64encode(f"pbx:{TOKEN}".encode()).decode()
    cases: list[tuple[str, str, dict[str, str], bytes | str]] = [
        ("POST", "/webhooks/primevox", {"Authorization": f"Basic {basic}"}, body),
        ("POST", f"/webhooks/primevox/{TOKEN}", {}, "x" * (64 * 1024 + 1)),
        ("GET", f"/webhooks/primevox/{TOKEN}", {}, ""),
        ("POST", f"/webhooks/primevox/{TOKEN}/more", {}, body),
    ]
    statuses = []
    for method, path, headers, data in cases:
        headers = {"Content-Type": CONTENT_TYPES[encoding], **headers}
        answer = hot.open(path, method=method, headers=headers, data=data)
        _same(answer, flask.open(path, method=method, headers=headers, data=data))
        statuses.append(answer.status_code)
    assert statuses == [202, 413, 405, 404]


class _Silent:
    """A request body whose bytes never come (a slow client): read blocks until released."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.reading = threading.Event()

    def read(self, size: int = -1) -> bytes:
        self.reading.set()
        self.released.wait(10)
        return b""


def test_a_body_that_does_not_arrive_in_time_is_408_and_the_app_never_runs(
    app: Flask, redis_client: fakeredis.FakeRedis
) -> None:
    """A body still missing at the deadline: 408 with Connection: close, nothing queued,
    and the app's thread is free again (the next request is answered)."""
    assert isinstance(app.wsgi_app, WebhookPath)
    app.wsgi_app.bodies = BodyReader(readers=2, seconds=0.2)
    silent = _Silent()
    path = f"/webhooks/primevox/{TOKEN}"
    try:
        answer = Client(app.wsgi_app).post(
            path, data=b"x" * 120, environ_overrides={"wsgi.input": silent}
        )
    finally:
        silent.released.set()
    assert answer.status_code == 408
    assert answer.headers["Connection"] == "close"
    assert "did not arrive" in answer.get_json()["error"]
    assert redis_client.dbsize() == 0
    encoding, body = EXAMPLES["InboundCall"]
    for _ in range(40):  # more requests than WEB_THREADS: every one gives its thread back
        ok = Client(app.wsgi_app).post(
            path, data=body, headers={"Content-Type": CONTENT_TYPES[encoding]}
        )
        assert ok.status_code == 202
        assert Client(app.wsgi_app).get("/healthz").status_code == 200


def test_a_computed_answer_frees_its_app_thread_even_if_never_closed(app: Flask) -> None:
    """More requests than WEB_THREADS whose answers nobody closes all get answered; a
    streamed answer holds its thread until it is closed."""

    @app.get("/_streamed")
    def _streamed() -> Any:
        return app.response_class(iter([b"one", b"two"]), mimetype="text/event-stream")

    middleware = app.wsgi_app
    assert isinstance(middleware, WebhookPath)
    threads = middleware.readers._value  # type: ignore[attr-defined]
    client = app.test_client()
    for _ in range(3):  # each leaked, WEB_THREADS requests later the next would wait for ever
        assert client.get("/healthz").status_code == 200
    assert middleware.readers._value == threads  # type: ignore[attr-defined]
    stream = client.get("/_streamed")
    assert middleware.readers._value == threads - 1  # type: ignore[attr-defined]
    assert stream.get_data() == b"onetwo"
    stream.close()
    assert middleware.readers._value == threads  # type: ignore[attr-defined]


@fuzz_settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.text(max_size=8) | st.integers(), max_size=5))
def test_quick_json_writes_the_providers_bytes_or_leaves_it_to_the_provider(
    answer: dict[str, Any],
) -> None:
    """orjson's answer is used only when it is the app's JSON provider's, byte for byte."""
    quick = _quick_json(answer)
    if quick is not None:
        app = Flask(__name__)
        assert quick == (app.json.dumps(answer, separators=(",", ":")) + "\n").encode()


def test_quick_json_answers_an_accepted_webhook() -> None:
    answer = {"status": "accepted", "event_id": "e/1", "received_at": "2026-01-01T00:00:00Z"}
    assert _quick_json(answer) == (
        b'{"event_id":"e/1","received_at":"2026-01-01T00:00:00Z","status":"accepted"}\n'
    )
    assert _quick_json({"error": 'a "quote"'}) is None  # escaped: the provider writes it


class _Failing:
    def read(self, size: int = -1) -> bytes:
        raise ConnectionResetError("gone")


def test_body_reader_gives_each_reader_its_own_body_and_raises_a_readers_error() -> None:
    reader = BodyReader(readers=3, seconds=5)
    got: dict[int, bytes | None] = {}

    def read(n: int) -> None:
        got[n] = reader.read(io.BytesIO(b"%d" % n * 10), 1000)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == {n: b"%d" % n * 10 for n in range(20)}
    with pytest.raises(ConnectionResetError):
        reader.read(_Failing(), 10)
    assert reader.read(io.BytesIO(b"abc"), 2) == b"ab"
    assert reader.read(io.BytesIO(b"abc"), -1) == b"abc"


def test_a_body_still_queued_at_the_deadline_is_never_read() -> None:
    """With every reader busy, a read that waited out its deadline is withdrawn:
    no reader starts it later."""
    reader = BodyReader(readers=1, seconds=0.2)
    silent = _Silent()
    late = _Counted(b"late")
    try:
        busy = threading.Thread(target=reader.read, args=(_Counted(b""), 10))
        busy.start()
        busy.join()  # the one reader is started, and idle
        busy = threading.Thread(target=reader.read, args=(silent, 10))
        busy.start()
        assert silent.reading.wait(5)
        assert reader.read(late, 10) is None
    finally:
        silent.released.set()
    busy.join()
    assert reader.read(io.BytesIO(b"next"), 10) == b"next"  # the reader is free again
    assert late.reads == 0


class _Counted:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        return self.body
