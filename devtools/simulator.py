"""Realistic PrimeVOX traffic: calls of every kind, as the PBX would post them.

``generate_call`` makes one call's webhooks (with their offsets in seconds
from the call's start and the outcome the engine must reach); ``flask
simulate`` posts a stream of them to a callstate URL in real time. The chaos
script and the benchmarks use the same generator, so what they check is what
a real PBX sends: form bodies for calls, JSON for SMS, every spelling
variant, duplicates (a sender's retries) and end events that race. Event
types and targets are named by their key in the event registry
(:mod:`statemachine.primevox`), which spells them as the PBX does.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from statemachine.primevox import EVENTS

FIRST = [
    "José",
    "Ana",
    "Bob",
    "Chloé",
    "Dmitri",
    "Émile",
    "Fatima",
    "Grace",
    "Hiro",
    "Inés",
    "Jürgen",
    "Kai",
    "Léa",
    "Mohammed",
    "Nora",
    "O'Brien",
    "Priya",
    "Quinn",
    "Renée",
    "Sven",
]
LAST = [
    "García",
    "Smith",
    "Núñez",
    "Müller",
    "Nguyen",
    "O'Connor",
    "Dubois",
    "Kowalski",
    "Tanaka",
    "Okafor",
    "Rossi",
    "Svensson",
    "Ünal",
    "Brown",
    "Lefèvre",
]
# Twenty agents, each a name of their own (first names in turn, surnames in a
# shuffled order), so the wallboard's extension board never shows two alike.
AGENTS = {
    str(100 + i): f"{FIRST[(i - 1) % len(FIRST)]} {surname}"
    for i, surname in enumerate(random.Random(7).sample(LAST * 2, 20), start=1)
}
QUEUES = ["600", "601", "602"]
RING_GROUPS = ["700", "701"]
DIDS = [("+18005550100", "Main line", "Sales"), ("+18005550111", "Support", "Support"),
        ("+18005550122", "After hours", "Night")]  # fmt: skip

# kind -> (weight, expected outcome, expected missed_reason)
KINDS: dict[str, tuple[int, str, str | None]] = {
    "queue_answered": (30, "answered", None),
    "direct_answered": (12, "answered", None),
    "hangup_names_answerer": (5, "answered", None),
    "queue_abandoned": (10, "missed", "abandoned"),
    "ring_group_no_answer": (8, "missed", "no_answer"),
    "voicemail": (10, "voicemail", None),
    "unrouted": (3, "missed", "unrouted"),
    "outbound": (12, "outbound", None),
    "extensions_only_answered": (5, "answered", None),
    "extensions_only_voicemail": (5, "voicemail", None),
}


@dataclass
class Post:
    """One webhook: when (seconds after the call starts), what, and how encoded."""

    at: float
    event_type: str
    fields: dict[str, str]
    encoding: str = "form"  # or "json"

    def body(self) -> tuple[bytes, str]:
        if self.encoding == "json":
            return json.dumps(self.fields).encode(), "application/json"
        return urlencode(self.fields).encode(), "application/x-www-form-urlencoded"


@dataclass
class SimulatedCall:
    call_uuid: str
    tenant_id: str
    kind: str
    outcome: str
    missed_reason: str | None
    posts: list[Post] = field(default_factory=list)
    caller_number: str = ""  # inbound calls: as the PBX wrote it ("", "anonymous" too)


def _typed(key: str) -> dict[str, str]:
    """``eventType`` (and ``eventTarget``) of a declared event, as the PBX spells them."""
    declared = EVENTS.by_key[key]
    target = {"eventTarget": declared.target} if declared.target else {}
    return {"eventType": declared.event_type, **target}


def _phone(rng: random.Random) -> str:
    style = rng.random()
    digits = f"{rng.randint(201, 989)}555{rng.randint(1000, 9999)}"
    if style < 0.7:
        return "+1" + digits
    if style < 0.9:
        return digits
    return rng.choice(["anonymous", ""])


def _dialable(rng: random.Random) -> str:
    """A number an agent dials: always a number, as the PBX writes one."""
    digits = f"{rng.randint(201, 989)}555{rng.randint(1000, 9999)}"
    return "+1" + digits if rng.random() < 0.8 else digits


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def generate_call(
    rng: random.Random,
    tenant_id: str = "acme",
    container_id: str = "pbx-1",
    kind: str | None = None,
    duplicate_rate: float = 0.1,
    speed: float = 1.0,
) -> SimulatedCall:
    """One call's webhooks in sending order (offsets shrink with ``speed``)."""
    kind = kind or rng.choices(list(KINDS), weights=[w for w, _, _ in KINDS.values()])[0]
    _, outcome, reason = KINDS[kind]
    call_uuid = str(uuid.UUID(int=rng.getrandbits(128)))
    caller_num, caller_name = _phone(rng), _name(rng)
    did = rng.choice(DIDS)
    tenant_key = rng.choice(["tenantId", "tenantID"]) if rng.random() < 0.2 else "tenantId"
    container_key = rng.choice(["containerId", "containerID"])
    base = {container_key: container_id, tenant_key: tenant_id, "callUuid": call_uuid}
    posts: list[Post] = []
    t = 0.0

    def add(delay: float, key: str, **fields: str) -> None:
        """The event the registry declares under ``key`` (see statemachine.primevox)."""
        nonlocal t
        t += delay / speed
        declared = EVENTS.by_key[key]
        target = {"eventTarget": declared.target} if declared.target else {}
        fields = {"eventType": declared.event_type, **base, **target, **fields}
        posts.append(Post(t, declared.event_type, fields))

    def inbound() -> None:
        add(
            0,
            "InboundCall",
            didNumber=did[0],
            didDescription=did[1],
            didGroup=did[2],
            cidPrefix="",
            callerIdNum=caller_num,
            callerIdName=caller_name,
        )

    def ring(ext: str) -> None:
        add(
            rng.uniform(0.5, 3),
            "ringAttempt.extension",
            extNumber=ext,
            extName=AGENTS[ext],
            callerIdNum=caller_num,
        )

    def answer(ext: str) -> None:
        add(
            rng.uniform(2, 12),
            "ExtensionAnswered",
            callerIdNum=caller_num,
            callerIdName=caller_name,
            extensionNumber=ext,
            extensionName=AGENTS[ext],
        )

    def hangup(ext: str = "", delay: float | None = None) -> None:
        add(
            rng.uniform(5, 90) if delay is None else delay,
            "HangupCall",
            extNumber=ext,
            extName=AGENTS.get(ext, ""),
            callerIdName=caller_name,
            callerIdNum=caller_num,
        )

    def completed(ext: str, delay: float | None = None) -> None:
        add(
            rng.uniform(5, 90) if delay is None else delay,
            "inboundCallCompleted",
            extNumber=ext,
            extName=AGENTS[ext],
            callerIdName=caller_name,
            callerIdNum=caller_num,
        )

    def queue_entered() -> None:
        add(rng.uniform(0.5, 2), "queueEntered", queueNumber=rng.choice(QUEUES),
            callerIdNum=caller_num)  # fmt: skip

    agents = rng.sample(sorted(AGENTS), 3)
    if kind == "queue_answered":
        inbound()
        queue_entered()
        for ext in agents[:2]:
            ring(ext)
        answer(agents[1])
        completed(agents[1])
        hangup(agents[1], delay=0)  # the two ends race
    elif kind == "direct_answered":
        inbound()
        ring(agents[0])
        answer(agents[0])
        hangup(agents[0])
        completed(agents[0], delay=0)
    elif kind == "hangup_names_answerer":
        inbound()
        ring(agents[0])
        hangup(agents[0], delay=rng.uniform(20, 60))  # ExtensionAnswered never came
    elif kind == "queue_abandoned":
        inbound()
        queue_entered()
        if rng.random() < 0.5:
            ring(agents[0])
        hangup(delay=rng.uniform(5, 40))
    elif kind == "ring_group_no_answer":
        inbound()
        add(
            rng.uniform(0.5, 2),
            "ringAttempt.ringGroup",
            rgNumber=rng.choice(RING_GROUPS),
            callerIdNum=caller_num,
        )
        for ext in agents:
            ring(ext)
        hangup(delay=rng.uniform(10, 30))
    elif kind == "voicemail":
        inbound()
        ring(agents[0])
        add(
            rng.uniform(20, 40),
            "voicemailHangup",
            extNumber=agents[0],
            extName=AGENTS[agents[0]],
            callerIdName=caller_name,
            callerIdNum=caller_num,
        )
        hangup(delay=0)
    elif kind == "unrouted":
        inbound()
        hangup(delay=rng.uniform(1, 10))
    elif kind == "outbound":
        add(
            0,
            "outboundCall",
            extNumber=agents[0],
            extName=AGENTS[agents[0]],
            numberDialed=_dialable(rng),
        )
        if rng.random() < 0.5:
            answer(agents[0])
        completed(agents[0])
    elif kind == "extensions_only_answered":
        ring(agents[0])
        answer(agents[0])
        completed(agents[0])
    elif kind == "extensions_only_voicemail":
        ring(agents[0])
        add(
            rng.uniform(20, 40),
            "voicemailHangup",
            extNumber=agents[0],
            extName=AGENTS[agents[0]],
            callerIdName=caller_name,
            callerIdNum=caller_num,
        )
    # A sender's retries: some webhooks arrive twice, a moment apart.
    for post in list(posts):
        if rng.random() < duplicate_rate:
            posts.append(
                Post(
                    post.at + rng.uniform(0, 0.5) / speed,
                    post.event_type,
                    dict(post.fields),
                    post.encoding,
                )
            )
    posts.sort(key=lambda p: p.at)
    return SimulatedCall(call_uuid, tenant_id, kind, outcome, reason, posts, caller_num)


