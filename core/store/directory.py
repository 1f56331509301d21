"""Tenants and their credentials as data: the tenant records (name, own
settings, disabled) and the webhook tokens and API keys bound to them, kept by
the digest of each secret (keys: ``keys.py``, "tenants and credentials").

Every process keeps a copy of the whole directory and looks a credential up in
it by digest: one dictionary hit a request. It asks Redis whether the directory
moved (one GET of a version counter) at most once a ``CHECK_SECONDS``, and
reloads it when it did, so a token created or revoked in one process is seen
by every other within about a second, with no restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import redis

from core.store.backend import Part
from core.store.keys import (
    CREDENTIAL_IDS_KEY,
    CREDENTIALS_KEY,
    CREDENTIALS_USED_KEY,
    DIRECTORY_TENANTS_KEY,
    DIRECTORY_VERSION_KEY,
)
from core.store.values import _text, dumps

# How often a process asks whether the directory moved: a revoked credential
# stops working everywhere within this (plus one request), well inside 2 s.
CHECK_SECONDS = 1.0
# An unknown secret asks again at once (one GET), so a token just created in
# another process works on its first request; a bad secret costs that GET.
MISS_CHECK_SECONDS = 0.0
# last_used_at is written at most this often per credential and process, so a
# busy token costs intake one write a minute, not one a request.
LAST_USED_EVERY_SECONDS = 60.0
EVERY_TENANT = "*"


class Scope(str, Enum):
    """What an API key may do; each includes the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        return _RANK[self] >= _RANK[needed]


_RANK = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}


class CredentialKind(str, Enum):
    WEBHOOK_TOKEN = "webhook_token"
    API_KEY = "api_key"


