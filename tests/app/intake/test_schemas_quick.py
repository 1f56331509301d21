"""app.intake.loading's quick path: it accepts what marshmallow accepts, as the same event,
and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.intake.loading import (
    RECEIVED_AT,
    SCHEMAS,
    _quick_load,
    _schema_for,
    canonical_type,
)
from statemachine.primevox import ALIASES
from tests.kit.examples import FIELDS

AT = datetime(2025, 11, 25, 9, 41, 7, 123456, tzinfo=UTC)
EVERY_SCHEMA = list(SCHEMAS.values())
KEYS = sorted(
    {field.data_key or name for s in EVERY_SCHEMA for name, field in s.fields.items()}
    | set(ALIASES)
    | {"eventTarget", "somethingElse"}
)
TEXT = st.one_of(
    st.text(max_size=5),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=195, max_size=205),
    st.sampled_from(["", "a\x00b", "tab\there", "x" * 200, "x" * 201, "y" * 2001, "\x7f"]),
)
VALUE = st.one_of(TEXT, TEXT, TEXT, st.none(), st.integers(), st.booleans())


def _marshmallow(schema: Any, body: dict[str, Any]) -> Any:
    try:
        return schema.load({**body, RECEIVED_AT: AT.isoformat()})
    except ValidationError:
        return "refused"


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_example_takes_the_quick_path(name: str) -> None:
    """Each realistic PrimeVOX body is built by the quick path, as marshmallow builds it."""
    body = dict(FIELDS[name])
    schema = _schema_for(canonical_type(body["eventType"]), body)
    quick = _quick_load(schema, body, AT)
    assert quick is not None
    assert quick == _marshmallow(schema, body)


@given(
    base=st.sampled_from(sorted(FIELDS)),
    changes=st.dictionaries(st.sampled_from(KEYS), VALUE, max_size=6),
    drops=st.lists(st.sampled_from(KEYS), max_size=4),
)
@fuzz_settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_quick_path_decides_as_marshmallow_does(
    base: str, changes: dict[str, Any], drops: list[str]
) -> None:
    """Whatever the fields, the quick path builds marshmallow's event, and defers only
    what marshmallow refuses: marshmallow is left only the wording of the refusal."""
    body = {k: v for k, v in {**FIELDS[base], **changes}.items() if k not in drops}
    for schema in EVERY_SCHEMA:
        quick = _quick_load(schema, body, AT)
        assert (quick if quick is not None else "refused") == _marshmallow(schema, body)
