"""flask-smorest, set up to answer the way the rest of the API does.

A route is one declaration, :meth:`ApiBlueprint.operation`: its method and
rule, its operationId, the API key check, the schemas of its query and JSON
body (``@bp.arguments``, parsed by webargs), the schema of its answer
(``@bp.response``, which dumps it) and its documented errors. The OpenAPI
operations are generated from the same declarations (app/ops/openapi.py).

What differs from flask-smorest's defaults, to keep the API's answers:

- Arguments that do not parse answer 400, not webargs' 422
  (:class:`ArgumentsParser`): a query ``{"error": "<the first declared field's
  message>"}`` (a schema may word it otherwise: ``error_text``); a JSON body
  ``{"error": "<its schema's invalid>", "fields": {...}}``, and a body that is no
  JSON object ``{"error": "<its schema's not_an_object>"}`` (:class:`JsonBody`).
- Errors are answered by app/web/errors.py alone; flask-smorest's error handler and
  its generated ``default``/422 responses are off. Error answers are documented
  where they can happen, with the Error schema.
- The serving app registers these blueprints as plain Flask blueprints: the
  decorators parse and dump on their own, and :class:`DocumentedApi` builds the
  document on an app of its own (app/ops/openapi.py), once, when it is asked for.
- Hot answers dump through a plan of their schema (app/web/fast_dump.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import wraps
from typing import Any, ClassVar, NoReturn, TypeVar

import flask
from flask_smorest import Api, Blueprint
from marshmallow import Schema, ValidationError
from webargs.flaskparser import FlaskParser

from app.web.auth import require_api_key
from app.web.errors import BadQuery
from app.web.schema_fields import OUTCOME_ID_PATTERN, ErrorAnswer
from core.store import POOL_WAIT_SECONDS, Scope

F = TypeVar("F", bound=Callable[..., Any])


def first_message(messages: Any) -> str:
    """The first message of a marshmallow error structure (dicts keep field order)."""
    if isinstance(messages, Mapping):
        return first_message(next(iter(messages.values())))
    if isinstance(messages, list | tuple):
        return first_message(messages[0])
    return str(messages)


class JsonBody(Schema):
    """A JSON request body: one JSON object, loaded by this schema.

    ``not_an_object``: the answer to a body that is no JSON object (or not sent as
    JSON); ``invalid``: the answer, with the fields' messages, to an object the
    schema refuses; ``optional``: whether an empty body reads as ``{}``.
    """

    not_an_object: ClassVar[str] = "body must be a JSON object"
    invalid: ClassVar[str] = "invalid request body"
    optional: ClassVar[bool] = True


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser, answering a bad argument with 400 in the API's words."""

    DEFAULT_VALIDATION_STATUS = 400


PARSER = ArgumentsParser()


@PARSER.location_loader("json")
def load_json_object(request: flask.Request, schema: Schema) -> dict[str, Any]:
    """The body as a JSON object, whatever Content-Type the client claimed (curl -d
    sends JSON as a form): the body decides, as at webhook intake. Raises
    BadQuery (400) for anything else."""
    data = request.get_json(force=True, silent=True)
    if isinstance(data, dict):
        return data
    optional = getattr(schema, "optional", False)
    if data is None and optional and not request.get_data():
        return {}
    raise BadQuery(getattr(schema, "not_an_object", JsonBody.not_an_object))


@PARSER.error_handler
def answer_in_our_words(
    error: ValidationError,
    request: flask.Request,
    schema: Schema,
    *,
    error_status_code: int | None,
    error_headers: Mapping[str, str] | None,
) -> NoReturn:
    """A query's first declared field's message (or the schema's ``error_text``); a
    JSON body's ``invalid`` with every field's messages. Raises BadQuery (400)."""
    assert isinstance(error.messages, dict)
    (location, messages), *_ = error.messages.items()
    if location == "json":
        raise BadQuery(getattr(schema, "invalid", JsonBody.invalid), fields=messages)
    wording: Callable[[Any], str] = getattr(schema, "error_text", first_message)
    raise BadQuery(wording(messages))


