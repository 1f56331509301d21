"""What operators read, against the Procfile's real web process and a real Redis:
/readyz warns before Redis runs out of memory, and METRICS_TOKEN keeps /metrics and
/readyz's details to the operator while the platform's health checks stay open."""

from __future__ import annotations

import redis
from callstate_harness import Launcher

OPERATOR = "operator-metrics-token-0123456789"


def memory_warnings(launcher: Launcher) -> list[str]:
    found: list[str] = launcher.api.get_json("/readyz")["warnings"]
    return [w for w in found if "of its maxmemory" in w]


def test_readyz_warns_past_80_percent_of_maxmemory(
    launcher: Launcher, redis_db: redis.Redis
) -> None:
    """No maxmemory, or plenty left: no memory warning. used_memory past 80% of
    maxmemory: /readyz names the share, still 200."""
    launcher.start_web(WEB_CONCURRENCY="1")
    original = redis_db.config_get("maxmemory")["maxmemory"]
    try:
        redis_db.config_set("maxmemory", 0)
        assert memory_warnings(launcher) == []
        used = int(redis_db.info("memory")["used_memory"])
        redis_db.config_set("maxmemory", used * 10)
        assert memory_warnings(launcher) == []
        # Nothing writes while the limit is this close (only the web runs, and /readyz
        # only reads); it is put back at once.
        redis_db.config_set("maxmemory", int(used / 0.9))
        assert len(memory_warnings(launcher)) == 1
    finally:
        redis_db.config_set("maxmemory", original)


def test_metrics_token_keeps_the_details_to_the_operator(launcher: Launcher) -> None:
    """With METRICS_TOKEN set: /metrics is 401 without it (or with a wrong one), 200 with
    it; /readyz answers its status alone without it, the warnings and history with it;
    /healthz needs nothing."""
    launcher.start_web(WEB_CONCURRENCY="1", METRICS_TOKEN=OPERATOR)
    api = launcher.api
    bearer = {"Authorization": f"Bearer {OPERATOR}"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": OPERATOR}):
        refused = api.request("GET", "/metrics", headers=headers)
        assert refused.status == 401
        assert "METRICS_TOKEN" in refused.json()["error"]
        assert b"callstate_" not in refused.body
    scraped = api.request("GET", "/metrics", headers=bearer)
    assert scraped.status == 200 and b"callstate_events_pending" in scraped.body
    assert api.get_json("/readyz") == {"status": "ready"}
    detailed = api.request("GET", "/readyz", headers=bearer)
    assert detailed.status == 200
    assert {"status", "warnings", "history"} <= set(detailed.json())
    assert api.get("/healthz").status == 200


def test_short_secrets_are_warned_of_at_start_not_refused(launcher: Launcher) -> None:
    """The harness's tokens and keys are short: the web starts and serves anyway, and
    its start-up output names the variables (never a secret)."""
    proc = launcher.start_web(WEB_CONCURRENCY="1", METRICS_TOKEN="short")
    assert launcher.api.get("/healthz").status == 200
    output = proc.output()
    for names in ("WEBHOOK_TOKENS / WEBHOOK_TOKEN", "API_KEYS / API_KEY", "METRICS_TOKEN"):
        assert f"configuration warning: {names} holds a secret shorter than 16" in output
    assert "short" not in output.replace("shorter", "")
