"""Errors of the worker side, under one base class."""

from __future__ import annotations


class CallstateError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConcurrentUpdate(CallstateError):
    """Another worker committed to the same call since we read it; read again."""


class TooManyConflicts(CallstateError):
    """A call kept changing under us; the job fails and RQ retries it."""


class BadEnvelope(CallstateError):
    """A queued event cannot be understood (a poisoned job)."""
