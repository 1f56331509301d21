"""How values go into Redis and come back: JSON, text, times; the Lua sources."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from statemachine.events import micros, parse_time


def to_micros(iso: str) -> int:
    """Microseconds since the epoch for an ISO timestamp; the log's sort key."""
    return micros(parse_time(iso))


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


@functools.cache
def script_source(name: str) -> str:
    """The source of ``lua/<name>.lua``."""
    return resources.files("core.store").joinpath(f"lua/{name}.lua").read_text("utf-8")
