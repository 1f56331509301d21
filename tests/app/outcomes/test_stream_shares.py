"""One tenant's streams never take the last of a web process's stream slots from another."""

from __future__ import annotations

import threading

import pytest
from flask.testing import FlaskClient

import app.web.sse as stream
from core.settings import Settings
from tests.kit.deliveries import ADMIN, T1, T2

URL = "/v1/outcomes/stream"


def test_the_share_is_half_the_process_unless_set() -> None:
    """MAX_STREAMS_PER_TENANT: 0 (unset) is half of MAX_STREAMS_PER_PROCESS, at least 1,
    and never more than the process's."""
    assert Settings.from_env({}).streams_per_tenant == 4
    assert Settings.from_env({"MAX_STREAMS_PER_PROCESS": "3"}).streams_per_tenant == 1
    assert Settings.from_env({"MAX_STREAMS_PER_PROCESS": "1"}).streams_per_tenant == 1
    assert Settings.from_env({"MAX_STREAMS_PER_TENANT": "5"}).streams_per_tenant == 5
    both = {"MAX_STREAMS_PER_PROCESS": "2", "MAX_STREAMS_PER_TENANT": "5"}
    assert Settings.from_env(both).streams_per_tenant == 2


def test_a_tenant_past_its_share_gets_503_while_another_still_opens(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process cap 3, share 2: t1's third stream is 503 + Retry-After naming the share,
    t2's first still opens, and a closed stream gives its tenant's place back."""
    slots = threading.BoundedSemaphore(3)
    monkeypatch.setattr(stream, "_slots", slots)
    monkeypatch.setattr(stream, "MAX_STREAMS_PER_TENANT", 2)
    monkeypatch.setattr(stream, "_held", {})
    monkeypatch.setattr(stream, "STREAM_MAX_SECONDS", 5)
    opened = [client.get(URL, headers=T1, buffered=False) for _ in range(2)]
    try:
        assert [a.status_code for a in opened] == [200, 200]
        with client.get(URL, headers=T1) as refused:
            assert refused.status_code == 503
            assert int(refused.headers["Retry-After"]) >= 1
            assert "share" in refused.get_json()["error"]
        other = client.get(URL, headers=T2, buffered=False)
        opened.append(other)
        assert other.status_code == 200
        # The process is full now: anyone else is refused for that.
        with client.get(URL, headers=ADMIN) as full:
            assert full.status_code == 503
            assert "too many open streams" in full.get_json()["error"]
        opened.pop().close()
        opened.pop().close()
        again = client.get(URL, headers=T1, buffered=False)
        opened.append(again)
        assert again.status_code == 200
    finally:
        for answer in reversed(opened):
            answer.close()
    assert stream._held == {}
    for _ in range(3):
        assert slots.acquire(blocking=False)
