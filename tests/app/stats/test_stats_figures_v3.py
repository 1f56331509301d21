"""Short abandons, service levels, callback recovery and agents' ring-no-answer:
each figure against a table of calls counted by hand (docs/stats.md's definitions)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

import app.stats.figures as stats
from app.stats.figure_rules import AbandonsInServiceLevel, FigureRules
from tests.app.stats.test_stats import ADMIN, get, iso, put, record, window

CALLER_A, CALLER_B, CALLER_C = "+15550000001", "+15550000002", "+15550000003"


def abandoned(call: str, at: int, wait: float, caller: str, **kw: Any) -> dict[str, Any]:
    short = wait <= 5.0  # the tenant's threshold, as the worker would have decided it
    made = record("missed", reason="abandoned", call=call, at=at, wait=wait, talk=None,
                  caller=caller, **kw)  # fmt: skip
    return {**made, "short_abandon": short}


def called_back(call: str, at: int, dialed: str, placed: str) -> dict[str, Any]:
    """An outbound call from 103 to ``dialed``, placed at ``placed`` (ISO), decided at ``at``."""
    made = record("outbound", call=call, at=at, extension="103", dialed=dialed, wait=0, talk=60,
                  caller=None, did=None, queue=None)  # fmt: skip
    return {**made, "started_at": placed}


def ended(rec: dict[str, Any], minutes: float) -> str:
    """``minutes`` after ``rec``'s end, as ISO text."""
    moment = stats.parse_instant(rec["ended_at"]) + timedelta(minutes=minutes)
    return iso(moment)


C4 = abandoned("c4", 400, 5.0, CALLER_A, queue="600")  # short: the edge counts
C5 = abandoned("c5", 500, 5.001, CALLER_B, queue="600", rang=("102",))  # just over: not short
C6 = {
    **record("missed", reason="no_answer", call="c6", at=600, wait=30, talk=None,
             caller=CALLER_C, queue=None, rang=("101", "102")),
    "short_abandon": False,
}  # fmt: skip
CALLS = [
    record(call="c1", at=100, wait=10, answered_by="101", queue="600", rang=("101",)),
    record(call="c2", at=200, wait=25, answered_by="102", queue="600", rang=("101", "102")),
    record(call="c3", at=300, wait=45, answered_by="101", queue="601", rang=("101",)),
    C4,
    C5,
    C6,
    record("voicemail", call="c7", at=700, wait=20, voicemail_box="102", queue="601",
           rang=("102",)),
    record(call="c8", at=800, wait=None, answered_by="101", queue="601"),  # answer time unknown
    called_back("o1", 5000, CALLER_A, ended(C4, 10)),  # 10 min after the miss
    called_back("o2", 5100, "5550000003", ended(C6, 30)),  # 30 min; written without +1
]  # fmt: skip
CALLS = [{**c, "short_abandon": c.get("short_abandon", False)} for c in CALLS]
RULES = FigureRules((20.0, 30.0, 60.0), AbandonsInServiceLevel.COUNT, (15.0, 60.0))


def levels(within: tuple[int, int, int], denominator: int) -> dict[str, Any]:
    return {
        key: {
            "answered_within": n,
            "denominator": denominator,
            "value": round(n / denominator, 4) if denominator else None,
        }
        for key, n in zip(("20", "30", "60"), within, strict=True)
    }


def recovery(missed: int, back: int, in15: int, in60: int, avg: float | None) -> dict[str, Any]:
    return {
        "missed_callers": missed,
        "called_back": back,
        "called_back_within": {"15": in15, "60": in60},
        "avg_callback_seconds": avg,
    }


def summary(group_by: str | None, rules: FigureRules = RULES) -> dict[str, Any]:
    return stats.summarize(stats.calls_in_window(CALLS), group_by, rules, lambda tenant: "1")


# Answered within 20: c1; 30: c1, c2; 60: c1, c2, c3 (c8's wait is unknown).
# Offered 8, abandoned 2 (c4 short, c5 not).
@pytest.mark.parametrize(
    ("sl_abandons", "denominator"),
    [
        (AbandonsInServiceLevel.COUNT, 8),
        (AbandonsInServiceLevel.EXCLUDE_SHORT, 7),
        (AbandonsInServiceLevel.EXCLUDE, 6),
    ],
)
def test_service_levels_at_each_threshold(
    sl_abandons: AbandonsInServiceLevel, denominator: int
) -> None:
    totals = summary(None, FigureRules((20.0, 30.0, 60.0), sl_abandons))["totals"]
    assert totals["service_levels"] == levels((1, 2, 3), denominator)
    assert totals["service_level"] == round(1 / denominator, 4)
    assert totals["answered_in_service_level"] == 1
    assert (totals["offered"], totals["abandoned"], totals["short_abandoned"]) == (8, 2, 1)


