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

from bench.redis_cluster import RedisClusterServer
from devtools.service import SLOW_STOP_SECONDS

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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServer]:
    """A private Redis Cluster for the whole session: 3 masters, a replica each,
    on free loopback ports (a replica takes over a killed master within seconds)."""
    if REDIS_SERVER is None:
        pytest.skip(SKIP_REASON)
    if shutil.which("redis-cli") is None:
        pytest.skip("!!! REDIS CLUSTER TESTS SKIPPED: redis-cli (redis-tools) is not installed !!!")
    cluster = RedisClusterServer(REDIS_SERVER, tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Where call state lives: "redis" (one redis-server, RQ's queues too) or
    "cluster" (the Redis Cluster; RQ's queues on the plain redis-server, as
    RQ_REDIS_URL). A module runs on both with this pytestmark:
    ``pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)``."""
    return str(getattr(request, "param", "redis"))


@pytest.fixture
def redis_db(
    request: pytest.FixtureRequest, backend: str, redis_server: RedisServer
) -> Iterator[redis.Redis]:
    """A client of the Redis holding call state (the private Redis, or the cluster),
    everything flushed before the test."""
    plain = redis_server.client()
    plain.flushall()
    if backend == "cluster":
        cluster: RedisClusterServer = request.getfixturevalue("redis_cluster")
        cluster.wait_ok()
        cluster.flushall()
        client: redis.Redis = cluster.client()  # type: ignore[assignment]
    else:
        client = plain
    try:
        yield client
    finally:
        client.close()
        plain.close()


@pytest.fixture
def launcher(
    request: pytest.FixtureRequest,
    backend: str,
    redis_server: RedisServer,
    redis_db: redis.Redis,
    tmp_path: Path,
) -> Iterator[Launcher]:
    """Starts Procfile processes on demand; stops all of them (SIGTERM, then SIGKILL) after."""
    if backend == "cluster":
        cluster: RedisClusterServer = request.getfixturevalue("redis_cluster")
        queues, url = redis_server.client(), redis_server.url
        runner = Launcher(cluster.url, tmp_path, redis_db, rq_url=url, rq_client=queues)
    else:
        runner = Launcher(redis_server.url, tmp_path, redis_db)
    request.node.stash[LAUNCHER] = runner
    try:
        yield runner
    finally:
        forced = runner.stop_all()
    # The platform SIGKILLs what outlives SIGTERM by 30 s: a process that needs
    # SIGKILL here would lose its clean hand-over there. Fail, with where it stood.
    # So does one that its own watchdog had to end (workers/shutdown.py).
    watchdog = [] if runner.forced_exit_expected else runner.forced_exits()
    if watchdog:
        pytest.fail(
            f"{', '.join(watchdog)} did not stop in time after SIGTERM and were ended by "
            f"their watchdog:\n{runner.tails()}",
            pytrace=False,
        )
    if forced:
        pytest.fail(
            f"{', '.join(forced)} did not exit within 10 s of SIGTERM and were SIGKILLed.\n"
            f"Where they stood {SLOW_STOP_SECONDS:g} s after SIGTERM:\n{runner.slow_stops()}\n"
            + runner.tails(),
            pytrace=False,
        )
    if runner.slow_stops():
        warnings.warn(
            f"a process outlived SIGTERM by {SLOW_STOP_SECONDS:g} s (then exited):\n"
            + runner.slow_stops(),
            stacklevel=1,
        )


@pytest.fixture
def service(launcher: Launcher) -> Api:
    """web (2 server processes) and one worker process, both ready."""
    return launcher.start_service()
