"""No module grows past ~400 lines without saying why at its top.

A module that long is usually two: split it where a seam shows, or, when its
parts belong together, say so in its docstring ("Over 400 lines on purpose: ...").
Test modules are lists of cases and are not held to it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 400
PACKAGES = ("app", "core", "workers", "statemachine", "devtools", "bench", "tests")


def long_modules() -> list[Path]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name.startswith("test_") or "__pycache__" in path.parts:
                continue
            if len(path.read_text("utf-8").splitlines()) > LIMIT:
                found.append(path)
    return found


def test_a_module_over_400_lines_says_why_at_its_top() -> None:
    silent = []
    for path in long_modules():
        docstring = ast.get_docstring(ast.parse(path.read_text("utf-8"))) or ""
        if f"{LIMIT} lines" not in docstring:
            silent.append(str(path.relative_to(ROOT)))
    assert silent == [], f"over {LIMIT} lines without a reason in the docstring: {silent}"
