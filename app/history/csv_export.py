"""The CSV of ``GET /v1/calls``: one call a row, the columns docs/history.md lists.

Meant to be opened in a spreadsheet, so:
- numbers that are identifiers (phone numbers, extensions, queues, ring
  groups) are written as ``="+15551234567"``, which Excel, LibreOffice and
  Google Sheets show as that text, leading ``+`` and zeros kept, instead of
  reading them as numbers;
- free text (names, descriptions) that starts with ``= + - @`` or a control
  character gets a leading ``'``, so a caller name cannot become a formula;
- times are ISO-8601 UTC as in the JSON; durations are plain numbers;
- UTF-8 with a byte-order mark, so Excel reads names with accents correctly.
Rows are produced one at a time from a stream of records.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Record = dict[str, Any]
BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
CHUNK_CHARS = 64 * 1024


def as_text_number(value: Any) -> str:
    """An identifier a spreadsheet must not turn into a number."""
    if value is None or value == "":
        return ""
    return '="' + str(value).replace('"', '""') + '"'


def as_free_text(value: Any) -> str:
    """Free text a spreadsheet must not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def as_plain(value: Any) -> str:
    return "" if value is None else str(value)


def _field(*path: str) -> Callable[[Record], Any]:
    def get(record: Record) -> Any:
        value: Any = record
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        return value

    return get


def _rang(record: Record) -> str:
    return ";".join(str(p.get("number") or "") for p in record.get("rang") or [])


# (column, how to get it from an outcome record, how to write it)
COLUMNS: list[tuple[str, Callable[[Record], Any], Callable[[Any], str]]] = [
    ("call_uuid", _field("call_uuid"), as_free_text),
    ("tenant_id", _field("tenant_id"), as_free_text),
    ("container_id", _field("container_id"), as_free_text),
    ("direction", _field("direction"), as_plain),
    ("outcome", _field("outcome"), as_plain),
    ("missed_reason", _field("missed_reason"), as_plain),
    ("started_at", _field("started_at"), as_plain),
    ("answered_at", _field("answered_at"), as_plain),
    ("ended_at", _field("ended_at"), as_plain),
    ("wait_seconds", _field("wait_seconds"), as_plain),
    ("talk_seconds", _field("talk_seconds"), as_plain),
    ("caller_number", _field("caller", "number"), as_text_number),
    ("caller_name", _field("caller", "name"), as_free_text),
    ("did_number", _field("did", "number"), as_text_number),
    ("did_description", _field("did", "description"), as_free_text),
    ("number_dialed", _field("number_dialed"), as_text_number),
    ("extension_number", _field("extension", "number"), as_text_number),
    ("extension_name", _field("extension", "name"), as_free_text),
    ("queue", _field("queue"), as_text_number),
    ("ring_group", _field("ring_group"), as_text_number),
    ("rang", _rang, as_text_number),
    ("answered_by_number", _field("answered_by", "number"), as_text_number),
    ("answered_by_name", _field("answered_by", "name"), as_free_text),
    ("voicemail_box_number", _field("voicemail_box", "number"), as_text_number),
    ("voicemail_box_name", _field("voicemail_box", "name"), as_free_text),
    ("ended_by", _field("ended_by"), as_plain),
    ("revision", _field("revision"), as_plain),
    ("outcome_id", _field("id"), as_plain),
]
HEADER = [name for name, _, _ in COLUMNS]


def row(record: Record) -> list[str]:
    """One call's CSV cells."""
    return [write(get(record)) for _, get, write in COLUMNS]


def chunks(records: Iterable[str]) -> Iterator[str]:
    """The CSV text (header first) of a stream of records' JSON texts, in ~64 KiB pieces."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    out.writerow(HEADER)
    for text in records:
        out.writerow(row(json.loads(text)))
        if buffer.tell() >= CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
