"""How many exports a web process serves at once, and how long one may stall.

An export (a CSV download, or a JSON page of more than ``LARGE_PAGE`` calls)
holds a database connection and, while its reader is slow, one of the
process's reader slots (app/intake/fast_path.py). Each process serves at most
``MAX_EXPORTS_PER_PROCESS`` at once; one more is answered ``503`` with
Retry-After at once, so exports can never take the database connections or
the threads other readers need (webhook intake has slots of its own anyway).

A download whose reader stops reading for ``EXPORT_IDLE_SECONDS`` is cut off
when the server next asks for a piece: the server's send waits while the
client does not read, so the stall is seen as the time between two pieces.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

from flask import Response, current_app, jsonify

from core.observability import get_logger
from core.settings import Settings

log = get_logger("callstate.exports")

# A JSON page of more calls than the API's default page counts as an export.
LARGE_PAGE = 100
RETRY_AFTER_SECONDS = 5
EXTENSION = "callstate_exports"


def _slots() -> threading.BoundedSemaphore:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    slots: threading.BoundedSemaphore | None = app.extensions.get(EXTENSION)
    if slots is None:
        settings: Settings = app.config["CALLSTATE_SETTINGS"]
        slots = app.extensions.setdefault(
            EXTENSION, threading.BoundedSemaphore(settings.max_exports_per_process)
        )
    return slots


def take_slot() -> Callable[[], None] | None:
    """One of this process's export slots, as the function that gives it back
    (once); None when every slot is taken."""
    slots = _slots()
    if not slots.acquire(blocking=False):
        return None
    given_back = threading.Event()

    def release() -> None:
        if not given_back.is_set():
            given_back.set()
            slots.release()

    return release


def too_many_exports() -> tuple[Response, int]:
    settings: Settings = current_app.config["CALLSTATE_SETTINGS"]
    response = jsonify(
        {
            "error": f"this web process serves {settings.max_exports_per_process} exports at "
            "once (MAX_EXPORTS_PER_PROCESS); retry shortly"
        }
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response, 503


def cut_off_when_idle(pieces: Iterable[str], idle_seconds: float) -> Iterator[str]:
    """``pieces``, ending early once the reader left more than ``idle_seconds``
    between asking for two of them."""
    asked = time.monotonic()
    for piece in pieces:
        yield piece
        resumed = time.monotonic()
        if resumed - asked > idle_seconds:
            log.warning("export cut off: its reader stalled", seconds=round(resumed - asked, 1))
            return
        asked = resumed
