"""The app's Redis-backed resources, hung off ``app.extensions`` (flaskr's db.py pattern)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import Flask, current_app
from rq import Queue

from workers.jobs import events_queue
from workers.settings import Settings
from workers.store import RateLimiter, Store, connect

EXTENSION = "callstate"


@dataclass
class Resources:
    store: Store
    queue: Queue
    # The per-token webhook rate limit, when WEBHOOK_RATE_LIMIT sets one.
    limiter: RateLimiter | None = None


def init_app(app: Flask, client: redis.Redis | None = None) -> None:
    """Connect (lazily: redis-py opens sockets on first use) and register.

    The client holds at most this web process's share of WEB_REDIS_CONNECTIONS;
    a request beyond it waits briefly for one (then 503 with Retry-After).
    """
    settings: Settings = app.config["CALLSTATE_SETTINGS"]
    if client is None:
        client = connect(settings.redis_url, max_connections=settings.web_process_connections)
    # Request threads share Redis round trips for the writes that accept webhooks.
    store = Store(client, retention_seconds=settings.retention_seconds, group_commit=True)
    limiter = (
        RateLimiter(client, settings.webhook_rate_limit, settings.webhook_burst)
        if settings.webhook_rate_limit > 0
        else None
    )
    app.extensions[EXTENSION] = Resources(store, events_queue(client), limiter)


def get_resources() -> Resources:
    resources: Resources = current_app.extensions[EXTENSION]
    return resources


def get_store() -> Store:
    return get_resources().store
