"""Readers never hold up webhook intake, against the Procfile's real web process.

Readers that keep their slots (open streams, downloads whose client stopped
reading) fill the process's reader slots; a webhook must still get its 202
within a second and ``/healthz`` must answer. Exports have a cap of their own
and a download whose reader stalls is cut off.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from callstate_harness import ADMIN_KEY, TENANT_A, Launcher, SseClient, wait_until
from primevox_bodies import Call

from bench.history import Database, load
from tests.kit.history_db import POSTGRES_PROBLEM

INTAKE_SECONDS = 1.0
ROWS = 120_000  # a CSV of ~14 MB: more than the server's and the kernel's buffers hold


def timed_post(launcher: Launcher) -> tuple[int, float]:
    began = time.monotonic()
    answer = launcher.api.post_event(Call(TENANT_A).inbound())
    return answer.status, time.monotonic() - began


def test_readers_holding_every_slot_never_hold_up_a_webhook(launcher: Launcher) -> None:
    """With every reader slot of the one web process held by open streams, another
    reader gets 503 with Retry-After within about a second, while a webhook gets
    its 202 within a second and /healthz answers."""
    launcher.start_service(WEB_CONCURRENCY="1", WEB_THREADS="2")
    streams = [SseClient(launcher.port) for _ in range(2)]
    try:
        assert [s.status for s in streams] == [200, 200]
        began = time.monotonic()
        busy = launcher.api.get("/v1/outcomes")
        assert busy.status == 503 and busy.headers["Retry-After"] == "1"
        assert "reader slot" in busy.json()["error"]
        assert time.monotonic() - began < 5
        for _ in range(5):
            status, took = timed_post(launcher)
            assert status == 202 and took < INTAKE_SECONDS, f"{status} after {took:.2f} s"
        assert launcher.api.get("/healthz").status == 200
    finally:
        for stream in streams:
            stream.close()
    # A stream notices its client left at its next write (a keep-alive every 15 s).
    wait_until(lambda: launcher.api.get("/v1/outcomes").status == 200, 30, "slots given back")


@pytest.fixture(scope="module")
def big_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL history database holding ROWS calls (module-wide: it takes a while)."""
    if POSTGRES_PROBLEM is not None:
        pytest.skip(f"!!! no PostgreSQL server: {POSTGRES_PROBLEM} !!!")
    database = Database("postgres", Path(tmp_path_factory.mktemp("history")))
    try:
        load(database, 0, ROWS)
        yield database.url
    finally:
        database.drop()


@contextlib.contextmanager
def stalled_download(port: int, path: str) -> Iterator[socket.socket]:
    """A GET whose client reads its headers and then stops reading (a tiny receive
    buffer, so the server's buffers fill rather than the client's)."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", port))
    client.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {ADMIN_KEY}\r\n\r\n".encode()
    )
    try:
        yield client
    finally:
        client.close()


def test_slow_downloads_never_hold_up_a_webhook(launcher: Launcher, big_history: str) -> None:
    """Downloads of a large CSV whose readers stopped reading, up to the export
    cap and beyond: a webhook still gets its 202 within a second, /healthz its 200."""
    launcher.start_service(DATABASE_URL=big_history, WEB_CONCURRENCY="1", WEB_THREADS="4")
    path = "/v1/calls?format=csv"
    with contextlib.ExitStack() as downloads:
        for _ in range(6):
            downloads.enter_context(stalled_download(launcher.port, path))
        time.sleep(3)  # the queries run and the downloads fill every buffer
        for _ in range(5):
            status, took = timed_post(launcher)
            assert status == 202 and took < INTAKE_SECONDS, f"{status} after {took:.2f} s"
            assert launcher.api.get("/healthz").status == 200
