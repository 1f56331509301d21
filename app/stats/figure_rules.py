"""How the call-centre figures are counted, as a request asks for them: the
service-level thresholds and what the service level does with abandons, and
the callback delays counted.

The definitions themselves are in docs/stats.md ("Service levels",
"Callback recovery", "Agents"); the figures in app/stats/service_levels.py and
app/stats/callback_figures.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any

from core.settings import Settings
from core.store import Store
from core.tenant_settings import for_tenant

MAX_THRESHOLDS = 5
DEFAULT_CALLBACK_MINUTES = (15.0, 60.0)


class AbandonsInServiceLevel(str, Enum):
    """What the service level's denominator does with abandoned calls."""

    COUNT = "count"  # every offered call (v2; Connect's "service level X", queue_log's Perf2)
    EXCLUDE_SHORT = "exclude_short"  # offered less short abandons (Genesys' switch)
    EXCLUDE = "exclude"  # offered less every abandon (queue_log's ServicelevelPerf)


@dataclass(frozen=True)
class FigureRules:
    """The thresholds one answer is counted with."""

    service_level_seconds: tuple[float, ...] = (20.0,)
    sl_abandons: AbandonsInServiceLevel = AbandonsInServiceLevel.COUNT
    callback_minutes: tuple[float, ...] = DEFAULT_CALLBACK_MINUTES

    def __post_init__(self) -> None:
        if not 1 <= len(self.service_level_seconds) <= MAX_THRESHOLDS:
            raise ValueError(f"between 1 and {MAX_THRESHOLDS} service-level thresholds")
        if len(self.callback_minutes) > MAX_THRESHOLDS:
            raise ValueError(f"at most {MAX_THRESHOLDS} callback delays")

    @classmethod
    def of(cls, rules: FigureRules | float) -> FigureRules:
        """``rules``, or the v2 rules of one service-level threshold."""
        return rules if isinstance(rules, FigureRules) else cls((float(rules),))


def threshold_key(value: float) -> str:
    """A threshold as an answer's key: ``20``, ``7.5`` (as it is written, no ``.0``)."""
    return f"{value:g}"


def figure_rules(
    store: Store, settings: Settings, tenants: Sequence[str], args: Mapping[str, Any]
) -> tuple[FigureRules, Callable[[str], str]]:
    """The rules a stats request asked for (``args`` as parsed), and each tenant's
    country. The service level defaults to the tenant's when one tenant is asked
    for, else to the deployment's."""
    default = (
        for_tenant(store, settings, tenants[0]).service_level_seconds
        if len(tenants) == 1
        else settings.service_level_seconds
    )
    rules = FigureRules(
        tuple(args.get("service_level_seconds") or (default,)),
        AbandonsInServiceLevel(args.get("sl_abandons") or AbandonsInServiceLevel.COUNT.value),
        tuple(args.get("callback_minutes", DEFAULT_CALLBACK_MINUTES)),
    )

    @cache
    def country_of(tenant: str) -> str:
        return for_tenant(store, settings, tenant).country

    return rules, country_of
