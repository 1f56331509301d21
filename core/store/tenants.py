"""Which tenants there are, and which posted a given call or conversation.

Intake writes these sets as it accepts events (pending.py); readers that span
every tenant find their way here instead of asking each tenant.
"""

from __future__ import annotations

from dataclasses import replace

from core.settings import COUNTRY_CODES
from core.store.backend import Backend, Part
from core.store.directory import Directory
from core.store.keys import (
    CALL_INDEX_COMPLETE_KEY,
    TENANTS_KEY,
    call_tenants_key,
    conversation_tenants_key,
)
from core.store.values import _text
from core.tenant_settings import TenantSettings


class Tenants(Part):
    """The tenants set and the call and conversation indexes of tenants; each
    tenant's own settings (from its record in the directory)."""

    def __init__(self, backend: Backend, directory: Directory) -> None:
        super().__init__(backend)
        self.directory = directory

    def all(self) -> list[str]:
        """Every tenant that ever sent an event."""
        return sorted(_text(t) for t in self.redis.smembers(TENANTS_KEY))

    def of_call(self, call_uuid: str) -> list[str]:
        """The tenants that posted events of ``call_uuid`` within retention (almost
        always one): an every-tenant reader's way to a call without asking each."""
        return sorted(_text(t) for t in self.redis.smembers(call_tenants_key(call_uuid)))

    def of_conversation(self, conversation_id: str) -> list[str]:
        """The tenants that posted messages of ``conversation_id`` within retention."""
        key = conversation_tenants_key(conversation_id)
        return sorted(_text(t) for t in self.redis.smembers(key))

    def start_call_index(self, now: float) -> None:
        """Note, once, when the call and conversation indexes cover every call kept:
        at once on a fresh install, one retention period from now where tenants
        already have data (calls accepted before the indexes existed)."""
        if self.redis.exists(CALL_INDEX_COMPLETE_KEY):
            return
        complete = now + self.backend.retention_seconds if self.redis.scard(TENANTS_KEY) else now
        self.redis.set(CALL_INDEX_COMPLETE_KEY, repr(complete), nx=True)

    def call_index_complete(self, now: float) -> bool:
        """Whether every call and conversation kept is in the indexes (else a
        reader must also ask each tenant)."""
        raw = self.redis.get(CALL_INDEX_COMPLETE_KEY)
        return raw is not None and now >= float(raw)

    def settings_of(self, tenant_id: str, defaults: TenantSettings) -> TenantSettings:
        """The settings ``tenant_id`` has set of its own (its record, at most a
        second or two old) over ``defaults``. Raises redis.RedisError only when
        this process has never read the directory."""
        record = self.directory.current().tenants.get(tenant_id)
        if record is None or not record.settings:
            return defaults
        own = {k: v for k, v in record.settings.items() if v is not None}
        if "country" in own:
            own["country"] = COUNTRY_CODES[own["country"]]
        return replace(defaults, **own)
