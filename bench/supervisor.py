"""The supervisor's view: what keeping it costs the workers, what reading it costs the web.

``python -m bench.supervisor`` (about a minute) on a private redis-server:

- **apply rate** of realistic simulator traffic (Engine.apply_batches, as a
  drain session runs it) with the view kept, against the same traffic with
  its writes switched off, in alternating rounds of the same run;
- **reads** of the extension board and of the callbacks among 1k, 5k and 20k
  calls of one tenant settled within the last 20 hours, against the bare
  Redis read of the same stored parts (the floor any reader pays).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from app import create_app
from bench.common import print_machine, progress, ratio, spread
from bench.service import RedisServer
from core.settings import Settings
from core.store import PARTITIONS, CallPart, Store
from core.supervisor import board, callbacks
from devtools.simulator import Post, generate_call
from statemachine.events import isoformat, micros
from workers.engine import Engine

TENANT = "acme"


def _accept_all(client: redis.Redis, settings: Settings, posts: list[Post]) -> None:
    app = create_app({"TESTING": True, "REDIS_CLIENT": client, "CALLSTATE_SETTINGS": settings})
    web = app.test_client()
    for post in posts:
        body, content_type = post.body()
        answer = web.post("/webhooks/primevox/tok", data=body, content_type=content_type)
        assert answer.status_code == 202, answer.get_data(as_text=True)


def _apply_rate(client: redis.Redis, settings: Settings, posts: list[Post], keep: bool) -> float:
    client.flushdb()
    _accept_all(client, settings, posts)
    engine = Engine(Store(client), settings)
    if not keep:
        engine._parts = lambda view, version: []  # type: ignore[method-assign]
    partitions = [(TENANT, n) for n in range(PARTITIONS)]
    applied, started = 0, time.perf_counter()
    while taken := engine.store.pending.take_pending_many(partitions, 200):
        batches = {number: batch for (_, number), batch in taken.items()}
        applied += len(engine.apply_batches(TENANT, batches).applied)
    return applied / (time.perf_counter() - started)


def _part(rng: random.Random, index: int, now: datetime) -> CallPart:
    end = now - timedelta(seconds=rng.uniform(0, 20 * 3600))
    start = end - timedelta(seconds=rng.uniform(10, 600))
    uuid = f"call-{index}"
    answered = index % 2 == 1
    legs = [
        {
            "extension": {"number": str(ext), "name": f"Agent {ext}"},
            "call_uuid": uuid,
            "direction": "inbound",
            "state": "ended",
            "placed": False,
            "answered": answered,
            "missed": not answered,
            "started_at": isoformat(start),
            "since": isoformat(end),
            "answered_at": isoformat(start) if answered else None,
            "ended_at": isoformat(end),
            "talk_seconds": 60.0 if answered else 0.0,
        }
        for ext in rng.sample(range(101, 141), 2)
    ]
    contact: dict[str, Any] | None = None
    if index % 5 in (0, 1):
        contact = {
            "call_uuid": uuid,
            "kind": "missed" if index % 5 == 0 else "called_back",
            "number": f"+1555{rng.randint(1000000, 9999999)}",
            "at": isoformat(end),
            "missed_reason": "abandoned" if index % 5 == 0 else None,
        }
    return CallPart(uuid, 1, legs, contact, micros(end))


def _timed(action: Callable[[], object], repeats: int) -> list[float]:
    action()  # warm: a process parses each stored part once
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _reads(client: redis.Redis, rng: random.Random, count: int, now: datetime) -> str:
    client.flushdb()
    store = Store(client).supervisor
    parts = [_part(rng, i, now) for i in range(count)]
    for start in range(0, count, 500):
        store.save_parts(TENANT, parts[start : start + 500], now.timestamp())
    floor = statistics.median(_timed(lambda: store.raw_legs_since(TENANT, 0), 5))
    board_ms = _timed(lambda: board(store, TENANT, now), 5)
    contacts_floor = statistics.median(_timed(lambda: store.raw_contacts(TENANT), 5))
    items_ms = _timed(lambda: callbacks(store, TENANT), 5)
    stamp_ms = statistics.median(_timed(lambda: store.stamps([TENANT]), 5))
    return (
        f"  {count:>6} calls: board {spread(board_ms, 1)} = "
        f"{ratio(statistics.median(board_ms), floor)}x its raw read; "
        f"callbacks {spread(items_ms, 1)} = {ratio(statistics.median(items_ms), contacts_floor)}x; "
        f"a stream's poll (stamp) {stamp_ms:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="apply rounds per variant")
    parser.add_argument("--calls", type=int, default=400, help="simulated calls per round")
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory(prefix="bench-supervisor-") as workdir:
        server = RedisServer(Path(workdir))
        server.start()
        try:
            client = server.client()
            settings = Settings(webhook_tokens={"tok": "*"}, api_keys={"key": "*"})
            rng = random.Random(5)
            posts = [
                post
                for _ in range(args.calls)
                for post in generate_call(rng, TENANT, duplicate_rate=0.0, speed=1000).posts
            ]
            rates: dict[bool, list[float]] = {True: [], False: []}
            for number in range(args.rounds):
                progress(f"apply round {number + 1}/{args.rounds} ({len(posts)} events)")
                for keep in (False, True):
                    rates[keep].append(_apply_rate(client, settings, posts, keep))
            kept, bare = statistics.median(rates[True]), statistics.median(rates[False])
            print("\napply rate, events/s (median, min-max):")
            print(f"  view kept      {spread(rates[True], 0)}")
            print(f"  view not kept  {spread(rates[False], 0)}")
            print(f"  ratio kept / not kept: {ratio(kept, bare)}")

            print("\nreads among N settled calls of one tenant, ms (median, min-max):")
            now = datetime.now(UTC)
            for count in (1000, 5000, 20000):
                print(_reads(client, rng, count, now))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
