"""Synthetic outcome records, as the outcome streams carry them: for the history
benchmark and tests (millions, quickly, reproducibly from a seed).

Each record is a plausible call of a small contact centre: inbound calls
through queues and ring groups, answered, missed (abandoned, no answer,
unrouted) or sent to voicemail, and outbound calls placed by extensions;
callers with ``+``, leading zeros or none at all; a few calls revised.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from statemachine.outcome import OutcomeRecord

EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
EXTENSIONS = [f"{n}" for n in range(101, 141)]
QUEUES = ["600", "601", "602", "sales", "support"]
RING_GROUPS = ["700", "701"]
SHORT_ABANDON_SECONDS = 5.0


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _us(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000 + (
        moment.microsecond
    )


def _party(number: str) -> dict[str, str]:
    return {"number": number, "name": f"Agent {number}"}


def _caller(rng: random.Random) -> dict[str, str] | None:
    kind = rng.random()
    if kind < 0.05:
        return None
    if kind < 0.6:
        number = f"+1555{rng.randrange(10**7):07d}"
    elif kind < 0.8:
        number = f"0{rng.randrange(10**9):09d}"
    else:
        number = f"555{rng.randrange(10**7):07d}"
    return {"number": number, "name": rng.choice(["", "Zoë Ørsted", "ACME Ltd", "=SUM(A1)"])}


def outcome_record(
    rng: random.Random,
    index: int,
    *,
    tenant: str,
    started: datetime,
    decided_us: int,
    seq: int = 0,
    extensions: Sequence[str] = EXTENSIONS,
) -> OutcomeRecord:
    """One call's outcome record, decided at ``decided_us`` (its id), among ``extensions``."""
    outbound = rng.random() < 0.15
    queue = None if outbound or rng.random() < 0.3 else rng.choice(QUEUES)
    ring_group = None if outbound or queue or rng.random() < 0.5 else rng.choice(RING_GROUPS)
    rang = [] if outbound else rng.sample(list(extensions), rng.choice([0, 1, 1, 2, 3]))
    wait = round(rng.uniform(1, 90), 1)
    talk = 0.0
    answered_by = voicemail = None
    missed_reason = None
    if outbound:
        outcome = "outbound"
        talk = round(rng.uniform(0, 600), 1)
    else:
        roll = rng.random()
        if roll < 0.6 and rang:
            outcome, answered_by = "answered", _party(rang[-1])
            talk = round(rng.uniform(5, 900), 1)
        elif roll < 0.7 and rang:
            outcome, voicemail = "voicemail", _party(rang[0])
        else:
            outcome = "missed"
            missed_reason = (
                "abandoned" if queue else "no_answer" if rang or ring_group else "unrouted"
            )
    answered_at = started + timedelta(seconds=wait) if answered_by else None
    ended = started + timedelta(seconds=wait + talk)
    return {
        "id": f"{decided_us}-{seq}",
        "call_uuid": f"call-{tenant}-{index:09d}",
        "tenant_id": tenant,
        "container_id": f"pbx-{tenant}",
        "direction": "outbound" if outbound else "inbound",
        "outcome": outcome,
        "missed_reason": missed_reason,
        "answered_by": answered_by,
        "voicemail_box": voicemail,
        "caller": None if outbound else _caller(rng),
        "did": None if outbound else {"number": "+18005550100", "description": "Main", "group": ""},
        "number_dialed": f"+1555{rng.randrange(10**7):07d}" if outbound else None,
        "extension": _party(rng.choice(extensions)) if outbound else None,
        "queue": queue,
        "ring_group": ring_group,
        "rang": [_party(n) for n in rang],
        "started_at": _iso(started),
        "answered_at": _iso(answered_at) if answered_at else None,
        "ended_at": _iso(ended),
        "wait_seconds": wait,
        "talk_seconds": talk,
        "ended_by": "hangup",
        "short_abandon": missed_reason == "abandoned" and wait <= SHORT_ABANDON_SECONDS,
        "revision": 1,
    }


# Every generated call has ended by then (wait + talk < 1000 s): decisions
# come in call order, so record ids increase as the streams' do.
DECIDED_AFTER = timedelta(seconds=1000)
REVISED_EVERY = 50


def outcome_records(
    calls: int,
    *,
    seed: int = 1,
    tenants: tuple[str, ...] = ("acme", "globex"),
    start: datetime = EPOCH,
    spacing_seconds: float = 30.0,
    extensions: Sequence[str] = EXTENSIONS,
) -> Iterator[OutcomeRecord]:
    """The records of ``calls`` calls in decision order (increasing ids), calls
    ``spacing_seconds`` apart, tenants taking turns; every REVISED_EVERY-th
    call also gets a revision 2 (another outcome) three calls later."""
    rng = random.Random(seed)
    revise: dict[int, OutcomeRecord] = {}
    for index in range(calls):
        started = start + timedelta(seconds=index * spacing_seconds)
        decided = _us(started + DECIDED_AFTER)
        record = outcome_record(
            rng,
            index,
            tenant=tenants[index % len(tenants)],
            started=started,
            decided_us=decided,
            extensions=extensions,
        )
        yield record
        if index % REVISED_EVERY == 7 and record["direction"] == "inbound":
            revise[index + 3] = record
        earlier = revise.pop(index, None)
        if earlier is not None:
            yield revised(earlier, f"{decided}-9")


def revised(record: OutcomeRecord, record_id: str) -> OutcomeRecord:
    """The next revision of ``record``: a straggling answer turned it into ``answered``."""
    number = (record["rang"] or [{"number": "101", "name": "Agent 101"}])[-1]
    return {
        **record,
        "id": record_id,
        "revision": record["revision"] + 1,
        "outcome": "answered",
        "missed_reason": None,
        "short_abandon": False,
        "voicemail_box": None,
        "answered_by": number,
        "rang": record["rang"] or [number],
    }
