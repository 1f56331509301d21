"""flask-smorest, set up to answer the way the rest of the API does.

Routes of an :class:`ApiBlueprint` dump their answers through the response
schema that documents them (``@bp.response``) and parse their query arguments
with schemas (``@bp.arguments(..., location="query")``); the OpenAPI operations
are generated from the same declarations (app/ops/openapi.py).

What differs from flask-smorest's defaults, to keep the API's answers:

- A query argument that does not parse answers 400 ``{"error": "<the field's
  message>"}`` (BadQuery, app/web/errors.py), not webargs' 422: each field says
  what was wrong in the words the API always used, and when several are wrong
  the first declared field speaks.
- Errors are answered by app/web/errors.py alone; flask-smorest's error handler and
  its generated ``default``/422 responses are off. Error answers are documented
  where they can happen, with the Error schema.
- The serving app registers these blueprints as plain Flask blueprints: no Api
  object there, and nothing of flask-smorest or webargs runs per request. Each
  route's query is loaded by its schema and its answer dumped by its schema in
  one small wrapper each (``ApiBlueprint.arguments`` and ``response``).
  :class:`DocumentedApi` builds the document on an app of its own
  (app/ops/openapi.py), and the decorators that only document (``alt_response``,
  ``doc``, ``errors``, ``documents_arguments``) leave no wrapper behind.
- Hot answers dump through a plan of their schema (app/web/fast_dump.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar, cast

import flask
from flask_smorest import Api, Blueprint
from flask_smorest.utils import (
    resolve_schema_instance,
    set_status_and_headers_in_response,
    unpack_tuple_response,
)
from marshmallow import EXCLUDE, Schema, ValidationError, fields

from app.web.errors import BadQuery
from app.web.schema_fields import OUTCOME_ID_PATTERN, ErrorAnswer
from core.store import POOL_WAIT_SECONDS


def first_message(messages: Any) -> str:
    """The first message of a marshmallow error structure (dicts keep field order)."""
    if isinstance(messages, Mapping):
        return first_message(next(iter(messages.values())))
    if isinstance(messages, list | tuple):
        return first_message(messages[0])
    return str(messages)


F = TypeVar("F", bound=Callable[..., Any])


def stacked(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several decorators as one, applied in the order given."""

    def decorate(view: F) -> F:
        for decorator in decorators:
            view = decorator(view)
        return view

    return decorate


def _documentation_only(decorator: Callable[[F], F]) -> Callable[[F], F]:
    """flask-smorest's decorator, keeping the documentation it adds to a view but not
    the wrapper it puts around it (each a call per request, for nothing)."""

    def document(view: F) -> F:
        view._apidoc = decorator(view)._apidoc  # type: ignore[attr-defined]
        return view

    return document


class ApiBlueprint(Blueprint):  # type: ignore[misc]
    """A blueprint whose routes are documented from their schemas.

    The methods below only restate flask-smorest's decorators with types
    (it ships none), so that the views they decorate stay typed.
    """

    def get(self, rule: str, **options: Any) -> Callable[[F], F]:
        decorator: Callable[[F], F] = super().get(rule, **options)
        return decorator

    def post(self, rule: str, **options: Any) -> Callable[[F], F]:
        decorator: Callable[[F], F] = super().post(rule, **options)
        return decorator

    def delete(self, rule: str, **options: Any) -> Callable[[F], F]:
        decorator: Callable[[F], F] = super().delete(rule, **options)
        return decorator

    def before_app_request(self, f: F) -> F:
        registered: F = super().before_app_request(f)
        return registered

    def arguments(self, schema: Schema, *, location: str, **options: Any) -> Callable[[F], F]:
        """Query arguments: documented by flask-smorest, parsed by ``schema`` here.

        The parse is what webargs does for a query (the first value of a repeated
        key, every value for a list field, unknown keys left out), without its
        per-request machinery: a read API answers in a few hundred microseconds,
        and webargs' wrappers cost more than the schema's own load."""
        if location != "query":
            raise ValueError(f"only query arguments are parsed by schemas here, not {location}")
        document = _documentation_only(super().arguments(schema, location=location, **options))
        many = {
            field.data_key or name
            for name, field in schema.fields.items()
            if isinstance(field, fields.List | fields.Tuple)
        }

        def decorate(view: F) -> F:
            document(view)

            @wraps(view)
            def parsed(*args: Any, **kwargs: Any) -> Any:
                query = flask.request.args
                values = {key: query.getlist(key) if key in many else query[key] for key in query}
                try:
                    loaded = schema.load(values, unknown=EXCLUDE)
                except ValidationError as error:
                    raise BadQuery(first_message(error.messages)) from None
                return view(*args, loaded, **kwargs)

            return cast(F, parsed)

        return decorate

    def documents_arguments(self, schema: Any, **options: Any) -> Callable[[F], F]:
        """Arguments described but not parsed here: the view (or a query schema)
        reads them itself, and a request pays for no second parse."""
        return _documentation_only(super().arguments(schema, **options))

    def response(self, status_code: int, schema: Any = None, **options: Any) -> Callable[[F], F]:
        """The answer: documented by flask-smorest, dumped by ``schema`` here as
        flask-smorest's own wrapper does (a Response goes out as it is; a tuple
        may add a status and headers), less its per-request bookkeeping."""
        document = _documentation_only(super().response(status_code, schema, **options))
        instance = resolve_schema_instance(schema)
        dump = instance.dump if isinstance(instance, Schema) else None

        def decorate(view: F) -> F:
            document(view)

            @wraps(view)
            def answered(*args: Any, **kwargs: Any) -> Any:
                result, status, headers = unpack_tuple_response(view(*args, **kwargs))
                if isinstance(result, flask.Response):
                    set_status_and_headers_in_response(result, status, headers)
                    return result
                answer = flask.current_app.json.response(dump(result) if dump else result)
                set_status_and_headers_in_response(answer, status, headers)
                if status is None:
                    answer.status_code = status_code
                return answer

            return cast(F, answered)

        return decorate

    def alt_response(self, status_code: int, **options: Any) -> Callable[[F], F]:
        return _documentation_only(super().alt_response(status_code, **options))

    def doc(self, **kwargs: Any) -> Callable[[F], F]:
        return _documentation_only(super().doc(**kwargs))

    def errors(self, *statuses: int) -> Callable[[F], F]:
        """Document the API's usual error answers: 401 (no key), 403 (another
        tenant), 503 (Redis); a route's own reasons go in ``alt_response``."""
        return stacked(*(self.alt_response(status, **USUAL_ERRORS[status]) for status in statuses))

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
FORBIDDEN = error_doc("a tenant key asked for another tenant")
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


def sse_event(event: str, data_schema: str, *, id_pattern: bool = False) -> dict[str, Any]:
    """One Server-Sent Event as a schema (as OpenAPI 3.2's ``itemSchema`` has it):
    ``event``, ``id`` and ``data``, the JSON text of ``data_schema``."""
    properties: dict[str, Any] = {
        "event": {"type": "string", "enum": [event]},
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
        "description": f"each event: `event: {event}`, `data:` the JSON of a {data_schema}",
        "properties": properties,
        "required": ["event", "data"],
    }
