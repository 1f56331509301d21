"""Short abandons decided by a real worker process with the deployment's threshold:
a caller hanging up in the queue at once is a short abandon under a threshold of
600 s (no busy machine stretches it past), and not under SHORT_ABANDON_SECONDS=0
(any wait is longer)."""

from __future__ import annotations

import pytest
from callstate_harness import TENANT_A, Launcher, wait_until
from primevox_bodies import Call, scenario

DECIDED_WITHIN = 15.0  # a bounded wait, not a performance claim (grace 1 s)


@pytest.mark.parametrize(("threshold", "short"), [("600", True), ("0", False)])
def test_the_worker_decides_short_abandons_by_the_threshold(
    launcher: Launcher, threshold: str, short: bool
) -> None:
    api = launcher.start_service(workers=1, SHORT_ABANDON_SECONDS=threshold)
    call = Call(TENANT_A)
    for fields in scenario("abandoned", call):
        api.accept(fields)
    record = wait_until(
        lambda: next(
            (r for r in api.outcomes(query=f"tenant_id={TENANT_A}") if r["call_uuid"] == call.uuid),
            None,
        ),
        DECIDED_WITHIN,
        f"the outcome of {call.uuid}",
        interval=0.1,
    )
    assert (record["missed_reason"], record["short_abandon"]) == ("abandoned", short)
    assert record["wait_seconds"] > 0
