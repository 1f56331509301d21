"""The API description: /openapi.json covers every route and is valid; /docs shows it all."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openapi_spec_validator import validate

import app.intake.loading as intake_schemas
import app.intake.openapi_webhooks as openapi_webhooks
import app.ops.openapi as openapi
from app.ops.docs_page import Page, render
from tests.conftest import TOKEN

METHODS = ("get", "post", "put", "patch", "delete")


def _routes(app: Flask) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every route the app serves, static files aside."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                found.add((path, method.lower()))
    return found


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def test_every_route_is_described(app: Flask) -> None:
    """Each method of each route in app.url_map (static aside) has an operation in the spec."""
    missing = _routes(app) - _documented(openapi.build_spec())
    assert not missing, f"routes missing from app/ops/openapi.py: {sorted(missing)}"


def test_every_described_operation_exists(app: Flask) -> None:
    """The spec describes no route the app does not serve."""
    stale = _documented(openapi.build_spec()) - _routes(app)
    assert not stale, f"operations in app/ops/openapi.py with no route: {sorted(stale)}"


def test_the_document_is_valid_openapi() -> None:
    """openapi-spec-validator accepts the document (OpenAPI 3.1)."""
    document = openapi.build_spec()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_operation_has_an_id_a_summary_and_documented_errors() -> None:
    """Operations are named, summarised, and every non-2xx answer has the Error schema."""
    document = openapi.build_spec()
    ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            ids.append(operation["operationId"])
            assert operation.get("summary"), f"{method} {path} has no summary"
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)
    assert len(ids) == len(set(ids))


def test_the_api_requires_bearer_keys_and_operations_need_none() -> None:
    """/v1 operations use the bearer scheme; intake, health, metrics and docs need no key."""
    document = openapi.build_spec()
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for operation in item.values():
            if path.startswith("/v1/"):
                assert "security" not in operation, path
                assert "401" in operation["responses"], path
            else:
                assert "security" in operation, path
    basic = document["paths"]["/webhooks/primevox"]["post"]["security"]
    assert basic == [{"webhookBasic": []}]


def test_every_event_kind_the_intake_checks_is_documented() -> None:
    """Each intake schema (app.intake.loading) is the source of one documented webhook body."""
    documented = {id(event.schema) for event in openapi_webhooks.WEBHOOK_EVENTS}
    checked = [
        *intake_schemas.SCHEMAS.values(),
        intake_schemas.UNKNOWN_CALL_SCHEMA,
        intake_schemas.UNKNOWN_SCHEMA,
    ]
    assert {id(schema) for schema in checked} <= documented
    union = openapi.build_spec()["components"]["schemas"]["WebhookEvent"]["anyOf"]
    assert len(union) == len(openapi_webhooks.WEBHOOK_EVENTS)


def test_webhook_bodies_use_the_intakes_field_names_and_limits() -> None:
    """Documented fields are the schemas' data_keys (as the PBX spells them), with their limits."""
    schemas = openapi.build_spec()["components"]["schemas"]
    answered = schemas["ExtensionAnsweredEvent"]
    assert {"extensionNumber", "extensionName", "callUuid", "tenantId"} <= set(
        answered["properties"]
    )
    assert answered["required"] == ["eventType", "tenantId", "callUuid"]
    sms = schemas["InboundMessageEvent"]
    assert {"tenantID", "containerID", "conversationID", "messageText"} <= set(sms["properties"])
    tenant = schemas["InboundCallEvent"]["properties"]["tenantId"]
    assert tenant["maxLength"] == intake_schemas.MAX_ID_LENGTH
    assert tenant["minLength"] == 1
    assert "pattern" in tenant
    assert all(intake_schemas.RECEIVED_AT not in s.get("properties", {}) for s in schemas.values())


def _example(schema_name: str) -> dict[str, Any]:
    page = Page(openapi.build_spec())
    body = page.example({"$ref": f"#/components/schemas/{schema_name}"})
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("event", openapi_webhooks.WEBHOOK_EVENTS, ids=lambda e: e.name)
def test_each_documented_webhook_example_is_accepted(
    client: FlaskClient, event: openapi_webhooks.WebhookEvent
) -> None:
    """The example body of each event kind, as JSON and as a form, gets a 202."""
    body = _example(event.name)
    as_json = client.post(f"/webhooks/primevox/{TOKEN}", json=body)
    assert as_json.status_code == 202, as_json.get_json()
    as_form = client.post(
        f"/webhooks/primevox/{TOKEN}",
        data=urlencode(body),
        content_type="application/x-www-form-urlencoded",
    )
    assert as_form.status_code == 202, as_form.get_json()
    if event.event_type:
        assert as_json.get_json()["event_type"] == event.event_type


@pytest.mark.parametrize("name", sorted(openapi.RESPONSE_SCHEMAS))
def test_each_schemas_example_matches_the_schema(name: str) -> None:
    """The example /docs shows for each schema is valid against it (with no extra fields)."""
    document = openapi.build_spec()
    example = Page(document).example({"$ref": f"#/components/schemas/{name}"})
    validator = Draft202012Validator(
        {"components": document["components"], "$ref": f"#/components/schemas/{name}"}
    )
    assert not [error.message for error in validator.iter_errors(example)]
    declared = document["components"]["schemas"][name].get("properties", {})
    assert set(example) <= set(declared)


def test_openapi_json_is_served_without_credentials(client: FlaskClient) -> None:
    """GET /openapi.json answers the document as JSON, no API key needed."""
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    assert answer.get_json() == json.loads(json.dumps(openapi.build_spec()))


def test_docs_page_lists_every_operation_and_loads_nothing_from_elsewhere(
    client: FlaskClient,
) -> None:
    """GET /docs is one HTML page naming each method and path, with no external script or style."""
    answer = client.get("/docs")
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    for path, method in _documented(openapi.build_spec()):
        assert f"<span class='method {method}'>{method}</span>{path}" in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page


def test_docs_page_shows_parameters_schemas_and_examples(client: FlaskClient) -> None:
    """The page has parameter tables, each schema with its fields, and example bodies."""
    page = client.get("/docs").get_data(as_text=True)
    assert "<code>after</code>" in page and "<code>limit</code>" in page
    assert "id='schema-OutcomeRecord'" in page
    assert "<code>missed_reason</code>" in page
    assert "eventType=InboundCall" in page  # a form-encoded example body
    assert '<pre>{\n  &#34;calls&#34;' in page  # a JSON example answer, escaped


def test_docs_page_names_the_webhooks_token_as_its_credential(client: FlaskClient) -> None:
    """The intake's credential is the token in its path (OpenAPI has no scheme for a
    secret in a path): the page says so instead of "No credentials"."""
    page = client.get("/docs").get_data(as_text=True)
    section = page[page.index("id='op-receiveWebhook'") :]
    section = section[: section.index("<h4>")]
    assert "the token in the path" in section and "No credentials" not in section


def test_docs_page_escapes_every_text_from_the_document(app: Flask) -> None:
    """Markup in a title, summary, description or field name is shown, never run."""
    hostile = "<script>alert(1)</script>"
    spec = {
        "openapi": "3.1.0",
        "info": {"title": hostile, "description": f"see `{hostile}`"},
        "paths": {"/x": {"get": {"summary": hostile, "operationId": hostile, "responses": {
            "200": {"description": hostile, "content": {"application/json": {
                "schema": {"type": "object", "properties": {hostile: {"type": "string"}}}}}},
        }}}},
    }
    with app.test_request_context():
        page = render(spec)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<code>&lt;script&gt;" in page  # backticks still become code, escaped inside
