"""The machinery of the event registry: what a declaration holds, what is derived from it.

The declarations themselves live in :mod:`statemachine.primevox`; this module
says what one declaration is (:class:`Declared`), builds every lookup the rest
of the code needs from the list of them (:class:`Registry`), and checks the
list when it is built, so a registry that contradicts itself never loads.
:func:`check_handlers` and ``app.event_schemas.check_schemas`` check the pieces
declared elsewhere (the fold's handlers, the intake's schemas) against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from statemachine.events import CallEvent, Event

FORM = "form"
JSON = "json"
# Who writes an event: the PBX posts it, or the engine writes it into a log itself.
PBX = "pbx"
ENGINE = "engine"
EMPTY: Mapping[str, str] = MappingProxyType({})


class RegistryError(TypeError):
    """The declarations, or a piece declared elsewhere, do not fit together."""


@dataclass(frozen=True)
class Declared:
    """One event as the PBX (or the engine) writes it, declared once.

    ``event_type`` is the PBX's spelling, or ``""`` for "any other type". The
    log names the event by ``stored_as`` and never by its class, so a class may
    be renamed; a stored name may never change, or old logs stop loading.
    ``fields`` are the body's fields in the PBX's order and spelling (after
    ``eventType`` and ``eventTarget``); the sample fills them from the
    registry's example values, or from ``sample_values`` where this event
    differs. ``tells_apart`` is the field that says this event is meant when
    several share an ``eventType`` and the body has no known ``eventTarget``.
    """

    title: str
    event_type: str
    event_class: type[Event]
    stored_as: str
    description: str
    fields: tuple[str, ...] = ()
    target: str | None = None
    form: str = ""
    encoding: str = FORM
    tells_apart: str = ""
    sent_by: str = PBX
    sample_type: str = ""
    sample_values: Mapping[str, str] = field(default_factory=dict, hash=False)


class Registry:
    """Every declared event, and the lookups derived from them (built and checked once)."""

    def __init__(
        self,
        declarations: Iterable[Declared],
        *,
        aliases: Mapping[str, str],
        example_values: Mapping[str, str],
    ) -> None:
        self.declared = tuple(declarations)
        # One spelling per field (variant -> the spelling the schemas read).
        self.aliases = dict(aliases)
        # An example value for every field, by that one spelling.
        self.example_values = dict(example_values)
        self.from_pbx = tuple(d for d in self.declared if d.sent_by == PBX)
        self.known_types = tuple(dict.fromkeys(d.event_type for d in self.from_pbx if d.event_type))
        self.reserved_types = tuple(d.event_type for d in self.declared if d.sent_by == ENGINE)
        self._by_type = {
            t: tuple(d for d in self.from_pbx if d.event_type == t) for t in self.known_types
        }
        self.by_key = {self.key_of(d): d for d in self.declared}
        self.classes: dict[str, type[Event]] = {d.stored_as: d.event_class for d in self.declared}
        self.stored_names: dict[type[Event], str] = {
            d.event_class: d.stored_as for d in self.declared
        }
        self._check()

    def key_of(self, declared: Declared) -> str:
        """A short name for tests and tools: the eventType, with its target when it is shared."""
        if not declared.event_type:
            return declared.title
        if declared.sent_by == PBX and len(self._by_type[declared.event_type]) > 1:
            return f"{declared.event_type}.{declared.target}"
        return declared.event_type

    @property
    def call_event_classes(self) -> dict[str, type[CallEvent]]:
        """Stored name -> class, for the events that belong to a call."""
        return {name: cls for name, cls in self.classes.items() if issubclass(cls, CallEvent)}

    def for_type(self, event_type: str) -> tuple[Declared, ...]:
        """The PBX's events of this (canonical) type, in declaration order."""
        return self._by_type.get(event_type, ())

    def unknown(self, *, with_call: bool) -> Declared:
        """The catch-all for a type nobody declared, with or without a ``callUuid``."""
        return self._catch_alls(with_call)[0]

    def _catch_alls(self, with_call: bool) -> list[Declared]:
        return [
            d
            for d in self.from_pbx
            if not d.event_type and issubclass(d.event_class, CallEvent) == with_call
        ]

    def canonical_field(self, key: str) -> str:
        return self.aliases.get(key, key)

    def spelled(self, declared: Declared) -> dict[str, str]:
        """Field (one spelling) -> as this event's body spells it, where the two differ."""
        return {self.aliases[key]: key for key in declared.fields if key in self.aliases}

    def sample(
        self, key: str, values: Mapping[str, str] = EMPTY, *, ids: Mapping[str, str] = EMPTY
    ) -> dict[str, str]:
        """A body of this event as the PBX sends it, fields in the PBX's order.

        ``ids`` (by a field's one spelling) replace the example values of the
        fields this event has, under whichever spelling it uses; ``values`` (by
        the body's own spelling) replace any field, and must name one it has.
        """
        declared = self.by_key[key]
        body = {"eventType": declared.event_type or declared.sample_type}
        if declared.target:
            body["eventTarget"] = declared.target
        for name in declared.fields:
            canonical = self.canonical_field(name)
            if canonical in ids:
                body[name] = ids[canonical]
            elif name in declared.sample_values:
                body[name] = declared.sample_values[name]
            else:
                body[name] = self.example_values[canonical]
        stray = set(values) - set(body)
        if stray:
            raise KeyError(f"{key} has no fields {sorted(stray)}")
        return {**body, **values}

    def _check(self) -> None:
        problems: list[str] = []
        problems += [f"title {t!r} declared twice" for t in _twice(d.title for d in self.declared)]
        # Two declarations may share a class (an SMS either way), but a class has one
        # stored name and a stored name one class, or a log could not be read back.
        pairs = {(d.event_class, d.stored_as) for d in self.declared}
        problems += [
            f"class {c.__name__} has two stored names" for c in _twice(c for c, _ in pairs)
        ]
        problems += [f"stored name {n!r} names two classes" for n in _twice(n for _, n in pairs)]
        problems += [f"key {k!r} declared twice" for k in _twice(map(self.key_of, self.declared))]
        for event_type, shared in self._by_type.items():
            targets = [(d.target or "").lower() for d in shared]
            if len(shared) > 1 and ("" in targets or len(set(targets)) < len(targets)):
                problems.append(f"{event_type}: events sharing a type need distinct targets")
            if len(shared) > 1 and not all(d.tells_apart for d in shared):
                problems.append(f"{event_type}: events sharing a type need tells_apart")
        for with_call in (True, False):
            if len(self._catch_alls(with_call)) != 1:
                problems.append(f"need one catch-all event with_call={with_call}")
        for declared in self.declared:
            if declared.sent_by not in (PBX, ENGINE) or declared.encoding not in (FORM, JSON):
                problems.append(f"{declared.title}: unknown sender or encoding")
            if declared.sent_by == ENGINE and not declared.event_type:
                problems.append(f"{declared.title}: an engine event needs its type")
            missing = [
                name
                for name in declared.fields
                if name not in declared.sample_values
                and self.canonical_field(name) not in self.example_values
            ]
            if missing:
                problems.append(f"{declared.title}: no example value for {missing}")
        if problems:
            raise RegistryError("event registry: " + "; ".join(problems))


def _twice(items: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    twice: list[Any] = []
    for item in items:
        if item in seen and item not in twice:
            twice.append(item)
        seen.append(item)
    return twice


class Dispatcher(Protocol):
    """A ``functools.singledispatch`` function, as far as the check needs it."""

    @property
    def registry(self) -> Mapping[Any, Callable[..., object]]: ...


def check_handlers(registry: Registry, facts_of: Dispatcher) -> None:
    """Raise RegistryError unless every declared call event has its own ``facts_of`` handler.

    Its own: a subclass does not silently fold as its parent does. Without one,
    the fold would refuse the event at run time (a poisoned event); this makes
    it a failure to start instead.
    """
    missing = sorted(
        cls.__name__ for cls in registry.call_event_classes.values() if cls not in facts_of.registry
    )
    if missing:
        raise RegistryError(f"no facts_of handler for {', '.join(missing)}")
