"""The supervisor's view over the API, in-process (fakeredis, RQ SimpleWorker):
/v1/extensions/live, /v1/calls/<uuid>/timeline, /v1/callbacks and their streams."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient

import app.supervisor.routes as supervisor
import app.web.sse as stream
from core.store import (
    contacts_key,
    legs_key,
    supervisor_calls_key,
    supervisor_stamp_key,
    supervisor_versions_key,
)
from tests.conftest import API_KEY, TENANT_KEY, TOKEN
from tests.integration.primevox_bodies import ALICE, BOB, Call, Fields

ADMIN = {"Authorization": f"Bearer {API_KEY}"}
T1 = {"Authorization": f"Bearer {TENANT_KEY}"}


@pytest.fixture(autouse=True)
def quick_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(stream, "STREAM_MAX_SECONDS", 0.2)


def post(client: FlaskClient, *bodies: Fields) -> None:
    for body in bodies:
        answer = client.post(f"/webhooks/primevox/{TOKEN}", data=body)
        assert answer.status_code == 202, answer.get_data(as_text=True)


def board(client: FlaskClient, headers: dict[str, str] = T1, query: str = "") -> dict[str, Any]:
    answer = client.get("/v1/extensions/live" + query, headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {e["number"]: e for e in answer.get_json()["extensions"]}


def items(client: FlaskClient, status: str = "", headers: dict[str, str] = T1) -> list[Any]:
    answer = client.get("/v1/callbacks" + (f"?status={status}" if status else ""), headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    found: list[Any] = answer.get_json()["callbacks"]
    return found


# -- the extension board ----------------------------------------------------------------


def test_board_follows_a_call_from_ringing_to_idle(client: FlaskClient, drain: Any) -> None:
    """Both extensions ring; the one that answers is on the call, the other idle; then both idle."""
    call = Call("t1")
    post(client, call.inbound(), call.queue(), call.ring(ALICE), call.ring(BOB))
    drain()
    ringing = board(client)
    assert {n: e["state"] for n, e in ringing.items()} == {"101": "ringing", "102": "ringing"}
    assert ringing["101"]["call_uuid"] == call.uuid and ringing["101"]["name"] == ALICE.name
    post(client, call.answered(BOB))
    drain()
    talking = board(client)
    assert talking["102"]["state"] == "on_call" and talking["102"]["call_uuid"] == call.uuid
    assert talking["101"]["state"] == "idle" and talking["101"]["call_uuid"] is None
    post(client, call.completed(BOB), call.hangup(BOB))
    drain()
    done = board(client)
    assert {n: e["state"] for n, e in done.items()} == {"101": "idle", "102": "idle"}
    assert done["102"]["answered"] == 1 and done["101"]["answered"] == 0
    assert done["101"]["missed"] == 0, "102 answered while 101 rang: nobody missed it"
    assert done["102"]["talk_seconds"] >= 0 and done["102"]["since"] is not None
    for key in ("number", "name", "state", "since", "call_uuid", "answered", "missed"):
        assert key in done["102"]


def test_an_unanswered_ring_counts_as_missed(client: FlaskClient, drain: Any) -> None:
    """A ring nobody answered, ended by the caller's hang-up, is one missed for the extension."""
    call = Call("t1")
    post(client, call.inbound(), call.ring(ALICE), call.hangup())
    drain()
    entry = board(client)["101"]
    assert entry["state"] == "idle" and entry["missed"] == 1 and entry["answered"] == 0


def test_board_is_tenant_sealed(client: FlaskClient, drain: Any) -> None:
    """A tenant key sees its own extensions only; an admin key sees every tenant's, each
    entry saying whose, or one tenant's with tenant_id."""
    mine, theirs = Call("t1"), Call("t2")
    post(client, mine.inbound(), mine.ring(ALICE), theirs.inbound(), theirs.ring(BOB))
    drain()
    assert set(board(client)) == {"101"}
    everyone = client.get("/v1/extensions/live", headers=ADMIN).get_json()["extensions"]
    assert {(e["tenant_id"], e["number"]) for e in everyone} == {("t1", "101"), ("t2", "102")}
    assert set(board(client, ADMIN, "?tenant_id=t2")) == {"102"}
    denied = client.get("/v1/extensions/live?tenant_id=t2", headers=T1)
    assert denied.status_code == 403
    assert client.get("/v1/extensions/live").status_code == 401


def test_board_stream_sends_the_board(client: FlaskClient, drain: Any) -> None:
    """The stream's first event is the whole board, as the list answers it."""
    call = Call("t1")
    post(client, call.inbound(), call.ring(ALICE))
    drain()
    with client.get("/v1/extensions/live/stream", headers=T1) as answer:
        assert answer.status_code == 200 and answer.mimetype == "text/event-stream"
        text = answer.get_data(as_text=True)
    assert text.startswith("retry: 1000\n")
    block = next(b for b in text.split("\n\n") if b.startswith("event: extensions"))
    data = json.loads(block.split("data: ", 1)[1])
    assert [e["number"] for e in data["extensions"]] == ["101"]
    assert data["extensions"][0]["state"] == "ringing"


