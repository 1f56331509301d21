"""A WSGI app factory that takes seconds to load, for test_web_shutdown.py.

It writes LOADING_MARK_FILE when its load begins, so a test knows a server
process is inside that window, then sleeps as a large app's imports would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

LOAD_SECONDS = 4.0


def app() -> Callable[..., Iterable[bytes]]:
    Path(os.environ["LOADING_MARK_FILE"]).write_text(str(os.getpid()))
    time.sleep(LOAD_SECONDS)

    def answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return answer
