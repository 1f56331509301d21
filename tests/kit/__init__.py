"""Test helpers more than one test directory uses: ``from tests.kit.<module> import ...``."""
