"""What Heroku's Python buildpack checks before it builds anything, restated.

Read from heroku-buildpack-python's ``lib/package_manager.sh`` and
``lib/python_version.sh``: the root must hold exactly one package-manager file
(``requirements.txt``, ``Pipfile.lock``, ``poetry.lock`` or ``uv.lock``; a
``Pipfile`` without its lock is refused too), and the Python version comes
from ``runtime.txt`` (deprecated) or else ``.python-version``, written ``N.N``
or ``N.N.N``; without one the buildpack picks its own newest default. Shared
by the file checks, the deploy smoke test and the wheel test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

PACKAGE_MANAGER_FILES = ("requirements.txt", "Pipfile.lock", "poetry.lock", "uv.lock")
# The buildpack's PYTHON_VERSION_REGEX: integers without redundant leading zeros.
_INT = r"(0|[1-9][0-9]*)"
PYTHON_VERSION = re.compile(rf"^{_INT}\.{_INT}(\.{_INT})?$")
# The minor versions the buildpack builds (OLDEST/NEWEST_SUPPORTED_PYTHON_3_MINOR_VERSION).
SUPPORTED_MINORS = range(10, 15)


def package_manager_files(root: Path) -> list[str]:
    """The package-manager files at ``root`` that the buildpack would see (a bare
    ``Pipfile`` counts: the buildpack refuses it)."""
    found = [name for name in PACKAGE_MANAGER_FILES if (root / name).is_file()]
    if (root / "Pipfile").is_file() and "Pipfile.lock" not in found:
        found.append("Pipfile")
    return found


def requested_python(root: Path) -> str:
    """The Python version the buildpack would install, as written. Raises ValueError
    where the buildpack would stop the build or fall back to its own default."""
    if (root / "runtime.txt").exists():
        raise ValueError("runtime.txt is deprecated and overrides .python-version: remove it")
    path = root / ".python-version"
    if not path.is_file():
        raise ValueError("no .python-version: the buildpack would pick its newest default")
    lines = [
        line.strip()
        for line in path.read_text("utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    if len(lines) != 1 or not PYTHON_VERSION.match(lines[0]):
        raise ValueError(f".python-version must hold one N.N or N.N.N version, not {lines!r}")
    major, minor = (int(part) for part in lines[0].split(".")[:2])
    if major != 3 or minor not in SUPPORTED_MINORS:
        raise ValueError(f"Python {lines[0]} is not one the buildpack builds")
    return lines[0]


def pushed_files(root: Path) -> list[str]:
    """The files a ``git push`` of this checkout would carry (committed or not yet,
    but never ignored ones such as .venv)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root, capture_output=True, check=True,
    ).stdout  # fmt: skip
    return [name for name in listed.decode().split("\0") if name and (root / name).is_file()]


def copy_pushed_files(root: Path, target: Path) -> None:
    """Copy the files a push of ``root`` carries to ``target``, as a fresh clone holds them."""
    for name in pushed_files(root):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target / name)
