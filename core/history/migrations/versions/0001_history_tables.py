"""History tables: calls, revisions, extensions, the archiver's cursor.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _key() -> sa.types.TypeEngine[str]:
    # Byte-order comparison on both databases (see schema.key_text).
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "history_calls",
        sa.Column("tenant_id", _key(), primary_key=True),
        sa.Column("call_uuid", _key(), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("outcome_id", sa.Text, nullable=False),
        sa.Column("started_us", sa.BigInteger, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("missed_reason", sa.Text),
        sa.Column("queue", _key()),
        sa.Column("ring_group", _key()),
        sa.Column("caller_number", _key()),
        sa.Column("first_revision", sa.Integer, nullable=False),
        sa.Column("first_decided_us", sa.BigInteger, nullable=False),
        sa.Column("decided_us", sa.BigInteger, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_history_calls_started", "history_calls", ["started_us", "tenant_id", "call_uuid"]
    )
    op.create_index(
        "ix_history_calls_tenant_started",
        "history_calls",
        ["tenant_id", "started_us", "call_uuid"],
    )
    op.create_index(
        "ix_history_calls_tenant_caller", "history_calls", ["tenant_id", "caller_number"]
    )
    op.create_index("ix_history_calls_first_decided", "history_calls", ["first_decided_us"])
    op.create_table(
        "history_revisions",
        sa.Column("tenant_id", _key(), primary_key=True),
        sa.Column("call_uuid", _key(), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("outcome_id", sa.Text, nullable=False),
        sa.Column("decided_us", sa.BigInteger, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_table(
        "history_extensions",
        sa.Column("tenant_id", _key(), primary_key=True),
        sa.Column("call_uuid", _key(), primary_key=True),
        sa.Column("extension", _key(), primary_key=True),
        sa.Column("started_us", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_history_extensions_tenant_extension",
        "history_extensions",
        ["tenant_id", "extension", "started_us", "call_uuid"],
    )
    cursor = op.create_table(
        "history_cursor",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("last_id", sa.Text, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(cursor, [{"name": "outcomes", "last_id": "", "updated_us": 0}])


def downgrade() -> None:
    op.drop_table("history_cursor")
    op.drop_table("history_extensions")
    op.drop_table("history_revisions")
    op.drop_table("history_calls")
