"""The intake benchmark's baselines: bare Flask endpoints at the webhook's path.

``create_app()`` reads the body and answers 202 with a small JSON body, like
the real intake, and does nothing else. With ``BARE_REDIS_URL`` set it also
does what intake cannot avoid: one round trip to Redis, a Lua script keeping
the raw body in a pending zset + hash and ringing a doorbell (the same three
writes as core/store/lua/accept_events.lua), through redis-py. Served by gunicorn
with the web process's own settings (``--config python:app.gunicorn_conf``),
so the differences between them and callstate's intake are what the intake
adds: parsing, validation, the record, its own Redis client code.
"""

from __future__ import annotations

import os
import time
import uuid

import redis
from flask import Flask, Response, jsonify, request

ACCEPT = """
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if redis.call('SET', KEYS[3], 'bare', 'NX') then return 1 end
return 0
"""
KEYS = ["bare:{b}:pending", "bare:{b}:pending:events", "bare:{b}:drain"]


def create_app() -> Flask:
    app = Flask(__name__)
    url = os.environ.get("BARE_REDIS_URL")
    script = redis.Redis.from_url(url).register_script(ACCEPT) if url else None

    @app.post("/webhooks/primevox/<token>")
    def receive(token: str) -> tuple[Response, int]:
        body = request.get_data(cache=False)
        if script is not None:
            script(keys=KEYS, args=[uuid.uuid4().hex, time.time(), body])
        return jsonify({"status": "accepted", "bytes": len(body)}), 202

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    return app
