"""Growth benchmark: Redis bytes per ended call, live-call reads among many
ended calls, and how fast the outcome stream reads.

    python -m bench.growth [--calls 2000] [--populations 10000,1000000] [--gets 300]

1. Bytes per ended call: ``--calls`` simulated calls go through the real
   service over HTTP (wrk, one tenant) until every outcome is published;
   Redis ``used_memory`` before/after over the calls, beside MEMORY USAGE of
   each key a call leaves (log zset, records hash, call hash, its stream
   entry). Ratio: stored bytes / the webhook bytes the PBX sent for the call.
2. ``GET /v1/calls/live`` with 10 live calls among each population of ended
   calls (default 10,000 and 1,000,000), ratio against ``GET /healthz`` on the
   same connection in the same rounds, and against itself at the smallest
   population (flat = 1.0). The ended population beyond the HTTP-made calls
   is made in Redis by a Lua script that copies a random HTTP-made ended call
   (its log zset, records hash and call hash) under a new call uuid, the uuid
   replaced inside every stored JSON, and appends its outcome record to the
   tenant's outcome stream with an id made as publish_outcome.lua makes it;
   pipelined, ~1,000 scripts a round trip. So every ended call has the keys,
   sizes and stream entry of a real one (its event ids are the template's:
   ids are per call). AOF is switched off on the private Redis for the fill
   (it would write gigabytes to a shared disk); reads do not touch it.
3. Outcome stream read rate: ``GET /v1/outcomes`` paged by 1000 and the SSE
   stream, records/s, as ratios of a raw ``XRANGE`` loop over the same
   records in this process.

Loopback only; every loop bounded in count and time. Needs ~6 GB of free
memory for the 1,000,000 population (checked first; lowered if short).

Over 400 lines on purpose: one benchmark program, its three measurements in order.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import cast

import redis

from bench.common import BenchService, percentile, print_machine, progress, ratio, traffic
from bench.sender import KeepAlive, timed_gets
from bench.service import wait_for
from bench.wrk import post_all
from core.store import (
    Store,
    call_key,
    live_key,
    log_keys,
    outcomes_key,
    timers_key,
)
from devtools.simulator import generate_call

TENANT = "acme"
LIVE_CALLS = 10

CLONE_LUA = r"""
-- Copy an ended call under a new uuid, and append its outcome to the stream.
-- KEYS: 1 src log, 2 src records, 3 src call hash, 4 dst log, 5 dst records,
--       6 dst call hash, 7 outcomes stream
-- ARGV: 1 src uuid as a Lua pattern, 2 dst uuid, 3 ttl ms
local function swap(s) return (string.gsub(s, ARGV[1], ARGV[2])) end
local log = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #log, 2 do redis.call('ZADD', KEYS[4], log[i + 1], log[i]) end
local records = redis.call('HGETALL', KEYS[2])
for i = 1, #records, 2 do redis.call('HSET', KEYS[5], records[i], swap(records[i + 1])) end
local meta = redis.call('HGETALL', KEYS[3])
local record
for i = 1, #meta, 2 do
  if meta[i] == 'outcome' then record = swap(meta[i + 1]) end
end
local now = redis.call('TIME')
local us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local id = string.format('%.0f-0', us)
local last = redis.call('XREVRANGE', KEYS[7], '+', '-', 'COUNT', 1)
if last[1] then
  local ms, seq = string.match(last[1][1], '(%d+)-(%d+)')
  if tonumber(ms) >= us then
    id = ms .. '-' .. string.format('%.0f', tonumber(seq) + 1)
  end
end
id = redis.call('XADD', KEYS[7], id, 'record', record)
for i = 1, #meta, 2 do
  local k, v = meta[i], meta[i + 1]
  if k == 'outcome_id' then v = id elseif k ~= 'v' and k ~= 'revision' then v = swap(v) end
  redis.call('HSET', KEYS[6], k, v)
end
for k = 4, 6 do redis.call('PEXPIRE', KEYS[k], ARGV[3]) end
return id
"""


def api_headers(service: BenchService) -> dict[str, str]:
    return {"Authorization": f"Bearer {service.key}"}


# -- 1. bytes per ended call ----------------------------------------------------------


def ended_uuids(client: redis.Redis) -> list[str]:
    """Call uuids of every outcome in the tenant's stream."""
    found: list[str] = []
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(outcomes_key(TENANT)))
    for _, fields in entries:
        found.append(json.loads(fields[b"record"])["call_uuid"])
    return sorted(set(found))


