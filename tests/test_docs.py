"""The documentation stays true to the tree: every relative link leads to a file
(and a heading, when it names one), and every repository path it mentions exists.

Pages: README.md, docs/*.md, bench/README.md, tests/README.md. A path is a backquoted name starting
with one of the repository's top-level directories (``core/store/keys.py``,
``app/intake/``); names with placeholders (``<db>``, ``*``) and what a run
creates (``tests/artifacts/``, ``bench/results/``) are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [ROOT / "README.md", ROOT / "bench" / "README.md", ROOT / "tests" / "README.md",
     *(ROOT / "docs").glob("*.md")]
)  # fmt: skip
TOP_LEVEL = ("app", "bench", "bin", "core", "devtools", "docs", "statemachine", "tests", "workers")
MADE_BY_RUNS = ("tests/artifacts/", "bench/results/")

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
FENCE = re.compile(r"^    .*$", re.MULTILINE)  # indented code blocks: commands, not paths


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped,
    spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text("utf-8"))
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_there_are_pages_to_check() -> None:
    """The README, the benchmarks' README and the docs pages are all found."""
    names = {page_id(page) for page in PAGES}
    assert {"README.md", "bench/README.md", "docs/architecture.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_lead_to_files_and_headings(page: Path) -> None:
    """Each relative link names a file of the repository, and a heading of it if it
    names one."""
    broken = []
    for target in LINK.findall(page.read_text("utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert not broken, f"{page_id(page)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_repository_paths_mentioned_exist(page: Path) -> None:
    """Each backquoted path under a top-level directory of the repository exists."""
    missing = []
    for name in CODE.findall(page.read_text("utf-8")):
        path = name.rstrip(".,:;)")
        if not path.startswith(tuple(f"{top}/" for top in TOP_LEVEL)):
            continue
        if re.search(r"[<>*…{}]", path) or path.startswith(MADE_BY_RUNS):
            continue
        if not (ROOT / path).exists():
            missing.append(path)
    assert not missing, f"{page_id(page)}: {missing}"
