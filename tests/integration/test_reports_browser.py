"""The reports page in a real headless Chromium against the real service, on a week
of seeded outcome records: every figure the page shows (tiles, daily bars,
service-level trend, heatmap, per-queue and per-extension tables and their CSV)
equals /v1/stats and /v1/stats/heatmap for the same range, read over HTTP.
The run leaves a screenshot for a person to look at: tests/artifacts/reports.png.

Needs Debian's chromium and chromium-driver, like the wallboard's browser test
(skipped loudly without them).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from bench.history_data import outcome_records
from bench.service import Service
from core.store import TENANTS_KEY, dumps, outcomes_key
from tests.integration.test_wallboard_browser import ARTIFACTS, MISSING, browser

__all__ = ["browser"]  # the fixture, shared with the wallboard's test

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason="!!! REPORTS BROWSER TEST SKIPPED: missing " + ", ".join(MISSING) + " !!!",
)
TENANT_KEY = "key-acme"
ZONE = "Europe/Berlin"


@pytest.fixture
def service() -> Iterator[Service]:
    env = {"API_KEYS": f"bench-key:*,{TENANT_KEY}:acme", "DEFAULT_TIMEZONE": ZONE}
    with Service(env).start(workers=0) as running:
        yield running


def seed(service: Service) -> int:
    """Six days of one tenant's calls, decided in the past, into its outcome stream."""
    client = service.redis.client()
    start = datetime.now(UTC) - timedelta(days=6, hours=12)
    count = 0
    for record in outcome_records(500, tenants=("acme",), start=start, spacing_seconds=1000):
        body = {k: v for k, v in record.items() if k != "id"}
        client.xadd(outcomes_key("acme"), {"record": dumps(body)}, id=record["id"])
        count += 1
    client.sadd(TENANTS_KEY, "acme")
    return count


def api(service: Service, path: str, args: dict[str, str]) -> Any:
    request = urllib.request.Request(
        f"{service.base_url}{path}?{urlencode(args)}",
        headers={"Authorization": f"Bearer {TENANT_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def script(driver: Any, text: str) -> Any:
    return driver.execute_script(text)


def table(driver: Any, table_id: str) -> list[dict[str, Any]]:
    """Each body row of a table: {field: the JSON value the cell shows}."""
    rows = script(
        driver,
        f"""return [...document.querySelectorAll('#{table_id} tbody tr')].map((tr) =>
          Object.fromEntries([...tr.querySelectorAll('td')].map((td) =>
            [td.dataset.field, td.dataset.value])));""",
    )
    return [{k: json.loads(v) for k, v in row.items()} for row in rows]


def pick(group: dict[str, Any], path: str) -> Any:
    value: Any = group
    for part in path.split("."):
        value = None if value is None else value.get(part)
    return value


def test_the_page_shows_what_the_api_answers(service: Service, browser: Any) -> None:
    seed(service)
    browser.get(f"{service.base_url}/reports#key={TENANT_KEY}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = script(browser, "return document.getElementById('status').dataset.state")
        if state in ("ready", "error"):
            break
        time.sleep(0.1)
    assert state == "ready", script(browser, "return document.body.innerText")
    loaded = json.loads(script(browser, "return document.body.dataset.loaded"))
    # The default range: the last 7 days, from a midnight in the tenant's zone.
    start = datetime.fromisoformat(loaded["from"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(loaded["to"].replace("Z", "+00:00"))
    assert (start.astimezone(ZoneInfo(ZONE)).hour, (end - start).days) == (0, 7)
    assert "key=" not in browser.current_url

    by_day = api(service, "/v1/stats", {**loaded, "group_by": "day"})
    by_queue = api(service, "/v1/stats", {**loaded, "group_by": "queue"})
    by_extension = api(service, "/v1/stats", {**loaded, "group_by": "extension"})
    heat = api(service, "/v1/stats/heatmap", {**loaded, "metric": "offered"})
    assert by_queue["totals"]["offered"] > 100  # the seeded week is in the range

    daily = script(
        browser,
        """const c = Chart.getChart('daily'), t = Chart.getChart('sl-trend');
        return {labels: c.data.labels, sets: c.data.datasets.map((d) => [d.label, d.data]),
                trend: t.data.datasets[0].data};""",
    )
    assert daily["labels"] == [g["key"] for g in by_day["groups"]]
    assert daily["sets"] == [
        [name, [g[name] for g in by_day["groups"]]] for name in ("offered", "answered", "missed")
    ]
    assert daily["trend"] == [g["service_level"] for g in by_day["groups"]]

    for table_id, answer in (("by-queue", by_queue), ("by-extension", by_extension)):
        rows = table(browser, table_id)
        groups = [*answer["groups"], answer["totals"]]
        assert len(rows) == len(groups)
        for row, group in zip(rows, groups, strict=True):
            for path, value in row.items():
                if path != "key" or group is not answer["totals"]:
                    assert value == pick(group, path), (table_id, path, group.get("key"))
        csv_lines = script(browser, f"return window.reportsCsv('{table_id}')").splitlines()
        assert len(csv_lines) == len(groups) + 1
    assert table(browser, "by-extension")[0]["rang_unanswered"] is not None

    cells = script(
        browser,
        """return [...document.querySelectorAll('#heatmap tbody tr')].map((tr) =>
          [...tr.querySelectorAll('td')].map((td) => JSON.parse(td.dataset.value)));""",
    )
    assert cells == heat["cells"]
    offered_tile = script(
        browser, "return document.querySelector('[data-field=offered] .value').textContent"
    )
    assert offered_tile == str(by_queue["totals"]["offered"])

    errors = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "favicon" not in entry["message"]
    ]
    assert errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "reports.png"))
