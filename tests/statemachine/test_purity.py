"""The call model stays pure: importing it loads no I/O library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("redis", "flask", "rq", "marshmallow", "werkzeug", "fakeredis", "structlog")

PROBE = """
import importlib, pkgutil, sys
import statemachine
for module in pkgutil.iter_modules(statemachine.__path__):
    importlib.import_module("statemachine." + module.name)
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_statemachine_imports_no_io_library() -> None:
    """Every module of statemachine imports without loading Redis, Flask, RQ or marshmallow."""
    # A fresh interpreter: this test process has loaded those libraries for other tests.
    loaded = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "statemachine" in loaded
    assert not set(FORBIDDEN) & set(loaded)
