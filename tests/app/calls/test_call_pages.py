"""A call's events (GET /v1/calls/<uuid>) and its story (/timeline) in keyset pages."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import API_KEY, TOKEN
from tests.integration.primevox_bodies import ALICE, BOB, Call

ADMIN = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def call(client: FlaskClient, drain: Any) -> Call:
    """A call of seven events: in, queued, two rings, answered, ended."""
    made = Call("t1")
    bodies = [made.inbound(), made.queue(), made.ring(ALICE), made.ring(BOB)]
    bodies += [made.answered(BOB), made.completed(BOB), made.hangup(BOB)]
    for body in bodies:
        answer = client.post(f"/webhooks/primevox/{TOKEN}", data=body)
        assert answer.status_code == 202, answer.get_data(as_text=True)
    drain()
    return made


def read(client: FlaskClient, path: str, **query: Any) -> dict[str, Any]:
    answer = client.get(path, query_string=query, headers=ADMIN)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body: dict[str, Any] = answer.get_json()
    return body


def walk(client: FlaskClient, path: str, key: str, limit: int) -> list[list[Any]]:
    pages: list[list[Any]] = []
    cursor = None
    while True:
        body = read(client, path, limit=limit, **({"cursor": cursor} if cursor else {}))
        pages.append(body[key])
        cursor = body["next"]
        if cursor is None:
            return pages


def test_a_calls_events_come_in_pages(client: FlaskClient, call: Call) -> None:
    """The first page without limit is the whole log, as before, with next null; pages of
    3 give the same events once each, in received order; no event's id is shown."""
    path = f"/v1/calls/{call.uuid}"
    whole = read(client, path)
    assert whole["next"] is None and len(whole["events"]) == 7
    assert all(set(event) == {"event_type", "received_at", "fields"} for event in whole["events"])
    pages = walk(client, path, "events", 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [e for p in pages for e in p] == whole["events"]


def test_a_calls_story_comes_in_pages(client: FlaskClient, call: Call) -> None:
    """The timeline without limit is the whole story; pages of 2 tell it once, in order."""
    path = f"/v1/calls/{call.uuid}/timeline"
    whole = read(client, path)
    assert whole["next"] is None
    steps = whole["timeline"]
    assert len(steps) > 4
    pages = walk(client, path, "timeline", 2)
    assert all(len(p) == 2 for p in pages[:-1])
    assert [s for p in pages for s in p] == steps


@pytest.mark.parametrize("suffix", ["", "/timeline"])
@pytest.mark.parametrize(("query", "word"), [("cursor=x", "cursor"), ("limit=1001", "limit")])
def test_a_bad_cursor_or_limit_is_400(
    client: FlaskClient, call: Call, suffix: str, query: str, word: str
) -> None:
    answer = client.get(f"/v1/calls/{call.uuid}{suffix}?{query}", headers=ADMIN)
    assert answer.status_code == 400
    assert word in answer.get_json()["error"]
