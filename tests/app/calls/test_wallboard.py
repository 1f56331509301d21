"""GET /wallboard (the page) and GET /v1/calls/live/stream (what keeps it live), in-process."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from flask.testing import FlaskClient

import app.calls.live_stream as live_stream
import app.web.sse as stream
from tests.conftest import API_KEY, TENANT_KEY, TOKEN

ADMIN = {"Authorization": f"Bearer {API_KEY}"}
T1 = {"Authorization": f"Bearer {TENANT_KEY}"}
URL = "/v1/calls/live/stream"


@pytest.fixture(autouse=True)
def quick_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams poll often and end after a fraction of a second."""
    monkeypatch.setattr(live_stream, "LIVE_POLL_SECONDS", 0.01)
    monkeypatch.setattr(stream, "STREAM_MAX_SECONDS", 0.2)


def post(client: FlaskClient, tenant: str, call: str, event: str, **fields: str) -> None:
    body = {"eventType": event, "tenantId": tenant, "callUuid": call, **fields}
    assert client.post(f"/webhooks/primevox/{TOKEN}", data=body).status_code == 202


def live_events(text: str) -> list[dict[str, Any]]:
    """The ``live`` events of an SSE text, decoded."""
    found = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        fields = dict(line.split(": ", 1) for line in lines if ": " in line)
        if fields.get("event") == "live":
            assert "id" not in fields, "live events must not move the client's Last-Event-ID"
            found.append(json.loads(fields["data"]))
    return found


def read_all(client: FlaskClient, query: str = "", headers: dict[str, str] = ADMIN) -> str:
    with client.get(URL + query, headers=headers) as answer:
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.mimetype == "text/event-stream"
        return answer.get_data(as_text=True)


def chunks(client: FlaskClient, headers: dict[str, str] = ADMIN) -> Iterator[str]:
    """An open stream, read chunk by chunk (the generator runs as it is pulled)."""
    answer = client.get(URL, headers=headers, buffered=False)
    assert answer.status_code == 200
    try:
        for chunk in answer.response:
            yield chunk.decode() if isinstance(chunk, bytes) else chunk
    finally:
        answer.close()


# -- the page ---------------------------------------------------------------------------------


def test_page_is_served_without_a_key_and_carries_no_data(client: FlaskClient, drain: Any) -> None:
    """/wallboard answers 200 HTML to anyone, but no call, number or tenant is in it."""
    post(client, "t1", "secret-call", "InboundCall", callerIdNum="+15559990000")
    drain()
    answer = client.get("/wallboard")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    for leaked in ("secret-call", "+15559990000", "t1", API_KEY, TENANT_KEY):
        assert leaked not in html
    assert answer.headers["Cache-Control"] == "no-cache"
    assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_page_needs_nothing_from_elsewhere(client: FlaskClient) -> None:
    """No build step, no CDN: one document, inline script and style, no outside URLs."""
    html = client.get("/wallboard").get_data(as_text=True)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script src" not in html and 'rel="stylesheet"' not in html
    assert html.count("<script>") == 1 and html.count("<style>") == 1


def test_content_security_policy_allows_only_the_pages_own_script(client: FlaskClient) -> None:
    """The CSP names the inline script's and style's sha256 and this origin, nothing more."""
    answer = client.get("/wallboard")
    html = answer.get_data(as_text=True)
    policy = answer.headers["Content-Security-Policy"]
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_the_template_renders_the_shell_as_written(client: FlaskClient) -> None:
    """The served page is the template's text, byte for byte, without its Jinja comments
    and with its one include (the key handling it shares with /reports) in place."""
    templates = resources.files("app").joinpath("templates")
    template = templates.joinpath("wallboard.html").read_text("utf-8")
    shared = templates.joinpath("partials/api_key.js").read_text("utf-8")
    shell = re.sub(r"\{#-.*?-#\}\n|\{#.*?#\}\n", "", template, flags=re.S)
    shell = shell.replace('{% include "partials/api_key.js" %}\n', shared, 1)
    assert client.get("/wallboard").get_data(as_text=True) == shell


