"""ApiBlueprint's own wrappers: a query loaded by its schema as webargs would load
it, and an answer dumped by its schema as flask-smorest would dump it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from marshmallow import Schema, fields, validate

from app.web.errors import error_response, register_error_handlers
from app.web.rest import ApiBlueprint


class Args(Schema):
    name = fields.String(validate=validate.Length(max=3, error="name is too long"))
    tags = fields.List(fields.String())
    size = fields.Integer(data_key="page-size", error_messages={"invalid": "page-size is bad"})


class Answer(Schema):
    shown = fields.String()
    count = fields.Integer()


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

    app = Flask(__name__)
    register_error_handlers(app)
    app.register_blueprint(bp)
    return app.test_client()


def test_a_repeated_key_gives_its_first_value_and_a_list_field_every_value(
    client: FlaskClient,
) -> None:
    answer = client.get("/echo?name=ab&name=cd&tags=x&tags=y&page-size=5&other=1")
    assert answer.status_code == 200
    assert answer.json == {
        "shown": repr([("name", "ab"), ("size", 5), ("tags", ["x", "y"])]),
        "count": 3,
    }


def test_a_bad_query_answers_400_with_the_first_declared_fields_message(
    client: FlaskClient,
) -> None:
    answer = client.get("/echo?page-size=x&name=toolong")
    assert answer.status_code == 400
    assert answer.json == {"error": "name is too long"}


def test_the_answer_is_dumped_by_its_schema_and_keeps_a_views_own_status(
    client: FlaskClient,
) -> None:
    assert client.get("/items/a").status_code == 201
    assert client.get("/items/a").json == {"shown": "a"}
    missing = client.get("/items/missing")
    assert (missing.status_code, missing.json) == (404, {"error": "no such item"})
    assert client.get("/items/gone").status_code == 204
