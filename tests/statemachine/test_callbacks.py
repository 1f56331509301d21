"""Table tests of callbacks: which calls open an item, which resolve it, and number formats.

Times are seconds after ``T0``. The tenant's default country is the NANP's
("1") unless a test says otherwise.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from call_kit import T0, TENANT, TIMEOUT_AFTER, Call, arrival_orders, at

from statemachine.callbacks import (
    CallbackItem,
    Contact,
    ContactKind,
    ManualResolution,
    ResolutionKind,
    callback_id,
    callback_items,
    contact_from_json,
    contact_of,
    contact_of_record,
    merge_manual,
    tenant_callbacks,
)
from statemachine.events import CallEvent, Party
from statemachine.outcome import MissedReason, outcome_record
from statemachine.phone_numbers import e164
from statemachine.state import CallView, fold
from statemachine.tenant import fold_tenant

NANP = "1"
MISSED_FROM = Party("+15551234567", "Ada Lovelace")


def caller(number: str) -> Party:
    return Party(number, "Ada Lovelace")


def items_of(events: list[CallEvent], manual: dict[str, ManualResolution] | None = None,
             country: str = NANP) -> list[CallbackItem]:  # fmt: skip
    return tenant_callbacks(fold_tenant(TENANT, events), country, manual or {})


def abandoned(uuid: str, start: float, number: str = "+15551234567") -> list[CallEvent]:
    """An inbound call that waited in queue 500 for 30 s and was given up."""
    call = Call(uuid, caller(number))
    return [call.inbound(start), call.queue(start + 1, "500"), call.hangup(start + 30)]


def answered(uuid: str, start: float, number: str) -> list[CallEvent]:
    """An inbound call answered by 101 five seconds in."""
    call = Call(uuid, caller(number))
    return [call.inbound(start), call.ring(start + 1, "101"), call.answer(start + 5, "101"),
            call.hangup(start + 60, "101")]  # fmt: skip


def called(uuid: str, start: float, number: str, ended: bool = True) -> list[CallEvent]:
    """An outbound call from 102 to ``number``."""
    call = Call(uuid)
    events: list[CallEvent] = [call.outbound(start, "102", number)]
    return events + ([call.outbound_end(start + 20, "102")] if ended else [])


# -- number formats -----------------------------------------------------------------------

SAME_NANP_NUMBER = [
    "+15551234567", "+1 555 123 4567", "+1 (555) 123-4567", "+1-555-123-4567", "15551234567",
    "1 555 123 4567", "1-555-123-4567", "5551234567", "(555) 123-4567", "555.123.4567",
    "555 123 4567", "011 1 555 123 4567", " 555-123-4567 ",
]  # fmt: skip


@pytest.mark.parametrize("written", SAME_NANP_NUMBER)
def test_nanp_formats_are_one_number(written: str) -> None:
    """Every way of writing a NANP number reads as the same E.164 number."""
    assert e164(written, NANP) == "+15551234567"


@pytest.mark.parametrize(
    ("written", "country", "expected"),
    [
        ("anonymous", NANP, None),
        ("Anonymous", NANP, None),
        ("Restricted", NANP, None),
        ("", NANP, None),
        ("   ", NANP, None),
        ("101", NANP, None),  # an extension
        ("911", NANP, None),  # a short code
        ("*67 555 123 4567", NANP, None),  # a feature code
        ("555-1234", NANP, None),  # seven digits: no area code
        ("0551234567", NANP, None),  # no NANP area code starts with 0
        ("1155512345678", NANP, None),  # too long for the NANP
        ("+15551234567x12", NANP, None),
        ("١٥٥٥١٢٣٤٥٦٧", NANP, None),  # digits of another script are no dialled digits
        ("011 44 20 7946 0958", NANP, "+442079460958"),
        ("+44 20 7946 0958", NANP, "+442079460958"),
        ("+44 (0)20 7946 0958", NANP, "+442079460958"),
        ("020 7946 0958", "44", "+442079460958"),
        ("00 44 20 7946 0958", "44", "+442079460958"),
        ("442079460958", "44", "+442079460958"),
        ("2079460958", "44", None),  # national without its trunk prefix: not guessed
        ("00 1 555 123 4567", "44", "+15551234567"),
        ("5551234567", "44", None),
        ("+15551234567", "", "+15551234567"),
        ("0015551234567", "", "+15551234567"),
        ("5551234567", "", None),  # no default country: only international numbers
        ("+1234567890123456", NANP, None),  # more than E.164's 15 digits
        ("+123456", NANP, None),  # fewer than 7
        ("+0123456789", NANP, None),  # no country code starts with 0
    ],
)
def test_number_rules(written: str, country: str, expected: str | None) -> None:
    """Numbers read as E.164 with the tenant's default country; anything else is no number."""
    assert e164(written, country) == expected