def test_page_keeps_the_key_out_of_urls_and_html(client: FlaskClient) -> None:
    """The script sends the key only as an Authorization header and renders text, not HTML."""
    html = client.get("/wallboard").get_data(as_text=True)
    assert "Authorization: `Bearer ${S.key}`" in html
    assert "location.hash" in html and "history.replaceState" in html
    assert "innerHTML" not in html and "insertAdjacentHTML" not in html
    assert "new EventSource" not in html  # it cannot send an Authorization header


# -- the live stream ----------------------------------------------------------------------------


def test_live_stream_needs_a_key(client: FlaskClient) -> None:
    """No key: 401 with {"error": ...}."""
    answer = client.get(URL)
    assert answer.status_code == 401 and "error" in answer.get_json()


def test_live_stream_sends_the_list_at_once_then_only_changes(
    client: FlaskClient, drain: Any
) -> None:
    """First event: every live call; later events only when the list changed."""
    post(client, "t1", "a", "InboundCall", callerIdNum="+15550000001")
    drain()
    events = live_events(read_all(client))
    assert len(events) == 1, "an unchanged list is not sent again"
    (first,) = events
    assert [c["call_uuid"] for c in first["calls"]] == ["a"]
    assert first["calls"][0]["state"] == "new" and first["server_time"].endswith("Z")


def test_live_stream_follows_a_call_through_its_states(
    client: FlaskClient, drain: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queued, answered, ended: each change is a new ``live`` event, in order."""
    monkeypatch.setattr(stream, "STREAM_MAX_SECONDS", 10.0)
    seen: list[list[tuple[str, str]]] = []
    steps = iter(
        [
            ("queueEntered", {"queueNumber": "600"}),
            ("ExtensionAnswered", {"extensionNumber": "101", "extensionName": "Alice"}),
            ("HangupCall", {"extNumber": "101", "extName": "Alice"}),
        ]
    )
    post(client, "t1", "q", "InboundCall", callerIdNum="+15550000002")
    drain()
    for chunk in chunks(client):
        for event in live_events(chunk):
            seen.append([(c["call_uuid"], c["state"]) for c in event["calls"]])
            step = next(steps, None)
            if step is None:
                break
            post(client, "t1", "q", step[0], **step[1])
            drain()
        if len(seen) == 4:
            break
    assert seen == [[("q", "new")], [("q", "queued")], [("q", "answered")], []]


def test_a_tenant_key_streams_only_its_tenant(client: FlaskClient, drain: Any) -> None:
    """A t1 key sees t1's live calls only, and may not ask for t2's (403)."""
    post(client, "t1", "mine", "InboundCall", callerIdNum="1")
    post(client, "t2", "theirs", "InboundCall", callerIdNum="2")
    drain()
    (mine,) = live_events(read_all(client, headers=T1))
    assert [c["call_uuid"] for c in mine["calls"]] == ["mine"]
    refused = client.get(URL + "?tenant_id=t2", headers=T1)
    assert refused.status_code == 403 and "error" in refused.get_json()
    (every,) = live_events(read_all(client))
    assert {c["call_uuid"] for c in every["calls"]} == {"mine", "theirs"}


def test_live_stream_filters_like_the_live_list(client: FlaskClient, drain: Any) -> None:
    """tenant_id and queue narrow the stream as they narrow /v1/calls/live."""
    post(client, "t1", "in-600", "InboundCall", callerIdNum="1")
    post(client, "t1", "in-600", "queueEntered", queueNumber="600")
    post(client, "t1", "in-601", "InboundCall", callerIdNum="2")
    post(client, "t1", "in-601", "queueEntered", queueNumber="601")
    post(client, "t2", "other", "InboundCall", callerIdNum="3")
    drain()
    (queued,) = live_events(read_all(client, "?queue=600"))
    assert [c["call_uuid"] for c in queued["calls"]] == ["in-600"]
    (t2,) = live_events(read_all(client, "?tenant_id=t2"))
    assert [c["call_uuid"] for c in t2["calls"]] == ["other"]


def test_live_streams_share_the_outcome_streams_slots(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No slot left: 503 with Retry-After; a finished stream gives its slot back."""
    monkeypatch.setattr(stream, "_slots", threading.BoundedSemaphore(1))
    read_all(client)
    assert stream._slots.acquire(blocking=False), "the slot was given back"
    answer = client.get(URL, headers=ADMIN)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "2"
    assert client.get("/v1/outcomes/stream", headers=ADMIN).status_code == 503
    stream._slots.release()
