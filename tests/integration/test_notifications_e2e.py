"""A missed call told to people: Slack, Teams and email, through the real web and worker.

A Slack-shaped and a Teams-shaped receiver on loopback, and an SMTP server
(aiosmtpd) on loopback as SMTP_URL. One missed call (abandoned in a queue)
must reach each as its kind's message: the Slack JSON valid against Slack's
documented text/blocks shape, the Teams JSON an Adaptive Card 1.4+, the email
parsed back with the right headers and body, each saying who called, the
number called, the queue, what happened, the wait and the number to call
back, in the tenant's time zone.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from callstate_harness import (
    KEY_A,
    TENANT_A,
    Launcher,
    accept_calls,
    subscribe,
    wait_until,
)
from callstate_harness import load_webhook_kit as load_kit
from primevox_bodies import Call, scenario

kit = load_kit()
shapes = load_kit("notification_shapes")
TIMEZONE = "America/Chicago"


class Mailbox:
    """aiosmtpd's handler: keeps every message it is given, parsed."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    # aiosmtpd checks its server by connecting to the port it was given: not 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def test_a_missed_call_reaches_slack_teams_and_email(
    launcher: Launcher, smtp: tuple[Mailbox, int]
) -> None:
    """One abandoned call arrives as a Slack message, a Teams card and an email."""
    mailbox, smtp_port = smtp
    with kit.Receiver() as receiver:
        api = launcher.start_service(
            SUBSCRIPTION_ALLOW_PRIVATE="1",
            OUTCOME_GRACE_SECONDS="1",
            DEFAULT_TIMEZONE=TIMEZONE,
            SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
            SMTP_FROM="PBX alerts <alerts@example.com>",
        )
        missed_only = {"outcomes": ["missed"]}
        slack = subscribe(api, KEY_A, {"kind": "slack", "url": receiver.url("/slack"),
                                       **missed_only})  # fmt: skip
        teams = subscribe(api, KEY_A, {"kind": "teams", "url": receiver.url("/teams"),
                                       **missed_only})  # fmt: skip
        email = subscribe(api, KEY_A, {"kind": "email", **missed_only,
                                       "to": ["desk@example.com", "boss@example.com"]})  # fmt: skip
        assert (slack["kind"], teams["kind"], email["kind"]) == ("slack", "teams", "email")
        assert email["url"] is None and email["to"] == ["boss@example.com", "desk@example.com"]

        missed, answered = Call(TENANT_A), Call(TENANT_A)
        accept_calls(api, [scenario("abandoned", missed), scenario("answered", answered)])
        wait_until(lambda: receiver.successes("/slack") and receiver.successes("/teams")
                   and mailbox.messages, 30, "a message of each kind",
                   detail=lambda: [(r.path, r.status) for r in receiver.received()])
        wait_until(lambda: len(api.outcomes()) >= 2, 15, "both outcomes")
        record = next(r for r in api.outcomes() if r["call_uuid"] == missed.uuid)
    assert record["outcome"] == "missed" and record["missed_reason"] == "abandoned"
    wait = record["wait_seconds"]

    # Only the missed call: the answered one matches none of the subscriptions.
    [slack_request] = receiver.received("/slack")
    message = json.loads(slack_request.body)
    shapes.check_slack(message)
    assert slack_request.headers["content-type"] == "application/json"
    assert missed.caller_number in message["text"] and "queue 700" in message["text"]
    fields = [f["text"] for b in message["blocks"] if b["type"] == "section" for f in b["fields"]]
    shown = "\n".join(fields)
    for expected in ("*Caller*", "Zoë D'Arcy-Smith", missed.caller_number, "*Number called*",
                     missed.did, "*Queue*\n700", "hung up while waiting", "*Call back*"):
        assert expected in shown, (expected, shown)
    context = [e["text"] for b in message["blocks"] if b["type"] == "context"
               for e in b["elements"]]
    assert any(zone in context[0] for zone in ("CST", "CDT")), context  # the tenant's zone

    [teams_request] = receiver.received("/teams")
    card = json.loads(teams_request.body)
    shapes.check_teams(card)
    facts = shapes.facts_of_card(card)
    assert facts["Caller"] == f"Zoë D'Arcy-Smith ({missed.caller_number})"
    assert facts["Number called"].endswith(f"({missed.did})") and facts["Queue"] == "700"
    assert facts["Call back"] == missed.caller_number
    assert facts["What happened"] == "missed: the caller hung up while waiting"
    minutes, seconds = divmod(round(wait), 60)
    assert facts["Wait"] == f"{minutes}:{seconds:02d}"

    [(recipients, mail)] = mailbox.messages
    assert sorted(recipients) == ["boss@example.com", "desk@example.com"]
    assert mail["From"] == "PBX alerts <alerts@example.com>"
    assert mail["To"] == "boss@example.com, desk@example.com"
    assert mail["Subject"] == f"Missed call from Zoë D'Arcy-Smith ({missed.caller_number})"
    assert mail["Message-ID"].endswith("@callstate>")
    assert mail.get_content_type() == "text/plain"
    body = mail.get_content()
    assert f"Call back:     {missed.caller_number}" in body
    assert "Queue:         700" in body and (" CST" in body or " CDT" in body)
