"""Numbers searched however the PBX wrote them: caller_key and extension_key.

Beside the raw caller and extension numbers, their searchable form
(core.history.numbers: E.164 when the text reads as a full number, else as
written), indexed for the ``caller`` and ``extension`` filters. Rows archived
before are filled in batches, their national numbers read in DEFAULT_COUNTRY
(a migration has no Redis to ask for a tenant's own country).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.history.numbers import environment_country, searchable

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 1000


def _key() -> sa.types.TypeEngine[str]:
    # Byte-order comparison on both databases (see schema.key_text).
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _fill(table_name: str, primary_key: Sequence[str], raw: str, key: str, country: str) -> None:
    """Set ``key`` from ``raw`` on every row, a batch at a time in primary-key order."""
    connection = op.get_bind()
    table = sa.table(table_name, *(sa.column(name) for name in (*primary_key, raw, key)))
    ids = [table.c[name] for name in primary_key]
    match = sa.and_(*(table.c[name] == sa.bindparam(f"k_{name}") for name in primary_key))
    update = sa.update(table).where(match).values({key: sa.bindparam("k_value")})
    after: tuple[object, ...] | None = None
    while True:
        found = sa.select(*ids, table.c[raw]).order_by(*ids).limit(BATCH)
        if after is not None:
            found = found.where(sa.tuple_(*ids) > after)
        rows = connection.execute(found).all()
        if not rows:
            return
        changes = [
            {**{f"k_{name}": row[i] for i, name in enumerate(primary_key)}, "k_value": value}
            for row in rows
            if (value := searchable(row[-1], country)) is not None
        ]
        if changes:
            connection.execute(update, changes)
        after = tuple(rows[-1][: len(primary_key)])


def upgrade() -> None:
    op.add_column("history_calls", sa.Column("caller_key", _key()))
    op.add_column("history_extensions", sa.Column("extension_key", _key()))
    country = environment_country()
    _fill("history_calls", ("tenant_id", "call_uuid"), "caller_number", "caller_key", country)
    _fill(
        "history_extensions",
        ("tenant_id", "call_uuid", "extension"),
        "extension",
        "extension_key",
        country,
    )
    op.create_index(
        "ix_history_calls_tenant_caller_key", "history_calls", ["tenant_id", "caller_key"]
    )
    op.drop_index("ix_history_extensions_tenant_extension", "history_extensions")
    op.create_index(
        "ix_history_extensions_tenant_extension_key",
        "history_extensions",
        ["tenant_id", "extension_key", "started_us", "call_uuid"],
    )


def downgrade() -> None:
    op.drop_index("ix_history_extensions_tenant_extension_key", "history_extensions")
    op.create_index(
        "ix_history_extensions_tenant_extension",
        "history_extensions",
        ["tenant_id", "extension", "started_us", "call_uuid"],
    )
    op.drop_index("ix_history_calls_tenant_caller_key", "history_calls")
    with op.batch_alter_table("history_extensions") as batch:
        batch.drop_column("extension_key")
    with op.batch_alter_table("history_calls") as batch:
        batch.drop_column("caller_key")
