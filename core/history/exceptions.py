"""Errors of the history package, under the worker side's base class."""

from __future__ import annotations

from core.exceptions import CallstateError


class HistoryError(CallstateError):
    """Base class of the history package's errors."""


class CursorMoved(HistoryError):
    """Another archiver moved the cursor since we read it: nothing was written; read again."""


class BadCursor(HistoryError, ValueError):
    """A search cursor that this service did not hand out (or for another tenant)."""
