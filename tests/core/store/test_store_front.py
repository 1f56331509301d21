"""Code outside core/store reaches the store one way: ``from core.store import ...``,
names the package front exports, and the front exports nothing nobody imports."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# Read, not imported by name: this file's own imports are checked like the others.
EXPORTED: list[str] = importlib.import_module("core.store").__all__
OUTSIDE = ["app", "core", "workers", "devtools", "bench", "tests"]


def _imports_of_the_store() -> list[tuple[str, str, str]]:
    """(file, module, name) of every import of core.store or a module in it,
    in the Python files outside core/store."""
    found: list[tuple[str, str, str]] = []
    for top in OUTSIDE:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith("core/store/"):
                continue
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "core.store"
                ):
                    found += [(relative, node.module or "", alias.name) for alias in node.names]
                elif isinstance(node, ast.Import):
                    found += [
                        (relative, alias.name, "")
                        for alias in node.names
                        if alias.name.startswith("core.store")
                    ]
    return found


def test_outside_code_imports_exported_names_from_the_front_only() -> None:
    """Every import of the store outside it is ``from core.store import <exported name>``."""
    stray = [
        f"{file}: {module} {name}".strip()
        for file, module, name in _imports_of_the_store()
        if module != "core.store" or name not in EXPORTED
    ]
    assert stray == []


def test_the_front_exports_only_what_outside_code_imports() -> None:
    """Each name of ``core.store.__all__`` is imported somewhere outside core/store."""
    imported = {name for _, _, name in _imports_of_the_store()}
    assert sorted(set(EXPORTED) - imported) == []