def test_board_stream_sends_each_change(
    client: FlaskClient, drain: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first board, the stream sends a new one when a call changes it, and only then."""
    monkeypatch.setattr(stream, "STREAM_MAX_SECONDS", 30)
    call = Call("t1")
    post(client, call.inbound(), call.ring(ALICE))
    drain()
    answer = client.get("/v1/extensions/live/stream", headers=T1, buffered=False)
    boards: list[dict[str, str]] = []
    try:
        for chunk in answer.response:
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            if not text.startswith("event: extensions"):
                continue
            data = json.loads(text.split("data: ", 1)[1])
            boards.append({e["number"]: e["state"] for e in data["extensions"]})
            if len(boards) == 1:
                post(client, call.answered(ALICE))
                drain()
            else:
                break
    finally:
        answer.close()
    assert boards == [{"101": "ringing"}, {"101": "on_call"}]


def test_board_is_computed_again_only_when_the_tenant_changed(
    client: FlaskClient, drain: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads of an unchanged tenant share one computation; a new event makes a new one."""
    computed: list[str] = []
    real = supervisor.board

    def counting(store: Any, tenant: str, now: Any, zone: Any) -> Any:
        computed.append(tenant)
        return real(store, tenant, now, zone)

    monkeypatch.setattr(supervisor, "board", counting)
    call = Call("t1")
    post(client, call.inbound(), call.ring(ALICE))
    drain()
    assert board(client)["101"]["state"] == "ringing"
    assert board(client)["101"]["state"] == "ringing"
    assert computed == ["t1"]
    post(client, call.answered(ALICE))
    drain()
    assert board(client)["101"]["state"] == "on_call"
    assert computed == ["t1", "t1"]


# -- the timeline -------------------------------------------------------------------------


def test_timeline_tells_the_call_in_received_order(client: FlaskClient, drain: Any) -> None:
    """Each webhook is a step, with the talk and the outcome where their times put them."""
    call = Call("t1")
    post(client, call.inbound(), call.queue(), call.ring(ALICE), call.answered(ALICE))
    post(client, call.completed(ALICE), call.hangup(ALICE))
    drain()
    drain()  # the decision (grace 0) runs from the timer the commit set
    answer = client.get(f"/v1/calls/{call.uuid}/timeline", headers=T1)
    assert answer.status_code == 200
    steps = answer.get_json()["timeline"]
    kinds = [s["kind"] for s in steps]
    assert kinds[:4] == ["call", "queue", "ring", "answer"]
    assert "talk" in kinds and "hangup" in kinds
    for step in steps:
        assert set(step) >= {"at", "kind", "text", "seconds"}
    assert steps[0]["text"].startswith("call from +15551230000")


def test_timeline_of_an_unknown_or_foreign_call_is_404(client: FlaskClient, drain: Any) -> None:
    """Like GET /v1/calls/<uuid>: unknown and another tenant's calls answer the same 404."""
    theirs = Call("t2")
    post(client, theirs.inbound())
    drain()
    for uuid in ("no-such-call", theirs.uuid):
        answer = client.get(f"/v1/calls/{uuid}/timeline", headers=T1)
        assert answer.status_code == 404 and answer.get_json() == {"error": "no such call"}
    assert client.get(f"/v1/calls/{theirs.uuid}/timeline", headers=ADMIN).status_code == 200


# -- callbacks -------------------------------------------------------------------------


def missed(client: FlaskClient, drain: Any, number: str = "5551230000") -> Call:
    call = Call("t1", caller_number=number)
    post(client, call.inbound(), call.queue(), call.ring(ALICE), call.hangup())
    drain()
    return call


def test_a_missed_caller_opens_an_item_an_outbound_call_resolves(
    client: FlaskClient, drain: Any
) -> None:
    """The miss opens an item for +15551230000; a call dialled to "+1 555-123-0000" resolves it."""
    miss = missed(client, drain)
    (item,) = items(client, "open")
    assert item["number"] == "+15551230000" and item["missed_call_uuid"] == miss.uuid
    assert item["status"] == "open" and item["resolved_by"] is None
    assert item["id"].startswith("cb_") and item["missed_at"]
    back = Call("t1")
    post(client, back.outbound(BOB, dialed="+1 555-123-0000"))
    drain()
    assert items(client, "open") == []
    (done,) = items(client, "resolved")
    assert done["resolved_by"] == back.uuid and done["resolved_by_kind"] == "called_back"
    assert done["resolved_at"] is not None and done["id"] == item["id"]


def test_an_answered_call_from_the_number_resolves_it(client: FlaskClient, drain: Any) -> None:
    """The caller rings again (as 1555…) and is answered: resolved by that call."""
    missed(client, drain, "+15551230000")
    again = Call("t1", caller_number="15551230000")
    post(client, again.inbound(), again.ring(ALICE), again.answered(ALICE))
    drain()
    (done,) = items(client)
    assert done["status"] == "resolved" and done["resolved_by"] == again.uuid
    assert done["resolved_by_kind"] == "answered"


def test_resolve_by_hand(client: FlaskClient, drain: Any) -> None:
    """A note resolves an open item; the same note again is 200, another note 409."""
    missed(client, drain)
    (item,) = items(client)
    url = f"/v1/callbacks/{item['id']}/resolve"
    answer = client.post(url, json={"note": "reached on her mobile"}, headers=T1)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["status"] == "resolved" and body["resolved_by"] == "reached on her mobile"
    assert body["resolved_by_kind"] == "manual" and body["resolved_at"]
    assert client.post(url, json={"note": "reached on her mobile"}, headers=T1).status_code == 200
    again = client.post(url, json={"note": "something else"}, headers=T1)
    assert again.status_code == 409 and again.get_json()["callback"]["id"] == item["id"]
    assert items(client, "open") == [] and len(items(client, "resolved")) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"note": ""}, 400),
        ({"note": "   "}, 400),
        ({"note": 5}, 400),
        ({"note": "x" * 501}, 400),
        ([], 400),
        ("not json", 400),
    ],
)
def test_resolve_refuses_bad_bodies(
    client: FlaskClient, drain: Any, body: Any, status: int
) -> None:
    """A resolution needs a JSON object with a non-blank note of at most 500 characters."""
    missed(client, drain)
    (item,) = items(client)
    url = f"/v1/callbacks/{item['id']}/resolve"
    if isinstance(body, str):
        answer = client.post(url, data=body, headers={**T1, "Content-Type": "text/plain"})
    else:
        answer = client.post(url, json=body, headers=T1)
    assert answer.status_code == status and "error" in answer.get_json()
    assert items(client, "open") != []