class ApiBlueprint(Blueprint):  # type: ignore[misc]
    """A blueprint whose routes are parsed, answered and documented from their schemas."""

    ARGUMENTS_PARSER = PARSER

    def operation(
        self,
        method: str,
        rule: str,
        operation_id: str,
        *,
        tag: str,
        answer: str,
        status: int = 200,
        schema: Any = None,
        content_type: str | None = None,
        example: Any = None,
        query: Schema | None = None,
        body: JsonBody | None = None,
        body_required: bool = True,
        headers: Schema | None = None,
        key: bool = True,
        needs: Scope | None = None,
        usual: Iterable[int] = (),
        errors: Mapping[int, str | Mapping[str, Any]] | None = None,
        path_params: list[dict[str, Any]] | None = None,
        before: Callable[..., object] | None = None,
        **doc: Any,
    ) -> Callable[[F], F]:
        """Declare a route: ``method rule`` as the OpenAPI operation ``operation_id``.

        The request passes, in order: the API key (``key``; no key documents no
        security) and its scope (``needs``; default: read for a GET, write for
        anything else), ``before`` (called with the path's values; it may raise to
        answer first), the ``query`` schema, the ``body`` schema (``location="json"``).
        The view gets the loaded query, then the loaded body, then the path's values.
        Its answer is dumped by ``schema`` and documented with ``status``,
        ``answer`` (the description), ``content_type`` and ``example``. Errors
        documented: each of ``usual`` as USUAL_ERRORS says, then ``errors`` (a
        reason, or ``alt_response`` arguments), in order of status. ``headers``:
        a schema of headers the query schema reads, documented beside it. The
        rest of ``doc`` goes to the operation as it is (summary, description, ...).
        """
        documented = {status: USUAL_ERRORS[status] for status in usual}
        for code, reason in (errors or {}).items():
            documented[code] = error_doc(reason) if isinstance(reason, str) else dict(reason)
        if not key:
            doc.setdefault("security", [])
        if headers is not None:
            doc["parameters"] = [
                {"in": "query", "schema": query},
                {"in": "header", "schema": headers},
            ]

        def decorate(view: F) -> F:
            # Applied from the inside out; the answers are documented in the order
            # applied: the answer, then the errors by status.
            decorated = self.doc(operationId=operation_id, **doc)(view)
            decorated = self.response(
                status, schema, description=answer, content_type=content_type, example=example
            )(decorated)
            for code in sorted(documented):
                decorated = self.alt_response(code, **documented[code])(decorated)
            if body is not None:
                decorated = self.arguments(body, location="json", required=body_required)(decorated)
            if query is not None:
                decorated = self.arguments(query, location="query")(decorated)
            if before is not None:
                decorated = _first(before, decorated)
            if key:
                decorated = require_api_key(decorated, needs or needed_scope(method))
            self.route(rule, methods=[method], tags=[tag], parameters=path_params)(decorated)
            routed: F = decorated
            return routed

        return decorate

    def before_app_request(self, f: F) -> F:
        registered: F = super().before_app_request(f)
        return registered

    def _prepare_arguments_doc(
        self, doc: dict[str, Any], doc_info: dict[str, Any], **kwargs: Any
    ) -> dict[str, Any]:
        # flask-smorest documents a generic error answer for every parsed
        # argument; ours are documented per route, with their reasons.
        arguments = doc_info.get("arguments")
        if arguments:
            arguments.pop("responses", None)
        result: dict[str, Any] = super()._prepare_arguments_doc(doc, doc_info, **kwargs)
        return result


def needed_scope(method: str) -> Scope:
    """What a route needs unless it says: a read key reads (GET and streams),
    anything that changes something needs a write key."""
    return Scope.READ if method in ("GET", "HEAD") else Scope.WRITE


def _first(check: Callable[..., object], view: F) -> F:
    """``view``, after ``check`` is called with the path's values."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check(**kwargs)
        return view(*args, **kwargs)

    return checked  # type: ignore[return-value]


class DocumentedApi(Api):  # type: ignore[misc]
    """The Api that turns ApiBlueprints into OpenAPI operations (nothing else)."""

    DEFAULT_ERROR_RESPONSE_NAME = None
    ERROR_SCHEMA = ErrorAnswer

    def _register_error_handlers(self) -> None:
        """app/web/errors.py answers every error."""

    def _register_responses(self) -> None:
        """No generic responses: each route documents its own, with the Error schema
        registered by its name (the generic ones would register it under another)."""

    def _register_etag_headers(self) -> None:
        """No ETags."""

    def _register_pagination_header(self) -> None:
        """Pages say ``next`` in their body, not in a header."""


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}


def error_doc(description: str, **extra: Any) -> dict[str, Any]:
    """``alt_response`` arguments of an error answer: the Error schema and why."""
    return {"schema": ErrorAnswer, "description": description, **extra}


UNAVAILABLE = error_doc(
    "Redis is unavailable, or every Redis connection of this web process stayed "
    f"busy for {POOL_WAIT_SECONDS:g} s (WEB_REDIS_CONNECTIONS): retry after Retry-After "
    "seconds",
    headers=RETRY_AFTER,
)
UNAUTHORIZED = error_doc("missing or unknown API key")
FORBIDDEN = error_doc(
    "a tenant key asked for another tenant, or a key without the scope this needs"
)
USUAL_ERRORS = {401: UNAUTHORIZED, 403: FORBIDDEN, 503: UNAVAILABLE}
TOO_MANY_STREAMS = error_doc(
    "too many open streams in this process: retry after Retry-After seconds",
    headers=RETRY_AFTER,
)


def path_param(name: str, description: str, example: str) -> dict[str, Any]:
    """The OpenAPI description of a path parameter."""
    return {
        "in": "path",
        "name": name,
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
        "example": example,
    }


def sse_event(
    event: str | Sequence[str], data_schema: str, *, id_pattern: bool = False
) -> dict[str, Any]:
    """One Server-Sent Event as a schema (as OpenAPI 3.2's ``itemSchema`` has it):
    ``event`` (one name, or any of several), ``id`` and ``data``, the JSON text of
    ``data_schema``."""
    names = [event] if isinstance(event, str) else list(event)
    properties: dict[str, Any] = {
        "event": {"type": "string", "enum": names},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": f"#/components/schemas/{data_schema}"},
        },
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    }
    if id_pattern:
        properties["id"]["pattern"] = OUTCOME_ID_PATTERN
    return {
        "type": "object",
        "description": f"each event: `event: {' | '.join(names)}`, "
        f"`data:` the JSON of a {data_schema}",
        "properties": properties,
        "required": ["event", "data"],
    }
