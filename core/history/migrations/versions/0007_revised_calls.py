"""The calls revised since their first revision, indexed apart.

/v1/stats and the heatmap count a window's calls at their revision at the
window's end, and fold one by one those revised after it
(``core.history.reports.revised_after``). Without this index the database looks
for them over every call of the window; with it, over the revised calls only (a
partial index: a call never revised has no entry).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

REVISED = sa.text("decided_us > first_decided_us")


def upgrade() -> None:
    op.create_index(
        "ix_history_calls_revised",
        "history_calls",
        ["tenant_id", "first_decided_us", "decided_us"],
        postgresql_where=REVISED,
        sqlite_where=REVISED,
    )


def downgrade() -> None:
    op.drop_index("ix_history_calls_revised", "history_calls")
