"""What every part of the Store shares: its clients, the deployment's layout
(one Redis or a cluster) and the runner that sends Lua scripts, one round trip
per node. ``Store`` (``core/store/__init__.py``) makes one ``Backend`` and
hands it to each of its parts (``Part``)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script

from core.store.connection import NotReplicated, PoolExhausted, Redis
from core.store.durability import Durability
from core.store.keys import PARTITIONS, partition_tag
from core.store.values import script_source

# Answers of a node that does not hold the slot (now): nothing ran there.
_REDIRECTS = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
)


class Backend:
    """The clients and settings of a Store, and how its parts reach Redis."""

    def __init__(
        self,
        client: Redis,
        *,
        queues: Redis | None = None,
        spread: bool | None = None,
        retention_seconds: float = 7 * 24 * 3600.0,
        durable_replicas: int = 0,
        durable_wait_seconds: float = 1.0,
        durable_mode: str = "available",
    ) -> None:
        """See ``Store``: the same arguments, less what only one part uses."""
        self.redis: Redis = client
        self.cluster: RedisCluster | None = client if isinstance(client, RedisCluster) else None
        self.queues = queues if queues is not None else client
        self.spread = self.cluster is not None if spread is None else spread
        # The cluster client, for its node-map methods, which redis-py leaves untyped.
        self.nodes: Any = self.cluster
        self.retention_seconds = retention_seconds
        self.durable_replicas = durable_replicas
        self.durable_wait_ms = max(1, int(durable_wait_seconds * 1000))
        self.durability = Durability(durable_replicas, durable_mode)

    def script(self, name: str) -> Script:
        """The Lua script ``lua/<name>.lua``, with the shared sources it asks for."""
        return self.redis.register_script(script_source(name))

    @property
    def ttl_ms(self) -> int:
        return int(self.retention_seconds * 1000)

    def tag(self, tenant_id: str, partition: int) -> str:
        """The hash tag of a tenant's partition in this deployment (see partition_tag)."""
        return partition_tag(tenant_id, partition, self.spread)

    @property
    def partitions(self) -> range:
        """The partitions whose per-partition indexes are distinct keys here: all
        of them on a cluster, one (they share the tenant's keys) on one Redis."""
        return range(PARTITIONS) if self.spread else range(1)

    def servers(self) -> list[tuple[str, Redis]]:
        """Each master holding call state, with its address (blank on one Redis)."""
        if self.cluster is None:
            return [("", self.redis)]
        return [(node.name, node.redis_connection) for node in self.nodes.get_primaries()]

    def eval_many(
        self,
        calls: Sequence[tuple[Script, Sequence[str], Sequence[Any]]],
        *,
        durable: bool = False,
        also: Sequence[tuple[Any, ...]] = (),
        dropped: list[tuple[Any, ...]] | None = None,
    ) -> list[Any]:
        """Run Lua scripts, one round trip per Redis node; per call its answer,
        or its error (returned, not raised).

        redis-py's cluster pipeline refuses scripts, so on a cluster the calls
        are grouped by the node that holds their first key's slot, each group
        a plain pipeline to that node. A call a node redirects (MOVED, ASK:
        slots migrating or a failover; nothing ran) is run again alone through
        the cluster client, which follows redirects. With ``durable``, each
        group ends with WAIT on the same connection, for as many replicas as
        ``durability`` asks of that node (and WAITAOF where it asks for the
        master's own AOF): a group not confirmed in time gets NotReplicated
        for every call.
        ``also``: plain commands (name, key, ...) to send along, to the node of
        their key, idempotent ones only: on a cluster one that failed (a slot
        moving, a node gone) is sent again through the cluster client, which
        follows redirects; if that fails too it is dropped, and added to
        ``dropped`` when given (with ``durable``, one whose node's WAIT fell
        short is sent again too).
        """
        groups: dict[str, tuple[redis.Redis, list[int]]] = {}
        extra: dict[str, list[tuple[Any, ...]]] = {}
        if self.cluster is None:
            groups[""] = (self.redis, list(range(len(calls))))
            extra[""] = list(also)
        else:
            for index, (_, keys, _) in enumerate(calls):
                node = self.nodes.get_node_from_key(keys[0])
                groups.setdefault(node.name, (node.redis_connection, []))[1].append(index)
            for command in also:
                node = self.nodes.get_node_from_key(command[1])
                groups.setdefault(node.name, (node.redis_connection, []))
                extra.setdefault(node.name, []).append(command)
        answers: list[Any] = [None] * len(calls)
        redirected: list[int] = []
        failed_also: list[tuple[Any, ...]] = []
        for name, (client, indexes) in groups.items():
            sent_along = extra.get(name, ())
            along: list[Any] = []
            try:
                got = self._eval_on(
                    name, client, [calls[i] for i in indexes], durable, sent_along, along
                )
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # A node gone (a failover?): learn the new slot map for next time.
                if not isinstance(exc, PoolExhausted):
                    self._refresh_slots()
                got = [exc] * len(indexes)
                along = [exc] * len(sent_along)
            for index, answer in zip(indexes, got, strict=True):
                answers[index] = answer
                if isinstance(answer, _REDIRECTS) and self.cluster is not None:
                    redirected.append(index)
            failed_also += [
                command
                for command, answer in zip(sent_along, along, strict=True)
                if isinstance(answer, BaseException)
            ]
        if redirected:
            self._refresh_slots()
            for index in redirected:
                answers[index] = self._eval_alone(calls[index], durable)
        for command in failed_also:
            try:
                if self.cluster is None:
                    raise redis.ConnectionError("sent with the scripts, which failed")
                self.redis.execute_command(*command)  # type: ignore[no-untyped-call]
            except redis.RedisError:
                if dropped is not None:
                    dropped.append(command)
        return answers

    def _eval_alone(self, call: tuple[Script, Sequence[str], Sequence[Any]], durable: bool) -> Any:
        """A redirected call, again, after the slot map was refreshed: on the node
        that holds its slot now, else through the cluster client (it follows
        ASK while a slot migrates; WAIT cannot follow it there)."""
        assert self.cluster is not None
        script, keys, args = call
        try:
            node = self.nodes.get_node_from_key(keys[0])
            answer = self._eval_on(node.name, node.redis_connection, [call], durable)[0]
            if not isinstance(answer, _REDIRECTS):
                return answer
            if durable and self.durable_replicas:
                return NotReplicated(f"slot of {keys[0]} is migrating: cannot WAIT for it")
            return script(keys=list(keys), args=list(args))
        except redis.RedisError as exc:
            return exc

    def _eval_on(
        self,
        node: str,
        client: Redis,
        calls: Sequence[tuple[Script, Sequence[str], Sequence[Any]]],
        durable: bool,
        also: Sequence[tuple[Any, ...]] = (),
        also_answers: list[Any] | None = None,
    ) -> list[Any]:
        """One pipeline of scripts (EVALSHA, loading any the server lacks) on one
        node (``node``, its name); the answers of ``also`` go into ``also_answers``
        if given."""
        wait_replicas, wait_aof = self.durability.wait_for(node, client) if durable else (0, False)
        for _ in range(2):
            with client.pipeline(transaction=False) as pipe:
                for script, keys, args in calls:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                for command in also:
                    pipe.execute_command(*command)  # type: ignore[no-untyped-call]
                if wait_replicas:
                    pipe.execute_command(  # type: ignore[no-untyped-call]
                        "WAIT", wait_replicas, self.durable_wait_ms
                    )
                elif wait_aof:
                    pipe.execute_command(  # type: ignore[no-untyped-call]
                        "WAITAOF", 1, 0, self.durable_wait_ms
                    )
                got = pipe.execute(raise_on_error=False)
            missing = {
                calls[i][0].sha: calls[i][0]
                for i, a in enumerate(got[: len(calls)])
                if isinstance(a, redis.exceptions.NoScriptError)
            }
            if not missing:
                break
            for script in missing.values():
                client.script_load(script.script)
        answers = got[: len(calls)]
        if also_answers is not None:
            also_answers += got[len(calls) : len(calls) + len(also)]
        if wait_replicas or wait_aof:
            short = self._short_of(got[-1], wait_replicas)
            if short is not None:
                self.durability.forget(node)  # a replica lost? the retry asks again
                if also_answers is not None and also:
                    del also_answers[-len(also) :]
                    also_answers += [short] * len(also)
                return [a if isinstance(a, BaseException) else short for a in answers]
        return list(answers)

    def _short_of(self, acked: Any, replicas: int) -> redis.RedisError | None:
        """What WAIT (``replicas``) or WAITAOF (0) answered, as the error of a
        write not confirmed in time; None when confirmed."""
        if isinstance(acked, redis.RedisError):
            return acked
        if isinstance(acked, BaseException):
            return redis.RedisError(str(acked))
        if not replicas:  # WAITAOF: [local AOFs, replica AOFs]
            if int(acked[0]) < 1:
                return NotReplicated(
                    f"the master's AOF did not confirm within {self.durable_wait_ms} ms"
                )
            return None
        if int(acked) < replicas:
            return NotReplicated(
                f"the write reached {int(acked)} of {replicas} replica(s) "
                f"within {self.durable_wait_ms} ms"
            )
        return None

    def _refresh_slots(self) -> None:
        if self.cluster is not None:
            with contextlib.suppress(redis.RedisError):
                self.cluster.nodes_manager.initialize()

    def eval_all(self, calls: Sequence[tuple[Script, Sequence[str], Sequence[Any]]]) -> list[Any]:
        """``eval_many``, raising the first error among the answers."""
        answers = self.eval_many(calls)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return answers


class Part:
    """One part of the Store: the reads and writes of one concept, over the
    shared backend. ``redis`` and ``spread`` are the backend's, kept at hand."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.redis = backend.redis
        self.spread = backend.spread
