"""/v1/stats counted by the database: what it counts of each call, as columns.

A call's wait and talk in microseconds, who answered, its voicemail box, its
callback contact and the number the callback list matches it by
(``records.figure_columns``), and whether each extension rang
(``history_extensions.rang``), with a covering index for the counts. Rows
archived before are filled from the record each row keeps, in batches, numbers
read in DEFAULT_COUNTRY (a migration has no Redis to ask for a tenant's own
country; /v1/stats folds the records of a tenant whose rows were read in
another country, see core/history/stat_counts.py).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sys
from typing import Any

import sqlalchemy as sa
from alembic import op

from core.history.numbers import environment_country
from core.history.records import figure_columns
from core.store import loads

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 1000
# The columns as of this revision, written out so that the migration stays what it was.
NEW_COLUMNS: list[tuple[str, Any]] = [
    ("wait_us", sa.BigInteger),
    ("talk_us", sa.BigInteger),
    ("answered_by", "key"),
    ("voicemail_box", "key"),
    ("contact_kind", sa.Text),
    ("contact_key", "key"),
    ("key_country", sa.Text),
    ("phone_tail", "key"),
]
STATS_INDEX_COLUMNS = [
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
    "queue",
    "wait_us",
    "talk_us",
    "answered_by",
    "voicemail_box",
    "contact_kind",
    "contact_key",
    "key_country",
    "call_uuid",
]
CONTACT_INDEX_COLUMNS = [
    "tenant_id",
    "contact_key",
    "contact_kind",
    "first_revision",
    "first_decided_us",
    "decided_us",
    "call_uuid",
]


def _key() -> sa.types.TypeEngine[str]:
    # Byte-order comparison on both databases (see schema.key_text).
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _number(party: object) -> str | None:
    if isinstance(party, dict) and party.get("number"):
        return str(party["number"])
    return None


def _fill(country: str) -> None:
    """Every row's new columns from its record, a batch at a time in primary-key order."""
    connection = op.get_bind()
    names = [name for name, _ in NEW_COLUMNS]
    calls = sa.table(
        "history_calls", *(sa.column(n) for n in ("tenant_id", "call_uuid", "record", *names))
    )
    extensions = sa.table(
        "history_extensions",
        *(sa.column(n) for n in ("tenant_id", "call_uuid", "extension", "rang")),
    )
    set_calls = (
        sa.update(calls)
        .where(calls.c.tenant_id == sa.bindparam("k_tenant"))
        .where(calls.c.call_uuid == sa.bindparam("k_call"))
        .values({name: sa.bindparam(f"v_{name}") for name in names})
    )
    set_rang = (
        sa.update(extensions)
        .where(extensions.c.tenant_id == sa.bindparam("k_tenant"))
        .where(extensions.c.call_uuid == sa.bindparam("k_call"))
        .where(extensions.c.extension == sa.bindparam("k_extension"))
        .values(rang=True)
    )
    total = connection.execute(sa.select(sa.func.count()).select_from(calls)).scalar_one()
    filled = 0
    after: tuple[str, str] | None = None
    while True:
        found = (
            sa.select(calls.c.tenant_id, calls.c.call_uuid, calls.c.record)
            .order_by(calls.c.tenant_id, calls.c.call_uuid)
            .limit(BATCH)
        )
        if after is not None:
            found = found.where(sa.tuple_(calls.c.tenant_id, calls.c.call_uuid) > after)
        rows = connection.execute(found).all()
        if not rows:
            return
        changes, rang = [], []
        for tenant, call, text in rows:
            record = loads(text)
            values = figure_columns(record, country)
            changes.append(
                {"k_tenant": tenant, "k_call": call, **{f"v_{n}": values[n] for n in names}}
            )
            if record.get("direction") != "outbound":
                rang += [
                    {"k_tenant": tenant, "k_call": call, "k_extension": number}
                    for number in {_number(party) for party in record.get("rang") or []}
                    if number
                ]
        connection.execute(set_calls, changes)
        if rang:
            connection.execute(set_rang, rang)
        after = (rows[-1][0], rows[-1][1])
        filled += len(rows)
        # A large archive takes minutes here: say how far it got.
        if filled % (BATCH * 50) < BATCH or filled == total:
            print(f"0006: {filled:,} of {total:,} archived calls counted", file=sys.stderr)


def upgrade() -> None:
    with op.batch_alter_table("history_calls") as table:
        for name, kind in NEW_COLUMNS:
            table.add_column(sa.Column(name, _key() if kind == "key" else kind))
    with op.batch_alter_table("history_extensions") as table:
        table.add_column(sa.Column("rang", sa.Boolean, nullable=False, server_default=sa.false()))
    _fill(environment_country())
    op.create_index("ix_history_calls_stats", "history_calls", STATS_INDEX_COLUMNS)
    op.create_index("ix_history_calls_contact", "history_calls", CONTACT_INDEX_COLUMNS)
    op.create_index("ix_history_calls_phone_tail", "history_calls", ["tenant_id", "phone_tail"])


def downgrade() -> None:
    op.drop_index("ix_history_calls_phone_tail", "history_calls")
    op.drop_index("ix_history_calls_contact", "history_calls")
    op.drop_index("ix_history_calls_stats", "history_calls")
    with op.batch_alter_table("history_extensions") as table:
        table.drop_column("rang")
    with op.batch_alter_table("history_calls") as table:
        for name, _ in reversed(NEW_COLUMNS):
            table.drop_column(name)