def digest(secret: str) -> str:
    """The SHA-256 of a secret, as stored and looked up.

    A plain hash, not a slow KDF (bcrypt, scrypt): our secrets are random with
    256 bits (``new_secret``; the environment's are the operator's), so no
    dictionary or brute-force search can find one from its digest and a slow
    hash would only slow every webhook down (django-rest-knox reasons the same
    for its token digests).
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def new_secret() -> str:
    """A fresh token or key: 256 random bits, URL-safe (it goes in a webhook's path)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Credential:
    """A webhook token or API key, without its secret."""

    id: str
    kind: CredentialKind
    tenant_id: str
    scope: Scope
    name: str = ""
    created_at: float = 0.0
    # From the environment (WEBHOOK_TOKENS, API_KEYS): never stored, never revoked.
    bootstrap: bool = False

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("bootstrap")
        return dumps({**data, "kind": self.kind.value, "scope": self.scope.value})

    @classmethod
    def from_json(cls, raw: str | bytes) -> Credential:
        data = json.loads(raw)
        data["kind"] = CredentialKind(data["kind"])
        data["scope"] = Scope(data["scope"])
        return cls(**data)


@dataclass(frozen=True)
class TenantRecord:
    """An onboarded tenant: its name, the settings it set of its own (None: the
    deployment's), and whether it is disabled."""

    id: str
    name: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    disabled: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_json(self) -> str:
        return dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> TenantRecord:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class Snapshot:
    """The directory as one process last loaded it."""

    version: int = -1
    tenants: Mapping[str, TenantRecord] = field(default_factory=dict)
    credentials: Mapping[str, Credential] = field(default_factory=dict)


class TenantExists(Exception):
    """A tenant record with that id is already there."""


class Directory(Part):
    """Tenant records and credentials in Redis, with this process's copy of them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._snapshot = Snapshot()
        self._checked_at = float("-inf")
        self._reload = threading.Lock()
        self._used_noted: dict[str, float] = {}

    # -- the process's copy ------------------------------------------------------

    def current(self, now: float | None = None, max_age: float = CHECK_SECONDS) -> Snapshot:
        """The directory, at most ``max_age`` seconds behind Redis. Raises
        redis.RedisError only when it was never loaded (a stale copy is kept
        while Redis is away)."""
        now = time.monotonic() if now is None else now
        if now - self._checked_at < max_age:
            return self._snapshot
        with self._reload:
            if now - self._checked_at < max_age:
                return self._snapshot
            try:
                version = int(self.redis.get(DIRECTORY_VERSION_KEY) or 0)
                if version != self._snapshot.version:
                    self._snapshot = self._load()
            except redis.RedisError:
                if self._snapshot.version < 0:
                    raise
            self._checked_at = now
        return self._snapshot

    def _load(self) -> Snapshot:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(DIRECTORY_VERSION_KEY)
            pipe.hgetall(DIRECTORY_TENANTS_KEY)
            pipe.hgetall(CREDENTIALS_KEY)
            version, tenants, credentials = pipe.execute()
        return Snapshot(
            version=int(version or 0),
            tenants={_text(k): TenantRecord.from_json(v) for k, v in tenants.items()},
            credentials={_text(k): Credential.from_json(v) for k, v in credentials.items()},
        )

    def refresh(self) -> Snapshot:
        """The directory as Redis has it now (after a write of this process)."""
        self._checked_at = float("-inf")
        return self.current()

    # -- tenants -------------------------------------------------------------------

    def tenant(self, tenant_id: str) -> TenantRecord | None:
        """``tenant_id``'s record as Redis has it now, or None."""
        raw = self.redis.hget(DIRECTORY_TENANTS_KEY, tenant_id)
        return None if raw is None else TenantRecord.from_json(raw)

    def tenant_records(self) -> list[TenantRecord]:
        """Every tenant record, by id, as Redis has them now."""
        found = self.redis.hgetall(DIRECTORY_TENANTS_KEY)
        return sorted((TenantRecord.from_json(v) for v in found.values()), key=lambda t: t.id)

    def create_tenant(self, record: TenantRecord) -> None:
        """Store a new tenant record. Raises TenantExists if its id has one."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(DIRECTORY_TENANTS_KEY, record.id, record.to_json())
            pipe.incr(DIRECTORY_VERSION_KEY)
            created, _ = pipe.execute()
        if not created:
            raise TenantExists(record.id)

    def save_tenant(self, record: TenantRecord) -> None:
        """Replace a tenant's record (an update, or disabling it)."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(DIRECTORY_TENANTS_KEY, record.id, record.to_json())
            pipe.incr(DIRECTORY_VERSION_KEY)
            pipe.execute()

    # -- credentials -----------------------------------------------------------------

    def add_credential(self, credential: Credential, secret_digest: str) -> None:
        """Store a credential under the digest of its secret (never the secret)."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(CREDENTIALS_KEY, secret_digest, credential.to_json())
            pipe.hset(CREDENTIAL_IDS_KEY, credential.id, secret_digest)
            pipe.incr(DIRECTORY_VERSION_KEY)
            pipe.execute()

    def revoke(self, credential_id: str) -> Credential | None:
        """Delete a credential; the one deleted, or None if there was none."""
        secret_digest = self.redis.hget(CREDENTIAL_IDS_KEY, credential_id)
        if secret_digest is None:
            return None
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(CREDENTIALS_KEY, secret_digest)
            pipe.hdel(CREDENTIALS_KEY, secret_digest)
            pipe.hdel(CREDENTIAL_IDS_KEY, credential_id)
            pipe.hdel(CREDENTIALS_USED_KEY, credential_id)
            pipe.incr(DIRECTORY_VERSION_KEY)
            raw, *_ = pipe.execute()
        return None if raw is None else Credential.from_json(raw)

    def credentials_of(self, tenant_id: str, kind: CredentialKind) -> list[Credential]:
        """A tenant's stored credentials of one kind, oldest first, as Redis has them now."""
        found = (Credential.from_json(v) for v in self.redis.hvals(CREDENTIALS_KEY))
        mine = [c for c in found if c.tenant_id == tenant_id and c.kind is kind]
        return sorted(mine, key=lambda c: (c.created_at, c.id))

    def last_used(self, credential_ids: list[str]) -> dict[str, float]:
        """When each credential was last used (at most a minute behind), where known."""
        if not credential_ids:
            return {}
        found = self.redis.hmget(CREDENTIALS_USED_KEY, credential_ids)
        return {c: float(at) for c, at in zip(credential_ids, found, strict=True) if at is not None}

    def note_used(self, credential: Credential, now: float | None = None) -> None:
        """Record that ``credential`` was used now, at most once a minute per
        process; a Redis error is ignored (it is a record, not a check)."""
        if credential.bootstrap:
            return
        now = time.time() if now is None else now
        if now - self._used_noted.get(credential.id, float("-inf")) < LAST_USED_EVERY_SECONDS:
            return
        self._used_noted[credential.id] = now
        with contextlib.suppress(redis.RedisError):
            self.redis.hset(CREDENTIALS_USED_KEY, credential.id, repr(now))


def new_credential_id(kind: CredentialKind) -> str:
    """A credential's public id: random, unrelated to its secret."""
    prefix = "wht" if kind is CredentialKind.WEBHOOK_TOKEN else "key"
    return f"{prefix}_{secrets.token_hex(8)}"
