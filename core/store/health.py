"""What readiness asks of Redis: does it answer, is the cluster whole, do its
settings put accepted events at risk, are there connections enough."""

from __future__ import annotations

from typing import Any, cast

import redis

from core.store.backend import Part
from core.store.durability import Degraded

# Past this share of maxmemory, Redis is near refusing writes (noeviction): warn
# while there is still time to trim retention or move to a larger plan.
MEMORY_WARNING_SHARE = 0.8


class Health(Part):
    """What /readyz asks of Redis."""

    def ping(self) -> bool:
        """True if Redis answers (on a cluster: every master). Never raises."""
        try:
            return all(bool(client.ping()) for _, client in self.backend.servers())
        except redis.RedisError:
            return False

    def ping_queues(self) -> bool:
        """True if RQ's Redis answers (nothing more to ask when it is the call-state
        Redis: ``ping`` did). Never raises."""
        if self.backend.queues is self.redis:
            return True
        try:
            self.backend.queues.ping()
        except redis.RedisError:
            return False
        return True

    def cluster_problems(self) -> tuple[list[str], list[str]]:
        """On a cluster: (what makes us unready, warnings), node by node: a node that
        does not answer, a cluster_state not ok (unready); a replica down (warning).
        Empty on one Redis. Never raises."""
        if self.backend.cluster is None:
            return [], []
        errors: list[str] = []
        warnings: list[str] = []
        for node in self.backend.nodes.get_nodes():
            primary = node.server_type == "primary"
            try:
                info = cast(dict[str, Any], node.redis_connection.cluster("info"))
                state = str(info.get("cluster_state", ""))
            except redis.RedisError as exc:
                (errors if primary else warnings).append(
                    f"cluster node {node.name} ({'master' if primary else 'replica'}) "
                    f"does not answer: {exc}"
                )
                continue
            if state != "ok":
                errors.append(f"cluster node {node.name} says cluster_state:{state}")
        return errors, warnings

    def server_warnings(self) -> list[str]:
        """Settings of the Redis server(s) that put accepted events at risk. Raises RedisError."""
        warnings: list[str] = []
        durable = self.backend.durable_replicas
        # Available mode says what it waits for in degraded(); strict refuses.
        strict = self.backend.durability.mode == "strict"
        for name, client in self.backend.servers():
            where = f"{name}: " if name else ""
            try:
                config = cast(dict[str, str], client.config_get("maxmemory-policy"))
                config.update(cast(dict[str, str], client.config_get("appendonly")))
            except redis.ResponseError:
                return ["cannot read Redis CONFIG (managed Redis): check persistence and eviction"]
            if config.get("maxmemory-policy", "noeviction") != "noeviction":
                warnings.append(
                    f"{where}maxmemory-policy is not noeviction: Redis may drop accepted events"
                )
            if config.get("appendonly") != "yes":
                warnings.append(
                    f"{where}appendonly is off: events accepted since the last save die with Redis"
                )
            if durable and strict:
                replicas = int(client.info("replication").get("connected_slaves", 0))
                if replicas < durable:
                    warnings.append(
                        f"{where}DURABLE_REPLICAS is {durable} but this Redis has "
                        f"{replicas} replica(s) connected: webhooks get 503 until enough are"
                    )
        return warnings

    def _every_server(self) -> list[tuple[str, Any]]:
        """Each Redis server we use, RQ's too, with how a warning names it ("" for
        the one Redis, "<node>: " on a cluster, "RQ's Redis: ")."""
        servers = self.backend.servers()
        if self.backend.queues is not self.redis:
            servers.append(("RQ's Redis", self.backend.queues))
        return [(f"{name}: " if name else "", client) for name, client in servers]

    def memory_warnings(self) -> list[str]:
        """Each Redis server past MEMORY_WARNING_SHARE of its maxmemory (none without a
        maxmemory, or when INFO does not say). Raises RedisError."""
        warnings: list[str] = []
        for where, client in self._every_server():
            memory: dict[str, Any] = client.info("memory")
            try:
                used, limit = int(memory["used_memory"]), int(memory.get("maxmemory", 0))
            except (KeyError, ValueError):
                continue  # a stand-in that will not tell
            if limit and used >= MEMORY_WARNING_SHARE * limit:
                warnings.append(
                    f"{where}Redis uses {used / limit:.0%} of its maxmemory ({used} of {limit} "
                    "bytes): past it, webhooks are refused; lower RETENTION_SECONDS or use a "
                    "larger Redis plan"
                )
        return warnings

    @property
    def durable_mode(self) -> str:
        return self.backend.durability.mode

    @property
    def durable_replicas(self) -> int:
        return self.backend.durability.replicas

    def degraded(self) -> list[Degraded]:
        """Masters that hold fewer replicas than DURABLE_REPLICAS now, in available
        mode (their events are acknowledged on fewer copies), looked at afresh.
        Never raises."""
        try:
            servers = self.backend.servers()
        except redis.RedisError:
            return self.backend.durability.degraded()
        return self.backend.durability.check(servers)

    def connection_warnings(self, needed: int) -> list[str]:
        """Each Redis server's client limit against the connections our processes
        may hold (``needed``: one web and one worker dyno at the configured
        budget). Raises RedisError."""
        warnings: list[str] = []
        for where, client in self._every_server():
            try:
                clients: dict[str, Any] = client.info("clients")
                if "maxclients" not in clients:  # before Redis 7, INFO does not say
                    config = cast(dict[str, str], client.config_get("maxclients"))
                    clients["maxclients"] = int(config["maxclients"])
            except (redis.ResponseError, KeyError, ValueError):
                continue  # a stand-in or a managed Redis that will not tell
            limit, connected = int(clients["maxclients"]), int(clients["connected_clients"])
            if limit < needed:
                warnings.append(
                    f"{where}Redis accepts {limit} clients but one web and one worker dyno may "
                    f"hold {needed}: lower WEB_REDIS_CONNECTIONS / WORKER_REDIS_CONNECTIONS "
                    "or use a larger Redis plan"
                )
            if connected >= 0.9 * limit:
                warnings.append(
                    f"{where}{connected} of Redis's {limit} client connections are in use: "
                    "more dynos would be refused"
                )
        return warnings
