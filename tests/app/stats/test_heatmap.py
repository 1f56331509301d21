"""GET /v1/stats/heatmap: weekday x local hour, across both daylight-saving changes,
against a table of calls counted by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from core.settings import Settings
from tests.app.stats.test_stats import put, record, window
from tests.conftest import API_KEY, TENANT_KEY

T1 = {"Authorization": f"Bearer {TENANT_KEY}"}
SUNDAY, MONDAY = 6, 0


def started(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# New York: 2026-03-08 02:00 EST jumps to 03:00 EDT; 2026-11-01 02:00 EDT falls back to 01:00 EST.
CALLS = [
    record(call="a", at=10, started=started("2026-03-08T06:30")),  # Sun 01:30 EST
    record(call="b", at=20, started=started("2026-03-08T07:30")),  # Sun 03:30 EDT (no 02:00)
    record(call="c", at=30, started=started("2026-11-01T05:30")),  # Sun 01:30 EDT
    record(call="d", at=40, started=started("2026-11-01T06:30"), wait=25),  # Sun 01:30 EST again
    record(call="e", at=50, started=started("2026-03-09T13:00"), wait=10),  # Mon 09:00 EDT
    record("missed", reason="abandoned", call="f", at=60, started=started("2026-03-09T13:59"),
           talk=None),  # Mon 09:59 EDT
    record("outbound", call="g", at=70, extension="101", dialed="+15559876543",
           started=started("2026-03-09T13:10")),  # never offered
]  # fmt: skip


@pytest.fixture
def app(redis_client: fakeredis.FakeRedis) -> Flask:
    settings = Settings(
        api_keys={API_KEY: "*", TENANT_KEY: "t1"}, default_timezone="America/New_York"
    )
    return create_app(
        {"TESTING": True, "REDIS_CLIENT": redis_client, "CALLSTATE_SETTINGS": settings}
    )


def cells(client: FlaskClient, metric: str) -> list[list[Any]]:
    answer = client.get(f"/v1/stats/heatmap?{window(0, 100)}&metric={metric}", headers=T1)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert (body["timezone"], body["metric"]) == ("America/New_York", metric)
    assert len(body["cells"]) == 7 and all(len(day) == 24 for day in body["cells"])
    return list(body["cells"])


def filled(grid: list[list[Any]]) -> dict[tuple[int, int], Any]:
    return {
        (day, hour): value
        for day, hours in enumerate(grid)
        for hour, value in enumerate(hours)
        if value is not None
    }


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("offered", {(SUNDAY, 1): 3, (SUNDAY, 3): 1, (MONDAY, 9): 2}),
        ("answered", {(SUNDAY, 1): 3, (SUNDAY, 3): 1, (MONDAY, 9): 1}),
        ("missed", {(SUNDAY, 1): 0, (SUNDAY, 3): 0, (MONDAY, 9): 1}),
        # 20 s: d waited 25 s; f abandoned counts against it (sl_abandons=count)
        ("service_level", {(SUNDAY, 1): 0.6667, (SUNDAY, 3): 1.0, (MONDAY, 9): 0.5}),
    ],
)
def test_each_metric_by_local_weekday_and_hour(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, metric: str, expected: dict[Any, Any]
) -> None:
    for rec in CALLS:
        put(redis_client, rec)
    assert filled(cells(client, metric)) == expected


def test_service_level_takes_the_asked_threshold_and_abandons_rule(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    for rec in CALLS:
        put(redis_client, rec)
    query = f"{window(0, 100)}&metric=service_level&service_level_seconds=30&sl_abandons=exclude"
    body = client.get(f"/v1/stats/heatmap?{query}", headers=T1).get_json()
    assert filled(body["cells"]) == {(SUNDAY, 1): 1.0, (SUNDAY, 3): 1.0, (MONDAY, 9): 1.0}


def test_an_unknown_metric_is_400(client: FlaskClient) -> None:
    answer = client.get("/v1/stats/heatmap?metric=talk", headers=T1)
    assert answer.status_code == 400
    assert "metric must be one of" in answer.get_json()["error"]


def test_the_heatmap_needs_a_key(client: FlaskClient) -> None:
    assert client.get("/v1/stats/heatmap").status_code == 401
