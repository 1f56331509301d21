"""A tenant's day in /v1/stats: the default window from local midnight, hour and day
groups in local time (DST days of 23 and 25 hours, a half-hour zone), ``tz=``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from flask.testing import FlaskClient

from core.local_time import local_date, local_hour, local_midnight
from statemachine.events import isoformat, micros
from tests.app.stats.test_stats import ADMIN, T1, iso, put, record

CHICAGO = ZoneInfo("America/Chicago")


def started_at(redis_client: fakeredis.FakeRedis, call: str, start: datetime) -> None:
    """A call of t1 that started at ``start`` and was decided 65 s later."""
    rec = record(call=call, started=start)
    rec["id"] = f"{micros(start) + 65_000_000}-0"
    put(redis_client, rec)


def stats(client: FlaskClient, query: str, headers: dict[str, str] = T1) -> Any:
    answer = client.get(f"/v1/stats?{query}", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def keys(body: Any) -> list[str]:
    return [group["key"] for group in body["groups"]]


@pytest.fixture
def chicago(client: FlaskClient) -> None:
    """Tenant t1 onboarded with its day in Chicago."""
    made = client.post(
        "/v1/tenants", json={"id": "t1", "timezone": "America/Chicago"}, headers=ADMIN
    )
    assert made.status_code == 201


def between(start: datetime, end: datetime) -> str:
    return f"from={iso(start)}&to={iso(end)}"


@pytest.mark.usefixtures("chicago")
def test_a_2330_utc_call_is_in_hour_18_in_summer_and_17_in_winter(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """Chicago is UTC-5 in July (CDT) and UTC-6 in January (CST)."""
    started_at(redis_client, "winter", datetime(2026, 1, 5, 23, 30, tzinfo=UTC))
    started_at(redis_client, "summer", datetime(2026, 7, 1, 23, 30, tzinfo=UTC))
    body = stats(
        client,
        between(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC))
        + "&group_by=hour",
    )
    assert keys(body) == ["2026-01-05T17:00:00-06:00", "2026-07-01T18:00:00-05:00"]
    assert body["window"]["timezone"] == "America/Chicago"


@pytest.mark.usefixtures("chicago")
def test_the_default_window_starts_at_the_tenants_midnight(client: FlaskClient) -> None:
    """No from: the window starts at today's midnight in Chicago, not UTC's."""
    body = stats(client, "")
    assert body["window"]["from"] == isoformat(local_midnight(datetime.now(UTC), CHICAGO))
    assert body["window"]["timezone"] == "America/Chicago"
    every_tenant = stats(client, "", headers=ADMIN)
    assert every_tenant["window"]["timezone"] == "UTC"


@pytest.mark.parametrize(("day", "hours"), [((2026, 3, 8), 23), ((2026, 11, 1), 25)])
def test_a_dst_day_has_23_or_25_hours(day: tuple[int, int, int], hours: int) -> None:
    """From one local midnight to the next is the day's real length."""
    noon = datetime(*day, 18, tzinfo=UTC)
    start = local_midnight(noon, CHICAGO)
    end = local_midnight(noon + timedelta(days=1), CHICAGO)
    assert end - start == timedelta(hours=hours)
    last_hour = end - timedelta(minutes=30)
    assert (
        local_date(start, CHICAGO)
        == local_date(last_hour, CHICAGO)
        == "{:04d}-{:02d}-{:02d}".format(*day)
    )
    distinct = {local_hour(start + timedelta(hours=h), CHICAGO) for h in range(hours)}
    assert len(distinct) == hours


@pytest.mark.usefixtures("chicago")
def test_the_hour_repeated_when_clocks_go_back_is_two_groups(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """01:30 CDT and 01:30 CST on 2026-11-01 are an hour apart: two hours, one date."""
    started_at(redis_client, "first", datetime(2026, 11, 1, 6, 30, tzinfo=UTC))
    started_at(redis_client, "second", datetime(2026, 11, 1, 7, 30, tzinfo=UTC))
    window = between(datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC))
    hourly = stats(client, window + "&group_by=hour")
    assert keys(hourly) == ["2026-11-01T01:00:00-05:00", "2026-11-01T01:00:00-06:00"]
    daily = stats(client, window + "&group_by=day")
    assert [(g["key"], g["offered"]) for g in daily["groups"]] == [("2026-11-01", 2)]


@pytest.mark.usefixtures("chicago")
def test_tz_overrides_with_a_half_hour_zone(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """tz=Asia/Kolkata (UTC+5:30): 10:45 UTC is in the 16:00 hour; 19:00 UTC is tomorrow."""
    started_at(redis_client, "day", datetime(2026, 2, 1, 10, 45, tzinfo=UTC))
    started_at(redis_client, "night", datetime(2026, 2, 1, 19, 0, tzinfo=UTC))
    window = between(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC))
    hourly = stats(client, window + "&group_by=hour&tz=Asia/Kolkata")
    assert keys(hourly) == ["2026-02-01T16:00:00+05:30", "2026-02-02T00:00:00+05:30"]
    assert hourly["window"]["timezone"] == "Asia/Kolkata"
    daily = stats(client, window + "&group_by=day&tz=Asia/Kolkata")
    assert keys(daily) == ["2026-02-01", "2026-02-02"]
    assert keys(stats(client, window + "&group_by=day")) == ["2026-02-01"]


def test_an_unknown_tz_is_400(client: FlaskClient) -> None:
    answer = client.get("/v1/stats?tz=Mars/Olympus", headers=ADMIN)
    assert answer.status_code == 400
    assert "tz" in answer.get_json()["error"]


@pytest.mark.usefixtures("chicago")
def test_the_extension_boards_today_is_the_tenants(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The board computes today from the tenant's midnight (tz= overrides) and says whose."""
    import app.supervisor.routes as supervisor

    zones: list[str] = []
    real = supervisor.board

    def noting(store: Any, tenant: str, now: datetime, zone: ZoneInfo) -> Any:
        zones.append(zone.key)
        return real(store, tenant, now, zone)

    monkeypatch.setattr(supervisor, "board", noting)
    answer = client.get("/v1/extensions/live", headers=T1).get_json()
    assert answer["timezone"] == "America/Chicago" and zones == ["America/Chicago"]
    other = client.get("/v1/extensions/live?tz=Asia/Kolkata", headers=T1).get_json()
    assert other["timezone"] == "Asia/Kolkata" and zones[-1] == "Asia/Kolkata"
    every = client.get("/v1/extensions/live?tenant_id=t1", headers=ADMIN).get_json()
    assert every["timezone"] == "America/Chicago"
    assert client.get("/v1/extensions/live?tz=Nowhere", headers=T1).status_code == 400
