"""Intake refuses control characters, lone surrogates and tenant ``*`` in a body, naming the field.

A NUL anywhere in a body used to be taken and then stop the history archive
(PostgreSQL refuses NUL in text); other C0 characters break log lines and
CSV rows. Tab and line breaks are allowed only in free text (an SMS's text, a
DID's description). Each refusal is a ``400 {"error": ...}`` naming the field,
on the quick WSGI path (token in the path), on Flask's route (Basic auth) and
in the schema's own load, and nothing is queued.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import fakeredis
import pytest
from flask.testing import FlaskClient
from test_intake import FORM_TYPE, JSON_TYPE, accepted, backlog, basic, post, refused

from app.intake.event_schemas import RECEIVED_AT, SCHEMAS, RefuseCharacters
from app.intake.loading import BadEvent, _quick_load, _schema_for, load_event
from tests.conftest import TOKEN
from tests.kit.examples import FIELDS, form_body

AT = datetime(2025, 11, 25, 9, 41, 7, tzinfo=UTC)
# Every C0 control character; tab, line feed and return are free text's only.
C0 = [chr(c) for c in range(0x20)]
LINE_CHARACTERS = ["\t", "\n", "\r"]


def _post_either_way(client: FlaskClient, body: str | bytes, content_type: str, auth: str) -> str:
    """Post ``body`` by the quick path (token in the path) or Flask's (Basic auth);
    returns the refusal's words."""
    if auth == "path":
        response = post(client, body, content_type=content_type)
    else:
        response = post(
            client, body, token=None, content_type=content_type, headers=basic("primevox", TOKEN)
        )
    return refused(response, 400)


@pytest.mark.parametrize("auth", ["path", "basic"])
@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x1f", "\t", "\n"])
def test_a_control_character_in_a_number_is_a_400_naming_it(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, auth: str, character: str
) -> None:
    """A C0 character in the caller's number (even tab or a line break) is refused by name."""
    body = json.dumps({**FIELDS["InboundCall"], "callerIdNum": f"+1555{character}x"})
    error = _post_either_way(client, body, JSON_TYPE, auth)
    assert "callerIdNum" in error
    assert backlog(redis_client) == (0, 0)


@pytest.mark.parametrize("auth", ["path", "basic"])
def test_a_nul_in_a_form_body_is_refused(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, auth: str
) -> None:
    """The attack as sent: a form-encoded %00 in callerIdNum gets 400, not 202."""
    body = "&".join(
        p for p in form_body("InboundCall").split("&") if not p.startswith("callerIdNum=")
    ) + ("&callerIdNum=%2B1555%00x")
    assert "callerIdNum" in _post_either_way(client, body, FORM_TYPE, auth)
    assert backlog(redis_client) == (0, 0)


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b"])
def test_a_control_character_in_a_field_no_event_reads_is_refused(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, character: str
) -> None:
    """A field the event does not read is still kept as sent, so it is held to the same rule."""
    body = json.dumps({**FIELDS["HangupCall"], "somethingNew": f"a{character}b"})
    assert "somethingNew" in refused(post(client, body, content_type=JSON_TYPE), 400)
    assert backlog(redis_client) == (0, 0)


def test_a_control_character_in_a_field_name_is_refused(client: FlaskClient) -> None:
    """A field's name is kept too: a control character in it is refused."""
    body = json.dumps({**FIELDS["HangupCall"], "bad\x00name": "x"})
    assert "name" in refused(post(client, body, content_type=JSON_TYPE), 400)


@pytest.mark.parametrize("character", LINE_CHARACTERS)
def test_free_text_may_hold_tabs_and_line_breaks(client: FlaskClient, character: str) -> None:
    """An SMS's text and a DID's description are typed by people: tab and line breaks stay."""
    sms = {**FIELDS["inboundMessage"], "messageText": f"line one{character}line two"}
    accepted(post(client, json.dumps(sms), content_type=JSON_TYPE))
    call = {**FIELDS["InboundCall"], "didDescription": f"Main{character}line"}
    accepted(post(client, json.dumps(call), content_type=JSON_TYPE))


@pytest.mark.parametrize("character", ["\x00", "\x0b", "\x0c", "\x1b"])
def test_free_text_refuses_other_control_characters(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, character: str
) -> None:
    """Free text still refuses NUL and every C0 character but tab and line breaks."""
    sms = {**FIELDS["inboundMessage"], "messageText": f"hello{character}"}
    assert "messageText" in refused(post(client, json.dumps(sms), content_type=JSON_TYPE), 400)
    assert backlog(redis_client) == (0, 0)


@pytest.mark.parametrize("auth", ["path", "basic"])
def test_a_lone_surrogate_is_refused_by_name(client: FlaskClient, auth: str) -> None:
    """A JSON escape of half a surrogate pair is no text PostgreSQL or UTF-8 can keep."""
    body = json.dumps(FIELDS["InboundCall"])[:-1] + ', "callerIdName": "Jo\\ud800"}'
    assert "callerIdName" in _post_either_way(client, body, JSON_TYPE, auth)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("InboundCall", "callerIdNum"),
        ("InboundCall", "didGroup"),
        ("inboundMessage", "fromNumber"),
        ("inboundMessage", "messageText"),
        ("HangupCall", "extName"),
    ],
)
@pytest.mark.parametrize("character", C0)
def test_the_schema_and_the_quick_path_decide_alike(name: str, key: str, character: str) -> None:
    """Each declared text field refuses C0 characters in Schema.load itself, as the quick path
    does (free text excepting tab and line breaks), and names the field."""
    fields = {**FIELDS[name], key: f"a{character}b"}
    schema = _schema_for(fields["eventType"], fields)
    quick = _quick_load(schema, fields, AT)
    errors = schema.validate({**fields, RECEIVED_AT: AT.isoformat()})
    free_text = key in ("messageText", "didGroup") and character in LINE_CHARACTERS
    if free_text:
        assert quick is not None and not errors
    else:
        assert quick is None
        assert key in errors


def test_every_declared_schema_checks_characters() -> None:
    """No declared text field is left without its character check."""
    for schema in SCHEMAS.values():
        for name, field in schema.fields.items():
            if name == schema.shape.received:
                continue
            assert any(isinstance(v, RefuseCharacters) for v in field.validators), name


@pytest.mark.parametrize("auth", ["path", "basic"])
def test_tenant_star_in_a_body_is_refused_even_from_an_every_tenant_token(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, auth: str
) -> None:
    """``*`` stands for every tenant in tokens and keys; no event may be filed under it."""
    error = _post_either_way(client, form_body("HangupCall", tenant_id="*"), FORM_TYPE, auth)
    assert "tenantId" in error
    assert backlog(redis_client, ("*",)) == (0, 0)


def test_load_event_refuses_tenant_star() -> None:
    """An event is never built for tenant ``*``, whoever posts it."""
    with pytest.raises(BadEvent, match="tenantId"):
        load_event({**FIELDS["HangupCall"], "tenantId": "*"}, AT)
