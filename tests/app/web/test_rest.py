"""app/web/rest.py: flask-smorest's decorators with our parser (a query loaded as webargs
loads it, a bad argument answered 400 in the API's words, a JSON body that must be an
object), and one route declared by ``ApiBlueprint.operation`` checking in its order."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from marshmallow import Schema, fields, validate

from app.web.errors import Missing, error_response, register_error_handlers
from app.web.resources import init_app as init_resources
from app.web.rest import ApiBlueprint, JsonBody
from core.settings import Settings


class Args(Schema):
    name = fields.String(validate=validate.Length(max=3, error="name is too long"))
    tags = fields.List(fields.String())
    size = fields.Integer(data_key="page-size", error_messages={"invalid": "page-size is bad"})


class Answer(Schema):
    shown = fields.String()
    count = fields.Integer()


class Note(JsonBody):
    not_an_object = "send a note"
    invalid = "invalid note"
    optional = False

    text = fields.String(required=True, validate=validate.Length(min=1))


class Options(JsonBody):
    invalid = "invalid options"

    grace = fields.Integer(load_default=5)


class Listed(Schema):
    name = fields.String(validate=validate.OneOf(["a"]))
    size = fields.Integer()

    @staticmethod
    def error_text(messages: Any) -> str:
        return " & ".join(sorted(messages))


@pytest.fixture
def client() -> FlaskClient:
    bp = ApiBlueprint("probe", __name__)

    @bp.get("/echo")
    @bp.arguments(Args(), location="query")
    @bp.response(200, Answer)
    def echo(args: dict[str, Any]) -> dict[str, Any]:
        return {"shown": repr(sorted(args.items())), "count": len(args), "hidden": "internal"}

    @bp.get("/items/<item>")
    @bp.arguments(Args(), location="query")
    @bp.response(200, Answer)
    def item(args: dict[str, Any], item: str) -> Any:
        if item == "missing":
            return error_response(404, "no such item")
        if item == "gone":
            return Response(status=204), 204
        return {"shown": item}, 201

    def must_exist(thing: str) -> None:
        if thing == "none":
            raise Missing("no such thing")

    @bp.operation(
        "POST",
        "/things/<thing>/notes",
        "addNote",
        tag="things",
        before=must_exist,
        query=Args(),
        body=Note(),
        schema=Answer,
        answer="the note",
    )
    def add_note(args: dict[str, Any], note: dict[str, str], thing: str) -> dict[str, Any]:
        return {"shown": f"{thing}: {note['text']} ({args.get('name')})"}

    @bp.operation(
        "POST",
        "/options",
        "setOptions",
        tag="things",
        body=Options(),
        body_required=False,
        schema=Answer,
        answer="the options",
        key=False,
    )
    def set_options(options: dict[str, int]) -> dict[str, Any]:
        return {"count": options["grace"]}

    @bp.operation("GET", "/listed", "listed", tag="things", query=Listed(), answer="ok", key=False)
    def listed(args: dict[str, Any]) -> Response:
        return Response("ok")

    app = Flask(__name__)
    app.config["CALLSTATE_SETTINGS"] = Settings(api_keys={"k": "*"})
    # The key check looks keys up in the resources' directory (here: none but "k").
    init_resources(app, fakeredis.FakeRedis())
    register_error_handlers(app)
    app.register_blueprint(bp)
    return app.test_client()


KEY = {"Authorization": "Bearer k"}


def test_a_repeated_key_gives_its_first_value_and_a_list_field_every_value(
    client: FlaskClient,
) -> None:
    """A query key given twice counts once (its first value); a list field takes every value."""
    answer = client.get("/echo?name=ab&name=cd&tags=x&tags=y&page-size=5&other=1")
    assert answer.status_code == 200
    assert answer.json == {
        "shown": repr([("name", "ab"), ("size", 5), ("tags", ["x", "y"])]),
        "count": 3,
    }


def test_a_bad_query_answers_400_with_the_first_declared_fields_message(
    client: FlaskClient,
) -> None:
    """Of several bad query arguments, the first declared field's message is the answer."""
    answer = client.get("/echo?page-size=x&name=toolong")
    assert answer.status_code == 400
    assert answer.json == {"error": "name is too long"}


