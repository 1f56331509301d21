"""``flask simulate``: post realistic PrimeVOX traffic to a callstate URL."""

from __future__ import annotations

import heapq
import os
import random
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from threading import Lock

import click

from devtools.simulator import (
    Post,
    generate_call,
    generate_call_back,
    generate_sms,
    wants_call_back,
)


def _default_token() -> str | None:
    first = os.environ.get("WEBHOOK_TOKENS", "").split(",")[0]
    return first.rpartition(":")[0] or os.environ.get("WEBHOOK_TOKEN", "").strip() or None


def post_webhook(url: str, post: Post, timeout: float = 10.0) -> int:
    """POST one webhook; the HTTP status, or 0 when nothing answered."""
    body, content_type = post.body()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


@click.command("simulate")
@click.argument("base_url", required=False)
@click.option(
    "--token",
    default=_default_token,
    help="Webhook token (default: WEBHOOK_TOKENS' first, or WEBHOOK_TOKEN).",
)
@click.option("--rate", default=2.0, show_default=True, help="New calls a second.")
@click.option("--duration", default=60.0, show_default=True, help="Seconds to start calls for.")
@click.option("--tenant", "tenants", multiple=True, default=["acme"], show_default=True)
@click.option("--speed", default=1.0, show_default=True, help="Run calls this much faster.")
@click.option("--duplicates", default=0.1, show_default=True, help="Share of posts sent twice.")
@click.option("--sms-rate", default=0.1, show_default=True, help="SMS exchanges a second.")
@click.option(
    "--call-backs",
    default=0.6,
    show_default=True,
    help="Share of missed callers an agent dials back, 30-120 s (at speed 1) after the miss.",
)
@click.option("--seed", type=int, help="Repeatable traffic.")
def simulate(
    base_url: str | None,
    token: str | None,
    rate: float,
    duration: float,
    tenants: tuple[str, ...],
    speed: float,
    duplicates: float,
    sms_rate: float,
    call_backs: float,
    seed: int | None,
) -> None:
    """Post calls of every kind (queues, ring groups, voicemail, abandons,
    outbound, SMS) to BASE_URL (default http://127.0.0.1:$PORT) in real time."""
    if not token:
        raise click.UsageError("no webhook token: pass --token or set WEBHOOK_TOKENS")
    base_url = (base_url or f"http://127.0.0.1:{os.environ.get('PORT', '5000')}").rstrip("/")
    url = f"{base_url}/webhooks/primevox/{token}"
    rng = random.Random(seed)
    start = time.monotonic() + 0.5
    due: list[tuple[float, int, Post]] = []
    kinds: Counter[str] = Counter()
    at, n = 0.0, 0
    while at < duration:
        call = generate_call(rng, rng.choice(tenants), duplicate_rate=duplicates, speed=speed)
        kinds[call.kind] += 1
        for post in call.posts:
            n += 1
            heapq.heappush(due, (start + at + post.at, n, post))
        if wants_call_back(call) and rng.random() < call_backs:
            back = generate_call_back(rng, call, speed=speed)
            kinds[back.kind] += 1
            later = at + call.posts[-1].at + rng.uniform(30, 120) / speed
            for post in back.posts:
                n += 1
                heapq.heappush(due, (start + later + post.at, n, post))
        at += rng.expovariate(rate)
    at = 0.0
    while sms_rate > 0 and at < duration:
        for post in generate_sms(rng, rng.choice(tenants)):
            n += 1
            heapq.heappush(due, (start + at + post.at / speed, n, post))
        kinds["sms"] += 1
        at += rng.expovariate(sms_rate)

    answers: Counter[int] = Counter()
    lock = Lock()

    def send(post: Post) -> None:
        status = post_webhook(url, post)
        with lock:
            answers[status] += 1

    click.echo(f"posting {n} webhooks ({sum(kinds.values())} calls/SMS) to {base_url}")
    total = len(due)
    with (
        ThreadPoolExecutor(max_workers=32) as pool,
        click.progressbar(length=total, label="webhooks", show_pos=True) as bar,
    ):
        while due:
            when, _, post = due[0]
            wait = when - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 0.05))
                continue
            heapq.heappop(due)
            pool.submit(send, post)
            bar.update(1)
    click.echo("calls: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    click.echo(
        "answers: " + ", ".join(f"{k or 'no answer'}: {v}" for k, v in sorted(answers.items()))
    )
    if set(answers) - {202}:
        raise SystemExit(1)
