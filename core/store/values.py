"""How values go into Redis and come back: JSON, text, times; the Lua sources."""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

import orjson

from statemachine.events import micros, parse_time


def to_micros(iso: str) -> int:
    """Microseconds since the epoch for an ISO timestamp; the log's sort key."""
    return micros(parse_time(iso))


# Every event, record and view goes through these several times between a
# webhook and its outcome: orjson does it several times faster than json. The
# text differs only in spelling (e.g. 1e16 for 1e+16), never in what it reads
# back as; what orjson refuses (a lone surrogate, an integer past 64 bits,
# NaN) goes through json as before, so nothing that was stored is refused now.
_DUMP_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys; text as UTF-8, not escaped."""
    try:
        return orjson.dumps(value, option=_DUMP_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def loads(raw: str | bytes) -> Any:
    """Read JSON as stored by :func:`dumps` (or by json before it)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


# A script's line "-- needs: <name>" asks for lua/shared/<name>.lua before it:
# Redis scripts cannot include each other, so a rule two scripts share is
# written once there and prepended to each.
_NEEDS = re.compile(r"^-- needs: ([a-z_]+)$", re.MULTILINE)


def _lua(path: str) -> str:
    return resources.files("core.store").joinpath(f"lua/{path}.lua").read_text("utf-8")


@functools.cache
def script_source(name: str) -> str:
    """The source of ``lua/<name>.lua``, after the shared sources it needs."""
    source = _lua(name)
    shared = [_lua(f"shared/{needed}") for needed in _NEEDS.findall(source)]
    return "\n".join([*shared, source])
