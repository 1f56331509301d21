"""A deployed process loads no developer tooling: nothing under app/ or workers/
imports devtools, and the app a web process serves is built without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, pkgutil, sys
import app, workers
from app.web.serve import wsgi_app
wsgi_app()  # what each web server process builds and serves
for package in (app, workers):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        # Entry points run when imported; Alembic's env only runs inside Alembic.
        if not module.name.endswith(("__main__", ".migrations.env")):
            importlib.import_module(module.name)
print(" ".join(sorted(sys.modules)))
"""


def test_web_and_worker_modules_import_no_devtools() -> None:
    """Building the served app and importing every app and workers module loads no devtools."""
    # A fresh interpreter: this test process imports devtools for the simulator's tests.
    env = {
        **os.environ,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "WEBHOOK_TOKENS": "whk_probe:*",
        "API_KEYS": "key_probe:*",
    }
    env.pop("DATABASE_URL", None)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr
    loaded = probe.stdout.split()
    assert "app.web.serve" in loaded
    assert "workers.engine" in loaded
    assert [name for name in loaded if name.split(".")[0] == "devtools"] == []
