"""The webhook request bodies in the API description, from the event registry.

Each PrimeVOX event declared in :mod:`statemachine.primevox` becomes one
component schema: its fields from the marshmallow schema that checks it
(``app.intake.event_schemas``, by its ``data_key`` names, so what is documented is
what is validated), its spellings, examples and description from the
declaration. ``WebhookEvent`` is their union. ``app.ops.openapi`` adds them to
the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

import app.intake.event_schemas as event_schemas
import app.intake.routes as intake_module
from app.intake.event_schemas import refuse_control_characters
from statemachine.primevox import EVENTS
from statemachine.registry import JSON, Declared

# What the intake's identifier validator refuses, as a JSON Schema pattern.
NO_CONTROL_PATTERN = r"^[^\u0000-\u001f\u007f]*$"
# Example values of the PBX's fields, for the documentation and for schemathesis's
# examples (the read API's answers show the same ids: tests/app/intake/test_registry_schemas.py).
WEBHOOK_SAMPLES = EVENTS.example_values


@dataclass(frozen=True)
class WebhookEvent:
    """One PrimeVOX event as documented: its declaration and the schema that checks it."""

    declared: Declared
    schema: Schema

    @property
    def name(self) -> str:
        return self.declared.title

    @property
    def event_type(self) -> str:
        return self.declared.event_type


WEBHOOK_EVENTS = [WebhookEvent(d, event_schemas.SCHEMAS[d.title]) for d in EVENTS.from_pbx]
_ALIASES_BY_CANONICAL = {canonical: alias for alias, canonical in EVENTS.aliases.items()}


def _webhook_body(event: WebhookEvent, plugin: MarshmallowPlugin) -> dict[str, Any]:
    """The JSON Schema of one event's body, from the marshmallow schema that checks it."""
    assert plugin.converter is not None
    declared = event.declared
    type_property: dict[str, Any] = {"type": "string"}
    if declared.event_type:
        type_property.update(
            enum=[declared.event_type],
            description="matched regardless of case",
            example=declared.event_type,
        )
    else:
        type_property.update(
            minLength=1,
            maxLength=event_schemas.MAX_ID_LENGTH,
            pattern=NO_CONTROL_PATTERN,
            description="an eventType the engine does not know",
            example=declared.sample_type,
        )
    properties: dict[str, Any] = {"eventType": type_property}
    required = ["eventType"]
    if declared.target:
        properties["eventTarget"] = {"type": "string", "enum": [declared.target]}
    spellings = EVENTS.spelled(declared)
    examples = {
        **WEBHOOK_SAMPLES,
        **{EVENTS.canonical_field(k): v for k, v in declared.sample_values.items()},
    }
    for name, field in event.schema.fields.items():
        key = field.data_key or name
        if key in (event_schemas.RECEIVED_AT, "eventType"):
            continue
        spelled = spellings.get(key, key)
        prop: dict[str, Any] = dict(plugin.converter.field2property(field))
        if refuse_control_characters in field.validators:
            prop["pattern"] = NO_CONTROL_PATTERN
        other = _ALIASES_BY_CANONICAL.get(key) if spelled == key else key
        if other:
            prop["description"] = f"also accepted as {other}"
        if key in examples:
            prop["example"] = examples[key]
        properties[spelled] = prop
        if field.required:
            required.append(spelled)
    form = declared.form + (" (JSON)" if declared.encoding == JSON else "")
    return {
        "type": "object",
        "title": declared.title,
        "description": declared.description
        + (f" Sent by the PBX's {form} webhook form." if form else ""),
        "properties": properties,
        "required": required,
        # Other fields are kept as sent (in the event log), so they must be text; in
        # a JSON body, numbers, booleans and null are read as text too.
        "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        "maxProperties": intake_module.MAX_FIELDS,
    }


def add_webhook_schemas(spec: APISpec, plugin: MarshmallowPlugin) -> None:
    """Add each event kind's body and their union, ``WebhookEvent``, to the components."""
    for event in WEBHOOK_EVENTS:
        spec.components.schema(event.name, component=_webhook_body(event, plugin))
    spec.components.schema(
        "WebhookEvent",
        component={
            "description": "Any PrimeVOX event. Fields not listed are ignored; numbers and "
            "booleans in a JSON body are read as text. Spellings accepted for every event: "
            + ", ".join(f"{alias} for {canonical}" for alias, canonical in EVENTS.aliases.items())
            + ".",
            # anyOf, not oneOf: both ringAttempt forms share an eventType, and an
            # unknown-event body may look like a known one.
            "anyOf": [{"$ref": f"#/components/schemas/{e.name}"} for e in WEBHOOK_EVENTS],
        },
    )
