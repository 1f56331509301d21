"""The building blocks of the response schemas: fields that dump stored values as
they are, the examples the documentation shows, and the one error answer.

Answers are dumped through the schemas that document them (app/web/rest.py), and
the bytes must stay those of the stored records: a timestamp is stored as its
ISO-8601 text and a duration as the number the engine computed, so the fields
below document a type without converting the value (marshmallow's DateTime
would want a datetime, and its Float would turn a stored 0 into 0.0).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from core.settings import is_timezone

EXAMPLE_TENANT = "acme"
EXAMPLE_CONTAINER = "container-1"
EXAMPLE_CALL_UUID = "6f1c2f0e-8a3b-4c1e-9d2a-5b7e3c4d1a20"
EXAMPLE_CONVERSATION = "conv-5551230000"
EXAMPLE_TIME = "2025-11-25T10:00:00.000000Z"
EXAMPLE_OUTCOME_ID = "1764064805123456-0"
EXAMPLE_SUBSCRIPTION = "sub_3f9a1c0d2e4b6a8c"
EXAMPLE_DELIVERY = f"{EXAMPLE_SUBSCRIPTION}_5d41402abc4b2a76b9719d91"
OUTCOME_ID_PATTERN = r"^[0-9]{1,20}(-[0-9]{1,20})?$"


def values(members: Iterable[Enum]) -> tuple[str, ...]:
    """The wire values of enum members (the engine's enums name every kind once)."""
    return tuple(str(member.value) for member in members)


class Timestamp(fields.String):
    """An ISO-8601 UTC timestamp, stored and answered as text (documented as date-time)."""


class Number(fields.Float):
    """A number answered exactly as stored (an int stays an int)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class Count(fields.Integer):
    """A whole number answered exactly as stored."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class Answer(Schema):
    """A response schema. Open (no additionalProperties: false): the API may add fields."""

    class Meta:
        unknown = EXCLUDE


def ex(value: Any, description: str | None = None) -> dict[str, Any]:
    """Field metadata: an example, and a description when the name does not say it all."""
    meta: dict[str, Any] = {"example": value}
    if description:
        meta["description"] = description
    return meta


def time_field(description: str, *, nullable: bool = True) -> Timestamp:
    return Timestamp(
        required=True, allow_none=nullable, metadata=ex(EXAMPLE_TIME, description + " (UTC)")
    )


def text(example: Any, description: str | None = None, *, nullable: bool = True) -> fields.String:
    return fields.String(required=True, allow_none=nullable, metadata=ex(example, description))


def _known_zone(name: str) -> None:
    if not is_timezone(name):
        raise ValidationError("tz must be an IANA time zone such as America/Chicago")


def tz_arg(default: str) -> fields.String:
    """The ``tz`` query argument: an IANA time zone for a request's day and hours."""
    return fields.String(
        validate=_known_zone,
        metadata={
            "description": f"the IANA time zone of today and of local hours; default: {default}",
            "example": "America/Chicago",
        },
    )


class ErrorAnswer(Answer):
    """Every error answer."""

    error = fields.String(required=True, metadata=ex("no such call"))
    fields_ = fields.Dict(
        data_key="fields",
        attribute="fields",
        metadata=ex(
            {"tenantId": ["tenantId is missing"]}, "for invalid bodies: the problem with each field"
        ),
    )
