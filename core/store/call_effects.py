"""What follows a batch's commit, in one round trip: each committed call's part
in the supervisor's view and its live steps.

Both are derived from the fold just committed and written after it (never in
the commit's script: their keys are the tenant's, not the call's slot). Sent
one after the other they cost a batch two more round trips; here their
scripts go in one pipeline (per node of a cluster), with the mark of the
events due index after them. That mark is sent whenever a step was offered,
not only when one was new: a mark only moves earlier, and a dispatcher that
finds nothing new releases it, so an extra one costs a look, never an event.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis

from core.store.backend import Backend, Part
from core.store.keys import EVENTS_DUE_KEY
from core.store.live_events import LiveEvents
from core.store.supervisor import CallPart, SupervisorView
from statemachine.live_events import Step


class CallEffects(Part):
    """The supervisor's parts and live steps of committed calls, sent together."""

    def __init__(self, backend: Backend, supervisor: SupervisorView, live: LiveEvents) -> None:
        super().__init__(backend)
        self.supervisor = supervisor
        self.live = live

    def send(
        self,
        tenant_id: str,
        parts: Sequence[CallPart],
        steps: Sequence[tuple[str, Sequence[Step]]],
        now: float,
    ) -> redis.RedisError | None:
        """Save ``parts`` and send ``steps`` (see SupervisorView.save_parts and
        LiveEvents.emit) in one round trip per node.

        Raises the first error of saving a part (as save_parts does); returns
        the first error of sending steps, for the caller to log (a call's next
        commit sends whatever is missing), else None.
        """
        saves = self.supervisor.save_calls(tenant_id, parts, now) if parts else []
        emits = self.live.emit_calls(tenant_id, steps)
        if not saves and not emits:
            return None
        also: list[tuple[Any, ...]] = []
        if emits:
            # For the dispatcher: this tenant may have events to turn into deliveries.
            also.append(("ZADD", EVENTS_DUE_KEY, "LT", time.time(), tenant_id))
        answers = self.backend.eval_many([*saves, *emits], also=also)
        for answer in answers[: len(saves)]:
            if isinstance(answer, BaseException):
                raise answer
        for answer in answers[len(saves) :]:
            if isinstance(answer, redis.RedisError):
                return answer
            if isinstance(answer, BaseException):
                raise answer
        return None
