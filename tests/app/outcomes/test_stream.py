"""GET /v1/outcomes/stream over the Flask test client: SSE framing, resuming, filters, limits."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

import app.web.sse as stream
from core.store import Store
from tests.kit.deliveries import ADMIN, T1, Calls

URL = "/v1/outcomes/stream"

# Streams a test closes itself stay open this long: on a busy machine deciding
# a few calls took over 5 s, and a stream that ended first failed the test.
OPEN_THROUGH_THE_TEST = 120.0


@pytest.fixture(autouse=True)
def quick_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams poll often and end after a fraction of a second, so a test can read one whole."""
    monkeypatch.setattr(stream, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(stream, "STREAM_MAX_SECONDS", 0.15)


def parse_sse(text: str) -> list[dict[str, str]]:
    """The events of an SSE text (blocks with a data field), each as {field: value}."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = fields[name] + "\n" + value if name in fields else value
        if "data" in fields:
            events.append(fields)
    return events


def read_all(
    client: FlaskClient, query: str = "", headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Read a (short) stream to its end; return the records it carried."""
    with client.get(URL + query, headers={**ADMIN, **(headers or {})}) as answer:
        assert answer.status_code == 200, answer.get_data(as_text=True)
        text = answer.get_data(as_text=True)
    records = []
    for event in parse_sse(text):
        assert event["event"] == "outcome"
        record: dict[str, Any] = json.loads(event["data"])
        assert event["id"] == record["id"]
        records.append(record)
    return records


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in records]


def all_records(store: Store, tenants: list[str]) -> list[dict[str, Any]]:
    records, _ = store.outcomes.read_outcomes(tenants, after=None, limit=10_000)
    return records


def test_records_come_as_id_event_data(client: FlaskClient, calls: Calls, store: Store) -> None:
    """Each record is an SSE event: id = record id, event = outcome, data = the JSON record."""
    made = [calls.end("missed"), calls.end("answered", "t2"), calls.end("voicemail")]
    with client.get(URL, headers=ADMIN) as answer:
        assert answer.status_code == 200
        assert answer.mimetype == "text/event-stream"
        assert answer.headers["Cache-Control"] == "no-cache"
        text = answer.get_data(as_text=True)
    assert text.startswith("retry: ")
    events = parse_sse(text)
    assert [e["event"] for e in events] == ["outcome"] * 3
    assert [e["id"] for e in events] == ids(made)
    assert [json.loads(e["data"]) for e in events] == made
    listed = client.get("/v1/outcomes", headers=ADMIN).get_json()["outcomes"]
    assert [json.loads(e["data"]) for e in events] == listed


@pytest.mark.parametrize("how", ["header", "query"])
def test_resume_gives_exactly_the_records_after(
    client: FlaskClient, calls: Calls, store: Store, how: str
) -> None:
    """Resuming after any record (Last-Event-ID or ?after=) gives exactly the later ones."""
    made = [calls.end(kind, tenant) for kind, tenant in
            [("missed", "t1"), ("answered", "t2"), ("outbound", "t1"), ("missed", "t3"),
             ("voicemail", "t2")]]
    for index, record in enumerate(made):
        if how == "header":
            got = read_all(client, headers={"Last-Event-ID": record["id"]})
        else:
            got = read_all(client, f"?after={record['id']}")
        assert ids(got) == ids(made[index + 1 :]), index


def test_last_event_id_wins_over_the_after_of_the_url(client: FlaskClient, calls: Calls) -> None:
    """An EventSource made with ?after= reconnects with a newer Last-Event-ID: that one counts."""
    made = [calls.end("missed") for _ in range(4)]
    got = read_all(client, f"?after={made[0]['id']}", headers={"Last-Event-ID": made[2]["id"]})
    assert ids(got) == ids(made[3:])


def test_live_records_arrive_while_the_stream_is_open(client: FlaskClient, calls: Calls) -> None:
    """A record decided while a client watches is sent on the open stream."""
    stream.STREAM_MAX_SECONDS = OPEN_THROUGH_THE_TEST  # reset by the autouse monkeypatch
    old = calls.end("missed")
    answer = client.get(URL, headers={**ADMIN, "Last-Event-ID": old["id"]}, buffered=False)
    chunks: Iterator[bytes] = iter(answer.response)
    try:
        assert b"connected" in next(chunks)
        for kind in ("answered", "missed", "voicemail"):
            record = calls.end(kind)
            [event] = parse_sse(next(chunks).decode())
            assert json.loads(event["data"]) == record
    finally:
        answer.close()


