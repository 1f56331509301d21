"""A private PostgreSQL server for the tests that stop and restart the database.

Started from the installed binaries (initdb, pg_ctl) in a temporary data
directory on a free loopback port, trust auth, so a test can kill it without
touching any other server. PostgreSQL refuses to run as root: as root, the
server runs as the ``postgres`` user and its directory belongs to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from callstate_harness import free_port


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are, or None if PostgreSQL's server is not installed."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class PostgresServer:
    """One private cluster: ``start()``, ``stop()`` (``immediate``: like a crash), ``remove()``."""

    bindir: Path
    directory: Path
    port: int = 0

    @classmethod
    def create(cls, bindir: Path) -> PostgresServer:
        directory = Path(tempfile.mkdtemp(prefix="callstate-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(directory, user.pw_uid, user.pw_gid)
        server = cls(bindir, directory, free_port())
        subprocess.run(
            [*_as_server_user(), str(bindir / "initdb"), "-D", str(server.data), "-U",
             "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        return server

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*_as_server_user(), str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._ctl(
            "-w", "-t", "30", "-l", str(self.directory / "server.log"), "-o", options, "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-m", mode, "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
