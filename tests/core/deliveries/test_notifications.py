"""Notifications for people: every outcome told in each kind's format, the subscription
API's checks of kinds, and email through a real SMTP server with STARTTLS."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from flask import Flask
from flask.testing import FlaskClient

from core.notifications.formats import email_message, slack_message, teams_message
from core.notifications.notices import outcome_notice
from core.notifications.smtp import SmtpServer, send_email
from core.settings import Settings
from tests.kit.deliveries import ADMIN, T1, Calls, Pump
from tests.kit.notification_shapes import check_slack, check_teams, facts_of_card
from tests.kit.webhooks import Receiver, verify

PARIS = ZoneInfo("Europe/Paris")
RECORD: dict[str, Any] = {
    "call_uuid": "c1", "tenant_id": "t1", "direction": "inbound", "outcome": "missed",
    "missed_reason": "no_answer", "answered_by": None, "voicemail_box": None,
    "caller": {"number": "+15551230000", "name": "Zoë <D'Arcy> & Co"},
    "did": {"number": "+15550001000", "description": "Sales", "group": ""},
    "number_dialed": None, "queue": None, "ring_group": "600", "rang": [],
    "started_at": "2026-12-07T08:14:05.000000Z", "ended_at": "2026-12-07T08:15:47.000000Z",
    "wait_seconds": 102.0, "talk_seconds": 0, "revision": 1,
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "title", "happened", "callback"),
    [
        ({}, "Missed call from Zoë <D'Arcy> & Co (+15551230000)",
         "missed: extensions rang, nobody answered", "+15551230000"),
        ({"outcome": "voicemail", "missed_reason": None,
          "voicemail_box": {"number": "101", "name": "Ana"}},
         "Voicemail from Zoë <D'Arcy> & Co (+15551230000)",
         "voicemail left in box Ana (101)", "+15551230000"),
        ({"outcome": "answered", "missed_reason": None,
          "answered_by": {"number": "101", "name": "Ana"}},
         "Call from Zoë <D'Arcy> & Co (+15551230000) answered by Ana (101)",
         "answered by Ana (101)", None),
        ({"outcome": "outbound", "direction": "outbound", "missed_reason": None,
          "number_dialed": "+15559876543", "extension": {"number": "101", "name": "Ana"}},
         "Outbound call to +15559876543", "outbound call", None),
    ],
)  # fmt: skip
def test_each_outcome_is_told_in_every_format(
    changes: dict[str, Any], title: str, happened: str, callback: str | None
) -> None:
    """Each outcome reads as a title and facts, valid as Slack, Teams and email."""
    notice = outcome_notice({**RECORD, **changes}, PARIS)
    facts = dict(notice.facts)
    assert notice.title == title
    assert facts["What happened"] == happened
    assert facts.get("Call back") == callback
    assert facts["Wait"] == "1:42"
    assert notice.when == "Mon 7 Dec 2026 09:14:05 CET"  # the tenant's zone, not UTC
    slack = slack_message(notice)
    check_slack(slack)
    # Slack's mrkdwn needs &, < and > escaped; the header is plain text.
    shown = "\n".join(field["text"] for field in slack["blocks"][1]["fields"])
    assert "<D'Arcy>" not in shown
    assert ("Zoë &lt;D'Arcy&gt; &amp; Co" in shown) == (changes.get("outcome") != "outbound")
    teams = teams_message(notice)
    check_teams(teams)
    assert facts_of_card(teams) == facts
    mail = email_message(notice, sender="a@example.com", to=["b@example.com"], message_id="<m@x>")
    parsed = message_from_bytes(mail.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == title and parsed["Message-ID"] == "<m@x>"
    assert f"What happened: {happened}" in parsed.get_content()


def test_kinds_are_checked_when_subscribing(client: FlaskClient, settings: Settings) -> None:
    """A URL for slack and teams, addresses for email, and email needs SMTP_URL."""

    def post(body: dict[str, Any]) -> tuple[int, str]:
        answer = client.post("/v1/subscriptions", json=body, headers=T1)
        return answer.status_code, answer.get_data(as_text=True)

    assert post({"kind": "slack"})[0] == 400
    to = ["a@example.com"]
    assert post({"kind": "teams", "url": "https://example.com/t", "to": to})[0] == 400
    assert post({"kind": "email", "to": ["not an address"]})[0] == 400
    assert post({"kind": "email", "url": "https://example.com/x", "to": to})[0] == 400
    assert post({"kind": "pigeon", "url": "https://example.com/x"})[0] == 400
    status, text = post({"kind": "email", "to": ["a@example.com"]})
    assert status == 400 and "SMTP_URL" in text
    status, text = post({"kind": "slack", "url": "https://hooks.example.com/services/x"})
    assert status == 201, text
    shown = client.get("/v1/subscriptions", headers=ADMIN).get_json()["subscriptions"]
    assert [(s["kind"], s["to"]) for s in shown] == [("slack", None)]


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) from a test CA."""
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    return server, client


