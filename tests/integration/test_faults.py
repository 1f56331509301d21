"""Faults a Heroku-style host brings: Redis going away, TLS Redis, SIGTERM to everything.

Real redis-server, real web and worker processes started from the Procfile
(through bench.service), loopback only, every wait bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bench.service import Service, free_port, wait_for
from core.store import connect

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server (real-Redis test skipped)"
)

FAST = {"OUTCOME_GRACE_SECONDS": "1", "PENDING_CHECK_SECONDS": "1"}


def post(service: Service, body: str, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(service.webhook_url, data=body.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def get(service: Service, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{service.base_url}{path}", headers={"Authorization": f"Bearer {service.key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def call_events(call_uuid: str, tenant: str = "acme") -> list[str]:
    common = f"tenantId={tenant}&containerId=box&callUuid={call_uuid}&callerIdNum=%2B15551234567"
    return [
        f"eventType=InboundCall&{common}&didNumber=%2B18005550100",
        f"eventType=ringAttempt&eventTarget=extension&{common}&extNumber=101&extName=Ann",
        f"eventType=ExtensionAnswered&{common}&extensionNumber=101&extensionName=Ann",
        f"eventType=HangupCall&{common}&extNumber=101&extName=Ann",
    ]


def outcome_kinds(service: Service) -> dict[str, list[tuple[str, int]]]:
    _, page = get(service, "/v1/outcomes?limit=1000")
    found: dict[str, list[tuple[str, int]]] = {}
    for record in page["outcomes"]:
        found.setdefault(record["call_uuid"], []).append((record["outcome"], record["revision"]))
    return found


def test_redis_down_gives_503_and_everything_resumes_when_it_is_back() -> None:
    """Redis away: intake 503 (fast) and /readyz 503; back: intake, workers, outcomes resume."""
    with Service(FAST).start(workers=1) as service:
        assert post(service, call_events("before")[0])[0] == 202
        service.redis.stop()
        started = time.monotonic()
        status, answer = post(service, call_events("during")[0])
        assert status == 503 and "error" in answer
        assert time.monotonic() - started < 3.0, "a 503 must come fast, or the PBX times out"
        assert get(service, "/readyz")[0] == 503
        assert get(service, "/healthz")[0] == 200
        time.sleep(2.0)  # let the workers notice
        service.redis.start()
        wait_for(lambda: get(service, "/readyz")[0] == 200, 20, "/readyz to recover")
        for body in call_events("after"):
            assert post(service, body)[0] == 202
        wait_for(lambda: "after" in outcome_kinds(service), 30, "the call after the outage")
        assert outcome_kinds(service)["after"] == [("answered", 1)]
        for proc in service.live("web") + service.live("worker"):
            assert proc.poll() is None, "a process died during the outage"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "redis.key", directory / "redis.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=callstate-test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_rediss_url_with_a_self_signed_certificate_works(tmp_path: Path) -> None:
    """A rediss:// URL to a server with a self-signed certificate connects (as on Heroku)."""
    key, cert = _self_signed(tmp_path)
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file",
         str(cert), "--tls-auth-clients", "no", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        client = connect(f"rediss://127.0.0.1:{port}/0")
        wait_for(lambda: bool(client.ping()), 10, "the TLS redis-server")
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_sigterm_to_every_process_loses_nothing_and_restart_picks_up() -> None:
    """SIGTERM to web and worker mid-traffic (as Heroku does): nothing lost or half-applied."""
    with Service(FAST).start(workers=1) as service:
        calls = [f"term-{i}" for i in range(40)]
        accepted: list[str] = []
        stop = threading.Event()

        def sender() -> None:
            for call in calls:
                for body in call_events(call):
                    while not stop.is_set():
                        try:
                            if post(service, body, timeout=2)[0] == 202:
                                accepted.append(call)
                                break
                        except OSError:
                            pass
                        time.sleep(0.05)  # like the PBX: retry until accepted

        thread = threading.Thread(target=sender, daemon=True)
        thread.start()
        time.sleep(1.0)
        every = service.live("web") + service.live("worker")
        for proc in every:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in every:
            proc.wait(timeout=30)  # clean exits, well before Heroku's SIGKILL
        assert all(proc.returncode is not None for proc in every)
        # Restart the same Redis' service, as the next dyno would.
        service.start_process("web")
        service.start_process("worker")
        wait_for(service.healthy, 30, "the restarted web")
        thread.join(timeout=60)
        stop.set()
        assert not thread.is_alive()
        wait_for(lambda: set(calls) <= set(outcome_kinds(service)), 40, "every call's outcome")
        kinds = outcome_kinds(service)
        assert all(kinds[c] == [("answered", 1)] for c in calls), kinds
        status, live = get(service, "/v1/calls/live")
        assert status == 200 and live["calls"] == []
