"""Callback recovery: of a group's missed callers, how many were called back and how fast.

Pure, no I/O. The callback items are those of the callbacks resource
(``statemachine.callbacks.callback_items`` over each call's contact, as
``/v1/callbacks`` derives them), made from the window's calls: a missed caller
is an item opened by a call of the window (abandoned or no answer, with a
number), called back when an outbound call dialled the number at or after the
miss, before the window's end. Definitions in docs/stats.md ("Callback
recovery").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.stats.figure_rules import FigureRules, threshold_key
from statemachine.callbacks import (
    Contact,
    ContactKind,
    ResolutionKind,
    callback_items,
    contact_of_record,
)
from statemachine.outcome import OutcomeRecord

Key = str | None
US = 1_000_000


@dataclass
class CallbackTally:
    """One group's callback figures."""

    callback_minutes: tuple[float, ...]
    missed_callers: int = 0
    called_back: int = 0
    delay_total_us: int = 0
    within: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.within = [0] * len(self.callback_minutes)

    def add(self, delay_seconds: float | None) -> None:
        """One missed caller; ``delay_seconds``: miss to call-back, None if not called back."""
        self.missed_callers += 1
        if delay_seconds is None:
            return
        self.called_back += 1
        self.delay_total_us += round(delay_seconds * US)
        for index, minutes in enumerate(self.callback_minutes):
            if delay_seconds <= minutes * 60:
                self.within[index] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "missed_callers": self.missed_callers,
            "called_back": self.called_back,
            "called_back_within": {
                threshold_key(minutes): n
                for minutes, n in zip(self.callback_minutes, self.within, strict=True)
            },
            "avg_callback_seconds": round(self.delay_total_us / self.called_back / US, 1)
            if self.called_back
            else None,
        }


class CallbackRecovery:
    """Collects the window's contacts call by call, then tallies each group's missed callers.

    ``country_of(tenant)``: the country a tenant's numbers are read in (as the
    callbacks resource reads them).
    """

    def __init__(self, rules: FigureRules, country_of: Callable[[str], str]) -> None:
        self.rules = rules
        self.country_of = country_of
        self.contacts: dict[str, list[Contact]] = {}
        self.groups_of_miss: dict[tuple[str, str], Sequence[Key]] = {}

    def add(self, call: OutcomeRecord, keys: Sequence[Key] | None) -> None:
        """A call of the window; ``keys``: the groups it is counted in (None: ungrouped)."""
        tenant = call["tenant_id"]
        try:
            contact = contact_of_record(call, self.country_of(tenant))
        except (KeyError, ValueError):
            return
        if contact is None:
            return
        self.contacts.setdefault(tenant, []).append(contact)
        if keys is not None and contact.kind is ContactKind.MISSED:
            self.groups_of_miss[(tenant, call["call_uuid"])] = keys

    def tally(self) -> tuple[CallbackTally, dict[Key, CallbackTally]]:
        """(the totals' figures, each group's)."""
        totals = CallbackTally(self.rules.callback_minutes)
        groups: dict[Key, CallbackTally] = {}
        for tenant, contacts in self.contacts.items():
            for item in callback_items(tenant, contacts):
                called = item.resolution
                delay = (
                    (called.at - item.missed_at).total_seconds()
                    if called is not None and called.kind is ResolutionKind.CALLED_BACK
                    else None
                )
                totals.add(delay)
                for key in self.groups_of_miss.get((tenant, item.missed_call_uuid), ()):
                    groups.setdefault(key, CallbackTally(self.rules.callback_minutes)).add(delay)
        return totals, groups
