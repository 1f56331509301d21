"""The audit copy of tenants and credentials: one row a change (``tenant_audit``).

Redis holds the directory (core/store/directory.py); this is a record of who
was onboarded, changed, disabled, given or stripped of a credential, and when.
It never holds a secret nor its digest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from core.history.schema import tenant_audit


def record_change(
    engine: sa.Engine,
    action: str,
    tenant_id: str,
    credential_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Add one change. Raises sqlalchemy.exc.SQLAlchemyError."""
    with engine.begin() as connection:
        connection.execute(
            tenant_audit.insert().values(
                at_us=int(time.time() * 1_000_000),
                action=action,
                tenant_id=tenant_id,
                credential_id=credential_id,
                # ASCII: any database stores it (PostgreSQL text refuses NUL).
                detail=json.dumps(dict(detail or {}), sort_keys=True),
            )
        )


def changes_of(engine: sa.Engine, tenant_id: str) -> list[dict[str, Any]]:
    """A tenant's changes, oldest first."""
    query = (
        sa.select(tenant_audit)
        .where(tenant_audit.c.tenant_id == tenant_id)
        .order_by(tenant_audit.c.at_us, tenant_audit.c.id)
    )
    with engine.connect() as connection:
        return [
            {**row._mapping, "detail": json.loads(row.detail)} for row in connection.execute(query)
        ]
