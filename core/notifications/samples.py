"""Samples of what a subscription receives, for ``flask subscriptions test`` and the docs:
a missed call's outcome record, a live ``call.ringing`` and an ``alert.long_wait``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from statemachine.events import isoformat


def samples(tenant_id: str, now: float | None = None) -> dict[str, dict[str, Any]]:
    """Sample records by what they are, dated ``now``; ids are "test-..."."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    started, ended = moment - timedelta(seconds=95), moment - timedelta(seconds=3)
    caller = {"number": "+15551230000", "name": "Sample Caller"}
    did = {"number": "+15550001000", "description": "Main line", "group": ""}
    call = {
        "call_uuid": "test-call", "tenant_id": tenant_id, "container_id": "test",
        "direction": "inbound", "caller": caller, "did": did, "number_dialed": None,
        "queue": "700", "ring_group": None,
    }  # fmt: skip
    return {
        "outcome": {
            **call, "id": "0-1", "outcome": "missed", "missed_reason": "abandoned",
            "answered_by": None, "voicemail_box": None, "extension": None,
            "rang": [{"number": "101", "name": "Ana"}], "started_at": isoformat(started),
            "answered_at": None, "ended_at": isoformat(ended), "wait_seconds": 92.0,
            "talk_seconds": 0.0, "ended_by": "hangup", "revision": 1, "short_abandon": False,
        },
        "call.ringing": {
            **call, "id": "0-2", "type": "call.ringing", "at": isoformat(started),
            "extension": {"number": "101", "name": "Ana"},
        },
        "alert.long_wait": {
            "id": "0-3", "type": "alert.long_wait", "tenant_id": tenant_id,
            "at": isoformat(moment), "resolved": False, "value": 92.0, "threshold": 60.0,
            "count": 1,
        },
    }  # fmt: skip