@pytest.mark.parametrize("country", ["0", "1234", "+1", "x", "01"])
def test_bad_default_country(country: str) -> None:
    """A default country that is no country calling code is refused with ValueError."""
    with pytest.raises(ValueError):
        e164("+15551234567", country)


# -- which calls open an item ------------------------------------------------------------


def test_abandoned_call_opens_an_item() -> None:
    """An abandoned inbound call opens an open item for its caller, missed at its end."""
    [item] = items_of(abandoned("m1", 0))
    assert item.as_json() == {
        "id": callback_id(TENANT, "m1"),
        "number": "+15551234567",
        "missed_call_uuid": "m1",
        "missed_at": "2024-05-01T12:00:30.000000Z",
        "missed_reason": "abandoned",
        "status": "open",
        "resolved_at": None,
        "resolved_by": None,
    }


@pytest.mark.parametrize(
    ("name", "events", "opens"),
    [
        ("no-answer", [Call("m").inbound(0), Call("m").ring(1, "101"), Call("m").hangup(20)],
         True),
        ("ring-group-no-answer",
         [Call("m").inbound(0), Call("m").ring_group(1, "600"), Call("m").hangup(20)], True),
        ("extension-only-no-answer", [Call("m").ring(0, "101"), Call("m").end(20, "101")], True),
        ("timed-out-ringing",
         [Call("m").inbound(0), Call("m").ring(1, "101"), Call("m").timeout(1 + TIMEOUT_AFTER)],
         True),
        ("unrouted", [Call("m").inbound(0), Call("m").hangup(3)], False),
        ("voicemail", [Call("m").inbound(0), Call("m").ring(1, "101"),
                       Call("m").voicemail(30, "101"), Call("m").hangup(30)], False),
        ("answered", answered("m", 0, "+15551234567"), False),
        ("outbound", called("m", 0, "+15551234567"), False),
        ("still-ringing", [Call("m").inbound(0), Call("m").ring(1, "101")], False),
        ("anonymous", abandoned("m", 0, "anonymous"), False),
        ("no-number", abandoned("m", 0, ""), False),
        ("internal-caller", abandoned("m", 0, "102"), False),
    ],
)  # fmt: skip
def test_which_calls_open_an_item(name: str, events: list[CallEvent], opens: bool) -> None:
    """Only inbound calls missed as abandoned or no_answer, from a real number, open an item."""
    assert len(items_of(events)) == (1 if opens else 0), name


def test_late_answer_revises_a_miss_away() -> None:
    """A miss whose late ExtensionAnswered makes it answered no longer has an item."""
    call = Call("m1")
    events: list[CallEvent] = [call.inbound(0), call.ring(2, "101"), call.hangup(30.1)]
    assert len(items_of(events)) == 1
    assert items_of([*events, call.answer(30.2, "101")]) == []


# -- what resolves an item -----------------------------------------------------------------


@pytest.mark.parametrize("written", SAME_NANP_NUMBER)
def test_call_back_in_any_format_resolves(written: str) -> None:
    """An outbound call dialled to the caller's number, however written, resolves the item."""
    [item] = items_of(abandoned("m1", 0) + called("cb1", 100, written))
    assert item.status.value == "resolved"
    assert item.resolution is not None
    assert item.as_json()["resolved_by"] == {"kind": "called_back", "call_uuid": "cb1",
                                             "note": None}  # fmt: skip
    assert item.resolution.at == at(100)


@pytest.mark.parametrize("written", ["5551234567", "15551234567", "(555) 123-4567"])
def test_caller_got_through_later_resolves(written: str) -> None:
    """A later inbound call from the same number that was answered resolves the item."""
    [item] = items_of(abandoned("m1", 0, written) + answered("in2", 200, "+1 555 123 4567"))
    assert item.resolution is not None
    assert (item.resolution.kind, item.resolution.call_uuid) == (ResolutionKind.ANSWERED, "in2")
    assert item.resolution.at == at(205)  # when it was answered


def test_call_back_placed_during_the_wait_is_not_a_call_back() -> None:
    """An outbound call placed before the miss (while the caller still waited) resolves nothing."""
    [item] = items_of(abandoned("m1", 0) + called("cb1", 10, "+15551234567"))
    assert item.status.value == "open"


def test_call_back_at_the_moment_of_the_miss_counts() -> None:
    """A call-back placed the instant the caller hung up is a call-back."""
    [item] = items_of(abandoned("m1", 0) + called("cb1", 30, "+15551234567"))
    assert item.status.value == "resolved"


