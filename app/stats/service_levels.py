"""Short abandons, service levels at several thresholds, and agents' ring-no-answer:
the figures counted beside ``figures.Tally``, call by call.

Pure, no I/O. Definitions (docs/stats.md):

- ``short_abandoned``: inbound calls whose record says ``short_abandon`` (the
  worker decided it with the tenant's ``short_abandon_seconds``);
- ``service_levels[t]``: ``answered_within`` = answered with a known wait of at
  most ``t`` seconds; ``denominator`` = offered, less short abandons
  (``exclude_short``) or every abandon (``exclude``); ``value`` = their ratio,
  null when the denominator is 0;
- grouped by extension, ``rang_unanswered`` = calls that rang this extension
  and it did not answer; ``answer_rate`` = answered / (answered +
  rang_unanswered), the calls presented to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.stats.figure_rules import AbandonsInServiceLevel, FigureRules, threshold_key
from statemachine.outcome import OutcomeRecord


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _number(party: Any) -> str | None:
    if isinstance(party, dict) and party.get("number"):
        return str(party["number"])
    return None


@dataclass
class LevelTally:
    """Short abandons, answers within each threshold, and (per extension) ring-no-answer."""

    rules: FigureRules
    offered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    answered: int = 0
    rang_unanswered: int = 0
    answered_within: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.answered_within = [0] * len(self.rules.service_level_seconds)

    def add(self, record: OutcomeRecord, extension: str | None = None) -> None:
        """Count one call (``extension``: as that extension's, as ``Tally.add`` does)."""
        if record.get("direction") == "outbound":
            return
        self.offered += 1
        if record.get("missed_reason") == "abandoned" and record.get("outcome") == "missed":
            self.abandoned += 1
            if record.get("short_abandon"):
                self.short_abandoned += 1
        answerer = _number(record.get("answered_by"))
        answered = record.get("outcome") == "answered" and (
            extension is None or answerer == extension
        )
        if extension is not None:
            rang = {_number(party) for party in record.get("rang") or []}
            if extension in rang and not answered:
                self.rang_unanswered += 1
        if not answered:
            return
        self.answered += 1
        wait = record.get("wait_seconds")
        if wait is None:  # an answer time unknown is never within the service level
            return
        for index, threshold in enumerate(self.rules.service_level_seconds):
            if wait <= threshold:
                self.answered_within[index] += 1

    def merge(self, other: LevelTally) -> None:
        """Add ``other``'s calls (counted under the same rules)."""
        self.offered += other.offered
        self.abandoned += other.abandoned
        self.short_abandoned += other.short_abandoned
        self.answered += other.answered
        self.rang_unanswered += other.rang_unanswered
        self.answered_within = [
            mine + theirs
            for mine, theirs in zip(self.answered_within, other.answered_within, strict=True)
        ]

    def denominator(self) -> int:
        if self.rules.sl_abandons is AbandonsInServiceLevel.EXCLUDE:
            return self.offered - self.abandoned
        if self.rules.sl_abandons is AbandonsInServiceLevel.EXCLUDE_SHORT:
            return self.offered - self.short_abandoned
        return self.offered

    def service_levels(self) -> dict[str, dict[str, Any]]:
        whole = self.denominator()
        return {
            threshold_key(threshold): {
                "answered_within": within,
                "denominator": whole,
                "value": _ratio(within, whole),
            }
            for threshold, within in zip(
                self.rules.service_level_seconds, self.answered_within, strict=True
            )
        }

    def as_json(self, *, per_extension: bool) -> dict[str, Any]:
        """The figures, ``service_level`` and ``answered_in_service_level`` those
        of the first threshold (they replace ``Tally``'s)."""
        levels = self.service_levels()
        first = levels[threshold_key(self.rules.service_level_seconds[0])]
        figures: dict[str, Any] = {
            "short_abandoned": self.short_abandoned,
            "service_level": first["value"],
            "answered_in_service_level": first["answered_within"],
            "service_levels": levels,
        }
        if per_extension:
            figures["rang_unanswered"] = self.rang_unanswered
            figures["answer_rate"] = _ratio(self.answered, self.answered + self.rang_unanswered)
        return figures
