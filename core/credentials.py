"""Which credential a presented secret is: a dictionary hit on its digest.

The environment's credentials (WEBHOOK_TOKENS, API_KEYS) are hashed once, when
the process starts, and kept beside the directory's (core/store/directory.py);
neither is ever compared in clear. Looking a digest up in a dict may take a
time that depends on the digest, but a digest tells nothing of which secret
would hash near it, so no constant-time scan over every binding is needed.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.settings import READ_SUFFIX, Settings
from core.store import (
    EVERY_TENANT,
    MISS_CHECK_SECONDS,
    Credential,
    CredentialKind,
    Directory,
    Scope,
    digest,
)


def _bootstrap(
    bindings: Mapping[str, str], kind: CredentialKind, prefix: str
) -> dict[str, Credential]:
    """The environment's ``secret -> tenant`` bindings by digest. An API key's
    scope: ``*`` admin, ``tenant`` write, ``tenant:read`` read; a webhook token
    has no scope of its own (write: it posts events)."""
    found: dict[str, Credential] = {}
    for position, (secret, bound) in enumerate(bindings.items()):
        tenant = bound.removesuffix(READ_SUFFIX)
        if kind is CredentialKind.API_KEY and tenant != bound:
            scope = Scope.READ
        elif kind is CredentialKind.API_KEY and tenant == EVERY_TENANT:
            scope = Scope.ADMIN
        else:
            scope = Scope.WRITE
        found[digest(secret)] = Credential(
            id=f"{prefix}{position + 1}", kind=kind, tenant_id=tenant, scope=scope, bootstrap=True
        )
    return found


class CredentialLookup:
    """The credentials a web process accepts: the environment's, and the directory's
    (created and revoked ones seen within about a second)."""

    def __init__(self, directory: Directory, settings: Settings) -> None:
        self.directory = directory
        self._bootstrap = {
            CredentialKind.WEBHOOK_TOKEN: _bootstrap(
                settings.webhook_tokens, CredentialKind.WEBHOOK_TOKEN, "env-token-"
            ),
            CredentialKind.API_KEY: _bootstrap(
                settings.api_keys, CredentialKind.API_KEY, "env-key-"
            ),
        }

    def find(self, secret: str | None, kind: CredentialKind) -> Credential | None:
        """The credential ``secret`` is, of ``kind``, unless its tenant is disabled;
        else None. Raises redis.RedisError only when the directory was never read."""
        if not secret:
            return None
        key = digest(secret)
        credential = self._bootstrap[kind].get(key)
        snapshot = self.directory.current()
        if credential is None:
            credential = snapshot.credentials.get(key)
            if credential is None:
                snapshot = self.directory.current(max_age=MISS_CHECK_SECONDS)
                credential = snapshot.credentials.get(key)
            if credential is None or credential.kind is not kind:
                return None
        record = snapshot.tenants.get(credential.tenant_id)
        if record is not None and record.disabled:
            return None
        self.directory.note_used(credential)
        return credential

    def tenant_disabled(self, tenant_id: str) -> bool:
        """Whether ``tenant_id`` has a record and it is disabled (its webhooks get 401)."""
        record = self.directory.current().tenants.get(tenant_id)
        return record is not None and record.disabled
