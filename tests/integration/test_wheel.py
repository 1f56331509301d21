"""The service as a wheel, the way a non-editable install (a Docker image, ``pip
install .``) gets it: built from the files a clone holds, installed into a fresh
environment outside the checkout, every module imported from there, and the
Procfile's ``release``, ``web`` and ``worker`` run from there long enough to take a
call's webhooks and decide its outcome.

It guards the packaging of pyproject.toml: a package setuptools does not find, or a
Lua script, template or migration the package data leaves out, fails here and not in
a deploy. Cheap on purpose: the wheel is built with this environment's setuptools
(no isolated build environment to fetch), the fresh environment has no pip of its
own (this one's pip installs into it), nothing is byte-compiled at install, pip's
cache is the user's, and the service runs one web process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from callstate_harness import (
    ADMIN_KEY,
    REPO,
    TOKEN_ALL,
    Api,
    Proc,
    RedisServer,
    accept_calls,
    free_port,
    wait_until,
)
from primevox_bodies import EXPECTED, Call, scenario

from devtools.service import start_procfile_process, stop_all, wait_healthy
from tests.kit.buildpack import copy_pushed_files, pushed_files

INSTALL_TIMEOUT_SECONDS = 600
# Modules that are not imported to be checked: a ``__main__`` runs its process when
# imported, and Alembic's env script runs only inside Alembic (the release command
# below runs it).
NOT_IMPORTED = ("__main__", "core.history.migrations.env")
# Run by the installed interpreter with -I: neither the working directory nor
# PYTHONPATH on sys.path, so every module comes from the installed wheel or fails.
IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys

def broken(name):
    raise SystemExit(f"cannot import package {name}")

found = {}
for top in sys.argv[1:]:
    package = importlib.import_module(top)
    found[top] = package.__file__
    for info in pkgutil.walk_packages(package.__path__, top + ".", onerror=broken):
        if info.name.endswith(".__main__") or info.name == "core.history.migrations.env":
            continue
        found[info.name] = importlib.import_module(info.name).__file__
print(json.dumps(found))
"""


@dataclass(frozen=True)
class Installed:
    """A wheel of the checkout, and the fresh environment it is installed in."""

    wheel: Path
    venv: Path
    outside: Path  # an empty directory outside the checkout: the processes' cwd

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def site_packages(self) -> Path:
        return next((self.venv / "lib").glob("python3*/site-packages"))


def packaged_names() -> list[str]:
    """The top-level packages pyproject.toml asks setuptools to find."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(pattern.rstrip("*") for pattern in patterns)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: cannot tell which files a clone holds")
    base = tmp_path_factory.mktemp("wheel")
    # Built from a copy of what a clone holds: an in-tree build/ left by an earlier
    # build would hide a module the packaging misses.
    source = base / "source"
    copy_pushed_files(REPO, source)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    env = {k: v for k, v in os.environ.items() if k != "PIP_REQUIRE_VIRTUALENV"}
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), "."],
        cwd=source, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (base / "dist").glob("callstate-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    done = subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-compile",
         "-c", str(REPO / "requirements.txt"), str(wheel)],
        env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    outside = base / "run"
    outside.mkdir()
    return Installed(wheel, venv, outside)


def test_the_wheel_holds_every_file_of_the_packages(installed: Installed) -> None:
    """Every file a clone holds under a packaged directory (modules, Lua, templates,
    migrations) is in the wheel, and the wheel holds no other top-level package."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    tops = packaged_names()
    wanted = {n for n in pushed_files(REPO) if n.split("/", 1)[0] in tops}
    assert wanted - names == set()
    shipped = {n.split("/", 1)[0] for n in names if n.endswith("/__init__.py")}
    assert shipped == set(tops)
    assert any(n.endswith(".lua") for n in wanted) and any(n.endswith(".html") for n in wanted)


def test_every_module_imports_from_the_installed_wheel(installed: Installed) -> None:
    tops = packaged_names()
    imported = subprocess.run(
        [str(installed.python), "-I", "-c", IMPORT_EVERY_MODULE, *tops],
        cwd=installed.outside, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stdout + imported.stderr
    files: dict[str, str] = json.loads(imported.stdout)
    site = installed.site_packages()
    elsewhere = {m: f for m, f in files.items() if site not in Path(f).parents}
    assert elsewhere == {}
    # Every module of the wheel was imported, but those that cannot be.
    modules = {
        n.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for n in zipfile.ZipFile(installed.wheel).namelist()
        if n.endswith(".py") and n.split("/", 1)[0] in tops
    }
    skipped = {m for m in modules if m.endswith(NOT_IMPORTED)}
    assert modules - skipped == set(files)


@pytest.fixture
def procs(redis_server: RedisServer) -> Iterator[list[Proc]]:
    redis_server.client().flushall()
    started: list[Proc] = []
    try:
        yield started
    finally:
        forced = stop_all(started, 10.0)
    assert forced == [], [p.tails() for p in forced]


def test_the_procfile_runs_the_service_from_the_wheel(
    installed: Installed, redis_server: RedisServer, procs: list[Proc], tmp_path: Path
) -> None:
    """release, web and worker, run as the Procfile says from a directory outside
    the checkout with only the fresh environment's ``python`` on PATH, take a
    call's webhooks and decide its outcome (and archive it in the history)."""
    port = free_port()
    env = {
        "PATH": f"{installed.venv / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'history.sqlite3'}",
        "WEBHOOK_TOKENS": f"{TOKEN_ALL}:*",
        "API_KEYS": f"{ADMIN_KEY}:*",
        "OUTCOME_GRACE_SECONDS": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }

    def run(kind: str) -> Proc:
        proc = start_procfile_process(
            kind, kind, env, cwd=installed.outside, procfile=REPO / "Procfile",
            stdout_path=tmp_path / f"{kind}.out", stderr_path=tmp_path / f"{kind}.err",
        )  # fmt: skip
        procs.append(proc)
        return proc

    release = run("release")
    assert release.wait(120) == 0, release.tails()
    web, worker = run("web"), run("worker")
    wait_healthy(f"http://127.0.0.1:{port}", web, timeout=60)
    api = Api(f"http://127.0.0.1:{port}")
    call = Call("acme")
    accept_calls(api, [scenario("answered", call)])

    def decided() -> dict[str, object] | None:
        assert worker.running(), worker.tails()
        return next((r for r in api.outcomes() if r["call_uuid"] == call.uuid), None)

    record = wait_until(decided, 60, "the call's outcome", detail=worker.tails)
    assert (record["outcome"], record.get("missed_reason")) == EXPECTED["answered"]

    def archived() -> list[dict[str, object]]:
        calls: list[dict[str, object]] = api.get_json("/v1/calls?limit=10")["calls"]
        return calls

    (kept,) = wait_until(archived, 60, "the call in the history", detail=worker.tails)
    assert kept["call_uuid"] == call.uuid
