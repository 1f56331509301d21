"""A private Redis Cluster for tests and benchmarks: N masters with a replica
each, on free loopback ports.

Started as production would start one: ``redis-server --cluster-enabled yes`` per
node, joined with ``redis-cli --cluster create``. A small ``cluster-node-timeout``
makes a replica take over a killed master within a few seconds.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from devtools.service import tail


def free_cluster_port(attempts: int = 200) -> int:
    """A free loopback port P with P + 10000 (the cluster bus) free too; P <= 55535."""
    for _ in range(attempts):
        port = random.randint(20000, 55000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class ClusterNode:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / f"node-{self.port}.log"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class RedisClusterServer:
    """``masters`` masters and as many replicas; ``url`` names the first node."""

    binary: str
    directory: Path
    masters: int = 3
    replicas: int = 1
    node_timeout_ms: int = 1000
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        live = [n for n in self.nodes if n.alive()]
        return (live or self.nodes)[0].url

    def start(self) -> None:
        cli = self._cli()
        count = self.masters * (1 + self.replicas)
        for _ in range(count):
            node = ClusterNode(free_cluster_port(), self.directory)
            self._launch(node)
            self.nodes.append(node)
        for node in self.nodes:
            self._wait_ping(node)
        if self.masters < 3:  # redis-cli --cluster create wants 3 masters or more
            self._create_small()
            self.wait_ok()
            self.wait_replicas_synced()
            return
        create = subprocess.run(
            [cli, "--cluster", "create", *(n.address for n in self.nodes),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        if create.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed:\n{create.stdout.decode()}")
        self.wait_ok()
        self.wait_replicas_synced()

    def wait_replicas_synced(self, timeout: float = 60.0) -> None:
        """Wait until every live replica holds its master's data (link up, no sync
        under way): before that a master's WAIT counts no replica."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while node.alive() and not self._synced(node):
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"replica {node.port} did not sync with its master")
                time.sleep(0.1)

    @staticmethod
    def _synced(node: ClusterNode) -> bool:
        try:
            info = node.client().info("replication")
        except redis.RedisError:
            return False
        if info.get("role") == "master":
            return True
        return info.get("master_link_status") == "up" and not int(
            info.get("master_sync_in_progress", 0)
        )

    def _cli(self) -> str:
        return shutil.which("redis-cli") or str(Path(self.binary).with_name("redis-cli"))

    def add_master_and_rebalance(self, timeout: float = 300.0) -> ClusterNode:
        """Grow by one empty master, then move slots onto it with ``redis-cli
        --cluster rebalance --cluster-use-empty-masters`` (keys migrate while
        clients keep working: they are redirected with ASK / MOVED)."""
        node = ClusterNode(free_cluster_port(), self.directory)
        self._launch(node)
        self._wait_ping(node)
        self.nodes.append(node)
        entry = next(n for n in self.master_nodes() if n is not node)
        add = subprocess.run(
            [self._cli(), "--cluster", "add-node", node.address, entry.address],
            capture_output=True, timeout=60,
        )  # fmt: skip
        if add.returncode != 0:
            raise RuntimeError(f"add-node failed:\n{add.stdout.decode()}")
        self.masters += 1
        deadline = time.monotonic() + 30
        while not all(self._knows(n, node) for n in self.nodes if n.alive()):
            if time.monotonic() >= deadline:
                raise RuntimeError("the cluster did not learn of the new node")
            time.sleep(0.1)
        # The new node must see the whole cluster (cluster_state:ok) first, or
        # it answers MIGRATE with CLUSTERDOWN and leaves a slot half moved;
        # redis-cli also wants every node to agree on the configuration.
        self.wait_ok()
        failures: list[str] = []
        for _ in range(30):
            moved = subprocess.run(
                [self._cli(), "--cluster", "rebalance", entry.address,
                 "--cluster-use-empty-masters"],
                capture_output=True, timeout=timeout,
            )  # fmt: skip
            if moved.returncode == 0:
                break
            failures.append(moved.stdout.decode()[-1500:] + moved.stderr.decode()[-500:])
            time.sleep(0.5)
        else:
            raise RuntimeError("rebalance failed; first attempt:\n" + failures[0])
        self.wait_ok()
        return node

    @staticmethod
    def _knows(node: ClusterNode, other: ClusterNode) -> bool:
        try:
            text = node.client().execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
        except redis.RedisError:
            return False
        listing = text.decode() if isinstance(text, bytes) else str(text)
        return f"127.0.0.1:{other.port}@" in listing

    def _create_small(self) -> None:
        """One or two masters (a benchmark's baseline): slots assigned by hand."""
        masters, replicas = self.nodes[: self.masters], self.nodes[self.masters :]
        share = 16384 // self.masters
        for index, node in enumerate(masters):
            last = 16383 if index == self.masters - 1 else (index + 1) * share - 1
            client: Any = node.client()  # redis-py leaves execute_command untyped
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * share, last)
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
        for node in self.nodes[1:]:
            meet: Any = node.client()
            meet.execute_command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)
        for index, node in enumerate(replicas):
            master: Any = masters[index % self.masters].client()
            master_id = master.execute_command("CLUSTER", "MYID")
            replica: Any = node.client()
            deadline = time.monotonic() + 30
            while True:
                try:
                    replica.execute_command("CLUSTER", "REPLICATE", master_id)
                    break
                except redis.ResponseError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.1)  # the node does not know the master yet

    def _launch(self, node: ClusterNode) -> None:
        node.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(node.port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{node.port}.conf",
                # Its own file: a replica's full sync writes one, and a node
                # (re)started in this directory must not load another's data.
                "--dbfilename", f"dump-{node.port}.rdb",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(node.log_path),
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    def _wait_ping(self, node: ClusterNode, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        client = node.client()
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return
            time.sleep(0.05)
        raise RuntimeError(f"cluster node {node.port} would not start:\n{tail(node.log_path)}")

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every live node says cluster_state:ok and agrees on all masters
        covering the 16384 slots."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._ok(n) for n in self.nodes if n.alive()):
                return
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def wait_failover(self, timeout: float = 60.0) -> None:
        """Wait until a replica has taken over every killed master: as many live
        masters as the cluster was made with, and cluster_state:ok everywhere.

        Restarting a killed master before that (no persistence here) would
        bring it back empty *as the master*, and its replica would copy the
        empty data set: a cluster without persistence must never do that."""
        deadline = time.monotonic() + timeout
        while len(self.master_nodes()) < self.masters:
            if time.monotonic() >= deadline:
                raise RuntimeError("no replica took over the killed master")
            time.sleep(0.1)
        self.wait_ok(max(1.0, deadline - time.monotonic()))

    @staticmethod
    def _ok(node: ClusterNode) -> bool:
        try:
            info = node.client().cluster("info")
        except redis.RedisError:
            return False
        text = info if isinstance(info, str) else str(info)
        if isinstance(info, dict):
            slots = int(info.get("cluster_slots_ok", 0))
            return info.get("cluster_state") == "ok" and slots == 16384
        return "cluster_state:ok" in text

    def client(self) -> RedisCluster:
        return RedisCluster.from_url(self.url, socket_timeout=5)

    def master_nodes(self) -> list[ClusterNode]:
        """The live nodes that are masters right now."""
        found = []
        for node in self.nodes:
            if not node.alive():
                continue
            with contextlib.suppress(redis.RedisError):
                if node.client().info("replication").get("role") == "master":
                    found.append(node)
        return found

    def flushall(self) -> None:
        for node in self.master_nodes():
            node.client().flushall()

    def kill9(self, node: ClusterNode) -> None:
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(10)

    def restart(self, node: ClusterNode, timeout: float = 60.0) -> None:
        """Start a killed node again (it rejoins from its nodes.conf, as a replica)
        and wait until it holds its master's data (a failover needs a synced replica)."""
        self._launch(node)
        self._wait_ping(node)
        deadline = time.monotonic() + timeout
        while not self._synced(node):
            if time.monotonic() >= deadline:
                raise RuntimeError(f"node {node.port} did not sync with its master")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()