def test_callback_recovery_in_the_totals() -> None:
    """Missed callers: c4 (A), c5 (B), c6 (C); A called back after 10 min, C after 30."""
    assert summary(None)["totals"]["callbacks"] == recovery(3, 2, 1, 2, 1200.0)


def test_figures_per_queue() -> None:
    groups = {g["key"]: g for g in summary("queue")["groups"]}
    assert list(groups) == ["600", "601", None]
    assert groups["600"]["short_abandoned"] == 1
    assert groups["600"]["service_levels"] == levels((1, 2, 2), 4)
    assert groups["600"]["callbacks"] == recovery(2, 1, 1, 1, 600.0)
    assert groups["601"]["service_levels"] == levels((0, 0, 1), 3)
    assert groups["601"]["callbacks"] == recovery(0, 0, 0, 0, None)
    assert groups[None]["callbacks"] == recovery(1, 1, 0, 1, 1800.0)
    assert "rang_unanswered" not in groups["600"]


def test_agents_ring_no_answer_and_answer_rate() -> None:
    """101: answered c1, c3, c8; rang on c2 (102 took it) and c6 (missed): 3 / 5.
    102: answered c2; rang on c5 (abandoned), c6, c7 (its own voicemail): 1 / 4.
    103 placed the call-backs: nothing presented to it."""
    groups = {g["key"]: g for g in summary("extension")["groups"]}
    assert list(groups) == ["101", "102", "103", None]
    assert (groups["101"]["rang_unanswered"], groups["101"]["answer_rate"]) == (2, 0.6)
    assert (groups["102"]["rang_unanswered"], groups["102"]["answer_rate"]) == (3, 0.25)
    assert (groups["103"]["rang_unanswered"], groups["103"]["answer_rate"]) == (0, None)
    assert groups["101"]["service_levels"]["20"] == {
        "answered_within": 1, "denominator": 5, "value": 0.2}  # fmt: skip
    # c4 rang nobody: its callback is under no extension.
    assert groups[None]["callbacks"] == recovery(1, 1, 1, 1, 600.0)
    assert groups["102"]["callbacks"] == recovery(2, 1, 0, 1, 1800.0)


def test_the_api_answers_the_same(client: FlaskClient, redis_client: fakeredis.FakeRedis) -> None:
    for rec in CALLS:
        put(redis_client, rec)
    query = "service_level_seconds=20,30,60&sl_abandons=exclude_short&callback_minutes=15,60"
    body = get(client, f"{window(0, 6000)}&group_by=queue&{query}")
    assert body["window"]["service_level_thresholds"] == [20.0, 30.0, 60.0]
    assert (body["window"]["sl_abandons"], body["window"]["service_level_seconds"]) == (
        "exclude_short", 20.0)  # fmt: skip
    assert body["totals"]["service_levels"] == levels((1, 2, 3), 7)
    assert body["totals"]["callbacks"] == recovery(3, 2, 1, 2, 1200.0)
    expected = summary("queue", FigureRules((20, 30, 60), AbandonsInServiceLevel.EXCLUDE_SHORT))
    assert body["groups"] == expected["groups"]


def test_one_threshold_keeps_the_v2_answer(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    for rec in CALLS:
        put(redis_client, rec)
    body = get(client, f"{window(0, 6000)}&service_level_seconds=30")
    assert body["totals"]["service_level"] == 0.25
    assert list(body["totals"]["service_levels"]) == ["30"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("service_level_seconds=10,20,30,40,50,60", "or up to 5 of them"),
        ("service_level_seconds=20,,30", "service_level_seconds must be a number"),
        ("service_level_seconds=nan", "service_level_seconds must be a number"),
        ("sl_abandons=sometimes", "sl_abandons must be one of"),
        ("callback_minutes=-5", "callback_minutes must be a number"),
    ],
)
def test_bad_rules_answer_400(client: FlaskClient, query: str, message: str) -> None:
    answer = client.get(f"/v1/stats?{query}", headers=ADMIN)
    assert answer.status_code == 400
    assert message in answer.get_json()["error"]
