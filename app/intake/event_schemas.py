"""One marshmallow schema per declared PrimeVOX event, built from its declaration.

No schema is written by hand: :func:`schema_for` reads the declared class's
fields (:mod:`statemachine.wire` says, on each, which body field fills it and
what that field must be) and makes one marshmallow field per body field, in
the class's order; its ``post_load`` builds the class, with the fields the
declaration fixes. ``SCHEMAS`` holds one schema per event the PBX sends, by
the declaration's title. Spelling variants (``containerID``,
``extensionNumber``…) are folded onto one spelling before loading. Which
schema a body goes to, and the quick path, are :mod:`app.intake.loading`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields as dataclass_fields
from operator import itemgetter
from typing import Any, NamedTuple, cast, get_type_hints

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate

from statemachine.events import Event
from statemachine.primevox import ALIASES, EVENTS
from statemachine.registry import Declared, Registry, RegistryError
from statemachine.wire import MAX_ID_LENGTH as MAX_ID_LENGTH
from statemachine.wire import Reading, Text, readings

RECEIVED_AT = "__received_at"

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def refuse_control_characters(value: str) -> None:
    """The validator of identifiers: no control characters (the documentation's pattern)."""
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError("must not contain control characters")


def text_field(text: Text) -> fields.String:
    """The marshmallow field that checks one body field as ``text`` says."""
    key, limit = text.key, text.max_length
    checks: list[Any] = []
    if text.identifier and text.required:
        # An identifier the body must have must also be non-empty; say so by name.
        error = f"{key} must be 1 to {limit} characters"
        checks.append(validate.Length(min=1, max=limit, error=error))
    elif limit is not None:
        checks.append(validate.Length(max=limit))
    if text.identifier:
        checks.append(refuse_control_characters)
    if text.required:
        return fields.String(
            data_key=key,
            required=True,
            validate=checks,
            error_messages={"required": f"{key} is missing"},
        )
    return fields.String(data_key=key, load_default="", validate=checks)


def fold_spellings(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every spelling variant under its one spelling (that one wins)."""
    folded = dict(data)
    for variant, canonical in ALIASES.items():
        if variant in folded:
            value = folded.pop(variant)
            folded.setdefault(canonical, value)
    return folded


class _Value(NamedTuple):
    """A dataclass field holding a value read in parts: ``build`` takes what ``parts`` picks.

    A plain tuple, unpacked in ``make``, which runs for every event received.
    """

    name: str
    build: Callable[..., object]
    parts: Callable[[dict[str, Any]], Any]


class EventSchema(Schema):
    """The schema of one declared event: its body's fields in, its dataclass out.

    Its fields are added per event by :func:`schema_for`, each named after
    the dataclass field it fills (``caller_number`` for a part of ``caller``):
    ``whole`` names the fields loaded as they are, ``values`` the ones built
    of parts.
    """

    class Meta:
        unknown = EXCLUDE

    def __init__(
        self,
        event_class: type[Event],
        whole: Iterable[str],
        values: Iterable[_Value],
        fixed: Mapping[str, str],
    ) -> None:
        super().__init__()
        self.event_class = event_class
        self.whole = tuple(whole)
        self.values = tuple(values)
        self.fixed: dict[str, Any] = dict(fixed)

    @pre_load
    def fold_spellings(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return fold_spellings(data)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Event:
        kwargs = {name: data[name] for name in self.whole}
        for name, build, parts in self.values:
            kwargs[name] = build(*parts(data))
        return self.event_class(**kwargs, **self.fixed)


def schema_for(declared: Declared) -> EventSchema:
    """The schema of one declared event, from its class's readings and what it fixes."""
    event_class = declared.event_class
    types = get_type_hints(event_class)
    loaded: dict[str, fields.Field[Any]] = {}
    whole: list[str] = []
    values: list[_Value] = []
    for name, reading in readings(event_class):
        if reading.parts:
            for keyword, part in reading.parts:
                loaded[f"{name}_{keyword}"] = text_field(part)
            build = types[name]
            values.append(_Value(name, build, _positional(declared, build, name, reading)))
        elif reading.whole is not None:
            loaded[name] = text_field(reading.whole)
            whole.append(name)
        else:
            loaded[name] = fields.AwareDateTime(data_key=RECEIVED_AT, required=True)
            whole.append(name)
    if len(loaded) != sum(len(reading.texts) or 1 for _, reading in readings(event_class)):
        raise RegistryError(f"{declared.title}: two of its fields load under one name")
    schema_class = cast(
        type[EventSchema], EventSchema.from_dict(loaded, name=f"{declared.title}Schema")
    )
    return schema_class(event_class, whole, values, declared.fixed)


def _positional(
    declared: Declared, build: type, name: str, reading: Reading
) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """What picks the loaded parts of ``name`` as ``build``'s positional arguments.

    The parts may be named in any order, but must be the first fields of
    their class (the rest keep their defaults), so they can be passed by
    position: cheaper than keywords, on every event.
    """
    keywords = {keyword for keyword, _ in reading.parts}
    leading = [f.name for f in dataclass_fields(build)][: len(keywords)]
    if set(leading) != keywords:
        raise RegistryError(f"{declared.title}: {name} must read the first fields of its class")
    attrs = [f"{name}_{keyword}" for keyword in leading]
    if len(attrs) == 1:
        return lambda data: (data[attrs[0]],)
    return itemgetter(*attrs)


def schemas_for(registry: Registry) -> dict[str, EventSchema]:
    """One schema per event the PBX sends, by the declaration's title."""
    return {d.title: schema_for(d) for d in registry.from_pbx}


SCHEMAS = schemas_for(EVENTS)
