"""``GET /v1/outcomes``: final outcome records, a page at a time, in the order they
were decided (the stream of the same records is app/outcomes/stream.py)."""

from __future__ import annotations

from typing import Any

from flask import g

from app.calls.schemas import LastEventIdHeader, OutcomePageArgs, OutcomePageSchema
from app.web.auth import ALL_TENANTS
from app.web.resources import get_store
from app.web.rest import ApiBlueprint
from app.web.scope import scoped_tenants

bp = ApiBlueprint("outcomes", __name__, url_prefix="/v1")


def outcome_query(args: dict[str, Any]) -> dict[str, Any]:
    """The outcome reading ``args`` (OutcomeArgs) asks for, in the key's tenants.
    Raises TenantForbidden."""
    return {
        "after": args.get("after"),
        "limit": args.get("limit"),
        "outcome": args.get("outcome"),
        "tenants": scoped_tenants(args.get("tenant_id")),
        # An admin key with no tenant filter follows tenants that appear later too.
        "all_tenants": g.scope == ALL_TENANTS and not args.get("tenant_id"),
    }


@bp.operation(
    "GET",
    "/outcomes",
    "listOutcomes",
    tag="outcomes",
    query=OutcomePageArgs(),
    headers=LastEventIdHeader(),
    schema=OutcomePageSchema,
    answer="a page of records",
    usual=(401, 403, 503),
    errors={400: "a bad after, limit or outcome"},
)
def outcomes(args: dict[str, Any]) -> dict[str, Any]:
    """Final outcome records in the order they were decided"""
    query = outcome_query(args)
    records, cursor = get_store().outcomes.read_outcomes(
        query["tenants"], after=query["after"], limit=query["limit"], outcome=query["outcome"]
    )
    more = len(records) >= query["limit"]
    return {"outcomes": records, "next": cursor if more else None}