def make_ended_calls(service: BenchService, calls: int, seed: int) -> tuple[int, int]:
    """Post ``calls`` simulated calls over HTTP (wrk); wait for every outcome.
    Returns (webhooks accepted, webhook body bytes sent)."""
    client = service.redis.client()
    sim = traffic(calls * 7, seed, (TENANT,))
    wanted = {c.call_uuid for c in sim.calls[:calls]}
    posts = [p for p in sim.posts if p.fields["callUuid"] in wanted]
    progress(f"posting {len(posts)} webhooks of {len(wanted)} calls over HTTP")
    result, seconds = post_all([service.base_url], service.webhook_path(), posts, client, [TENANT])
    progress(f"{result.accepted} accepted in {seconds:.1f} s; waiting for all outcomes")
    wait_for(lambda: _decided(client) >= len(wanted), 120, "every outcome", interval=0.5)
    wait_for(lambda: _live(client) == 0, 30, "no live call left", interval=0.5)
    return result.accepted, sum(len(p.body()[0]) for p in posts)


def _decided(client: redis.Redis) -> int:
    return int(client.xlen(outcomes_key(TENANT)))


def _live(client: redis.Redis) -> int:
    return int(client.zcard(live_key(TENANT)))


def key_bytes(client: redis.Redis, uuids: list[str]) -> dict[str, float]:
    """Mean MEMORY USAGE of each key an ended call leaves, over ``uuids``."""
    names = ("log zset", "records hash", "call hash")
    totals = dict.fromkeys(names, 0.0)
    with client.pipeline(transaction=False) as pipe:
        for call_uuid in uuids:
            base = call_key(TENANT, call_uuid)
            for key in (*log_keys(base), base):
                pipe.memory_usage(key, samples=0)
        answers = pipe.execute()
    for i, size in enumerate(answers):
        totals[names[i % 3]] += float(size or 0)
    out = {name: total / max(len(uuids), 1) for name, total in totals.items()}
    stream = float(client.memory_usage(outcomes_key(TENANT), samples=0) or 0)
    out["stream entry"] = stream / max(int(client.xlen(outcomes_key(TENANT))), 1)
    return out


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def print_bytes(
    calls: int, grown: int, body_bytes: int, webhooks: int, keys: dict[str, float]
) -> float:
    per_call = grown / calls
    sent = body_bytes / calls
    print(f"\n1. Redis bytes per ended call ({calls} calls, {webhooks} webhooks over HTTP)")
    print(f"   used_memory grew {grown / 1e6:.1f} MB => {per_call:,.0f} bytes per ended call")
    print(f"   webhook bodies the PBX sent: {sent:,.0f} bytes per call "
          f"({webhooks / calls:.1f} webhooks)")  # fmt: skip
    parts = ", ".join(f"{name} {size:,.0f}" for name, size in keys.items())
    print(f"   MEMORY USAGE per call: {parts} (sum {sum(keys.values()):,.0f})")
    print(f"   => stored / sent = {ratio(per_call, sent)}")
    return per_call


# -- 2. live calls among many ended ones ---------------------------------------------


def add_live_calls(service: BenchService, count: int, seed: int) -> list[str]:
    """``count`` calls that started (InboundCall, queueEntered) and never end."""
    rng = random.Random(seed)
    client = KeepAlive(service.base_url)
    made = []
    try:
        for _ in range(count):
            call = generate_call(rng, TENANT, kind="queue_answered")
            for post in [p for p in call.posts if p.event_type != "HangupCall"][:2]:
                body, content_type = post.body()
                status, _ = client.request(
                    "POST", service.webhook_path(), body, {"Content-Type": content_type}
                )
                if status != 202:
                    raise RuntimeError(f"webhook answered {status}")
            made.append(call.call_uuid)
    finally:
        client.close()
    return made


class Cloner:
    """Makes ended calls by copying real ones (CLONE_LUA), pipelined."""

    def __init__(self, client: redis.Redis, templates: list[str], seed: int) -> None:
        self.client = client
        self.script = client.register_script(CLONE_LUA)
        self.templates = templates
        self.rng = random.Random(seed)
        self.ttl_ms = Store(client).backend.ttl_ms

    def clone(self, count: int, batch: int = 1000, max_seconds: float = 240.0) -> float:
        """Add ``count`` ended calls; returns the seconds it took."""
        started = time.monotonic()
        last_print = started
        done = 0
        stream = outcomes_key(TENANT)
        while done < count:
            if time.monotonic() - started > max_seconds:
                raise TimeoutError(f"cloning stopped after {max_seconds:.0f} s at {done}")
            with self.client.pipeline(transaction=False) as pipe:
                for _ in range(min(batch, count - done)):
                    source = self.rng.choice(self.templates)
                    target = str(uuid.UUID(int=self.rng.getrandbits(128)))
                    src, dst = call_key(TENANT, source), call_key(TENANT, target)
                    keys = [*log_keys(src), src, *log_keys(dst), dst, stream]
                    pattern = source.replace("-", "%-")
                    self.script(keys=keys, args=[pattern, target, self.ttl_ms], client=pipe)
                pipe.execute()
            done += min(batch, count - done)
            if time.monotonic() - last_print > 5:
                rate = done / (time.monotonic() - started)
                progress(f"  cloned {done:,}/{count:,} ended calls ({rate:,.0f}/s)")
                last_print = time.monotonic()
        return time.monotonic() - started


