"""A grouped answer's totals are those of the same calls ungrouped: summarize adds
the groups up at the end for the groupings that put each call in one group
(queue, did, hour, day, tenant), and counts them call by call for the others."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

import app.stats.figures as stats
from app.stats.figure_rules import AbandonsInServiceLevel, FigureRules
from bench.history_data import outcome_records

RULES = FigureRules(
    service_level_seconds=(10.0, 20.0, 60.0),
    sl_abandons=AbandonsInServiceLevel.EXCLUDE_SHORT,
    callback_minutes=(15.0, 60.0),
)


@pytest.fixture(scope="module")
def calls() -> list[stats.OutcomeRecord]:
    records = outcome_records(2000, tenants=("t1", "t2"), seed=7, spacing_seconds=30)
    return stats.calls_in_window(list(records))


@pytest.mark.parametrize("group_by", stats.GROUPINGS)
def test_the_totals_do_not_depend_on_the_grouping(
    calls: list[stats.OutcomeRecord], group_by: str
) -> None:
    zone = ZoneInfo("America/St_Johns")
    ungrouped = stats.summarize(calls, None, RULES, lambda tenant: "1", zone)
    grouped = stats.summarize(calls, group_by, RULES, lambda tenant: "1", zone)
    assert grouped["totals"] == ungrouped["totals"]
