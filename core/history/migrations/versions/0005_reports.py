"""The reports' counts from an index: a call's wait and short abandon as columns.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

The new columns are filled from each archived record (the JSON the row keeps),
by the database itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The window's columns, then every one the heatmap counts: schema.REPORTS_INDEX_COLUMNS
# as of this revision, written out so that the migration stays what it was.
REPORTS_INDEX_COLUMNS = [
    "tenant_id",
    "first_decided_us",
    "first_revision",
    "decided_us",
    "direction",
    "started_us",
    "outcome",
    "missed_reason",
    "short_abandon",
    "wait_seconds",
]
BACKFILL = {
    "postgresql": (
        "UPDATE history_calls SET"
        " wait_seconds = (record::json ->> 'wait_seconds')::double precision,"
        " short_abandon = coalesce((record::json ->> 'short_abandon')::boolean, false)"
    ),
    "sqlite": (
        "UPDATE history_calls SET"
        " wait_seconds = json_extract(record, '$.wait_seconds'),"
        " short_abandon = coalesce(json_extract(record, '$.short_abandon'), 0) != 0"
    ),
}


def upgrade() -> None:
    with op.batch_alter_table("history_calls") as table:
        table.add_column(sa.Column("wait_seconds", sa.Float))
        table.add_column(
            sa.Column("short_abandon", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.execute(BACKFILL[op.get_bind().dialect.name])
    op.create_index("ix_history_calls_reports", "history_calls", REPORTS_INDEX_COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_history_calls_reports", "history_calls")
    with op.batch_alter_table("history_calls") as table:
        table.drop_column("short_abandon")
        table.drop_column("wait_seconds")