def test_a_query_schema_may_word_its_own_errors(client: FlaskClient) -> None:
    """A query schema with ``error_text`` words the 400 from every field's messages."""
    answer = client.get("/listed?size=x&name=b")
    assert (answer.status_code, answer.json) == (400, {"error": "name & size"})


def test_the_answer_is_dumped_by_its_schema_and_keeps_a_views_own_status(
    client: FlaskClient,
) -> None:
    """Only the schema's fields are answered; a view's own status and Response pass through."""
    assert client.get("/items/a").status_code == 201
    assert client.get("/items/a").json == {"shown": "a"}
    missing = client.get("/items/missing")
    assert (missing.status_code, missing.json) == (404, {"error": "no such item"})
    assert client.get("/items/gone").status_code == 204


def test_a_json_body_is_loaded_by_its_schema(client: FlaskClient) -> None:
    """The loaded query, then the loaded body, then the path's values reach the view."""
    answer = client.post("/things/t1/notes?name=ab", json={"text": "hi"}, headers=KEY)
    assert (answer.status_code, answer.json) == (200, {"shown": "t1: hi (ab)"})


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[1]", "application/json"),
        (b'"text"', "application/json"),
        (b'{"text": ', "application/json"),
        (b"text=hi", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
)
def test_a_body_that_is_no_json_object_answers_its_schemas_words(
    client: FlaskClient, body: bytes, content_type: str
) -> None:
    """An array, a string, broken JSON, a form, or no body where one is required:
    400 with the schema's ``not_an_object``."""
    answer = client.post(
        "/things/t1/notes", data=body, headers={**KEY, "Content-Type": content_type}
    )
    assert (answer.status_code, answer.json) == (400, {"error": "send a note"})


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_json_object_is_read_whatever_content_type_it_came_with(
    client: FlaskClient, content_type: str
) -> None:
    """A JSON object sent as text or as a form (curl -d's default) is read as JSON:
    the body decides, as at webhook intake."""
    answer = client.post(
        "/things/t1/notes",
        data=b'{"text": "hi"}',
        headers={**KEY, **({"Content-Type": content_type} if content_type else {})},
    )
    assert (answer.status_code, answer.json) == (200, {"shown": "t1: hi (None)"})


def test_a_refused_body_answers_with_every_fields_messages(client: FlaskClient) -> None:
    """A JSON object the schema refuses: 400, its ``invalid`` and each field's messages."""
    answer = client.post("/things/t1/notes", json={"text": "", "by": "me"}, headers=KEY)
    assert answer.status_code == 400
    assert answer.json == {
        "error": "invalid note",
        "fields": {"text": ["Shorter than minimum length 1."], "by": ["Unknown field."]},
    }


def test_an_optional_body_may_be_empty_but_not_anything_else(client: FlaskClient) -> None:
    """No body reads as ``{}`` where the body is optional; a body that is not an object
    still answers the default ``not_an_object``."""
    assert client.post("/options").json == {"count": 5}
    assert client.post("/options", json={"grace": 7}).json == {"count": 7}
    refused = client.post("/options", data=b"7", content_type="application/json")
    assert (refused.status_code, refused.json) == (400, {"error": "body must be a JSON object"})


def test_the_key_is_checked_first_then_before_then_the_arguments(client: FlaskClient) -> None:
    """No key: 401 whatever else is wrong; then ``before`` (404) whatever the arguments;
    then the query, then the body."""
    bad = {"data": b"[]", "content_type": "application/json"}
    assert client.post("/things/none/notes?name=toolong", **bad).status_code == 401
    missing = client.post("/things/none/notes?name=toolong", headers=KEY, **bad)
    assert (missing.status_code, missing.json) == (404, {"error": "no such thing"})
    query_first = client.post("/things/t1/notes?name=toolong", headers=KEY, **bad)
    assert query_first.json == {"error": "name is too long"}
