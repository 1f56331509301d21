"""The README's hand test runs as written, against the Procfile's real processes.

The lines under the README's ``hand-test`` marker are run one by one with bash,
with the variables the launcher's banner tells a newcomer to export
(``BASE``, ``WEBHOOK_URL``, ``API_KEY``) and the service's Redis in the
environment ``bin/flask`` reads.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from callstate_harness import ADMIN_KEY, REPO, TOKEN_ALL, Launcher

MARKER = "<!-- hand-test:"


def hand_test_lines(readme: Path = REPO / "README.md") -> list[str]:
    """The indented lines of the code block after the marker."""
    text = readme.read_text("utf-8")
    block = text[text.index(MARKER) :].split("\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if not line.startswith("    "):
            break
        lines.append(line.strip())
    return lines


def test_the_readmes_hand_test_runs_as_written(launcher: Launcher) -> None:
    """Each line exits 0; the call reads answered by extension 101, and the CLI's
    tail prints its outcome."""
    api = launcher.start_service()
    env = launcher.env(
        {
            "BASE": api.base_url,
            "WEBHOOK_URL": f"{api.base_url}/webhooks/primevox/{TOKEN_ALL}",
            "API_KEY": ADMIN_KEY,
        }
    )
    outputs = []
    lines = hand_test_lines()
    assert any(line.startswith("bin/flask") for line in lines)
    for line in lines:
        done = subprocess.run(
            ["bash", "-c", line], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    call = json.loads(outputs[lines.index(next(x for x in lines if "/v1/calls/c1" in x))])
    assert call["outcome"]["outcome"] == "answered"
    assert call["outcome"]["answered_by"]["number"] == "101"
    assert "answered" in outputs[-1] and "c1" in outputs[-1]
