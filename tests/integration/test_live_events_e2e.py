"""Live call events through the real web and worker: a screen-pop's webhook.

A webhook subscription of every live call event gets a ringing call as
``call.ringing`` naming the extension, signed like every delivery, and the
events of each call in order, each once, while the PBX repeats itself.
"""

from __future__ import annotations

import json

import pytest
from callstate_harness import (
    KEY_A,
    TENANT_A,
    Launcher,
    accept_calls,
    subscribe,
    wait_until,
)
from callstate_harness import load_webhook_kit as load_kit
from primevox_bodies import ALICE, BOB, Call, scenario

# On one Redis and on a Redis Cluster (conftest.py: backend).
pytestmark = pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)

kit = load_kit()
LIVE = ["call.started", "call.queued", "call.ringing", "call.answered", "call.ended"]


def test_a_ringing_call_pops_with_its_extension_and_calls_arrive_in_order(
    launcher: Launcher,
) -> None:
    """call.ringing names the extension; each call's events arrive once, in order."""
    with kit.Receiver() as receiver:
        api = launcher.start_service(SUBSCRIPTION_ALLOW_PRIVATE="1", OUTCOME_GRACE_SECONDS="1")
        made = subscribe(api, KEY_A, {"url": receiver.url("/pop"), "outcomes": [], "events": LIVE})
        ringing = Call(TENANT_A)
        api.accept(ringing.inbound())
        api.accept(ringing.ring(ALICE))
        pops = wait_until(
            lambda: [r for r in receiver.successes("/pop")
                     if json.loads(r.body)["type"] == "call.ringing"],
            20, "call.ringing at the receiver",
        )  # fmt: skip
        pop = json.loads(pops[0].body)
        kit.verify(made["secret"], pops[0].headers, pops[0].body)
        assert pop["call_uuid"] == ringing.uuid and pop["tenant_id"] == TENANT_A
        assert pop["extension"] == {"number": ALICE.number, "name": ALICE.name}
        assert pop["caller"]["number"] == ringing.caller_number

        # The rest of that call, and others, each event sent twice as a PBX retry would.
        others = [Call(TENANT_A) for _ in range(4)]
        rest = [ringing.ring(BOB), ringing.answered(BOB), ringing.hangup(BOB)]
        bodies = rest + [e for c in others for e in scenario("answered", c)]
        accept_calls(api, [bodies, bodies])
        everyone = [ringing, *others]

        def all_ended() -> bool:
            got = [json.loads(r.body) for r in receiver.successes("/pop")]
            return {g["call_uuid"] for g in got if g["type"] == "call.ended"} == {
                c.uuid for c in everyone
            }

        wait_until(all_ended, 30, "call.ended of every call")
    got = [json.loads(r.body) for r in receiver.successes("/pop")]
    assert len({g["id"] for g in got}) == len(got), "an event delivered twice"
    for call in everyone:
        mine = [g for g in got if g["call_uuid"] == call.uuid]
        steps = [(g["type"], (g.get("extension") or g.get("answered_by") or {}).get("number"))
                 for g in mine]  # fmt: skip
        # Events of one call may be applied in another order than they were posted
        # (a later batch may hold an earlier event): a step the call had passed by
        # then is not sent. What is sent is in order, once each.
        assert len(set(steps)) == len(steps), steps
        ranks = [LIVE.index(kind) for kind, _ in steps]
        assert ranks == sorted(ranks), steps
        assert steps[0] == ("call.started", None) and steps[-1] == ("call.ended", None)
        assert ("call.answered", BOB.number) in steps
        assert [g["id"] for g in mine] == sorted(
            (g["id"] for g in mine), key=lambda i: tuple(map(int, i.split("-")))
        )
    first = [g["type"] for g in got if g["call_uuid"] == ringing.uuid][:2]
    assert first == ["call.started", "call.ringing"]