def test_reconnecting_loses_and_repeats_nothing(
    client: FlaskClient, calls: Calls, store: Store
) -> None:
    """Records decided between and during short streams all arrive once, in order."""
    seen: list[dict[str, Any]] = []
    for round_ in range(5):
        calls.end("missed", "t1" if round_ % 2 else "t2")  # decided while disconnected
        last = {"Last-Event-ID": seen[-1]["id"]} if seen else {}
        answer = client.get(URL, headers={**ADMIN, **last}, buffered=False)
        try:
            chunks = iter(answer.response)
            text = next(chunks).decode()
            calls.end("answered")  # decided while connected
            text += "".join(c.decode() for c in chunks)
        finally:
            answer.close()
        seen += [json.loads(e["data"]) for e in parse_sse(text)]
    seen += read_all(client, headers={"Last-Event-ID": seen[-1]["id"]})
    assert ids(seen) == ids(all_records(store, ["t1", "t2"]))
    assert len(seen) == 10


def test_filters(client: FlaskClient, calls: Calls) -> None:
    """outcome= and tenant_id= narrow the stream for an admin key."""
    made = [calls.end(kind, tenant) for kind, tenant in
            [("missed", "t1"), ("answered", "t2"), ("missed", "t2"), ("voicemail", "t1")]]
    assert ids(read_all(client, "?outcome=missed")) == [
        r["id"] for r in made if r["outcome"] == "missed"
    ]
    assert ids(read_all(client, "?tenant_id=t2")) == [
        r["id"] for r in made if r["tenant_id"] == "t2"
    ]
    assert ids(read_all(client, "?tenant_id=t2&outcome=missed")) == [made[2]["id"]]
    assert read_all(client, "?tenant_id=t9") == []


def test_tenant_key_sees_only_its_tenant(client: FlaskClient, calls: Calls) -> None:
    """A tenant key's stream carries only its tenant's records."""
    made = [calls.end("missed", t) for t in ("t1", "t2", "t1", "t3")]
    got = read_all(client, headers=T1)
    assert ids(got) == [r["id"] for r in made if r["tenant_id"] == "t1"]
    assert ids(read_all(client, "?tenant_id=t1", headers=T1)) == ids(got)


@pytest.mark.parametrize(
    ("query", "headers", "status"),
    [
        ("?tenant_id=t2", T1, 403),
        ("?after=yesterday", ADMIN, 400),
        ("", {**ADMIN, "Last-Event-ID": "not-an-id"}, 400),
        ("?outcome=bogus", ADMIN, 400),
        ("", {}, 401),
        ("", {"Authorization": "Bearer wrong"}, 401),
    ],
)
def test_refused_streams_answer_json_errors(
    client: FlaskClient, query: str, headers: dict[str, str], status: int
) -> None:
    """Another tenant, a bad cursor or filter, or no key: a JSON error with its status."""
    with client.get(URL + query, headers=headers) as answer:
        assert answer.status_code == status, answer.get_data(as_text=True)
        assert isinstance(answer.get_json()["error"], str)


def test_over_the_limit_is_503_with_retry_after(
    client: FlaskClient, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the per-process limit a stream gets 503 + Retry-After; closed streams free slots."""
    slots = threading.BoundedSemaphore(2)
    monkeypatch.setattr(stream, "_slots", slots)
    stream.STREAM_MAX_SECONDS = OPEN_THROUGH_THE_TEST
    calls.end("missed")
    open_ = [client.get(URL, headers=ADMIN, buffered=False) for _ in range(2)]
    try:
        assert [a.status_code for a in open_] == [200, 200]
        for _ in range(3):
            with client.get(URL, headers=ADMIN) as refused:
                assert refused.status_code == 503
                assert int(refused.headers["Retry-After"]) >= 1
                assert isinstance(refused.get_json()["error"], str)
        # Requests refused before a slot is taken do not use one up either.
        with client.get(URL + "?after=bad", headers=ADMIN) as bad:
            assert bad.status_code == 400
        open_.pop().close()
        again = client.get(URL, headers=ADMIN, buffered=False)
        open_.append(again)
        assert again.status_code == 200
        with client.get(URL, headers=ADMIN) as refused:
            assert refused.status_code == 503
    finally:
        # Last opened, first closed: in one thread, stream_with_context's request
        # contexts nest (a real server gives each stream its own thread).
        for answer in reversed(open_):
            answer.close()
    # Every slot is back.
    assert slots.acquire(blocking=False) and slots.acquire(blocking=False)
    slots.release()
    slots.release()


def test_slot_is_released_when_the_stream_ends_by_itself(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream that reaches STREAM_MAX_SECONDS gives its slot back."""
    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(stream, "_slots", slots)
    for _ in range(3):
        answer = client.get(URL, headers=ADMIN, buffered=True)
        assert answer.status_code == 200
        assert b"connected" in answer.get_data()
    assert slots.acquire(blocking=False)
    slots.release()