def test_resolve_unknown_or_foreign_item_is_404(client: FlaskClient, drain: Any) -> None:
    """An id that names no item, or another tenant's item, is 404 for a tenant key."""
    theirs = Call("t2", caller_number="5551230000")
    post(client, theirs.inbound(), theirs.queue(), theirs.hangup())
    drain()
    (item,) = items(client, headers=ADMIN)
    assert item["tenant_id"] == "t2"
    for item_id in ("cb_nope", item["id"]):
        answer = client.post(f"/v1/callbacks/{item_id}/resolve", json={"note": "x"}, headers=T1)
        assert answer.status_code == 404


def test_callbacks_status_must_be_open_or_resolved(client: FlaskClient) -> None:
    """Any other status is a 400 saying which are allowed."""
    answer = client.get("/v1/callbacks?status=closed", headers=T1)
    assert answer.status_code == 400 and "open or resolved" in answer.get_json()["error"]


def test_callbacks_stream_sends_open_items(client: FlaskClient, drain: Any) -> None:
    """``event: callbacks`` carries the items of the status asked for."""
    missed(client, drain)
    with client.get("/v1/callbacks/stream?status=open", headers=T1) as answer:
        assert answer.status_code == 200
        text = answer.get_data(as_text=True)
    block = next(b for b in text.split("\n\n") if b.startswith("event: callbacks"))
    data = json.loads(block.split("data: ", 1)[1])
    assert [i["status"] for i in data["callbacks"]] == ["open"]


# -- rebuild ---------------------------------------------------------------------------


def test_rebuild_writes_the_view_again_from_the_logs(
    app: Flask, client: FlaskClient, drain: Any, redis_client: fakeredis.FakeRedis
) -> None:
    """With the board and contacts gone, `rebuild` reports them and `rebuild --fix` restores
    them; a manual resolution, a fact of its own, survives."""
    missed(client, drain)
    missed(client, drain, "+442071234567")
    ringing = Call("t1")
    post(client, ringing.inbound(), ringing.ring(BOB))
    drain()
    by_hand = items(client)[1]["id"]
    note = {"note": "left a message"}
    assert client.post(f"/v1/callbacks/{by_hand}/resolve", json=note, headers=T1).status_code == 200
    before_board, before_items = board(client), items(client)
    # As if lost: the parts and the stamp (the manual resolutions stay).
    views = (legs_key, contacts_key, supervisor_calls_key, supervisor_versions_key)
    redis_client.delete(*(f("t1") for f in (*views, supervisor_stamp_key)))
    assert board(client) == {} and items(client) == []
    runner = app.test_cli_runner()
    with app.app_context():
        found = runner.invoke(args=["rebuild"])
        assert found.exit_code == 1 and "supervisor view differs" in found.output
        fixed = runner.invoke(args=["rebuild", "--fix"])
        assert fixed.exit_code == 0, fixed.output
        assert runner.invoke(args=["rebuild"]).exit_code == 0
    assert board(client) == before_board and items(client) == before_items
    assert [i["status"] for i in before_items] == ["open", "resolved"]
