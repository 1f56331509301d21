"""Credentials: webhook tokens for the PBX, API keys for readers and operators.

Each is looked up by the digest of the presented secret (core/credentials.py)
and bound to a tenant, where ``*`` means every tenant. An API key also has a
scope (read, write, admin), and each route declares the scope it needs
(``ApiBlueprint.operation(needs=...)``). Secrets are never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request

from app.web.errors import error_response
from app.web.resources import get_resources
from core.store import EVERY_TENANT, CredentialKind, Scope

ALL_TENANTS = EVERY_TENANT
F = TypeVar("F", bound=Callable[..., Any])


def may_access(scope: str, tenant_id: str) -> bool:
    return scope in (ALL_TENANTS, tenant_id)


def require_api_key(view: F, needs: Scope = Scope.READ) -> F:
    """Let the request through with ``g.scope`` set to the key's tenant and
    ``g.key_scope`` to its scope; else answer 401 (no such key) or 403 (a key
    without the scope ``needs``)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, secret = header.partition(" ")
        credential = None
        if scheme.lower() == "bearer":
            credential = get_resources().credentials.find(secret.strip(), CredentialKind.API_KEY)
        if credential is None:
            return error_response(401, "missing or unknown API key (Authorization: Bearer <key>)")
        if not credential.scope.allows(needs):
            return error_response(
                403, f"this API key is {credential.scope.value}; this needs a {needs.value} key"
            )
        g.scope = credential.tenant_id
        g.key_scope = credential.scope
        return view(*args, **kwargs)

    wrapped.needs_scope = needs  # type: ignore[attr-defined]
    return cast(F, wrapped)
