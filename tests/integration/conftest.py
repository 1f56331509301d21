"""Fixtures of the real-process tests: a private redis-server, the Procfile's processes.

Every test here runs against a redis-server this session starts on a free
loopback port (never the shared one), flushed before each test. Without a
redis-server binary every test of this directory is skipped, loudly.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import redis
from callstate_harness import Api, Launcher, RedisServer

REDIS_SERVER = shutil.which("redis-server")
HERE = Path(__file__).resolve().parent
SKIP_REASON = (
    "!!! REAL-REDIS INTEGRATION TESTS SKIPPED: redis-server is not installed, so the "
    "tests that start redis-server, web servers and RQ workers did not run. Install "
    "redis-server to run them. !!!"
)
LAUNCHER = pytest.StashKey[Launcher]()


def _ours(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not _ours(item):
            continue
        item.add_marker(pytest.mark.redis_server)
        if REDIS_SERVER is None:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REDIS_SERVER is None:
        terminalreporter.write_sep("!", "REAL-REDIS INTEGRATION TESTS WERE SKIPPED", red=True)
        terminalreporter.write_line(SKIP_REASON, red=True, bold=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the tails of every service process's logs to a failing test's report."""
    report = yield
    launcher = item.stash.get(LAUNCHER, None)
    if launcher is not None and report.failed and report.when in ("setup", "call"):
        report.sections.append(("service process logs (tails)", launcher.tails()))
    return report


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server on a free loopback port for the whole session."""
    if REDIS_SERVER is None:
        pytest.skip(SKIP_REASON)
    server = RedisServer(REDIS_SERVER, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the private Redis, flushed before the test."""
    client = redis_server.client()
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def launcher(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    redis_db: redis.Redis,
    tmp_path: Path,
) -> Iterator[Launcher]:
    """Starts Procfile processes on demand; stops all of them (SIGTERM, then SIGKILL) after."""
    runner = Launcher(redis_server.url, tmp_path, redis_db)
    request.node.stash[LAUNCHER] = runner
    try:
        yield runner
    finally:
        forced = runner.stop_all()
        if forced:
            warnings.warn(
                f"{', '.join(forced)} did not exit within 10 s of SIGTERM and were SIGKILLed:\n"
                + runner.tails(),
                stacklevel=1,
            )


@pytest.fixture
def service(launcher: Launcher) -> Api:
    """web (2 server processes) and one worker process, both ready."""
    return launcher.start_service()
