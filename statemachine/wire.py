"""Where an event's fields come from in the PBX's body, said on the dataclass itself.

An event class says, in each field's ``metadata``, which body field (in its
one spelling, :data:`statemachine.primevox.ALIASES` folds the others onto it)
the value is read from, and what that field must be::

    queue: str = field(default="", metadata=read(text("queueNumber")))
    caller: Party = field(
        default_factory=Party,
        metadata=read(number=text("callerIdNum"), name=text("callerIdName")),
    )

A value object (a :class:`~statemachine.events.Party`) is read part by part,
each part a keyword of its class. The intake (``app.intake.event_schemas``) builds
one schema per declared event from these readings, so an event of a new
shape needs no schema written; :mod:`statemachine.registry` checks that
every field of an event the PBX sends is read or fixed by its declaration.

Pure data, like the rest of :mod:`statemachine`: nothing here validates; it
only says what the intake must check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

# The bounds of the body's text fields, in characters.
MAX_ID_LENGTH = 200  # an identifier: tenant, container, call, conversation
SHORT_TEXT = 200  # a number or a name
LONG_TEXT = 2000  # free text a person typed into the PBX (a DID's description)

_READING = "callstate.reading"


@dataclass(frozen=True)
class Text:
    """One text field of the body, as the intake checks it.

    ``required``: the body must have it (an identifier must then be non-empty);
    otherwise it reads as ``""`` when absent. ``max_length`` of ``None`` leaves
    the length to the whole body's limit. No field may hold a C0 control
    character (a NUL stops PostgreSQL, the others break log lines and CSV),
    except that ``lines`` (free text a person typed: an SMS, a description)
    may hold tabs and line breaks. An ``identifier`` refuses DEL too, since it
    ends up in keys and log lines.
    """

    key: str
    required: bool = False
    max_length: int | None = SHORT_TEXT
    identifier: bool = False
    lines: bool = False


def text(
    key: str, *, max_length: int | None = SHORT_TEXT, required: bool = False, lines: bool = False
) -> Text:
    """A field of text (a number, a name), up to ``max_length``; ``lines``: free text
    that may hold tabs and line breaks."""
    return Text(key, required=required, max_length=max_length, lines=lines)


def identifier(key: str, *, required: bool = False) -> Text:
    """A field naming something (a tenant, a call): no control characters, bounded."""
    return Text(key, required=required, max_length=MAX_ID_LENGTH, identifier=True)


@dataclass(frozen=True)
class Reading:
    """How one dataclass field is filled: from one body field, or part by part.

    ``parts`` maps the keywords of the field's class to body fields. A reading
    with neither is the moment the intake received the body (:data:`RECEIVED`).
    """

    whole: Text | None = None
    parts: tuple[tuple[str, Text], ...] = ()

    @property
    def texts(self) -> tuple[Text, ...]:
        """Every body field this reading takes, in order."""
        return (self.whole,) if self.whole else tuple(t for _, t in self.parts)


def read(whole: Text | None = None, /, **parts: Text) -> Mapping[str, Reading]:
    """A dataclass field's ``metadata``: read from ``whole``, or its class from ``parts``."""
    if (whole is None) == (not parts):
        raise TypeError("read one body field, or the parts of a value")
    return MappingProxyType({_READING: Reading(whole, tuple(parts.items()))})


# The metadata of the field that holds when the intake received the body.
RECEIVED: Mapping[str, Reading] = MappingProxyType({_READING: Reading()})


def readings(event_class: type) -> tuple[tuple[str, Reading], ...]:
    """(dataclass field name, its reading) for each field of ``event_class`` that is read."""
    return tuple(
        (f.name, f.metadata[_READING]) for f in fields(event_class) if _READING in f.metadata
    )


def keys_read(event_class: type) -> tuple[str, ...]:
    """The body fields (one spelling each) ``event_class`` is read from, in order."""
    return tuple(t.key for _, reading in readings(event_class) for t in reading.texts)
