"""Errors of the call model, under one base class."""

from __future__ import annotations


class StateMachineError(Exception):
    """Base class of every error the call model raises."""


class BadRecord(StateMachineError):
    """A log record could not be turned back into an event."""