def test_answered_call_that_started_before_the_miss_but_answered_after_counts() -> None:
    """The caller got through when answered: an overlapping call answered after the miss counts."""
    second = Call("in2", caller("+15551234567"))
    events = [*abandoned("m1", 0), second.inbound(20), second.ring(25, "101"),
              second.answer(40, "101"), second.hangup(90, "101")]  # fmt: skip
    [item] = items_of(events)
    assert item.resolution is not None and item.resolution.call_uuid == "in2"


def test_another_miss_resolves_nothing() -> None:
    """A caller missed twice has two open items; a missed call is no contact."""
    items = items_of(abandoned("m1", 0) + abandoned("m2", 100))
    assert [(i.missed_call_uuid, i.status.value) for i in items] == [("m1", "open"),
                                                                     ("m2", "open")]  # fmt: skip


def test_one_call_back_resolves_every_earlier_miss() -> None:
    """A call-back resolves every open item of the number missed before it, and no later one."""
    events = (abandoned("m1", 0) + abandoned("m2", 100) + called("cb1", 200, "5551234567")
              + abandoned("m3", 300))  # fmt: skip
    items = items_of(events)
    assert [(i.missed_call_uuid, i.status.value) for i in items] == [
        ("m1", "resolved"), ("m2", "resolved"), ("m3", "open")]  # fmt: skip


def test_first_call_that_reached_the_number_resolves() -> None:
    """Of several later calls to the number, the first resolves the item."""
    events = (abandoned("m1", 0) + called("cb2", 500, "5551234567")
              + answered("in1", 300, "5551234567") + called("cb1", 400, "5551234567"))  # fmt: skip
    [item] = items_of(events)
    assert item.resolution is not None
    assert (item.resolution.kind, item.resolution.call_uuid, item.resolution.at) == (
        ResolutionKind.ANSWERED, "in1", at(305))  # fmt: skip


def test_other_numbers_do_not_resolve() -> None:
    """A call to another number leaves the item open."""
    [item] = items_of(abandoned("m1", 0) + called("cb1", 100, "5551234568"))
    assert item.status.value == "open"


def test_call_back_still_dialing_resolves() -> None:
    """An outbound call counts once placed, before it is answered or ended."""
    [item] = items_of(abandoned("m1", 0) + called("cb1", 100, "5551234567", ended=False))
    assert item.status.value == "resolved"


def test_call_back_known_before_the_miss_is_decided() -> None:
    """A call-back whose events came before the missed call ended resolves the item it opens."""
    missed = Call("m1", MISSED_FROM)
    before_end: list[CallEvent] = [missed.inbound(0), missed.queue(1, "500"),
                                   *called("cb1", 100, "5551234567")]  # fmt: skip
    assert items_of(before_end) == []  # still waiting in the queue: no miss yet
    [item] = items_of([*before_end, missed.hangup(90)])
    assert item.resolution is not None and item.resolution.call_uuid == "cb1"


def test_default_country_decides_what_matches() -> None:
    """With default country 44, a national UK number matches the same number dialled with +44."""
    events = abandoned("m1", 0, "020 7946 0958") + called("cb1", 100, "+44 20 7946 0958")
    [item] = items_of(events, country="44")
    assert item.number == "+442079460958"
    assert item.status.value == "resolved"


# -- manual resolutions ----------------------------------------------------------------------


def test_manual_resolution() -> None:
    """Resolving an item by hand records the note and the moment."""
    item_id = callback_id(TENANT, "m1")
    manual = {item_id: ManualResolution(at(60), "reached on her mobile")}
    [item] = items_of(abandoned("m1", 0), manual)
    assert item.as_json()["resolved_by"] == {"kind": "manual", "call_uuid": None,
                                             "note": "reached on her mobile"}  # fmt: skip
    assert item.as_json()["resolved_at"] == "2024-05-01T12:01:00.000000Z"


def test_manual_resolution_names_one_item_only() -> None:
    """A manual resolution resolves the item it names, not the caller's other items."""
    manual = {callback_id(TENANT, "m2"): ManualResolution(at(500), "left a message")}
    items = items_of(abandoned("m1", 0) + abandoned("m2", 100), manual)
    assert [i.status.value for i in items] == ["open", "resolved"]


@pytest.mark.parametrize(("by_hand_at", "winner"), [(50, "manual"), (150, "called_back"),
                                                    (100, "called_back")])  # fmt: skip
def test_earliest_resolution_wins(by_hand_at: float, winner: str) -> None:
    """Of a call-back and a manual resolution, the earlier wins; at the same moment, the call."""
    manual = {callback_id(TENANT, "m1"): ManualResolution(at(by_hand_at), "done")}
    [item] = items_of(abandoned("m1", 0) + called("cb1", 100, "5551234567"), manual)
    assert item.resolution is not None and item.resolution.kind.value == winner


