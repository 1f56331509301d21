"""OutcomeId: the one reader of outcome record ids (``<us>-<seq>``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemachine.outcome import OutcomeId

PARTS = st.integers(0, 2**63), st.integers(0, 2**32)


def test_known_ids() -> None:
    """The sequence is optional (0), and an id prints back in full."""
    assert OutcomeId.parse("1764063000123456-7") == OutcomeId(1764063000123456, 7)
    assert OutcomeId.parse("1764063000123456") == OutcomeId(1764063000123456, 0)
    assert str(OutcomeId.parse("5")) == "5-0"
    assert OutcomeId.of({"id": "12-3"}).micros == 12


@pytest.mark.parametrize("text", ["", "-", "12-", "-3", "a-1", "1-b", "1.5-2", " 1-2", "1-2-3",
                                  "\uff11\uff12-3", "+1-2"])  # fmt: skip
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        OutcomeId.parse(text)


@given(*PARTS, *PARTS)
def test_ids_order_as_the_feed_does(a_us: int, a_seq: int, b_us: int, b_seq: int) -> None:
    """Ids compare by microsecond, then sequence, whatever their digits' lengths."""
    a, b = OutcomeId.parse(f"{a_us}-{a_seq}"), OutcomeId.parse(f"{b_us}-{b_seq}")
    assert (a < b) == ((a_us, a_seq) < (b_us, b_seq))
    assert OutcomeId.parse(str(a)) == a