@pytest.fixture
def smtp_server(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server that offers STARTTLS and takes user/secret only over it."""

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"user", b"s3cret/pass",
        )  # fmt: skip
        return AuthResult(success=good)

    mailbox, port = Mailbox(), _free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, tls_context=tls[0], require_starttls=True,
        authenticator=authenticate, auth_required=True, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def _message() -> EmailMessage:
    notice = outcome_notice(RECORD, PARIS)
    return email_message(notice, sender="pbx@example.com", to=["desk@example.com"],
                         message_id="<x@callstate>")  # fmt: skip


def test_email_goes_over_starttls_with_credentials(
    smtp_server: tuple[Mailbox, int], tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    """smtp:// with credentials upgrades with STARTTLS, logs in, and the mail arrives."""
    mailbox, port = smtp_server
    server = SmtpServer.from_url(f"smtp://user:s3cret%2Fpass@127.0.0.1:{port}")
    assert (server.username, server.password, server.implicit_tls) == ("user", "s3cret/pass", False)
    attempt = send_email(server, _message(), ssl_context=tls[1])
    assert attempt.ok, attempt.error
    [mail] = mailbox.messages
    assert mail["To"] == "desk@example.com" and mail["Subject"].startswith("Missed call from")
    untrusted = send_email(server, _message())  # the system's CAs do not know the test CA
    assert not untrusted.ok and "CERTIFICATE_VERIFY_FAILED" in (untrusted.error or "")


def test_credentials_are_never_sent_without_tls() -> None:
    """A server that offers no STARTTLS gets no password: the attempt fails, retried later."""
    mailbox, port = Mailbox(), _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    try:
        server = SmtpServer.from_url(f"smtp://user:pw@127.0.0.1:{port}")
        attempt = send_email(server, _message())
        assert not attempt.ok and "STARTTLS" in (attempt.error or "")
        plain = send_email(SmtpServer.from_url(f"smtp://127.0.0.1:{port}"), _message())
        assert plain.ok, plain.error  # no credentials: a local relay without TLS is fine
    finally:
        controller.stop()
    assert len(mailbox.messages) == 1


def test_a_slack_subscription_gets_messages_not_records(
    client: FlaskClient, calls: Calls, pump: Pump, receiver: Receiver
) -> None:
    """Through the delivery runner, a slack subscription's receiver gets a Slack message."""
    made = client.post("/v1/subscriptions", headers=T1, json={
        "kind": "slack", "url": receiver.url("/slack"), "outcomes": ["missed"]})
    assert made.status_code == 201
    calls.end("missed")
    calls.end("answered")
    pump()
    [request] = receiver.received("/slack")
    message = json.loads(request.body)
    check_slack(message)
    assert message["text"].startswith("Missed call from Zoë (+15551230000)")
    listed = client.get(f"/v1/subscriptions/{made.get_json()['id']}/deliveries", headers=T1)
    [delivery] = listed.get_json()["deliveries"]
    assert delivery["status"] == "succeeded" and delivery["payload"]["outcome"] == "missed"


def test_the_test_command_sends_a_sample_of_each_thing(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    """`flask subscriptions test <id>`: samples in the subscription's own format, signed."""
    hook = client.post("/v1/subscriptions", headers=T1, json={"url": receiver.url("/hook")})
    slack = client.post("/v1/subscriptions", headers=T1,
                        json={"kind": "slack", "url": receiver.url("/slack")})  # fmt: skip
    runner = app.test_cli_runner()
    done = runner.invoke(args=["subscriptions", "test", hook.get_json()["id"]])
    assert done.exit_code == 0, done.output
    assert done.output.count(": sent to ") == 3
    got = receiver.received("/hook")
    assert [json.loads(r.body).get("type", "outcome") for r in got] == [
        "outcome", "call.ringing", "alert.long_wait",
    ]  # fmt: skip
    for request in got:
        verify(hook.get_json()["secret"], request.headers, request.body)
    done = runner.invoke(args=["subscriptions", "test", slack.get_json()["id"]])
    assert done.exit_code == 0, done.output
    messages = [json.loads(r.body) for r in receiver.received("/slack")]
    for message in messages:
        check_slack(message)
    assert [m["blocks"][0]["text"]["text"] for m in messages] == [
        "Missed call from Sample Caller (+15551230000)", "A caller is waiting too long",
    ]  # fmt: skip
    assert runner.invoke(args=["subscriptions", "test", "sub_nope"]).exit_code != 0
