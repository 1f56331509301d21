"""The requests of the golden capture (bench/golden.py), in phases.

Every route of the API is asked, each with good and bad arguments (every error
path a route has), with an admin key, a tenant's key and no key. The webhooks
are whole simulated calls of every kind and SMS (``devtools.simulator``, a
fixed seed), then the sample body of every declared event in both encodings,
then bodies that must be refused. Later requests may be built from earlier
answers of the same service (a subscription's id, a page's ``next``): a
request's path or body is then a function of the answers so far.

Over 400 lines because it is a list: some 480 requests, one function per part
of the API.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from devtools.simulator import KINDS, generate_call, generate_call_back, generate_sms
from statemachine.primevox import EVENTS
from statemachine.registry import PBX

# What the services are started with (bench.golden sets them).
ADMIN_KEY, ACME_KEY = "bench-key", "acme-key"
TOKEN, ACME_TOKEN = "bench-token", "acme-token"
API_KEYS = f"{ADMIN_KEY}:*,{ACME_KEY}:acme"
WEBHOOK_TOKENS = f"{TOKEN}:*,{ACME_TOKEN}:acme"
TENANTS = ("acme", "globex")
WEBHOOK = f"/webhooks/primevox/{TOKEN}"

# The answers so far on one service, by label (parsed JSON, or None).
Seen = Mapping[str, Any]
Text = str | Callable[[Seen], str]
Body = bytes | None | Callable[[Seen], bytes]

# A webhook that ends a call is followed by this pause, longer than the
# housekeeper's poll (0.25 s): the calls' outcomes are then decided one by one, in
# the order the calls ended, and every list in decision order reads the same.
ENDED = 0.4
ENDING_TYPES = ("HangupCall", "inboundCallCompleted", "voicemailHangup")

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Call:
    """One request. ``web``: "main" (with DATABASE_URL) or "plain" (without it, and
    without SUBSCRIPTION_ALLOW_PRIVATE). ``events``: for a stream, how many blocks
    (the ``connected`` comment counts) to read before hanging up. ``pause``: seconds
    to wait after the answer (a call's end: see ENDED)."""

    label: str
    method: str
    path: Text
    body: Body = None
    headers: Mapping[str, str] = field(default_factory=dict)
    key: str | None = ADMIN_KEY
    web: str = "main"
    events: int = 2
    pause: float = 0.0


@dataclass(frozen=True)
class Phase:
    """Requests sent to each service in turn; then ``settle`` (bench.golden) waits
    until what they started is done (outcomes decided, archived, delivered)."""

    name: str
    calls: list[Call]
    settle: bool = False


def get(label: str, path: Text, **options: Any) -> Call:
    return Call(label, "GET", path, **options)


def post_json(label: str, path: Text, data: Any, **options: Any) -> Call:
    body = data if callable(data) else json.dumps(data).encode()
    return Call(label, "POST", path, body, JSON, **options)


def answer(label: str, *keys: str | int) -> Callable[[Seen], Any]:
    """A value out of an earlier answer (``keys`` walk into it)."""

    def pick(seen: Seen) -> Any:
        value = seen[label]
        for key in keys:
            value = value[key]
        return value

    return pick


# -- webhooks ------------------------------------------------------------------------


@dataclass
class Traffic:
    """The simulated calls and SMS, and what they let the reads ask for."""

    posts: list[Call]
    calls: list[str]
    conversation: str


def traffic() -> Traffic:
    """Two calls of every kind (tenants alternating), a call back to a missed caller,
    and an SMS conversation: their webhooks in sending order."""
    rng = random.Random(7)
    simulated = [
        generate_call(rng, TENANTS[n % 2], kind=kind, speed=1000.0)
        for n, kind in enumerate(list(KINDS) * 2)
    ]
    missed = next(c for c in simulated if c.outcome == "missed" and c.caller_number[:1] == "+")
    simulated.append(generate_call_back(rng, missed, speed=1000.0))
    posts: list[Call] = []
    for call in simulated:
        for number, post in enumerate(call.posts):
            body, content_type = post.body()
            label = f"webhook {call.kind} {call.call_uuid[:8]} {number}"
            pause = ENDED if number == len(call.posts) - 1 else 0.0
            headers = {"Content-Type": content_type}
            posts.append(Call(label, "POST", WEBHOOK, body, headers, None, pause=pause))
    sms = generate_sms(rng, "acme")
    for number, post in enumerate(sms):
        body, content_type = post.body()
        posts.append(
            Call(
                f"webhook sms {number}", "POST", WEBHOOK, body, {"Content-Type": content_type}, None
            )
        )
    return Traffic(posts, [c.call_uuid for c in simulated], sms[0].fields["conversationID"])


def samples() -> tuple[list[Call], list[str]]:
    """The sample body of every event the PBX sends, form- and JSON-encoded, each
    its own call (they stay live, but for the hangup's)."""
    posts, uuids = [], []
    for key, declared in EVENTS.by_key.items():
        if declared.sent_by != PBX:
            continue
        for encoding in ("form", "json"):
            call_uuid = f"golden-{key}-{encoding}"
            ids = {"callUuid": call_uuid, "tenantId": "acme", "conversationId": f"conv-{key}"}
            fields = EVENTS.sample(key, ids=ids)
            if encoding == "json":
                body, headers = json.dumps(fields).encode(), JSON
            else:
                body, headers = urlencode(fields).encode(), FORM
            pause = ENDED if declared.event_type in ENDING_TYPES else 0.0
            label = f"sample {key} {encoding}"
            posts.append(Call(label, "POST", WEBHOOK, body, headers, None, pause=pause))
            uuids.append(call_uuid)
    return posts, uuids


def _form(**fields: str) -> bytes:
    return urlencode(fields).encode()


INBOUND = EVENTS.sample("InboundCall", ids={"callUuid": "golden-bad", "tenantId": "acme"})


def refused_webhooks() -> list[Call]:
    """Bodies and requests the intake must refuse (or, for the odd ones, accept)."""
    without = {k: v for k, v in INBOUND.items() if k != "callUuid"}
    no_tenant = {k: v for k, v in INBOUND.items() if k != "tenantId"}
    hangup = EVENTS.sample("HangupCall", ids={"callUuid": "golden-odd", "tenantId": "acme"})
    globex = {**INBOUND, "tenantId": "globex"}
    ring_group = EVENTS.sample(
        "ringAttempt.ringGroup", ids={"callUuid": "golden-rg", "tenantId": "acme"}
    )
    del ring_group["eventTarget"]
    bodies: list[tuple[str, bytes, Mapping[str, str]]] = [
        ("empty", b"", FORM),
        ("blank", b"   \n", FORM),
        ("json array", b"[1, 2]", JSON),
        ("broken json", b'{"eventType": ', JSON),
        ("json nested value", json.dumps({**INBOUND, "extName": {"a": 1}}).encode(), JSON),
        ("json numbers", json.dumps({**hangup, "extNumber": 101, "extName": True}).encode(), JSON),
        ("json null", json.dumps({**hangup, "extName": None}).encode(), JSON),
        ("no eventType", _form(tenantId="acme", callUuid="x"), FORM),
        ("blank eventType", _form(eventType=" ", tenantId="acme"), FORM),
        ("reserved eventType", _form(**{**INBOUND, "eventType": "callstate.timeout"}), FORM),
        ("long eventType", _form(**{**INBOUND, "eventType": "x" * 300}), FORM),
        ("control eventType", _form(**{**INBOUND, "eventType": "Inbound\x01Call"}), FORM),
        ("lower-case eventType", _form(**{**hangup, "eventType": "hangupcall"}), FORM),
        ("no callUuid", _form(**without), FORM),
        ("no tenant", _form(**no_tenant), FORM),
        ("long tenant", _form(**{**INBOUND, "tenantId": "t" * 201}), FORM),
        ("control callUuid", _form(**{**INBOUND, "callUuid": "a\x00b"}), FORM),
        ("long name", _form(**{**INBOUND, "callerIdName": "n" * 201}), FORM),
        ("long description", _form(**{**INBOUND, "didDescription": "d" * 2001}), FORM),
        ("201 fields", _form(**INBOUND, **{f"f{n}": "x" for n in range(201)}), FORM),
        ("latin-1 name", urlencode(hangup).encode() + b"&note=caf\xe9", FORM),
        ("latin-1 tenant", b"eventType=HangupCall&callUuid=x&tenantId=acm\xe9", FORM),
        ("form said json", _form(**hangup), JSON),
        ("unknown type no call", _form(eventType="somethingNew", tenantId="acme"), FORM),
        ("ringAttempt no target", _form(**ring_group), FORM),
        ("too large", b"eventType=HangupCall&x=" + b"y" * (64 * 1024), FORM),
    ]
    calls = [Call(f"refused {name}", "POST", WEBHOOK, body, h, None) for name, body, h in bodies]
    acme_path = f"/webhooks/primevox/{ACME_TOKEN}"
    basic = {"Authorization": "Basic " + _b64(f"pbx:{TOKEN}"), **FORM}
    bad_basic = {"Authorization": "Basic " + _b64("pbx:nope"), **FORM}
    calls += [
        Call("acme token, acme event", "POST", acme_path, _form(**hangup), FORM, None),
        Call("acme token, globex event", "POST", acme_path, _form(**globex), FORM, None),
        Call(
            "refused unknown token", "POST", "/webhooks/primevox/nope", _form(**hangup), FORM, None
        ),
        Call("basic auth", "POST", "/webhooks/primevox", _form(**hangup), basic, None),
        Call("basic auth bad", "POST", "/webhooks/primevox", _form(**hangup), bad_basic, None),
        Call("basic auth none", "POST", "/webhooks/primevox", _form(**hangup), FORM, None),
        Call("webhook GET", "GET", WEBHOOK, key=None),
        Call("webhook no token", "POST", "/webhooks/primevox/", _form(**hangup), FORM, None),
        Call("webhook deeper path", "POST", f"{WEBHOOK}/more", _form(**hangup), FORM, None),
    ]
    return calls


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


# -- subscriptions -------------------------------------------------------------------


def subscribe(receiver: str) -> list[Call]:
    """Subscriptions made before the calls (so their outcomes are delivered), and
    every way of getting one wrong."""
    path = "/v1/subscriptions"
    bad: list[tuple[str, bytes, Mapping[str, str]]] = [
        ("text", b"hello", {"Content-Type": "text/plain"}),
        ("json said form", json.dumps({"url": receiver}).encode(), FORM),
        ("array", b"[]", JSON),
        ("string", b'"x"', JSON),
        ("broken", b'{"url": ', JSON),
        ("empty", b"", JSON),
        ("no url", b"{}", JSON),
        ("ftp url", json.dumps({"url": "ftp://example.com/x"}).encode(), JSON),
        ("bad outcome", json.dumps({"url": receiver, "outcomes": ["nope"]}).encode(), JSON),
        ("in flight 0", json.dumps({"url": receiver, "max_in_flight": 0}).encode(), JSON),
        ("in flight text", json.dumps({"url": receiver, "max_in_flight": "x"}).encode(), JSON),
        ("blank tenant", json.dumps({"url": receiver, "tenant_id": ""}).encode(), JSON),
        ("two bad", json.dumps({"url": 5, "outcomes": "missed"}).encode(), JSON),
    ]
    return [
        post_json("sub all", path, {"url": receiver}),
        post_json(
            "sub acme",
            path,
            {
                "url": receiver,
                "tenant_id": "acme",
                "outcomes": ["missed", "answered"],
                "max_in_flight": 2,
            },
        ),
        post_json("sub acme key", path, {"url": receiver, "extra": 1}, key=ACME_KEY),
        post_json(
            "sub acme key for globex", path, {"url": receiver, "tenant_id": "globex"}, key=ACME_KEY
        ),
        post_json("sub no key", path, {"url": receiver}, key=None),
        *(Call(f"sub bad {name}", "POST", path, body, h) for name, body, h in bad),
        post_json("sub private refused", path, {"url": "http://127.0.0.1:9/x"}, web="plain"),
        post_json("sub private 10/8", path, {"url": "http://10.1.2.3/x"}, web="plain"),
        get("subs listed", path),
        get("subs listed acme", path, key=ACME_KEY),
    ]


def subscription(label: str, tail: str = "") -> Callable[[Seen], str]:
    """The path of the subscription an earlier request (``label``) made, and ``tail``."""
    return lambda seen: f"/v1/subscriptions/{seen[label]['id']}{tail}"


# -- reads ---------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """Queries written one after another, a space between."""
    return text.split()


def _queries(label: str, path: str, queries: list[str], **options: Any) -> list[Call]:
    return [get(f"{label} ?{q}", f"{path}?{q}" if q else path, **options) for q in queries]


def reads(calls: list[str], live: list[str], conversation: str) -> list[Call]:
    """Every read, with good and bad arguments, after the calls are decided."""
    out: list[Call] = []
    out += _queries(
        "live",
        "/v1/calls/live",
        [
            "",
            *words(
                """
                tenant_id=acme container_id=container-1 queue=600 queue= tenant_id=nobody
                tenant_id=acme&tenant_id=globex
                """
            ),
        ],
    )
    out += _queries("live acme key", "/v1/calls/live", ["", "tenant_id=globex"], key=ACME_KEY)
    out += [
        get("live no key", "/v1/calls/live", key=None),
        get("live bad key", "/v1/calls/live", key="nope"),
        get(
            "live basic",
            "/v1/calls/live",
            key=None,
            headers={"Authorization": "Basic " + _b64("a:b")},
        ),
        get(
            "live lower-case bearer",
            "/v1/calls/live",
            key=None,
            headers={"Authorization": f"bearer {ADMIN_KEY}"},
        ),
    ]
    for uuid in [*calls, *live, "no-such-call"]:
        out.append(get(f"call {uuid}", f"/v1/calls/{quote(uuid)}"))
        out.append(get(f"timeline {uuid}", f"/v1/calls/{quote(uuid)}/timeline"))
    out += [get(f"call acme key {calls[1]}", f"/v1/calls/{calls[1]}", key=ACME_KEY)]
    out += [get(f"timeline acme key {calls[1]}", f"/v1/calls/{calls[1]}/timeline", key=ACME_KEY)]
    messages = f"/v1/conversations/{quote(conversation)}/messages"
    out += [
        get("messages", messages),
        get("messages acme key", messages, key=ACME_KEY),
        get("messages none", "/v1/conversations/nope/messages"),
        get("messages sample", "/v1/conversations/conv-inboundMessage/messages"),
    ]
    outcome_queries = [
        "",
        *words(
            """
            limit=5 limit=0 limit=-1 limit=abc limit=1001 limit=%205 limit=5.0 limit=2&limit=x
            after=bad after=0-0&limit=3 after=99999999999999999999999-0
            after=18446744073709551615-18446744073709551615 outcome=missed outcome=bogus
            outcome= tenant_id=acme outcome=bogus&limit=0&after=x
            """
        ),
    ]
    out += _queries("outcomes", "/v1/outcomes", outcome_queries)
    out += [
        get(
            "outcomes page 2",
            lambda seen: f"/v1/outcomes?limit=5&after={seen['outcomes ?limit=5']['next']}",
        ),
        get("outcomes acme key", "/v1/outcomes?tenant_id=globex", key=ACME_KEY),
        get("outcomes last-event-id", "/v1/outcomes?limit=3", headers={"Last-Event-ID": "0-0"}),
        get("outcomes huge last-event-id", "/v1/outcomes", headers={"Last-Event-ID": "1" * 42}),
        get("live huge last-event-id", "/v1/calls/live", headers={"Last-Event-ID": "1" * 42}),
        get("outcomes no key", "/v1/outcomes", key=None),
    ]
    stream = "/v1/outcomes/stream"
    out += [
        get("outcome stream", f"{stream}?after=0-0", events=4),
        get("outcome stream last-event-id", stream, headers={"Last-Event-ID": "0-0"}, events=3),
        get("outcome stream bad last-event-id", stream, headers={"Last-Event-ID": "x-y"}),
        get("outcome stream bad after", f"{stream}?after=x"),
        get("outcome stream bad outcome", f"{stream}?outcome=x"),
        get("outcome stream acme key", f"{stream}?tenant_id=globex", key=ACME_KEY),
        get("outcome stream no key", stream, key=None),
        get("live stream", "/v1/calls/live/stream"),
        get("live stream acme", "/v1/calls/live/stream?tenant_id=acme&queue=600"),
        get("live stream acme key", "/v1/calls/live/stream?tenant_id=globex", key=ACME_KEY),
    ]
    out += _queries("extensions", "/v1/extensions/live", ["", "tenant_id=acme", "tenant_id="])
    out += [
        get("extensions acme key", "/v1/extensions/live?tenant_id=globex", key=ACME_KEY),
        get("extensions stream", "/v1/extensions/live/stream"),
        get(
            "extensions stream acme key",
            "/v1/extensions/live/stream?tenant_id=globex",
            key=ACME_KEY,
        ),
    ]
    out += _queries(
        "callbacks",
        "/v1/callbacks",
        ["", "status=open", "status=resolved", "status=bogus", "status=", "tenant_id=globex"],
    )
    out += [
        get("callbacks acme key", "/v1/callbacks", key=ACME_KEY),
        get("callbacks stream", "/v1/callbacks/stream"),
        get("callbacks stream bad status", "/v1/callbacks/stream?status=x"),
    ]
    stats_queries = [
        "",
        *(f"group_by={g}" for g in ("queue", "extension", "did", "hour", "day", "tenant")),
        "group_by=bogus",
        "from=2020-01-01&to=2020-01-02",
        "from=2020-01-01",
        "from=bad",
        "to=bad",
        "from=2030-01-02&to=2030-01-01",
        "service_level_seconds=30",
        "service_level_seconds=-1",
        "service_level_seconds=abc",
        "service_level_seconds=86401",
        "missed_limit=0",
        "missed_limit=3",
        "missed_limit=abc",
        "missed_limit=100000",
        "tenant_id=acme",
        "from=&to=&group_by=",
    ]
    out += _queries("stats", "/v1/stats", stats_queries)
    out += _queries("stats plain", "/v1/stats", ["", "from=2020-01-01&to=2020-01-02"], web="plain")
    out += [get("stats acme key", "/v1/stats?tenant_id=globex", key=ACME_KEY)]
    history_queries = [
        "",
        *words(
            """
            limit=5 format=csv format=csv&limit=3 format=bogus outcome=missed outcome=bogus
            missed_reason=abandoned direction=outbound direction=sideways queue=600
            ring_group=700 extension=101 caller=%2B1 caller= from=2020-01-01&to=2030-01-01
            from=bad to=2020-13-01 from=2030-01-01&to=2020-01-01 limit=0 limit=1001 limit=abc
            cursor=bogus queue=a%00b tenant_id=acme limit=1001&format=csv
            """
        ),
    ]
    out += _queries("history", "/v1/calls", history_queries)
    out += [
        get(
            "history page 2",
            lambda seen: f"/v1/calls?limit=5&cursor={seen['history ?limit=5']['next']}",
        ),
        get("history csv accept", "/v1/calls", headers={"Accept": "text/csv"}),
        get("history acme key", "/v1/calls?tenant_id=globex", key=ACME_KEY),
        get(
            "history acme key cursor",
            lambda seen: f"/v1/calls?cursor={seen['history ?limit=5']['next']}",
            key=ACME_KEY,
        ),
        get("history no key", "/v1/calls", key=None),
        get("history plain", "/v1/calls", web="plain"),
        get("history plain bad", "/v1/calls?limit=abc", web="plain"),
    ]
    sub = "/v1/subscriptions"
    for name in ("sub all", "sub acme", "sub acme key"):
        out += [
            get(f"{name} read", subscription(name)),
            get(f"{name} deliveries", subscription(name, "/deliveries")),
            get(f"{name} delivered", subscription(name, "/deliveries?status=succeeded")),
            get(f"{name} deliveries bogus", subscription(name, "/deliveries?status=bogus")),
        ]
    out += [
        get(
            "sub acme key read by acme",
            lambda seen: f"{sub}/{seen['sub acme key']['id']}",
            key=ACME_KEY,
        ),
        get("sub all read by acme", lambda seen: f"{sub}/{seen['sub all']['id']}", key=ACME_KEY),
        get("sub none", f"{sub}/sub_0000000000000000"),
        get("sub none deliveries", f"{sub}/sub_0000000000000000/deliveries"),
        get("subs listed after calls", sub),
    ]
    out += operations()
    return out


def operations() -> list[Call]:
    """Health, metrics, the description, the wallboard, and what is no route."""
    return [
        get("healthz", "/healthz", key=None),
        get("readyz", "/readyz", key=None),
        get("readyz plain", "/readyz", key=None, web="plain"),
        get("metrics", "/metrics", key=None),
        get("docs", "/docs", key=None),
        get("openapi", "/openapi.json", key=None),
        get("wallboard", "/wallboard", key=None),
        get("no route", "/nope", key=None),
        get("no route v1", "/v1/nope"),
        Call("healthz DELETE", "DELETE", "/healthz", key=None),
        Call("live POST", "POST", "/v1/calls/live", b"", JSON),
    ]


# -- changes -------------------------------------------------------------------------


def changes() -> list[Call]:
    """Callbacks resolved, secrets rotated, deliveries replayed, subscriptions removed."""
    first_open = answer("callbacks ?status=open", "callbacks", 0, "id")
    second_open = answer("callbacks ?status=open", "callbacks", 1, "id")

    def resolve(choose: Callable[[Seen], str]) -> Callable[[Seen], str]:
        return lambda seen: f"/v1/callbacks/{choose(seen)}/resolve"

    note = {"note": "called her back from my mobile"}
    bad_notes: list[tuple[str, bytes, Mapping[str, str]]] = [
        ("text", b"called", {"Content-Type": "text/plain"}),
        ("array", b"[]", JSON),
        ("broken", b'{"note": ', JSON),
        ("empty body", b"", JSON),
        ("no note", b"{}", JSON),
        ("empty note", b'{"note": ""}', JSON),
        ("blank note", b'{"note": "   "}', JSON),
        ("long note", json.dumps({"note": "n" * 501}).encode(), JSON),
        ("long blank note", json.dumps({"note": " " * 501}).encode(), JSON),
        ("number note", b'{"note": 5}', JSON),
        ("extra field", b'{"note": "x", "by": "me"}', JSON),
    ]
    out = [
        Call(f"resolve {name}", "POST", resolve(first_open), body, h) for name, body, h in bad_notes
    ]
    out += [
        post_json("resolve", resolve(first_open), note),
        post_json("resolve again", resolve(first_open), note),
        post_json("resolve otherwise", resolve(first_open), {"note": "someone else"}),
        post_json("resolve padded", resolve(second_open), {"note": "  reached him  "}),
        post_json("resolve none", "/v1/callbacks/nope/resolve", note),
        Call("resolve none bad body", "POST", "/v1/callbacks/nope/resolve", b"[]", JSON),
        post_json("resolve acme key", resolve(second_open), note, key=ACME_KEY),
        post_json("resolve no key", resolve(second_open), note, key=None),
        get("callbacks after", "/v1/callbacks"),
        get("callbacks resolved after", "/v1/callbacks?status=resolved"),
    ]
    sub = "/v1/subscriptions"

    rotate = subscription("sub all", "/rotate-secret")
    out += [
        Call("rotate empty", "POST", rotate, b"", JSON),
        post_json("rotate grace", rotate, {"grace_seconds": 60}),
        post_json("rotate bad grace", rotate, {"grace_seconds": -1}),
        post_json("rotate text grace", rotate, {"grace_seconds": "soon"}),
        Call("rotate text", "POST", rotate, b"soon", {"Content-Type": "text/plain"}),
        Call("rotate array", "POST", rotate, b"[1]", JSON),
        post_json("rotate none", f"{sub}/sub_0000000000000000/rotate-secret", {}),
        Call(
            "rotate none bad body",
            "POST",
            f"{sub}/sub_0000000000000000/rotate-secret",
            b"[1]",
            JSON,
        ),
        post_json("rotate acme key", subscription("sub all", "/rotate-secret"), {}, key=ACME_KEY),
        get("sub all after rotation", subscription("sub all")),
    ]

    def delivery(seen: Seen) -> str:
        first = seen["sub all deliveries"]["deliveries"][0]["id"]
        return f"{sub}/{seen['sub all']['id']}/deliveries/{first}/replay"

    out += [
        Call("replay", "POST", delivery),
        Call("replay none", "POST", subscription("sub all", "/deliveries/nope/replay")),
        Call("replay no sub", "POST", f"{sub}/sub_0000000000000000/deliveries/x/replay"),
        Call("delete", "DELETE", subscription("sub acme key"), key=ACME_KEY),
        Call("delete again", "DELETE", subscription("sub acme key"), key=ACME_KEY),
        Call("delete none", "DELETE", f"{sub}/sub_0000000000000000"),
        get("subs listed after delete", sub),
    ]
    return out


def after_changes() -> list[Call]:
    """What the changes left, once the replayed delivery went out."""
    sub = "/v1/subscriptions"
    return [
        get(
            "sub all deliveries after replay",
            lambda seen: f"{sub}/{seen['sub all']['id']}/deliveries",
        ),
        get("stats after resolve", "/v1/stats?group_by=tenant"),
    ]


def redis_down() -> list[Call]:
    """With Redis stopped: the 503s, and what still answers."""
    hangup = EVENTS.sample("HangupCall", ids={"callUuid": "golden-down", "tenantId": "acme"})
    return [
        Call("down webhook", "POST", WEBHOOK, _form(**hangup), FORM, None),
        Call(
            "down basic webhook",
            "POST",
            "/webhooks/primevox",
            _form(**hangup),
            {"Authorization": "Basic " + _b64(f"pbx:{TOKEN}"), **FORM},
            None,
        ),
        get("down live", "/v1/calls/live"),
        get("down outcomes", "/v1/outcomes"),
        get("down call", "/v1/calls/x"),
        get("down stats", "/v1/stats"),
        get("down subs", "/v1/subscriptions"),
        post_json("down sub", "/v1/subscriptions", {"url": "http://example.com/x"}),
        get("down callbacks", "/v1/callbacks"),
        get("down extensions", "/v1/extensions/live"),
        get("down healthz", "/healthz", key=None),
        get("down readyz", "/readyz", key=None),
        get("down metrics", "/metrics", key=None),
        get("down history", "/v1/calls?limit=2"),
        get("down outcome stream", "/v1/outcomes/stream?after=0-0"),
    ]


def script(receiver: str) -> list[Phase]:
    """Every phase, in order (``receiver``: the URL subscriptions deliver to)."""
    calls = traffic()
    sampled, live = samples()
    return [
        Phase("subscriptions", subscribe(receiver)),
        Phase("webhooks", [*calls.posts, *sampled, *refused_webhooks()], settle=True),
        Phase("reads", reads(calls.calls, live, calls.conversation)),
        Phase("changes", changes(), settle=True),
        Phase("after changes", after_changes()),
        Phase("redis down", redis_down()),
    ]
