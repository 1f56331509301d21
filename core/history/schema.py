"""The history tables, as SQLAlchemy Core metadata.

The migrations in ``migrations/versions`` create exactly this (a test compares
them); queries are built from these objects. Times are integer microseconds
since the epoch (UTC), as the outcome record ids already are: exact, and the
same on PostgreSQL and SQLite.

    history_calls       one row per call: its latest revision, and the columns searched on
    history_revisions   one row per outcome revision ever archived
    history_extensions  one row per (call, extension it rang, was answered by, or placed)
    history_cursor      how far the archiver has read the outcome streams
    history_set_aside   outcome records the database refused, kept as ASCII JSON
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()


def key_text() -> sa.types.TypeEngine[str]:
    """Text compared byte by byte on both databases.

    PostgreSQL's default collation ignores punctuation (``+1555`` sorts with
    ``1555``), which would break the keyset paging's tuple comparisons and the
    caller-prefix ranges; the ``C`` collation compares like SQLite's BINARY.
    """
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


calls = sa.Table(
    "history_calls",
    metadata,
    sa.Column("tenant_id", key_text(), primary_key=True),
    sa.Column("call_uuid", key_text(), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("outcome_id", sa.Text, nullable=False),
    # started_at, or ended_at for a call whose start is unknown: the sort key.
    sa.Column("started_us", sa.BigInteger, nullable=False),
    sa.Column("direction", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("missed_reason", sa.Text),
    sa.Column("queue", key_text()),
    sa.Column("ring_group", key_text()),
    sa.Column("caller_number", key_text()),
    # The caller's number as searched: E.164 when it reads as one, else as
    # written (core.history.numbers); the record keeps the number as received.
    sa.Column("caller_key", key_text()),
    # The first revision archived (1 unless it had left Redis before) and when
    # it was decided: /v1/stats counts a call in the window of its revision 1.
    sa.Column("first_revision", sa.Integer, nullable=False),
    sa.Column("first_decided_us", sa.BigInteger, nullable=False),
    sa.Column("decided_us", sa.BigInteger, nullable=False),
    # The outcome record as published (JSON text, with its id and revision).
    sa.Column("record", sa.Text, nullable=False),
    # Copied from the record so the reports' counts are a GROUP BY over an
    # index (core/history/reports.py), the records left unread.
    sa.Column("wait_seconds", sa.Float),
    sa.Column("short_abandon", sa.Boolean, nullable=False, server_default=sa.false()),
    # Copied from the record so that /v1/stats is a GROUP BY too
    # (core/history/stat_counts.py): wait and talk in whole microseconds, as the
    # figures add them; who answered; the callback contact, its number read in
    # key_country; the number the callback list matches (records.figure_columns).
    sa.Column("wait_us", sa.BigInteger),
    sa.Column("talk_us", sa.BigInteger),
    sa.Column("answered_by", key_text()),
    sa.Column("voicemail_box", key_text()),
    sa.Column("contact_kind", sa.Text),
    sa.Column("contact_key", key_text()),
    sa.Column("key_country", sa.Text),
    sa.Column("phone_tail", key_text()),
)
sa.Index("ix_history_calls_started", calls.c.started_us, calls.c.tenant_id, calls.c.call_uuid)
sa.Index(
    "ix_history_calls_tenant_started", calls.c.tenant_id, calls.c.started_us, calls.c.call_uuid
)
sa.Index("ix_history_calls_tenant_caller", calls.c.tenant_id, calls.c.caller_number)
sa.Index("ix_history_calls_tenant_caller_key", calls.c.tenant_id, calls.c.caller_key)
sa.Index("ix_history_calls_first_decided", calls.c.first_decided_us)
# Every column the heatmap counts, after the window's: its GROUP BY reads this
# index alone (an index-only scan on PostgreSQL, a covering index on SQLite).
REPORTS_INDEX_COLUMNS = (
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
)
sa.Index("ix_history_calls_reports", *(calls.c[name] for name in REPORTS_INDEX_COLUMNS))
# Every column /v1/stats counts, after the window's (core/history/stat_counts.py).
STATS_INDEX_COLUMNS = (
    *REPORTS_INDEX_COLUMNS,
    "queue",
    "wait_us",
    "talk_us",
    "answered_by",
    "voicemail_box",
    "contact_kind",
    "contact_key",
    "key_country",
    "call_uuid",
)
sa.Index("ix_history_calls_stats", *(calls.c[name] for name in STATS_INDEX_COLUMNS))
# The calls of a callback contact's number, and what the window asks of them: which
# missed calls may have been reached (an index-only probe per call).
CONTACT_INDEX_COLUMNS = (
    "tenant_id",
    "contact_key",
    "contact_kind",
    "first_revision",
    "first_decided_us",
    "decided_us",
    "call_uuid",
)
sa.Index("ix_history_calls_contact", *(calls.c[name] for name in CONTACT_INDEX_COLUMNS))
# The callback list's follow-ups.
sa.Index("ix_history_calls_phone_tail", calls.c.tenant_id, calls.c.phone_tail)
# The calls revised since their first revision (a partial index: few entries),
# for those of a window revised after its end (reports.revised_after).
REVISED = calls.c.decided_us > calls.c.first_decided_us
sa.Index(
    "ix_history_calls_revised",
    calls.c.tenant_id,
    calls.c.first_decided_us,
    calls.c.decided_us,
    postgresql_where=REVISED,
    sqlite_where=REVISED,
)

revisions = sa.Table(
    "history_revisions",
    metadata,
    sa.Column("tenant_id", key_text(), primary_key=True),
    sa.Column("call_uuid", key_text(), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("outcome_id", sa.Text, nullable=False),
    sa.Column("decided_us", sa.BigInteger, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
)

extensions = sa.Table(
    "history_extensions",
    metadata,
    sa.Column("tenant_id", key_text(), primary_key=True),
    sa.Column("call_uuid", key_text(), primary_key=True),
    sa.Column("extension", key_text(), primary_key=True),
    # The extension as searched (core.history.numbers): a number outside in
    # E.164, an extension as written.
    sa.Column("extension_key", key_text()),
    # The call's started_us, copied so that an extension's calls page in order
    # from this table's index alone.
    sa.Column("started_us", sa.BigInteger, nullable=False),
    # The extension rang on the call (an inbound call's ``rang``).
    sa.Column("rang", sa.Boolean, nullable=False, server_default=sa.false()),
)
sa.Index(
    "ix_history_extensions_tenant_extension_key",
    extensions.c.tenant_id,
    extensions.c.extension_key,
    extensions.c.started_us,
    extensions.c.call_uuid,
)

cursor = sa.Table(
    "history_cursor",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    # The last outcome record id archived; '' before the first.
    sa.Column("last_id", sa.Text, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

OUTCOMES_CURSOR = "outcomes"

# An outcome record the database would not store (PostgreSQL text refuses NUL,
# say): the archiver keeps it here instead and moves on, so one record never
# stops the archive for every tenant. ``record`` is the record as JSON with
# every non-ASCII character escaped, which any database stores.
set_aside = sa.Table(
    "history_set_aside",
    metadata,
    sa.Column("outcome_id", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("set_aside_us", sa.BigInteger, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
)

# Tenants and credentials as they changed, copied from Redis (where they are
# the truth) for audit: one row a change, never a secret nor its digest.
tenant_audit = sa.Table(
    "tenant_audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("tenant_id", key_text(), nullable=False),
    sa.Column("credential_id", sa.Text, nullable=True),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("tenant_audit_by_tenant", "tenant_id", "at_us"),
)