def test_manual_resolutions_merge_earliest_first() -> None:
    """Merging manual resolutions keeps the earliest for each item, in either order."""
    early, late = ManualResolution(at(10), "b"), ManualResolution(at(20), "a")
    tie = ManualResolution(at(10), "a")
    a, b = {"x": late, "y": early}, {"x": early, "z": late}
    assert dict(merge_manual(a, b)) == dict(merge_manual(b, a)) == {"x": early, "y": early,
                                                                    "z": late}  # fmt: skip
    assert merge_manual({"x": early}, {"x": tie})["x"] == merge_manual({"x": tie}, {"x": early})[
        "x"] == tie  # fmt: skip


def test_manual_resolution_of_a_vanished_item_is_ignored() -> None:
    """A manual resolution for an item that no longer exists changes nothing."""
    manual = {callback_id(TENANT, "gone"): ManualResolution(at(5), "x")}
    assert items_of(answered("in1", 0, "5551234567"), manual) == []


# -- ids, ordering, contacts -----------------------------------------------------------------


def test_ids_are_stable_and_per_tenant() -> None:
    """An item's id depends on its tenant and missed call only."""
    assert callback_id("t1", "m1") == callback_id("t1", "m1")
    assert callback_id("t1", "m1") != callback_id("t2", "m1")
    assert callback_id("t1", "m1") != callback_id("t1", "m2")
    assert callback_id("t1", "m1").startswith("cb_")


def test_items_oldest_miss_first() -> None:
    """Items come oldest miss first, whatever the calls' names."""
    events = abandoned("z", 0) + abandoned("a", 100, "5551230000") + abandoned("m", 50)
    assert [i.missed_call_uuid for i in items_of(events)] == ["z", "m", "a"]


def test_order_free_with_duplicates() -> None:
    """The items are the same in any arrival order, with duplicates."""
    events = (abandoned("m1", 0) + abandoned("m2", 100, "5559990000")
              + called("cb1", 10, "5551234567") + answered("in1", 200, "5551234567")
              + called("cb2", 300, "5559990000"))  # fmt: skip
    expected = items_of(events)
    for order in arrival_orders(events):
        assert items_of(order) == expected


def test_conflicting_contacts_for_one_call_are_refused() -> None:
    """Two different contacts claiming one call are a store error: ValueError."""
    one = Contact("c1", ContactKind.MISSED, "+15551234567", at(0), MissedReason.ABANDONED)
    other = Contact("c1", ContactKind.CALLED_BACK, "+15551234567", at(0))
    assert len(callback_items(TENANT, [one, one])) == 1
    with pytest.raises(ValueError):
        callback_items(TENANT, [one, other])


@pytest.mark.parametrize(
    "events",
    [abandoned("c", 0), answered("c", 0, "5551234567"), called("c", 0, "5551234567"),
     [Call("c").inbound(0), Call("c").hangup(3)], abandoned("c", 0, "anonymous"),
     [Call("c").inbound(0), Call("c").ring(1, "101"), Call("c").hangup(5, "101")]],
)  # fmt: skip
def test_contact_of_record_agrees_with_contact_of(events: list[CallEvent]) -> None:
    """An ended call's contact is the same read from its view or from its outcome record."""
    view = CallView(fold(TENANT, "c", events))
    record = {**outcome_record(view), "id": "1-0", "revision": 1}
    assert contact_of_record(record, NANP) == contact_of(view, NANP)


def test_contact_json_round_trip() -> None:
    """A contact read back from its JSON is the same contact (what a store keeps)."""
    for events in (abandoned("c", 0), answered("c", 0, "5551234567"), called("c", 0, "555")):
        contact = contact_of(CallView(fold(TENANT, "c", events)), NANP)
        if contact is not None:
            assert contact_from_json(contact.as_json()) == contact


def test_tenants_never_mix() -> None:
    """Another tenant's events are refused by the tenant's fold (ValueError)."""
    other = Call("x", tenant="t2")
    with pytest.raises(ValueError):
        fold_tenant(TENANT, [other.inbound(0)])


def test_missed_at_is_the_miss_end_even_when_the_day_changes() -> None:
    """missed_at is the call's end, so a miss just after midnight sorts after one before it."""
    late = Call("late", caller("5550000001"))
    events: list[CallEvent] = [late.inbound(-40), late.queue(-39, "500"), late.hangup(10)]
    [early_item, late_item] = items_of(abandoned("early", -100, "5550000002") + events)
    assert early_item.missed_at < late_item.missed_at == T0 + timedelta(seconds=10)
