"""The fixtures of the tests that deliver outcomes: every one of tests/kit/deliveries.py."""

from tests.kit.deliveries import *  # noqa: F403
