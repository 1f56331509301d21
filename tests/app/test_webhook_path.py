"""app.webhook_path: the hot path answers exactly as the Flask view does, and defers the rest."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from examples import CONTENT_TYPES, EXAMPLES
from flask import Flask
from werkzeug.test import Client, TestResponse

from app.webhook_path import WebhookPath
from tests.conftest import TENANT_TOKEN, TOKEN

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
