"""Pure functions over outcome records: what the history tables store of each.

An outcome record is the JSON object the outcome streams carry (the
contract's "Outcome records", with ``id`` and ``revision``). No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.history.numbers import searchable
from core.settings import Settings
from core.store import dumps
from statemachine.callbacks import contact_of_record
from statemachine.events import micros, parse_time
from statemachine.outcome import OutcomeRecord

US = 1_000_000


def decided_us(record: Mapping[str, Any]) -> int:
    """When a record was decided: its id is ``<server microseconds>-<seq>``."""
    return int(str(record["id"]).partition("-")[0])


def started_us(record: Mapping[str, Any]) -> int:
    """The call's start in microseconds (its end when the start is unknown): the sort key."""
    moment = record.get("started_at") or record.get("ended_at")
    if not moment:
        return decided_us(record)
    return micros(parse_time(moment))


def _number(party: Any) -> str | None:
    if isinstance(party, dict) and party.get("number"):
        return str(party["number"])
    return None


def extensions_of(record: Mapping[str, Any]) -> list[str]:
    """The extensions a call was presented to, in order, no repeats: an outbound
    call's placing extension; an inbound call's rung extensions, the one that
    answered and the voicemail box."""
    if record.get("direction") == "outbound":
        placed = _number(record.get("extension"))
        return [placed] if placed else []
    found: list[str] = []
    parties = [*(record.get("rang") or []), record.get("answered_by"), record.get("voicemail_box")]
    for party in parties:
        number = _number(party)
        if number and number not in found:
            found.append(number)
    return found


def seconds_us(seconds: Any) -> int | None:
    """Seconds as whole microseconds, as /v1/stats adds them up (app/stats/figures.py);
    None for None."""
    return None if seconds is None else round(float(seconds) * US)


def phone_tail(number: Any) -> str | None:
    """A number as the callback list matches it (app/stats/figures.py ``phone_key``):
    its last 10 digits; None for anonymous or short numbers."""
    digits = re.sub(r"\D", "", str(number or ""))
    return digits[-10:] if len(digits) >= 3 else None


def figure_columns(record: OutcomeRecord, country: str) -> dict[str, Any]:
    """What /v1/stats counts of a call, as columns (core/history/stat_counts.py): its
    wait and talk in microseconds, who answered, the voicemail box, its callback
    contact (``statemachine.callbacks``, numbers read in ``country``) and the number
    the callback list matches it by."""
    try:
        contact = contact_of_record(record, country)
    except (KeyError, ValueError):
        contact = None
    outbound = record.get("direction") == "outbound"
    return {
        "wait_us": seconds_us(record.get("wait_seconds")),
        "talk_us": seconds_us(record.get("talk_seconds")),
        "answered_by": _number(record.get("answered_by")),
        "voicemail_box": _number(record.get("voicemail_box")),
        "contact_kind": contact.kind.value if contact is not None else None,
        "contact_key": contact.number if contact is not None else None,
        "key_country": country,
        "phone_tail": phone_tail(
            record.get("number_dialed") if outbound else _number(record.get("caller"))
        ),
    }


def call_row(record: OutcomeRecord, country: str = Settings.default_country) -> dict[str, Any]:
    """The ``history_calls`` row of a record (``first_*`` as if it were the first),
    its caller's number also as searched when read in ``country`` (core.history.numbers)."""
    decided = decided_us(record)
    caller = _number(record.get("caller"))
    revision = int(record.get("revision") or 1)
    return {
        "tenant_id": record["tenant_id"],
        "call_uuid": record["call_uuid"],
        "revision": revision,
        "outcome_id": record["id"],
        "started_us": started_us(record),
        "direction": record.get("direction") or "inbound",
        "outcome": record["outcome"],
        "missed_reason": record.get("missed_reason"),
        "queue": record.get("queue") or None,
        "ring_group": record.get("ring_group") or None,
        "caller_number": caller,
        "caller_key": searchable(caller, country),
        "first_revision": revision,
        "first_decided_us": decided,
        "decided_us": decided,
        "record": dumps(record),
        "wait_seconds": record.get("wait_seconds"),
        "short_abandon": bool(record.get("short_abandon")),
        **figure_columns(record, country),
    }


def revision_row(record: OutcomeRecord) -> dict[str, Any]:
    """The ``history_revisions`` row of a record."""
    return {
        "tenant_id": record["tenant_id"],
        "call_uuid": record["call_uuid"],
        "revision": int(record.get("revision") or 1),
        "outcome_id": record["id"],
        "decided_us": decided_us(record),
        "record": dumps(record),
    }


def extension_rows(
    record: OutcomeRecord, country: str = Settings.default_country
) -> list[dict[str, Any]]:
    """The ``history_extensions`` rows of a record (an extension may be a number
    outside, a forward to a mobile: searched as a number read in ``country``)."""
    start = started_us(record)
    rang = {_number(party) for party in record.get("rang") or []}
    return [
        {
            "tenant_id": record["tenant_id"],
            "call_uuid": record["call_uuid"],
            "extension": number,
            "extension_key": searchable(number, country),
            "started_us": start,
            "rang": record.get("direction") != "outbound" and number in rang,
        }
        for number in extensions_of(record)
    ]
