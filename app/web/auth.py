"""Credentials: webhook tokens for the PBX, API keys for readers.

Both are ``secret -> tenant`` bindings where tenant ``*`` means every tenant.
Secrets are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar, cast

from flask import current_app, g, request

from app.web.errors import error_response

ALL_TENANTS = "*"
F = TypeVar("F", bound=Callable[..., Any])


def tenant_for(secret: str | None, bindings: Mapping[str, str]) -> str | None:
    """The tenant a secret is bound to, or None. Looks at every binding, so the
    time taken does not tell how much of a guess was right."""
    if not secret:
        return None
    found: str | None = None
    given = secret.encode("utf-8", "surrogateescape")
    for candidate, tenant in bindings.items():
        if hmac.compare_digest(given, candidate.encode("utf-8", "surrogateescape")):
            found = tenant
    return found


def may_access(scope: str, tenant_id: str) -> bool:
    return scope in (ALL_TENANTS, tenant_id)


def require_api_key(view: F) -> F:
    """Let the request through with ``g.scope`` set to the key's tenant, or answer 401."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, secret = header.partition(" ")
        scope = None
        if scheme.lower() == "bearer":
            scope = tenant_for(secret.strip(), current_app.config["CALLSTATE_SETTINGS"].api_keys)
        if scope is None:
            return error_response(401, "missing or unknown API key (Authorization: Bearer <key>)")
        g.scope = scope
        return view(*args, **kwargs)

    return cast(F, wrapped)
