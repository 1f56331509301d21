"""One marshmallow schema per declared PrimeVOX event, built from its declaration.

No schema is written by hand: :func:`schema_for` reads the declared class's
fields (:mod:`statemachine.wire` says, on each, which body field fills it and
what that field must be) and makes one marshmallow field per body field, in
the class's order; its ``post_load`` builds the class, with the fields the
declaration fixes. ``SCHEMAS`` holds one schema per event the PBX sends, by
the declaration's title. Spelling variants (``containerID``,
``extensionNumber``…) are folded onto one spelling before loading. What an
event reads and how it is built (:class:`EventShape`) is shared with the quick
path; which schema a body goes to, and the quick path, are
:mod:`app.intake.loading`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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


# What a body field may not hold (statemachine.wire.Text says which applies):
# an identifier, no control character at all; other text, no C0 control
# character; free text, none but tab, line feed and return. Each is said once as
# the documentation's pattern of what a field may be, and searched as its opposite.
class Characters(NamedTuple):
    """What one kind of field may not hold: the pattern it must match, the search
    that finds what breaks it, and the refusal's words."""

    allowed: str
    refused: re.Pattern[str]
    message: str


IDENTIFIER_CHARACTERS = Characters(
    r"^[^\u0000-\u001f\u007f]*$",
    re.compile(r"[\x00-\x1f\x7f]"),
    "must not contain control characters",
)
TEXT_CHARACTERS = Characters(
    r"^[^\u0000-\u001f]*$", re.compile(r"[\x00-\x1f]"), "must not contain control characters"
)
LINES_CHARACTERS = Characters(
    r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f]*$",
    re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]"),
    "must not contain control characters other than tab and line breaks",
)
CONTROL_CHARACTERS = IDENTIFIER_CHARACTERS.refused


def characters(text: Text) -> Characters:
    """What the body field ``text`` may not hold."""
    if text.identifier:
        return IDENTIFIER_CHARACTERS
    return LINES_CHARACTERS if text.lines else TEXT_CHARACTERS


class RefuseCharacters:
    """A marshmallow validator: refuse a value holding what ``characters`` refuses."""

    def __init__(self, kind: Characters) -> None:
        self.characters = kind

    def __call__(self, value: str) -> None:
        if self.characters.refused.search(value):
            raise ValidationError(self.characters.message)


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
    checks.append(RefuseCharacters(characters(text)))
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

    A plain tuple, unpacked in ``build``, which runs for every event received.
    """

    name: str
    build: Callable[..., object]
    parts: Callable[[dict[str, Any]], Any]


class EventShape:
    """What one declared event reads from a body, and how its dataclass is built from
    what was read: the one source of its schema's fields and of the quick path
    (:mod:`app.intake.loading`).

    ``texts``: each body field the event reads, as (the name its value is loaded
    under, the :class:`~statemachine.wire.Text` it must be), in the class's order;
    a value read in parts loads each part as ``<field>_<keyword>``. ``received``:
    the field that holds when the body was received.
    """

    def __init__(self, declared: Declared) -> None:
        self.title = declared.title
        self.event_class = declared.event_class
        self.fixed: dict[str, Any] = dict(declared.fixed)
        self.texts: tuple[tuple[str, Text], ...] = ()
        self.received = ""
        whole: list[str] = []
        values: list[_Value] = []
        types = get_type_hints(self.event_class)
        for name, reading in readings(self.event_class):
            if reading.parts:
                self.texts += tuple((f"{name}_{keyword}", part) for keyword, part in reading.parts)
                build = types[name]
                values.append(_Value(name, build, _positional(declared, build, name, reading)))
            elif reading.whole is not None:
                self.texts += ((name, reading.whole),)
                whole.append(name)
            else:
                self.received = name
                whole.append(name)
        self.whole = tuple(whole)
        self.values = tuple(values)
        names = [name for name, _ in self.texts]
        if len(set(names)) != len(names) or self.received in names:
            raise RegistryError(f"{declared.title}: two of its fields load under one name")

    def build(self, data: dict[str, Any]) -> Event:
        """The event, from the values loaded under their names."""
        kwargs = {name: data[name] for name in self.whole}
        for name, build, parts in self.values:
            kwargs[name] = build(*parts(data))
        return self.event_class(**kwargs, **self.fixed)


class EventSchema(Schema):
    """The schema of one declared event: its body's fields in, its dataclass out.

    Its fields are added per event by :func:`schema_for`, one per body field of
    its :class:`EventShape`, named as the shape loads them.
    """

    class Meta:
        unknown = EXCLUDE

    def __init__(self, shape: EventShape) -> None:
        super().__init__()
        self.shape = shape
        self.event_class = shape.event_class

    @pre_load
    def fold_spellings(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return fold_spellings(data)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Event:
        return self.shape.build(data)


def schema_for(declared: Declared) -> EventSchema:
    """The schema of one declared event: a field per body field its shape reads."""
    shape = EventShape(declared)
    loaded: dict[str, fields.Field[Any]] = {name: text_field(text) for name, text in shape.texts}
    loaded[shape.received] = fields.AwareDateTime(data_key=RECEIVED_AT, required=True)
    schema_class = cast(
        type[EventSchema], EventSchema.from_dict(loaded, name=f"{declared.title}Schema")
    )
    return schema_class(shape)


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