# Missed calls an agent calls back: abandoned and no-answer ones (an unrouted
# call reached nobody) from a number one can dial.
CALLED_BACK_REASONS = ("abandoned", "no_answer")


def wants_call_back(call: SimulatedCall) -> bool:
    """Whether an agent would call this caller back: a missed call with a dialable number."""
    return (
        call.outcome == "missed"
        and call.missed_reason in CALLED_BACK_REASONS
        and any(ch.isdigit() for ch in call.caller_number)
    )


def _written_otherwise(number: str, rng: random.Random) -> str:
    """The number as an agent might key it in: another format, the same E.164 number."""
    digits = number.lstrip("+")
    national = digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
    area, exchange, line = national[:3], national[3:6], national[6:]
    return rng.choice(
        [f"+1 ({area}) {exchange}-{line}", f"1{national}", national, f"{area}-{exchange}-{line}"]
    )


def generate_call_back(
    rng: random.Random, missed: SimulatedCall, container_id: str = "pbx-1", speed: float = 1.0
) -> SimulatedCall:
    """An agent dials a missed caller back (``outboundCall`` with ``numberDialed`` the
    caller's number, written another way): the call that resolves the caller's callback."""
    call_uuid = str(uuid.UUID(int=rng.getrandbits(128)))
    agent = rng.choice(sorted(AGENTS))
    base = {"containerId": container_id, "tenantId": missed.tenant_id, "callUuid": call_uuid}
    dialled = _written_otherwise(missed.caller_number, rng)
    placed = {**_typed("outboundCall"), **base, "extNumber": agent, "extName": AGENTS[agent]}
    posts = [Post(0.0, placed["eventType"], {**placed, "numberDialed": dialled})]
    t = rng.uniform(5, 60) / speed
    ended = {**_typed("inboundCallCompleted"), **base, "extNumber": agent}
    posts.append(Post(t, ended["eventType"], {**ended, "extName": AGENTS[agent]}))
    return SimulatedCall(call_uuid, missed.tenant_id, "call_back", "outbound", None, posts)


def generate_sms(
    rng: random.Random, tenant_id: str = "acme", container_id: str = "pbx-1"
) -> list[Post]:
    """A short SMS exchange, as the JSON bodies PrimeVOX sends."""
    outsider, ours = _phone(rng) or "+15557654321", rng.choice(DIDS)[0]
    conversation = f"conv-{rng.getrandbits(40):x}"
    texts = ["Hi, is the shop open today?", "Yes, until 6 pm 🙂", "Merci beaucoup!"]
    posts = []
    for i, text in enumerate(texts):
        inbound = i % 2 == 0
        typed = _typed("inboundMessage" if inbound else "outboundMessage")
        posts.append(Post(i * 2.0, typed["eventType"], {
            **typed, "toNumber": ours if inbound else outsider,
            "fromNumber": outsider if inbound else ours, "containerID": container_id,
            "tenantID": tenant_id, "conversationID": conversation, "messageText": text,
        }, "json"))  # fmt: skip
    return posts


def expected(call: SimulatedCall) -> dict[str, Any]:
    return {"outcome": call.outcome, "missed_reason": call.missed_reason}
