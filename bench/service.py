"""Run callstate as deployed, on this machine: a private redis-server and the
Procfile's process types, each in its own process group (so a test can
kill -9 one and everything it forked), started and stopped by devtools.service.
Loopback only. Used by the benchmarks and the chaos script.

With ``cluster_masters``, call state lives on a private Redis Cluster of that
many masters (a replica each) and the redis-server holds only RQ's queues
(``RQ_REDIS_URL``), as a deployment that outgrew one Redis would run."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.redis_cluster import RedisClusterServer
from devtools.redis_server import RedisServer
from devtools.service import (
    ROOT,
    ServiceProcess,
    answers_health,
    free_port,
    procfile_env,
    start_procfile_process,
    stop_all,
    wait_healthy,
)

__all__ = ["ROOT", "RedisServer", "Service", "free_port", "wait_for"]


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``check`` until true; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class Service:
    """web and worker from the Procfile, plus their private Redis."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        workdir: Path | None = None,
        cluster_masters: int = 0,
        node_timeout_ms: int = 1000,
        separate_queues: bool = False,
    ) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="callstate-svc-"))
        self.redis = RedisServer(self.workdir)
        # The Redis of RQ's queues: self.redis, but a second one with
        # separate_queues on one Redis (a cluster's queues are on self.redis).
        self.queues = self.redis
        if separate_queues and not cluster_masters:
            (self.workdir / "rq").mkdir(exist_ok=True)
            self.queues = RedisServer(self.workdir / "rq")
        self.cluster: RedisClusterServer | None = None
        if cluster_masters:
            (self.workdir / "cluster").mkdir(exist_ok=True)
            self.cluster = RedisClusterServer(
                shutil.which("redis-server") or "redis-server",
                self.workdir / "cluster",
                masters=cluster_masters,
                node_timeout_ms=node_timeout_ms,
            )
        self.port = free_port()
        self.token = "bench-token"
        self.key = "bench-key"
        self.env = procfile_env(
            {
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                "PORT": str(self.port),
                "REDIS_URL": self.redis.url,
                "WEBHOOK_TOKENS": f"{self.token}:*",
                "API_KEYS": f"{self.key}:*",
                "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
                # A bench measures the service's capacity, far past what one PBX posts:
                # the per-token limit (on by default) would measure itself instead.
                "WEBHOOK_RATE_LIMIT": "0",
                **(env or {}),
            }
        )
        self.processes: dict[str, list[ServiceProcess]] = {}
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.webhook_url = f"{self.base_url}/webhooks/primevox/{self.token}"

    def start_process(
        self, kind: str, env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> ServiceProcess:
        """Start the Procfile's ``kind`` (with ``env`` over the service's environment,
        in ``cwd``); its output goes to ``<kind>-<n>.log`` in the work directory."""
        name = f"{kind}-{len(self.processes.get(kind, []))}"
        process = start_procfile_process(
            kind,
            name,
            {**self.env, **(env or {})},
            cwd=cwd,
            stdout_path=self.workdir / f"{name}.log",
        )
        self.processes.setdefault(kind, []).append(process)
        return process

    def start(self, workers: int = 1) -> Service:
        self.redis.start()
        if self.queues is not self.redis:
            self.queues.start()
            self.env["RQ_REDIS_URL"] = self.queues.url
        if self.cluster is not None:
            self.cluster.start()
            self.env["REDIS_URL"] = self.cluster.url
            self.env["RQ_REDIS_URL"] = self.redis.url
        web = self.start_process("web")
        for _ in range(workers):
            self.start_process("worker")
        wait_healthy(self.base_url, web, 30)
        wait_for(lambda: self.workers_registered() >= workers, 30, "the workers to register")
        return self

    def healthy(self) -> bool:
        return answers_health(self.base_url)

    def workers_registered(self) -> int:
        return len(list(self.queues.client().scan_iter(match="rq:worker:*", count=1000)))

    def kill9(self, process: ServiceProcess) -> None:
        """SIGKILL a process and everything it forked (its process group)."""
        process.kill9()

    def live(self, kind: str) -> list[ServiceProcess]:
        return [p for p in self.processes.get(kind, []) if p.running()]

    def stop(self) -> None:
        """SIGTERM everything (as Heroku does), SIGKILL what is left after 30 s."""
        stop_all([p for ps in self.processes.values() for p in ps], grace=30)
        self.redis.stop()
        if self.queues is not self.redis:
            self.queues.stop()
        if self.cluster is not None:
            self.cluster.stop()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
