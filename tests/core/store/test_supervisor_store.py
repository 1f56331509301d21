"""The supervisor's view in Redis (fakeredis): per-call parts replaced whole, never by an
older fold, pruned with retention; manual resolutions; DEFAULT_COUNTRY."""

from __future__ import annotations

import fakeredis
import pytest

from core.settings import ConfigError, Settings, country_code
from core.store import CallPart, Store, SupervisorView

LEG = {"extension": {"number": "101", "name": "Alice"}, "call_uuid": "c1"}
CONTACT = {"call_uuid": "c1", "kind": "missed", "number": "+15551230000"}
DAY = 86_400.0


@pytest.fixture
def sv() -> SupervisorView:
    return Store(fakeredis.FakeRedis(), retention_seconds=DAY).supervisor


def part(version: int, legs: list[dict[str, object]], settled_us: int | None = None) -> CallPart:
    return CallPart("c1", version, legs, CONTACT if legs else None, settled_us)


def test_a_newer_fold_replaces_the_part_an_older_one_does_not(sv: SupervisorView) -> None:
    """Parts are written with their log version: a late write of an older fold is ignored."""
    sv.save_parts("t1", [part(2, [LEG])], now=0.0)
    sv.save_parts("t1", [part(1, [])], now=0.0)
    assert sv.part("t1", "c1") == ([LEG], CONTACT, 2)
    sv.save_parts("t1", [part(3, [])], now=0.0)
    assert sv.part("t1", "c1") == ([], None, 3)


def test_live_calls_are_read_always_settled_ones_in_their_window(sv: SupervisorView) -> None:
    """A call with an open leg is in every read; a settled one only from its settle time on."""
    sv.save_parts("t1", [part(1, [LEG], settled_us=None)], now=0.0)
    assert sv.legs_since("t1", 10**15) == [LEG]
    sv.save_parts("t1", [part(2, [LEG], settled_us=5_000_000)], now=0.0)
    assert sv.legs_since("t1", 5_000_000) == [LEG]
    assert sv.legs_since("t1", 5_000_001) == []


def test_parts_settled_before_retention_are_pruned(sv: SupervisorView) -> None:
    """A write prunes calls settled longer than retention ago, the tenant's only."""
    sv.save_parts("t1", [part(1, [LEG], settled_us=1_000_000)], now=0.0)
    sv.save_parts("t2", [part(1, [LEG], settled_us=1_000_000)], now=0.0)
    other = CallPart("c2", 1, [], None, None)
    sv.save_parts("t1", [other], now=DAY + 2.0)
    assert sv.part("t1", "c1") == ([], None, -1)
    assert sv.part("t2", "c1")[2] == 1
    assert sv.contacts("t1") == [] and sv.contacts("t2") == [CONTACT]


def test_the_first_manual_resolution_stays(sv: SupervisorView) -> None:
    """Resolving by hand twice keeps the first note."""
    assert sv.resolve_by_hand("t1", "cb_1", {"at": "2026-01-01T00:00:00Z", "note": "a"})
    assert not sv.resolve_by_hand("t1", "cb_1", {"at": "2026-01-01T00:00:01Z", "note": "b"})
    assert sv.manual_resolutions("t1") == {"cb_1": {"at": "2026-01-01T00:00:00Z", "note": "a"}}
    assert sv.manual_resolutions("t2") == {}


@pytest.mark.parametrize(
    ("raw", "code"),
    [("", "1"), ("US", "1"), ("us", "1"), ("GB", "44"), ("44", "44"), ("+33", "33"), ("none", "")],
)
def test_default_country(raw: str, code: str) -> None:
    """DEFAULT_COUNTRY takes an ISO code of the table, a calling code, or none."""
    assert country_code(raw) == code
    assert Settings.from_env({"DEFAULT_COUNTRY": raw}).default_country == code


@pytest.mark.parametrize("raw", ["XX", "0044", "1234", "4a", "+"])
def test_bad_default_country(raw: str) -> None:
    """Anything else is a ConfigError naming the variable."""
    with pytest.raises(ConfigError, match="DEFAULT_COUNTRY"):
        country_code(raw)


def test_every_write_moves_the_tenants_stamp(sv: SupervisorView) -> None:
    """A saved part and a manual resolution each move the tenant's stamp, no other's."""
    assert sv.stamps(["t1", "t2"]) == [0, 0]
    sv.save_parts("t1", [part(1, [LEG])], now=0.0)
    first = sv.stamps(["t1", "t2"])
    assert first[0] > 0 and first[1] == 0
    sv.resolve_by_hand("t1", "cb_1", {"at": "2026-01-01T00:00:00Z", "note": "a"})
    assert sv.stamps(["t1"])[0] > first[0]
    assert sv.stamps([]) == []
