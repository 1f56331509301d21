"""GET /v1/conversations against real processes, on one Redis and on a Redis Cluster
(where a tenant's conversations spread over partitions on several masters)."""

from __future__ import annotations

from typing import Any

import pytest
from callstate_harness import TENANT_A, TENANT_B, Api, wait_until

pytestmark = pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)


def sms(api: Api, tenant: str, conversation: str, theirs: str) -> None:
    api.accept(
        {
            "eventType": "inboundMessage", "tenantID": tenant, "containerID": "c1",
            "conversationID": conversation, "fromNumber": theirs,
            "toNumber": "+18005550100", "messageText": "hi",
        }
    )  # fmt: skip


def every_page(api: Api, query: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = api.get_json(f"/v1/conversations?limit=4{query}{cursor}")
        found += page["conversations"]
        if page["next"] is None:
            return found
        cursor = f"&cursor={page['next']}"


def test_every_conversation_once_newest_first_in_pages(service: Api) -> None:
    """Twenty conversations of two tenants, listed in pages of four: each once, the
    latest message first; a tenant filter and a number filter narrow them."""
    for n in range(20):
        sms(service, TENANT_A if n % 2 else TENANT_B, f"conv-{n:02}", f"+1555123{n:04}")
    wait_until(lambda: len(every_page(service, "")) == 20, 30, "20 conversations listed")
    listed = every_page(service, "")
    assert len({c["conversation_id"] for c in listed}) == 20
    times = [c["last_message_at"] for c in listed]
    assert times == sorted(times, reverse=True)
    assert {c["tenant_id"] for c in every_page(service, f"&tenant_id={TENANT_A}")} == {TENANT_A}
    [one] = every_page(service, "&number=5551230007")
    assert one["conversation_id"] == "conv-07"