def measure_live(service: BenchService, rounds: int, gets: int) -> dict[str, list[float]]:
    """Sequential GETs on one keep-alive connection, interleaved by rounds:
    /v1/calls/live, /healthz, and store.calls.live_calls in this process."""
    headers = api_headers(service)
    store = Store(service.redis.client())
    out: dict[str, list[float]] = {"live": [], "healthz": [], "store": []}
    for _ in range(rounds):
        out["live"] += timed_gets(service.base_url, "/v1/calls/live", gets // rounds, headers)
        out["healthz"] += timed_gets(service.base_url, "/healthz", gets // rounds, headers)
        for _ in range(gets // rounds):
            started = time.perf_counter()
            store.calls.live_calls([TENANT])
            out["store"].append(time.perf_counter() - started)
    return out


def check_live(service: BenchService, expected: int) -> None:
    status, raw = KeepAlive(service.base_url).request(
        "GET", "/v1/calls/live", headers=api_headers(service)
    )
    calls = json.loads(raw)["calls"]
    if status != 200 or len(calls) != expected:
        raise RuntimeError(f"/v1/calls/live answered {status} with {len(calls)} calls")


def population_row(client: redis.Redis) -> dict[str, int]:
    """What the read path could depend on: sizes of the tenant's indexes."""
    return {
        "ended": _decided(client),
        "live index": _live(client),
        "timers": int(client.zcard(timers_key(TENANT))),
        "keys": int(client.dbsize()),
    }


def print_live(results: list[tuple[dict[str, int], dict[str, list[float]]]]) -> None:
    print(f"\n2. GET /v1/calls/live with {LIVE_CALLS} live calls among N ended ones")
    base_live = statistics.median(results[0][1]["live"])
    for row, times in results:
        live, healthz, store = times["live"], times["healthz"], times["store"]
        print(
            f"   N={row['ended']:>9,} (live index {row['live index']}, timers {row['timers']}, "
            f"{row['keys']:,} keys): live p50 {1000 * percentile(live, 50):.2f} ms, "
            f"p99 {1000 * percentile(live, 99):.2f} ms; healthz p50 "
            f"{1000 * percentile(healthz, 50):.2f} ms; store.calls.live_calls p50 "
            f"{1000 * percentile(store, 50):.3f} ms"
        )
        print(
            f"     => live / healthz = {ratio(statistics.median(live), statistics.median(healthz))}"
            f", live / live at N={results[0][0]['ended']:,} = "
            f"{ratio(statistics.median(live), base_live)}"
        )


# -- 3. reading the outcome stream ---------------------------------------------------


def read_http(service: BenchService, records: int, max_seconds: float) -> tuple[int, float]:
    """Page /v1/outcomes by 1000 from the start; (records read, seconds)."""
    client = KeepAlive(service.base_url)
    headers = api_headers(service)
    got, after = 0, ""
    started = time.perf_counter()
    try:
        while got < records and time.perf_counter() - started < max_seconds:
            path = f"/v1/outcomes?limit=1000&tenant_id={TENANT}" + (
                f"&after={after}" if after else ""
            )
            status, raw = client.request("GET", path, headers=headers)
            page = json.loads(raw)
            if status != 200 or not page["outcomes"]:
                break
            got += len(page["outcomes"])
            after = page["next"] or page["outcomes"][-1]["id"]
    finally:
        client.close()
    return got, time.perf_counter() - started


def read_sse(service: BenchService, records: int, max_seconds: float) -> tuple[int, float]:
    """Read the SSE stream from the start; (records read, seconds)."""
    client = KeepAlive(service.base_url, timeout=30)
    got = 0
    started = time.perf_counter()
    connection = http.client.HTTPConnection(client.host, client.port, timeout=30)
    try:
        connection.request(
            "GET", f"/v1/outcomes/stream?tenant_id={TENANT}", headers=api_headers(service)
        )
        response = connection.getresponse()
        while got < records and time.perf_counter() - started < max_seconds:
            line = response.readline()
            if not line:
                break
            if line.startswith(b"event: outcome"):
                got += 1
    finally:
        connection.close()
    return got, time.perf_counter() - started


def read_raw(client: redis.Redis, records: int) -> tuple[int, float]:
    """Raw XRANGE COUNT 1000 over the same stream, JSON-decoded; (records, seconds)."""
    got, start = 0, "-"
    started = time.perf_counter()
    while got < records:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            client.xrange(outcomes_key(TENANT), min=start, max="+", count=1000),
        )
        if not entries:
            break
        for _, fields in entries:
            json.loads(fields[b"record"])
        got += len(entries)
        start = "(" + entries[-1][0].decode()
    return got, time.perf_counter() - started


def print_reads(rows: dict[str, tuple[int, float]]) -> None:
    print("\n3. Reading the outcome stream from its start (records/s)")
    raw_rate = rows["raw XRANGE"][0] / rows["raw XRANGE"][1]
    for name, (got, seconds) in rows.items():
        rate = got / seconds if seconds else 0.0
        print(f"   {name:<24} {got:>8,} records in {seconds:5.1f} s = {rate:9,.0f}/s  "
              f"=> / raw XRANGE = {ratio(rate, raw_rate)}")  # fmt: skip


# -- main ---------------------------------------------------------------------------


def memory_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def affordable(populations: list[int], per_call: float) -> list[int]:
    """Drop populations the machine's free memory cannot hold (keep half free)."""
    budget = memory_available() / 2
    kept = [n for n in populations if n * per_call * 1.2 < budget]
    for n in populations:
        if n not in kept:
            progress(f"skipping N={n:,}: needs ~{n * per_call * 1.2 / 1e9:.1f} GB, "
                     f"only {budget / 1e9:.1f} GB may be used")  # fmt: skip
    return kept


def run(args: argparse.Namespace) -> None:
    env = {"OUTCOME_GRACE_SECONDS": "1", "WORKER_CONCURRENCY": "1"}
    with BenchService(env) as service:
        service.start(workers=1)
        client = service.redis.client()
        before = used_memory(client)
        webhooks, body_bytes = make_ended_calls(service, args.calls, args.seed)
        templates = ended_uuids(client)
        grown = used_memory(client) - before
        keys = key_bytes(client, templates[:500])
        per_call = print_bytes(len(templates), grown, body_bytes, webhooks, keys)
        sys.stdout.flush()

        add_live_calls(service, LIVE_CALLS, args.seed + 1)
        wait_for(lambda: _live(client) == LIVE_CALLS, 30, "the live calls to show")
        client.config_set("appendonly", "no")
        cloner = Cloner(client, templates, args.seed + 2)
        results = []
        for population in affordable(args.populations, per_call):
            missing = population - _decided(client)
            if missing > 0:
                progress(f"making {missing:,} more ended calls (Lua copies of real ones)")
                seconds = cloner.clone(missing)
                progress(f"  {missing / seconds:,.0f} ended calls/s")
            check_live(service, LIVE_CALLS)
            progress(f"timing /v1/calls/live at N={_decided(client):,}")
            results.append((population_row(client), measure_live(service, 4, args.gets)))
        print_live(results)
        ended, used = _decided(client), used_memory(client)
        print(f"   used_memory at the end: {used / 1e9:.2f} GB for {ended:,} ended calls = "
              f"{(used - before) / max(ended, 1):,.0f} bytes each")  # fmt: skip
        sys.stdout.flush()

        count = min(args.read_records, _decided(client))
        progress(f"reading {count:,} outcome records: raw XRANGE, HTTP pages, SSE")
        rows = {"raw XRANGE": read_raw(client, count)}
        rows["GET /v1/outcomes (1000)"] = read_http(service, count, args.read_seconds)
        rows["SSE /v1/outcomes/stream"] = read_sse(service, count, args.read_seconds)
        print_reads(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000, help="calls made over HTTP")
    parser.add_argument(
        "--populations",
        default="10000,1000000",
        help="ended-call populations to time live reads at",
    )
    parser.add_argument("--gets", type=int, default=400, help="GETs of each kind per population")
    parser.add_argument("--read-records", type=int, default=100_000, help="outcomes to read")
    parser.add_argument("--read-seconds", type=float, default=30.0, help="bound on each read")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    args.populations = [int(n) for n in args.populations.split(",") if n.strip()]
    print("machine:")
    print_machine()
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
