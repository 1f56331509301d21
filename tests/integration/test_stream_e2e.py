"""The outcome stream (SSE) and `flask outcomes tail` against real processes.

SSE clients here are http.client connections read line by line in a thread,
as an EventSource would: they resume with Last-Event-ID after a disconnect.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from callstate_harness import (
    KEY_A,
    REPO,
    TENANT_A,
    TENANT_B,
    Api,
    Launcher,
    Response,
    SseClient,
    accept_calls,
    open_streams,
    wait_until,
)
from primevox_bodies import Call, Fields, scenario

# Every test here runs on one Redis and on a Redis Cluster (conftest.py: backend).
pytestmark = pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)

KINDS = ("answered", "abandoned", "voicemail", "outbound", "unrouted", "no_answer")


@pytest.fixture
def web_killed_at_end(launcher: Launcher) -> Iterator[None]:
    """SIGKILL web at the end: a stream thread would hold the server's graceful stop for seconds."""
    yield
    for proc in launcher.procs:
        if proc.name.startswith("web") and proc.running():
            proc.kill9()


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in records]


def end_calls(api: Api, count: int, tenant: str = TENANT_A) -> None:
    accept_calls(api, [scenario(KINDS[i % len(KINDS)], Call(tenant)) for i in range(count)])


def outcomes_at_least(api: Api, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        records = api.outcomes()
        return records if len(records) >= count else None

    return wait_until(
        enough,
        timeout,
        f"{count} outcome records",
    )


def test_live_then_resume_with_last_event_id(launcher: Launcher, web_killed_at_end: None) -> None:
    """Outcomes arrive live; after a disconnect, Last-Event-ID brings exactly the missed ones."""
    api = launcher.start_service()
    first = SseClient(launcher.port)
    assert first.status == 200
    assert first.headers["Content-Type"].startswith("text/event-stream")
    end_calls(api, 3)
    live = first.wait_records(3)
    assert live == outcomes_at_least(api, 3)
    first.close()

    end_calls(api, 4, TENANT_B)
    everything = outcomes_at_least(api, 7)
    assert len(everything) == 7
    again = SseClient(launcher.port, last_event_id=live[-1]["id"])
    assert again.status == 200
    missed = again.wait_records(4)
    assert missed == everything[3:]

    end_calls(api, 1)  # and it goes on live
    got = again.wait_records(5)
    time.sleep(0.6)
    got = again.records()
    assert ids(got) == ids(api.outcomes()[3:])
    assert len(set(ids(live + got))) == len(live + got) == 8
    again.close()

    tenant = SseClient(launcher.port, key=KEY_A, query="?outcome=missed")
    expected = [
        r for r in api.outcomes() if r["tenant_id"] == TENANT_A and r["outcome"] == "missed"
    ]
    assert tenant.wait_records(len(expected)) == expected
    tenant.close()


def test_consumer_away_for_an_hour_gets_everything(
    launcher: Launcher, web_killed_at_end: None
) -> None:
    """Many outcomes decided while a consumer was away all arrive, in order, once, on reconnect."""
    api = launcher.start_service()
    end_calls(api, 1)
    watcher = SseClient(launcher.port)
    [seen] = watcher.wait_records(1)
    watcher.close()

    away = 90
    accept_calls(
        api,
        [scenario(KINDS[i % len(KINDS)], Call(TENANT_A if i % 3 else TENANT_B))
         for i in range(away)],
        threads=12,
    )
    everything = outcomes_at_least(api, away + 1, timeout=30)
    back = SseClient(launcher.port, last_event_id=seen["id"])
    got = back.wait_records(away, timeout=15)
    time.sleep(0.6)
    got = back.records()
    back.close()
    assert ids(got) == ids(everything[1:])
    assert got == everything[1:]


def _timed_post(api: Api, fields: Fields) -> tuple[Response, float]:
    started = time.monotonic()
    answer = api.post_event(fields)
    return answer, time.monotonic() - started


def test_intake_answers_while_every_stream_slot_is_taken(
    launcher: Launcher, web_killed_at_end: None
) -> None:
    """With MAX_STREAMS_PER_PROCESS streams open on each web process, intake still answers fast."""
    processes, per_process = 2, 8  # harness WEB_CONCURRENCY, the default stream limit
    # One key opens them all: its tenant's share is the whole process here.
    api = launcher.start_service(
        WEB_CONCURRENCY=str(processes), MAX_STREAMS_PER_TENANT=str(per_process)
    )
    streams, _ = open_streams(launcher.port, processes * per_process)
    try:
        assert len(streams) == processes * per_process
        # Every process is full now: whichever answers, an extra stream is refused.
        for _ in range(4):
            extra = SseClient(launcher.port)
            assert extra.status == 503, extra.status
            assert int(extra.headers["Retry-After"]) >= 1
            assert "error" in json.loads(extra.body)

        calls = [Call(TENANT_A if i % 2 else TENANT_B) for i in range(25)]
        bodies = [fields for call in calls for fields in scenario("unrouted", call)]
        assert len(bodies) == 50
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda f: _timed_post(api, f), bodies))
        elapsed = time.monotonic() - started
        assert [a.status for a, _ in results] == [202] * 50, [a.text for a, _ in results][:3]
        slowest = max(t for _, t in results)
        assert slowest < 3.0, f"slowest webhook took {slowest:.2f} s"
        assert elapsed < 10.0, f"50 webhooks took {elapsed:.2f} s"
        assert api.request("GET", "/healthz", timeout=3).status == 200

        # And the open streams carry the new outcomes.
        everything = outcomes_at_least(api, 25)
        for stream in streams:
            assert stream.wait_records(25) == everything
    finally:
        for stream in streams:
            stream.close()


def test_cli_tail_prints_the_records(launcher: Launcher) -> None:
    """`flask --app app outcomes tail --no-follow --history --json` prints each record as a line."""
    api = launcher.start_service()
    end_calls(api, 4, TENANT_A)
    end_calls(api, 3, TENANT_B)
    everything = outcomes_at_least(api, 7)
    env = launcher.env()

    def tail(*options: str) -> list[dict[str, Any]]:
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "outcomes", "tail",
             "--no-follow", "--history", "--json", *options],
            cwd=REPO, env={**env, "REDIS_URL": launcher.redis_url}, capture_output=True,
            text=True, timeout=30, check=False,
        )
        assert done.returncode == 0, done.stderr
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        return [json.loads(line) for line in lines]

    assert tail() == everything
    missed_b = [r for r in everything if r["tenant_id"] == TENANT_B and r["outcome"] == "missed"]
    assert tail("--tenant", TENANT_B, "--outcome", "missed") == missed_b
    assert tail("--after", everything[3]["id"]) == everything[4:]
