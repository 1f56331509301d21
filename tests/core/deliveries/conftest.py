"""The fixtures of the tests that deliver outcomes: tests/kit/deliveries.py."""

from tests.kit.deliveries import calls, pump, receiver, settings  # noqa: F401
