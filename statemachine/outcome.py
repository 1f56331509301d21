"""Outcome rules: what happened to a call, decided from its facts alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, NotRequired, TypedDict

from statemachine.state import CallView, Direction, wait_and_talk


@dataclass(frozen=True, order=True)
class OutcomeId:
    """An outcome record's id, ``<us>-<seq>`` (``-<seq>`` optional, meaning 0): the
    microsecond it was published at and a sequence within it. Ordered as the
    feed is, so ids from several streams merge and a reader resumes after one."""

    micros: int
    seq: int = 0

    @classmethod
    def parse(cls, text: str) -> OutcomeId:
        """Read an id. Raises ValueError for anything but ``<digits>[-<digits>]``."""
        us, sep, seq = text.partition("-")
        if not _digits(us) or (sep and not _digits(seq)):
            raise ValueError(f"not an outcome id: {text!r}")
        return cls(int(us), int(seq or 0))

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> OutcomeId:
        """The id of an outcome record. Raises KeyError/ValueError."""
        return cls.parse(str(record["id"]))

    def __str__(self) -> str:
        return f"{self.micros}-{self.seq}"


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class Outcome(str, Enum):
    ANSWERED = "answered"
    VOICEMAIL = "voicemail"
    MISSED = "missed"
    OUTBOUND = "outbound"


class MissedReason(str, Enum):
    ABANDONED = "abandoned"  # the caller hung up while queued
    NO_ANSWER = "no_answer"  # extensions (or a ring group) rang, nobody answered
    UNROUTED = "unrouted"  # never queued, never rung


def classify(view: CallView) -> tuple[Outcome, MissedReason | None]:
    """Apply the contract's rules, in order: answered > voicemail > missed.

    A queued call that rang agents and was then given up by the caller counts as
    abandoned, as in Asterisk's queue_log: the caller left the queue unanswered.
    """
    if view.direction is Direction.OUTBOUND:
        return Outcome.OUTBOUND, None
    if view.answered_by is not None:
        return Outcome.ANSWERED, None
    if view.voicemail_box is not None:
        return Outcome.VOICEMAIL, None
    if view.queue is not None:
        return Outcome.MISSED, MissedReason.ABANDONED
    if view.rang or view.ring_group is not None:
        return Outcome.MISSED, MissedReason.NO_ANSWER
    return Outcome.MISSED, MissedReason.UNROUTED


class OutcomeBody(TypedDict):
    """What was decided about an ended call (``outcome_record``), before the store
    numbers it. Parties are ``{"number", "name"}``, a DID also has ``description``
    and ``group``; times are ISO-8601 UTC; ``outcome``, ``missed_reason``,
    ``direction`` and ``ended_by`` are their enums' values."""

    call_uuid: str
    tenant_id: str
    container_id: str
    direction: str
    outcome: str
    missed_reason: str | None
    answered_by: dict[str, str] | None
    voicemail_box: dict[str, str] | None
    caller: dict[str, str] | None
    did: dict[str, str] | None
    number_dialed: str | None
    extension: dict[str, str] | None
    queue: str | None
    ring_group: str | None
    rang: list[dict[str, str]]
    started_at: str | None
    answered_at: str | None
    ended_at: str
    wait_seconds: float | None
    talk_seconds: float | None
    ended_by: str
    short_abandon: bool


class OutcomeRecord(OutcomeBody):
    """An outcome record as published: its body with the call's ``revision`` (1,
    then 2... per change), and ``id`` (an OutcomeId's text), the feed entry's id,
    which a record read from the feed carries."""

    revision: int
    id: NotRequired[str]


# What counts as a short abandon when the tenant's threshold is not passed in
# (SHORT_ABANDON_SECONDS' default).
DEFAULT_SHORT_ABANDON_SECONDS = 5.0


def is_short_abandon(
    reason: MissedReason | None, wait_seconds: float | None, short_abandon_seconds: float
) -> bool:
    """Abandoned within ``short_abandon_seconds`` of the call's start (the edge
    included); a call whose start is unknown is never short."""
    return (
        reason is MissedReason.ABANDONED
        and wait_seconds is not None
        and wait_seconds <= short_abandon_seconds
    )


def outcome_record(
    view: CallView, short_abandon_seconds: float = DEFAULT_SHORT_ABANDON_SECONDS
) -> OutcomeBody:
    """Build the outcome record of an ended call, without ``id`` and ``revision``.

    Those two are the store's: it numbers a record only if it differs from the
    previous one. ``short_abandon_seconds`` is the tenant's threshold (the
    caller looks it up: the rules stay free of I/O). Raises ValueError if the
    call has not ended.
    """
    if view.ended_at is None or view.ended_by is None:
        raise ValueError("a call that has not ended has no outcome yet")
    outcome, reason = classify(view)
    wait_seconds, talk_seconds = wait_and_talk(view)
    call = view.as_json()
    answered_by = view.answered_by
    voicemail_box = view.voicemail_box
    return {
        "call_uuid": call["call_uuid"],
        "tenant_id": call["tenant_id"],
        "container_id": call["container_id"],
        "direction": call["direction"],
        "outcome": outcome.value,
        "missed_reason": reason.value if reason else None,
        "answered_by": answered_by.as_json() if answered_by else None,
        "voicemail_box": voicemail_box.as_json()
        if voicemail_box and outcome is Outcome.VOICEMAIL
        else None,
        "caller": call["caller"],
        "did": call["did"],
        "number_dialed": call["number_dialed"],
        "extension": call["extension"],
        "queue": call["queue"],
        "ring_group": call["ring_group"],
        "rang": call["rang"],
        "started_at": call["started_at"],
        "answered_at": call["answered_at"],
        "ended_at": call["ended_at"],
        "wait_seconds": wait_seconds,
        "talk_seconds": talk_seconds,
        "ended_by": view.ended_by.value,
        "short_abandon": is_short_abandon(reason, wait_seconds, short_abandon_seconds),
    }
