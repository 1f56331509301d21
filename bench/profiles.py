"""Profiles of running processes: py-spy samples folded by function."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devtools.service import ROOT


@dataclass
class Profile:
    """py-spy samples of some processes, summarised by function."""

    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    stacks: Counter[tuple[str, ...]] = field(default_factory=Counter)

    def print(self, title: str, top: int = 12, focus: Sequence[str] = ()) -> None:
        """Top functions (inclusive and own), then what each ``focus`` function calls."""
        if not self.samples:
            print(f"  {title}: no samples (py-spy missing or not permitted)")
            return
        print(f"  {title}: {self.samples} samples; share of samples in (inclusive):")
        for name, count in self.inclusive.most_common(top):
            print(f"    {100 * count / self.samples:5.1f}%  {name}")
        print("  ...where the time is spent (own):")
        for name, count in self.own.most_common(top):
            print(f"    {100 * count / self.samples:5.1f}%  {name}")
        for name in focus:
            self.print_children(name, top)

    def children(self, name: str) -> Counter[str]:
        """Samples under ``name`` by the function it called (``(own)`` if none)."""
        found: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            matches = [i for i, frame in enumerate(stack) if frame.startswith(name + " (")]
            if matches:
                i = matches[0]
                found[stack[i + 1] if i + 1 < len(stack) else "(own)"] += count
        return found

    def print_children(self, name: str, top: int = 12) -> None:
        found = self.children(name)
        total = sum(found.values())
        if not total:
            return
        print(f"  ...inside {name} ({100 * total / self.samples:.1f}% of samples), by callee:")
        for child, count in found.most_common(top):
            print(f"    {100 * count / self.samples:5.1f}%  {child}")


@contextlib.contextmanager
def profiled(
    pids: Sequence[int], seconds: float, rate: int = 200, gil_only: bool = True
) -> Iterator[Profile]:
    """Sample ``pids`` with py-spy while the block runs (at most ``seconds``).

    ``gil_only``: count only samples of threads holding the GIL, i.e. where the
    process spends CPU in Python, not where its threads wait."""
    profile = Profile()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    runs: list[tuple[subprocess.Popen[bytes], Path]] = []
    if Path(spy).exists():
        for pid in pids:
            out = Path(tempfile.mkstemp(suffix=".txt")[1])
            command = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate),
                       "--duration", str(max(1, round(seconds))), "--nonblocking", "--output",
                       str(out), *(["--gil"] if gil_only else [])]  # fmt: skip
            runs.append((subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL), out))  # fmt: skip
    try:
        yield profile
    finally:
        for process, out in runs:
            process.send_signal(2)  # SIGINT: py-spy writes what it has and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
            if process.poll() is None:
                process.kill()
                process.wait()
            _add_samples(profile, out)
            out.unlink(missing_ok=True)


def _add_samples(profile: Profile, path: Path) -> None:
    """Fold py-spy's raw (collapsed-stack) output into ``profile``."""
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame_name(f) for f in stack.split(";")[1:]]  # first: process/thread
            if not frames:
                continue
            profile.samples += count
            profile.stacks[tuple(frames)] += count
            profile.own[frames[-1]] += count
            for name in set(frames):
                profile.inclusive[name] += count


def _frame_name(frame: str) -> str:
    """'fold (statemachine/state.py:120)' -> 'fold (statemachine/state.py)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    root = f"{ROOT}/"
    for marker in ("/site-packages/", root, "/lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"
