"""A deploy, built the way a Heroku-style platform builds it, then used.

What the platform's Python buildpack does, restated: it refuses a root without
exactly one package-manager file, installs the Python of ``.python-version``,
runs ``pip install -r requirements.txt`` into a fresh environment (no editable
install of the project, no extras), and runs the Procfile's commands in the
app's directory with ``PORT``, ``DYNO``, ``WEB_CONCURRENCY`` and the add-on's
``REDIS_URL`` set, a ``release`` command first when there is one; it stops
dynos with SIGTERM and kills what is left 30 s later.

Here: the files git would push are copied to a fresh directory, a fresh venv
gets only ``requirements.txt`` (from the package index; pip's cache lives in
the test's temporary directory), and the Procfile's ``web`` and ``worker`` run
from there, with nothing of the test environment but PATH, on a private
redis-server. Realistic calls are posted and their outcomes checked.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from callstate_harness import (
    REPO,
    Api,
    Proc,
    RedisServer,
    accept_calls,
    free_port,
    procfile_commands,
    wait_until,
)
from primevox_bodies import EXPECTED, Call, scenario

from tests.kit.buildpack import copy_pushed_files, package_manager_files, requested_python

SIGKILL_AFTER_SECONDS = 30.0
INSTALL_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Build:
    """An app directory as the platform lays it out, and the Python environment built for it."""

    app: Path
    python_bin: Path


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Check the buildpack's rules, copy the app, and install requirements.txt alone."""
    assert package_manager_files(REPO) == ["requirements.txt"], package_manager_files(REPO)
    version = requested_python(REPO)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not f"{running}.{sys.version_info.micro}".startswith(version):
        pytest.skip(f".python-version asks for {version}; this interpreter is {running}")
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: cannot tell which files a push would carry")

    base = tmp_path_factory.mktemp("deploy")
    app = base / "app"
    copy_pushed_files(REPO, app)
    venv = base / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip_env = {**os.environ, "PIP_CACHE_DIR": str(base / "pip-cache")}
    pip_env.pop("PIP_REQUIRE_VIRTUALENV", None)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         "--no-input", "-q", "-r", "requirements.txt"],
        cwd=app, env=pip_env, capture_output=True, text=True,
        timeout=INSTALL_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    checked = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return Build(app, venv / "bin")


@dataclass
class Dynos:
    """The Procfile's processes of one deploy, each in its own process group."""

    build: Build
    redis_url: str
    logs: Path
    port: int
    webhook_token: str
    api_key: str
    procs: list[Proc]

    def env(self, dyno: str) -> dict[str, str]:
        """What a dyno's process sees: the platform's variables and the app's config vars."""
        return {
            "PATH": f"{self.build.python_bin}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.build.app),
            "LANG": "C.UTF-8",
            "DYNO": dyno,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
            "REDIS_URL": self.redis_url,
            # Config vars as app.json makes them: one generated token and key.
            "WEBHOOK_TOKEN": self.webhook_token,
            "API_KEY": self.api_key,
            "OUTCOME_GRACE_SECONDS": "1",
            # Where the Procfile's default would put the metrics of another test's port.
            "PROMETHEUS_MULTIPROC_DIR": str(self.logs / f"metrics-{dyno}"),
        }

    def run(self, kind: str, dyno: str) -> Proc:
        command = procfile_commands(self.build.app / "Procfile")[kind]
        out, err = self.logs / f"{dyno}.out", self.logs / f"{dyno}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            popen = subprocess.Popen(
                ["bash", "-c", command],
                cwd=self.build.app, env=self.env(dyno), stdin=subprocess.DEVNULL,
                stdout=stdout, stderr=stderr, start_new_session=True,
            )  # fmt: skip
        proc = Proc(dyno, command, popen, out, err)
        self.procs.append(proc)
        return proc

    def tails(self) -> str:
        return "\n".join(proc.tails() for proc in self.procs)


@pytest.fixture
def dynos(build: Build, tmp_path: Path, redis_server: RedisServer) -> Iterator[Dynos]:
    redis_server.client().flushall()
    deploy = Dynos(
        build, redis_server.url, tmp_path, free_port(),
        secrets.token_hex(32), secrets.token_hex(32), [],
    )  # fmt: skip
    try:
        yield deploy
    finally:
        for proc in deploy.procs:
            proc.stop(grace=SIGKILL_AFTER_SECONDS)


def test_a_deploy_built_from_requirements_txt_serves_calls(dynos: Dynos) -> None:
    """Built from requirements.txt alone and started from the Procfile, the service takes
    realistic webhooks and decides each call's outcome; SIGTERM stops every dyno well
    within 30 s."""
    commands = procfile_commands(dynos.build.app / "Procfile")
    assert {"web", "worker"} <= set(commands)
    if "release" in commands:  # the platform runs it before the new dynos start
        release = dynos.run("release", "release.1")
        assert release.popen.wait(120) == 0, dynos.tails()
    web = dynos.run("web", "web.1")
    worker = dynos.run("worker", "worker.1")
    api = Api(f"http://127.0.0.1:{dynos.port}", token=dynos.webhook_token, api_key=dynos.api_key)

    def up() -> bool:
        assert web.running() and worker.running(), dynos.tails()
        return api.healthy()

    wait_until(up, 60, "the web dyno to answer", detail=dynos.tails)
    assert api.get_json("/readyz")["status"] == "ready"
    for path in ("/openapi.json", "/docs", "/wallboard", "/metrics"):
        assert api.request("GET", path).status == 200, path

    kinds = sorted(EXPECTED)
    calls = {Call(tenant): kind for tenant in ("acme", "globex") for kind in kinds}
    accept_calls(api, [scenario(kind, call) for call, kind in calls.items()])

    def decided() -> dict[str, dict[str, object]] | None:
        records = {r["call_uuid"]: r for r in api.outcomes()}
        return records if len(records) >= len(calls) else None

    records = wait_until(decided, 60, f"{len(calls)} outcomes", detail=dynos.tails)
    for call, kind in calls.items():
        record = records[call.uuid]
        assert (record["outcome"], record.get("missed_reason")) == EXPECTED[kind], (kind, record)
        assert record["tenant_id"] == call.tenant
    assert api.live() == []  # every call ended

    started = time.monotonic()
    for proc in (web, worker):
        proc.signal_group(signal.SIGTERM)
    for proc in (web, worker):
        remaining = SIGKILL_AFTER_SECONDS - (time.monotonic() - started)
        try:
            code = proc.popen.wait(max(remaining, 0.1))
        except subprocess.TimeoutExpired:
            pytest.fail(f"{proc.name} still running {SIGKILL_AFTER_SECONDS:g} s after SIGTERM")
        assert code in (0, -signal.SIGTERM), f"{proc.name} exited {code}\n{proc.tails()}"
    output = web.output() + worker.output()
    assert dynos.webhook_token not in output and dynos.api_key not in output
