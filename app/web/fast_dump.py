"""A faster dump for the answers on hot paths, planned from the schemas themselves.

marshmallow's ``Schema.dump`` costs 30-60 µs per outcome record or live call
here, several times what encoding the record as JSON costs (10-20 µs); on an
outcome page of 100-1,000 records, the outcome stream catching up and the live
calls polled by every wallboard, that cut the read API's throughput (the
outcome page to a quarter of its requests/s in bench.versions).

:func:`compile_dump` reads a schema's dump fields once and returns a function
that dumps a stored record as marshmallow would (the same keys, data_key names,
nested schemas followed, missing keys left out, nulls kept) at about 0.5 µs a
record: a record that has exactly the schema's fields passes as it is (its
nested parties and DIDs trusted), any other is walked and filtered. The fields
of these schemas convert nothing (app/web/schema_fields.py), so choosing the keys is
all a dump does; tests/app/web/test_fast_dump.py holds each plan equal to
marshmallow's dump of records the engine made, and those records to their schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import Schema, fields

from app.web.schema_fields import Answer

Dump = Callable[[Any], Any]


def compile_dump(schema: Schema) -> Callable[[Mapping[str, Any]], Any]:
    """A function that dumps a mapping as ``schema.dump`` does: the same keys and
    values. The keys come in the record's own order (marshmallow's come in the
    schema's): JSON answers sort their keys, and an answer encoded unsorted
    (/v1/stats) keeps the order its body was built in, as it did before."""
    plan: dict[str, tuple[str, Dump | None]] = {}
    for name, field in schema.dump_fields.items():
        attribute = field.attribute or name
        if "." in attribute:
            raise ValueError(f"{type(schema).__name__}.{name}: a dotted attribute is not planned")
        plan[attribute] = (field.data_key or name, _converter(field))

    # A record with exactly the schema's fields (an outcome record or a live call
    # as the engine stores them) is answered as it is, where its only nested
    # values are leaves (parties, DIDs: the engine's fixed shapes, held to their
    # schemas by the tests): a dump would copy it unchanged. Measured: this is
    # what keeps an outcome page as fast as before the schemas dumped it.
    exact: frozenset[str] | None = None
    if all(key == name for name, (key, _) in plan.items()) and _nests_only_leaves(schema):
        exact = frozenset(plan)

    def dump(record: Mapping[str, Any]) -> Any:
        if exact is not None and record.keys() == exact:
            return record
        # Measured: walking the record beats picking the plan's fields from it
        # (itemgetter), the records being small and mostly the schema's fields.
        shown = {}
        for attribute, value in record.items():
            planned = plan.get(attribute)
            if planned is not None:
                key, convert = planned
                shown[key] = value if value is None or convert is None else convert(value)
        return shown

    return dump


def _nested_schema(field: fields.Field[Any]) -> Schema | None:
    if isinstance(field, fields.List):
        return _nested_schema(field.inner)
    if isinstance(field, fields.Nested):
        nested: Schema = field.schema
        return nested
    return None


def _nests_only_leaves(schema: Schema) -> bool:
    """Whether every schema nested in ``schema`` nests none itself."""
    return all(
        not any(_nested_schema(inner) for inner in nested.dump_fields.values())
        for nested in map(_nested_schema, schema.dump_fields.values())
        if nested is not None
    )


def _converter(field: fields.Field[Any]) -> Dump | None:
    """How a field's stored value becomes its dumped value; None: as it is."""
    if isinstance(field, fields.Nested):
        nested = compile_dump(field.schema)
        if field.many:
            return lambda values: [nested(value) for value in values]
        return nested
    if isinstance(field, fields.List):
        item = _converter(field.inner)
        if item is None:
            return list
        return lambda values: [None if value is None else item(value) for value in values]
    if isinstance(field, fields.Mapping):
        return dict
    return None


class FastAnswer(Answer):
    """A response schema on a hot path: ``dump`` runs the plan compiled from its fields;
    ``marshmallow_dump`` is marshmallow's own, which the plan must equal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._planned = compile_dump(self)

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        if self.many if many is None else many:
            return [self._planned(item) for item in obj]
        return self._planned(obj)

    def marshmallow_dump(self, obj: Any, *, many: bool | None = None) -> Any:
        return super().dump(obj, many=many)
