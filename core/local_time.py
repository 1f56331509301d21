"""A tenant's day and hour: where "today" starts and which local hour or date a
moment falls in, in the tenant's time zone (core.tenant_settings).

Local days are not all 24 hours long: around a DST change one has 23 or 25
hours, and midnight itself may not exist. Everything here converts instants,
never adds hours to a local time, so those days come out right; hours are
labelled with their UTC offset, so the hour repeated when clocks go back is two
buckets, not one.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo


def local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) ``now``'s local day began in ``zone``. Where a DST change
    skips midnight, the day begins at the first local time that exists."""
    # A skipped midnight (America/Havana) is read with the offset before the
    # change: that instant is the new day's first local time (01:00).
    return datetime.combine(now.astimezone(zone).date(), time(0), zone).astimezone(UTC)


def local_hour(moment: datetime, zone: ZoneInfo) -> str:
    """The local hour ``moment`` falls in, as ISO 8601 with its offset
    (``2026-03-08T17:00:00-06:00``; ``Z`` in UTC)."""
    local = moment.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    text = local.isoformat()
    return text.removesuffix("+00:00") + "Z" if zone.key == "UTC" else text


def local_date(moment: datetime, zone: ZoneInfo) -> str:
    """The local date ``moment`` falls on (``2026-03-08``)."""
    return moment.astimezone(zone).date().isoformat()


UTC_ZONE = ZoneInfo("UTC")
