"""GET /v1/callbacks in keyset pages: ``limit``, ``cursor``, ``next``; oldest miss first."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import API_KEY, TOKEN
from tests.integration.primevox_bodies import Call

ADMIN = {"Authorization": f"Bearer {API_KEY}"}


def callbacks(client: FlaskClient, **query: Any) -> dict[str, Any]:
    answer = client.get("/v1/callbacks", query_string=query, headers=ADMIN)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body: dict[str, Any] = answer.get_json()
    return body


def test_pages_walk_every_item_once_oldest_first(client: FlaskClient, drain: Any) -> None:
    """Seven missed callers over two tenants: pages of 3 show each item once, in the
    unpaged order; the last page's next is null."""
    for n in range(7):
        call = Call("t1" if n % 2 else "t2", caller_number=f"555123000{n}")
        for body in (call.inbound(), call.queue(), call.hangup()):
            answer = client.post(f"/webhooks/primevox/{TOKEN}", data=body)
            assert answer.status_code == 202, answer.get_data(as_text=True)
    drain()
    whole = callbacks(client)
    assert whole["next"] is None and len(whole["callbacks"]) == 7
    everything = [item["id"] for item in whole["callbacks"]]
    seen: list[str] = []
    sizes: list[int] = []
    cursor = None
    while True:
        page = callbacks(client, limit=3, status="open", **({"cursor": cursor} if cursor else {}))
        sizes.append(len(page["callbacks"]))
        seen += [item["id"] for item in page["callbacks"]]
        assert "server_time" in page
        cursor = page["next"]
        if cursor is None:
            break
    assert sizes == [3, 3, 1]
    assert seen == everything


@pytest.mark.parametrize(
    ("query", "word"), [({"cursor": "bogus"}, "cursor"), ({"limit": "0"}, "limit")]
)
def test_a_bad_cursor_or_limit_is_400(
    client: FlaskClient, query: dict[str, str], word: str
) -> None:
    answer = client.get("/v1/callbacks", query_string=query, headers=ADMIN)
    assert answer.status_code == 400
    assert word in answer.get_json()["error"]
