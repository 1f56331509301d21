"""Numbers as the history search finds them, however the PBX wrote them.

PrimeVOX passes a caller's number as the carrier gave it (``7615557843``
beside ``+17805553149``). The archive keeps that raw number in the record and
in ``caller_number``, and beside it a searchable form (``caller_key``,
``history_extensions.extension_key``): the number in E.164 when it reads as a
full number in the tenant's country (the callbacks' reading,
``statemachine.phone_numbers``), else the text as written (an extension
``101``, ``anonymous``). A search value is read the same way, so
``caller=7615557843`` and ``caller=+1 761 555 7843`` find the same calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.settings import Settings, country_code
from core.tenant_settings import for_tenant
from statemachine.phone_numbers import e164

if TYPE_CHECKING:
    from core.store import Store

# A tenant's country calling code ("1", "44", or "" for none), by tenant id.
Countries = Callable[[str], str]


def searchable(number: str | None, country: str) -> str | None:
    """``number`` as stored for search: E.164 if it reads as a full number in
    ``country``, else as written; None for no number."""
    if not number:
        return None
    return e164(number, country) or number


def one_country(country: str) -> Countries:
    """Every tenant's numbers read in ``country``."""
    return lambda _tenant: country


# What a deployment that sets no DEFAULT_COUNTRY reads numbers in.
DEPLOYMENT_DEFAULT: Countries = one_country(Settings.default_country)


def tenant_countries(store: Store, settings: Settings) -> Countries:
    """Each tenant's country as its settings give it (DEFAULT_COUNTRY unless it
    set its own): the one place the archive and the search ask."""
    return lambda tenant_id: for_tenant(store, settings, tenant_id).country


def environment_country() -> str:
    """DEFAULT_COUNTRY from the environment, for a migration (it has no Redis to
    ask for a tenant's own country)."""
    return country_code(os.environ.get("DEFAULT_COUNTRY", "US"))
