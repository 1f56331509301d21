"""The app's Redis-backed resources, hung off ``app.extensions`` (flaskr's db.py pattern)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import Flask, current_app
from rq import Queue

from core.credentials import CredentialLookup
from core.observability import get_logger
from core.queue import events_queue
from core.settings import Settings
from core.store import Store, open_redis

log = get_logger("callstate.web")

EXTENSION = "callstate"


@dataclass
class Resources:
    store: Store
    queue: Queue
    credentials: CredentialLookup


def init_app(app: Flask, client: redis.Redis | None = None) -> None:
    """Connect and register: REDIS_URL (asked once whether it is a cluster;
    with RQ_REDIS_URL set, waiting up to 30 s for it to answer) and
    RQ_REDIS_URL. Raises ConfigError (a cluster without RQ_REDIS_URL) or
    redis.RedisError (no answer).

    Each client holds at most this web process's share of WEB_REDIS_CONNECTIONS
    (per Redis server); a request beyond it waits briefly for one (then 503
    with Retry-After).
    """
    settings: Settings = app.config["CALLSTATE_SETTINGS"]
    if client is None:
        connections = open_redis(
            settings,
            max_connections=settings.web_process_connections,
            on_retry=lambda exc: log.warning("redis not answering at start", error=str(exc)),
        )
        client, queues = connections.state, connections.queues
    else:
        queues = client
    # Request threads share Redis round trips for the writes that accept webhooks.
    store = Store(
        client,
        retention_seconds=settings.retention_seconds,
        group_commit=True,
        queues=queues,
        durable_replicas=settings.durable_replicas,
        durable_wait_seconds=settings.durable_wait_seconds,
        durable_mode=settings.durable_mode,
    )
    app.extensions[EXTENSION] = Resources(
        store, events_queue(queues), CredentialLookup(store.directory, settings)
    )


def get_resources() -> Resources:
    resources: Resources = current_app.extensions[EXTENSION]
    return resources


def get_store() -> Store:
    return get_resources().store
