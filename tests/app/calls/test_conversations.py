"""GET /v1/conversations: a tenant's SMS conversations, the latest message first."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient

from tests.conftest import API_KEY, TENANT_KEY, TOKEN

ADMIN = {"Authorization": f"Bearer {API_KEY}"}
T1 = {"Authorization": f"Bearer {TENANT_KEY}"}


def sms(
    client: FlaskClient,
    conversation: str,
    *,
    tenant: str = "t1",
    ours: str = "+18005550100",
    theirs: str = "+15551230000",
    inbound: bool = True,
    text: str = "hello",
) -> None:
    fields = {
        "eventType": "inboundMessage" if inbound else "outboundMessage",
        "tenantID": tenant,
        "containerID": "c1",
        "conversationID": conversation,
        "fromNumber": theirs if inbound else ours,
        "toNumber": ours if inbound else theirs,
        "messageText": text,
    }
    answer = client.post(f"/webhooks/primevox/{TOKEN}", data=urlencode(fields))
    assert answer.status_code == 202, answer.get_json()


def listed(client: FlaskClient, query: str = "", headers: dict[str, str] = ADMIN) -> Any:
    answer = client.get(f"/v1/conversations{query}", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_conversations_newest_message_first_with_numbers_and_counts(
    client: FlaskClient, drain: Any
) -> None:
    """Each conversation once, the one with the latest message first, with the
    numbers on either side and how many messages it holds."""
    sms(client, "conv-a", text="one")
    time.sleep(0.002)
    sms(client, "conv-b", theirs="+15559990000")
    time.sleep(0.002)
    sms(client, "conv-a", inbound=False, text="two")
    drain()
    page = listed(client)
    assert page["next"] is None
    assert [c["conversation_id"] for c in page["conversations"]] == ["conv-a", "conv-b"]
    first = page["conversations"][0]
    assert first["tenant_id"] == "t1" and first["messages"] == 2
    assert first["numbers"] == ["+15551230000", "+18005550100"]
    assert first["last_message_at"].endswith("Z")


def test_pages_follow_each_other_without_repeats(client: FlaskClient, drain: Any) -> None:
    """limit and next walk every conversation once, across tenants for an admin key."""
    for n in range(7):
        sms(client, f"conv-{n}", tenant="t1" if n % 2 else "t2")
    drain()
    seen: list[str] = []
    query = "?limit=3"
    while True:
        page = listed(client, query)
        seen += [c["conversation_id"] for c in page["conversations"]]
        if page["next"] is None:
            break
        query = f"?limit=3&cursor={page['next']}"
    assert sorted(seen) == [f"conv-{n}" for n in range(7)] and len(seen) == 7
    assert seen == [c["conversation_id"] for c in listed(client, "?limit=10")["conversations"]]


def test_a_number_matches_however_it_is_written(client: FlaskClient, drain: Any) -> None:
    """number= finds a conversation whose number the PBX wrote nationally, and no other."""
    sms(client, "conv-national", theirs="5551234567")
    sms(client, "conv-other", theirs="+15559870000")
    drain()
    for written in ("+15551234567", "5551234567", "15551234567"):
        page = listed(client, f"?{urlencode({'number': written})}")
        assert [c["conversation_id"] for c in page["conversations"]] == ["conv-national"]


def test_a_tenant_key_sees_only_its_tenant(client: FlaskClient, drain: Any) -> None:
    """A tenant's key lists its own conversations; naming another tenant is 403."""
    sms(client, "conv-mine", tenant="t1")
    sms(client, "conv-theirs", tenant="t2")
    drain()
    assert [c["conversation_id"] for c in listed(client, headers=T1)["conversations"]] == [
        "conv-mine"
    ]
    assert client.get("/v1/conversations?tenant_id=t2", headers=T1).status_code == 403


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("?limit=0", "limit must be a whole number from 1 to 1000"),
        ("?cursor=nonsense", "cursor is not one this service handed out"),
        ("?from=yesterday", "must be an ISO-8601 time"),
    ],
)
def test_bad_queries_are_400(client: FlaskClient, query: str, error: str) -> None:
    """A bad limit, cursor or time is 400 saying what is wrong."""
    answer = client.get(f"/v1/conversations{query}", headers=ADMIN)
    assert answer.status_code == 400 and error in answer.get_json()["error"]
