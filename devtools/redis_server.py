"""A private redis-server on a loopback port, for bin/start, the benchmarks and
the integration tests.

Durable (the default): AOF on, flushed every second, and stopped with
``SHUTDOWN``, which flushes it, so a restart keeps what Redis acknowledged, as
a deployment's Redis does. Not durable: no persistence at all, stopped with
SIGTERM. Either way no eviction, as production is configured.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import redis

from devtools.service import ServiceError, free_port, tail


class RedisServer:
    """One redis-server process, its data and its log (``redis.log``) in ``directory``.

    The port is chosen once (a free one unless given), so a restart answers
    at the same URL; if the first start finds a chosen port taken meanwhile,
    it tries another.
    """

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        *,
        durable: bool = True,
        binary: str | None = None,
        socket_timeout: float = 10.0,
    ) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise ServiceError("redis-server is not installed")
        self.binary = found
        self.directory = directory
        self.port = port or free_port()
        self.durable = durable
        self.socket_timeout = socket_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._may_move = port is None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=self.socket_timeout)

    def _argv(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec"]
            if self.durable
            else ["--appendonly", "no"]
        )
        return [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
            *persistence,
        ]  # fmt: skip

    def start(self, attempts: int = 5, timeout: float = 10.0) -> None:
        """Start it and wait for PING (ServiceError if it never answers)."""
        problem = ""
        for _ in range(attempts if self._may_move else 1):
            self.process = subprocess.Popen(
                self._argv(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            if self._answers(timeout):
                self._may_move = False
                return
            problem = tail(self.log_path)
            self._halt(terminate=True)
            self.port = free_port()
        raise ServiceError(f"redis-server would not start:\n{problem}")

    def _answers(self, timeout: float) -> bool:
        client = self.client()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process and self.process.poll() is None:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Durable: ``SHUTDOWN`` (flushes the AOF), as an operator would; else SIGTERM.
        SIGKILL if it has not exited within 10 s."""
        if self.process is None:
            return
        if self.durable and self.process.poll() is None:
            with contextlib.suppress(redis.RedisError):
                self.client().shutdown(nosave=False)
        self._halt(terminate=not self.durable)

    def _halt(self, terminate: bool) -> None:
        if self.process is None:
            return
        if terminate and self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
