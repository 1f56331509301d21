"""What the per-token webhook rate limit costs intake: CPU per webhook, limit off and on.

The same app in this process, on one private redis-server, posts distinct
InboundCall webhooks through its WSGI stack (the Flask test client: the quick
path and the intake, no HTTP server) with WEBHOOK_RATE_LIMIT 0 (off, the
baseline) and at its default, in alternating rounds. CPU time (process_time,
not wall time) per webhook is what a loaded machine does not blur; the ratio
on/off is printed per round and as the median. The bucket is made too large
to refuse anything, so every round measures taking tokens, not refusals.

    python -m bench.rate_limit [--rounds 6] [--webhooks 600]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from app import create_app
from bench.common import print_machine, progress
from core.settings import Settings
from devtools.redis_server import RedisServer
from statemachine.primevox import EVENTS

TOKEN = "bench-rate-token-0123456789"


def cpu_per_webhook(redis_url: str, rate: float, webhooks: int) -> float:
    """Microseconds of this process's CPU per accepted webhook at ``rate`` (0: off)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    settings = Settings(
        webhook_tokens={TOKEN: "*"}, webhook_rate_limit=rate, webhook_rate_burst=10**9
    )
    app = create_app({"TESTING": True, "REDIS_CLIENT": client, "CALLSTATE_SETTINGS": settings})
    web = app.test_client()
    bodies = [
        EVENTS.sample("InboundCall", ids={"tenantId": "bench", "callUuid": f"rate-{n}"})
        for n in range(webhooks + 50)
    ]
    for body in bodies[:50]:  # warm: scripts loaded, connections open
        assert web.post(f"/webhooks/primevox/{TOKEN}", data=body).status_code == 202
    began = time.process_time()
    for body in bodies[50:]:
        answer = web.post(f"/webhooks/primevox/{TOKEN}", data=body)
        assert answer.status_code == 202, answer.get_data(as_text=True)
    spent = time.process_time() - began
    client.flushall()
    client.close()
    return spent / webhooks * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--webhooks", type=int, default=600, help="per round and setting")
    args = parser.parse_args()
    print_machine()
    default_rate = Settings().webhook_rate_limit
    with tempfile.TemporaryDirectory(prefix="callstate-rate-") as directory:
        server = RedisServer(Path(directory), durable=False)
        server.start()
        try:
            ratios: list[float] = []
            print(f"\n{'round':>5} {'off µs':>8} {'on µs':>8}  on/off")
            for number in range(args.rounds):
                progress(f"round {number + 1}/{args.rounds}")
                order = [0.0, default_rate] if number % 2 == 0 else [default_rate, 0.0]
                spent = {rate: cpu_per_webhook(server.url, rate, args.webhooks) for rate in order}
                ratios.append(spent[default_rate] / spent[0.0])
                print(
                    f"{number + 1:5} {spent[0.0]:8.0f} {spent[default_rate]:8.0f}  {ratios[-1]:.2f}"
                )
        finally:
            server.stop()
    print(
        f"\nCPU per webhook, limit at its default ({default_rate:g}/s) over off: "
        f"median {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
