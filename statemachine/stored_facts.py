"""A call's facts as stored beside its log, and back.

The engine folds each new event into the facts it stored with the call's
last commit (``CallFacts.merge``) instead of refolding the whole log, so
applying one more event costs the same for the 10th event of a call as for
the 1,000th. The form is plain JSON built for a fast load: every moment is
whole microseconds since the epoch (no date parsing), every sighting a
``[us, value]`` pair. ``FORMAT`` names the form: facts stored in another
form are not read (the engine refolds the log and stores them afresh), so
changing :class:`CallFacts` only needs a new number here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from statemachine.events import Did, Party, micros
from statemachine.state import EMPTY, CallFacts, Names, Seen, Times

FORMAT = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _moment(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _us(moment: datetime | None) -> int | None:
    return None if moment is None else micros(moment)


def _seen(seen: Seen[Any] | None, value: Any = None) -> list[Any] | None:
    if seen is None:
        return None
    return [micros(seen.at), seen.value if value is None else value]


def _times(times: Times) -> dict[str, int]:
    return {key: micros(moment) for key, moment in times.items()}


def _names(names: Names) -> dict[str, list[Any]]:
    return {key: [micros(seen.at), seen.value] for key, seen in names.items()}


def facts_to_json(facts: CallFacts) -> dict[str, Any]:
    """The facts as a JSON object (the call's tenant and uuid are the key's)."""
    inbound = outbound = None
    if facts.inbound is not None:
        party, did = facts.inbound.value
        inbound = _seen(
            facts.inbound, [[party.number, party.name], [did.number, did.description, did.group]]
        )
    if facts.outbound is not None:
        outbound = _seen(facts.outbound, list(facts.outbound.value))
    return {
        "format": FORMAT,
        "container": _seen(facts.container),
        "first_at": _us(facts.first_at),
        "last_at": _us(facts.last_at),
        "inbound": inbound,
        "caller_number": _seen(facts.caller_number),
        "caller_name": _seen(facts.caller_name),
        "outbound": outbound,
        "queue": _seen(facts.queue),
        "ring_group": _seen(facts.ring_group),
        "extension_names": _names(facts.extension_names),
        "rings": _times(facts.rings),
        "last_rings": _times(facts.last_rings),
        "answers": _times(facts.answers),
        "voicemails": _times(facts.voicemails),
        "extension_ends": _times(facts.extension_ends),
        "hangup": _seen(facts.hangup),
        "timed_out_at": _us(facts.timed_out_at),
    }


def _load_seen(pair: list[Any] | None) -> Seen[Any] | None:
    return None if pair is None else Seen(_moment(pair[0]), pair[1])


def _load_time(us: int | None) -> datetime | None:
    return None if us is None else _moment(us)


def _load_times(times: Mapping[str, int]) -> Times:
    return MappingProxyType({key: _moment(us) for key, us in times.items()}) if times else EMPTY


def _load_names(names: Mapping[str, list[Any]]) -> Names:
    if not names:
        return EMPTY
    return MappingProxyType({key: Seen(_moment(us), name) for key, (us, name) in names.items()})


def facts_from_json(tenant_id: str, call_uuid: str, stored: Mapping[str, Any]) -> CallFacts | None:
    """The facts stored by :func:`facts_to_json`; None if stored in another form."""
    if stored.get("format") != FORMAT:
        return None
    inbound = outbound = None
    if stored["inbound"] is not None:
        at, (party, did) = stored["inbound"]
        inbound = Seen(_moment(at), (Party(*party), Did(*did)))
    if stored["outbound"] is not None:
        at, (number, dialed) = stored["outbound"]
        outbound = Seen(_moment(at), (number, dialed))
    return CallFacts(
        tenant_id=tenant_id,
        call_uuid=call_uuid,
        container=_load_seen(stored["container"]),
        first_at=_load_time(stored["first_at"]),
        last_at=_load_time(stored["last_at"]),
        inbound=inbound,
        caller_number=_load_seen(stored["caller_number"]),
        caller_name=_load_seen(stored["caller_name"]),
        outbound=outbound,
        queue=_load_seen(stored["queue"]),
        ring_group=_load_seen(stored["ring_group"]),
        extension_names=_load_names(stored["extension_names"]),
        rings=_load_times(stored["rings"]),
        last_rings=_load_times(stored["last_rings"]),
        answers=_load_times(stored["answers"]),
        voicemails=_load_times(stored["voicemails"]),
        extension_ends=_load_times(stored["extension_ends"]),
        hangup=_load_seen(stored["hangup"]),
        timed_out_at=_load_time(stored["timed_out_at"]),
    )
