"""Fair shares between tenants, against the Procfile's real web and worker processes."""

from __future__ import annotations

import json

from callstate_harness import KEY_A, KEY_B, Launcher, SseClient


def test_one_tenant_never_takes_the_last_stream_slots_from_another(launcher: Launcher) -> None:
    """One web process with 3 stream slots and a share of 2: tenant A's two streams
    open, its third is 503 with Retry-After, and tenant B's stream still opens."""
    launcher.start_service(
        WEB_CONCURRENCY="1", MAX_STREAMS_PER_PROCESS="3", MAX_STREAMS_PER_TENANT="2"
    )
    streams = [SseClient(launcher.port, key=KEY_A) for _ in range(2)]
    try:
        assert [s.status for s in streams] == [200, 200]
        third = SseClient(launcher.port, key=KEY_A)
        assert third.status == 503
        assert int(third.headers["Retry-After"]) >= 1
        assert "share" in json.loads(third.body)["error"]
        other = SseClient(launcher.port, key=KEY_B, path="/v1/calls/live/stream")
        streams.append(other)
        assert other.status == 200
    finally:
        for stream in streams:
            stream.close()
