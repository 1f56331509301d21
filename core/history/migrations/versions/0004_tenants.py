"""Tenants and credentials as they changed, for audit.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.history.schema import key_text

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("tenant_id", key_text(), nullable=False),
        sa.Column("credential_id", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("tenant_audit_by_tenant", "tenant_audit", ["tenant_id", "at_us"])


def downgrade() -> None:
    op.drop_index("tenant_audit_by_tenant", "tenant_audit")
    op.drop_table("tenant_audit")
