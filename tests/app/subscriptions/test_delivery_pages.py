"""GET /v1/subscriptions/<id>/deliveries in keyset pages: ``limit``, ``cursor``, ``next``."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.kit.deliveries import ADMIN, Calls, Pump, subscribe

HOOK = "http://127.0.0.1:9/hook"


def page(client: FlaskClient, sub_id: str, **query: Any) -> dict[str, Any]:
    answer = client.get(f"/v1/subscriptions/{sub_id}/deliveries", query_string=query, headers=ADMIN)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body: dict[str, Any] = answer.get_json()
    return body


def every_page(client: FlaskClient, sub_id: str, **query: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        body = page(client, sub_id, **query, **({"cursor": cursor} if cursor else {}))
        pages.append([d["id"] for d in body["deliveries"]])
        cursor = body["next"]
        if cursor is None:
            return pages


def test_pages_walk_every_delivery_once_newest_first(
    client: FlaskClient, calls: Calls, pump: Pump
) -> None:
    """An every-tenant subscription with deliveries in two tenants, several made at the
    same instant: pages of 2 show each delivery once, in the first page's order, and the
    last page's next is null."""
    sub = subscribe(client, HOOK)
    for tenant in ("t1", "t1", "t1", "t1", "t1", "t2", "t2", "t2"):
        calls.end("missed", tenant=tenant)
    assert pump.dispatch() == 8
    whole = page(client, sub["id"])
    assert whole["next"] is None
    everything = [d["id"] for d in whole["deliveries"]]
    assert len(everything) == len(set(everything)) == 8
    made = [d["created_at"] for d in whole["deliveries"]]
    assert made == sorted(made, reverse=True)
    pages = every_page(client, sub["id"], limit=2)
    assert [len(p) for p in pages] == [2, 2, 2, 2]
    assert [i for p in pages for i in p] == everything
    # A status filter pages the same way.
    assert [i for p in every_page(client, sub["id"], limit=3, status="pending") for i in p] == (
        everything
    )
    assert page(client, sub["id"], status="succeeded") == {"deliveries": [], "next": None}


@pytest.mark.parametrize(
    ("query", "word"),
    [
        *[({"cursor": cursor}, "cursor") for cursor in ("nope", "W10", "WyJ4IiwxLDJd", "e30")],
        *[({"limit": limit}, "limit") for limit in ("0", "1001", "x", "-1")],
    ],
)
def test_a_bad_cursor_or_limit_is_400(
    client: FlaskClient, query: dict[str, str], word: str
) -> None:
    """A cursor this service did not hand out, or a limit outside 1-1000: 400 saying which."""
    sub = subscribe(client, HOOK)
    answer = client.get(
        f"/v1/subscriptions/{sub['id']}/deliveries", query_string=query, headers=ADMIN
    )
    assert answer.status_code == 400
    assert word in answer.get_json()["error"]
