"""Keyset pages of a list: ``limit`` and ``cursor`` in, ``next`` out.

A cursor is the position (the sort key) of the last item of the page before,
as URL-safe base64 of JSON: opaque to clients, and valid however the list
changes in between (nothing is skipped or shown twice for an item that was
already there). The first page answers as the list did before it was paged,
plus ``next``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from marshmallow import Schema, fields

from app.calls.schemas import MAX_LIMIT, WholeNumberArg, next_page
from app.web.errors import BadQuery

Position = tuple[Any, ...]
Item = TypeVar("Item")


def page_size(default: int) -> WholeNumberArg:
    """The ``limit`` query argument: 1 to MAX_LIMIT items a page."""
    return WholeNumberArg(
        "limit", 1, MAX_LIMIT, load_default=default, metadata={"description": "page size"}
    )


def page_cursor() -> fields.String:
    """The ``cursor`` query argument: the previous page's ``next``."""
    return fields.String(metadata={"description": "the previous page's next"})


def page_next() -> fields.String:
    """The answer's ``next``: the cursor of the next page, null after the last."""
    return next_page(None, "pass as cursor= for the next page; null: this was the last")


class PageArgs(Schema):
    """The query arguments of a paged list."""

    limit = page_size(100)
    cursor = page_cursor()


class WholePageArgs(Schema):
    """The query arguments of a list that was answered whole before it was paged: its
    first page holds up to the most a page may (MAX_LIMIT), as it did."""

    limit = page_size(MAX_LIMIT)
    cursor = page_cursor()


def encode_cursor(position: Sequence[str | int | float]) -> str:
    """The cursor of a page's last item, from its sort key."""
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> Position:
    """The sort key in a cursor this service handed out, each part of its kind (an int
    also passes for a float). Raises BadQuery for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (ValueError, binascii.Error, RecursionError):
        position = None
    if (
        isinstance(position, list)
        and len(position) == len(kinds)
        and all(_is(value, kind) for value, kind in zip(position, kinds, strict=True))
    ):
        return tuple(float(v) if k is float else v for v, k in zip(position, kinds, strict=True))
    raise BadQuery("cursor is not one this service handed out")


def page_of(
    items: Sequence[Item],
    position: Callable[[Item], Position],
    args: dict[str, Any],
    kinds: tuple[type, ...],
) -> tuple[list[Item], str | None]:
    """The page of ``items`` (in ``position`` order) that the query ``args`` (``limit``,
    ``cursor``) ask for, and the next page's cursor (None after the last). For a list
    computed whole in memory. Raises BadQuery for a cursor not handed out here."""
    limit: int = args["limit"]
    cursor = decode_cursor(args["cursor"], kinds) if args.get("cursor") else None
    after = [item for item in items if cursor is None or position(item) > cursor]
    page = list(after[:limit])
    return page, encode_cursor(position(page[-1])) if len(after) > limit else None


def _is(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float) if kind is float else kind)
