"""``bin/start --embedded`` (``python -m devtools.start --embedded``) does what the real
processes do: events, timers (outcome grace, call timeout) and outbound webhooks,
retried and signed, in its one process on the in-memory stand-in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.callstate_harness import Api, free_port, wait_until
from tests.integration.primevox_bodies import BOB, Call, scenario
from tests.kit.webhooks import Receiver, failing_first, verify

REPO = Path(__file__).resolve().parents[2]
TOKEN = "tok-embedded"
KEY = "key-embedded"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[Api, subprocess.Popen[bytes]]]:
    """The embedded service on a free port, with short timers; SIGKILLed if a test leaves it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PORT")}
    env.update(
        WEBHOOK_TOKENS=f"{TOKEN}:*",
        API_KEYS=f"{KEY}:*",
        SUBSCRIPTION_ALLOW_PRIVATE="1",
        OUTCOME_GRACE_SECONDS="1",
        CALL_TIMEOUT_SECONDS="2",
        DELIVERY_RETRY_SECONDS="1,1",
        PYTHONUNBUFFERED="1",
    )
    log = (tmp_path / "embedded.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.start", "--embedded", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = Api(f"http://127.0.0.1:{port}", token=TOKEN, api_key=KEY)
    try:
        wait_until(api.healthy, 30, "the embedded service to answer")
        yield api, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()


def test_embedded_start_delivers_outcomes_to_a_subscription(
    embedded: tuple[Api, subprocess.Popen[bytes]],
) -> None:
    """An answered call (decided after the grace timer) and a call ended by the timeout
    reach the subscriber signed, each retried once under one webhook-id; SIGTERM stops it."""
    api, process = embedded
    with Receiver(failing_first(1)) as receiver:
        answer = api.request(
            "POST",
            "/v1/subscriptions",
            json.dumps({"url": receiver.url()}).encode(),
            {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        assert answer.status == 201, answer.text
        subscription = answer.json()

        answered, silent = Call("acme"), Call("acme")
        for fields in [*scenario("answered", answered), silent.inbound()]:
            api.accept(fields)

        def delivered() -> list[dict[str, object]] | None:
            ok = receiver.successes()
            return [json.loads(r.body) for r in ok] if len(ok) >= 2 else None

        records = wait_until(delivered, 30, "two outcomes delivered", detail=receiver.received)
        for request in receiver.successes():
            verify(subscription["secret"], request.headers, request.body)
            assert request.attempt == 2  # the first attempt got 500 and was retried
    by_call = {record["call_uuid"]: record for record in records}
    assert by_call[answered.uuid]["outcome"] == "answered"
    assert by_call[answered.uuid]["answered_by"]["number"] == BOB.number
    assert by_call[silent.uuid]["ended_by"] == "timeout"

    deliveries = api.get_json(f"/v1/subscriptions/{subscription['id']}/deliveries")["deliveries"]
    assert sorted((d["status"], d["attempts"]) for d in deliveries) == [("succeeded", 2)] * 2

    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
