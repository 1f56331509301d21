"""Intake with 1,000 tenants and 1,000 webhook tokens against 1, in the same run.

    python -m bench.credentials [--seconds 6] [--repeats 3] [--tenants 1000]

One service (the Procfile's web, no worker: intake alone, as bench.intake's
default) on a private Redis. One tenant, onboarded as data, posts realistic
webhooks (devtools.simulator, wrk) with a webhook token made over the API.
Each round saturates intake twice, in alternating order: with that token the
only one in the directory, and with ``--tenants`` - 1 more tenants and tokens
in it (made, then revoked, between runs; each web process sees the change
within CHECK_SECONDS). Printed: req/s and p99 of each, and per round the ratio
many / one, which should be about 1: a token is one dictionary hit on its
digest, whatever the count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request

import redis

from bench.common import BenchService, progress, ratio, spread, traffic
from bench.intake import Saturation, Target, saturate
from bench.wrk import write_bodies
from core.store import (
    CHECK_SECONDS,
    Credential,
    CredentialKind,
    Scope,
    Store,
    TenantRecord,
    digest,
    new_credential_id,
    new_secret,
)

TENANT = "acme"


def admin_post(service: BenchService, path: str, body: dict[str, str]) -> dict[str, str]:
    request = urllib.request.Request(
        service.base_url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {service.key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        made: dict[str, str] = json.loads(answer.read())
        return made


def add_tokens(store: Store, count: int, round_number: int) -> list[str]:
    """``count`` more tenants with a token each, straight into the directory (the
    API's way, less its reload of this process's copy after each)."""
    ids = []
    for n in range(count):
        tenant = f"bench-{round_number}-{n:05d}"
        store.directory.create_tenant(TenantRecord(id=tenant))
        credential = Credential(
            id=new_credential_id(CredentialKind.WEBHOOK_TOKEN),
            kind=CredentialKind.WEBHOOK_TOKEN,
            tenant_id=tenant,
            scope=Scope.WRITE,
        )
        store.directory.add_credential(credential, digest(new_secret()))
        ids.append(credential.id)
    return ids


def settle() -> None:
    """Long enough for every web process to have reloaded the directory."""
    time.sleep(2 * CHECK_SECONDS + 0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="each saturation run")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (one run of each)")
    parser.add_argument("--tenants", type=int, default=1000, help="tenants and tokens of 'many'")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--events", type=int, default=20_000, help="distinct bodies to cycle")
    args = parser.parse_args(argv)

    progress(f"generating {args.events} webhook bodies of one tenant")
    bodies = write_bodies(traffic(args.events, tenants=(TENANT,)).posts)
    service = BenchService()
    runs: dict[str, list[Saturation]] = {"one": [], "many": []}
    try:
        service.start(workers=0)
        client = redis.Redis.from_url(service.redis.url)
        store = Store(client)
        admin_post(service, "/v1/tenants", {"id": TENANT})
        token = admin_post(service, f"/v1/tenants/{TENANT}/webhook-tokens", {"name": "bench"})
        target = Target("ours", service.base_url, token["path"], service.python_pids("web"))
        progress("warming up (2 s)")
        saturate(target, bodies, argparse.Namespace(**{**vars(args), "seconds": 2.0}))
        for round_number in range(args.repeats):
            order = ["one", "many"] if round_number % 2 == 0 else ["many", "one"]
            progress(f"round {round_number + 1}/{args.repeats}: {' then '.join(order)}")
            for state in order:
                added = add_tokens(store, args.tenants - 1, round_number) if state == "many" else []
                settle()
                progress(f"  {state}: {len(store.directory.refresh().credentials)} tokens stored")
                runs[state].append(saturate(target, bodies, args))
                for credential_id in added:
                    store.directory.revoke(credential_id)
        client.close()
    finally:
        service.stop()

    one, many = runs["one"], runs["many"]
    for state, runs_of in (("1 token", one), (f"{args.tenants} tenants and tokens", many)):
        rates, p99s = [r.result.rate for r in runs_of], [r.result.p99_ms for r in runs_of]
        cpu = [r.cpu_ms for r in runs_of]
        print(
            f"intake, {state}: {spread(rates, 0)} req/s, p99 {spread(p99s)} ms, "
            f"server CPU {spread(cpu)} ms/request"
        )
    pairs = list(zip(many, one, strict=True))
    rate_rounds = ", ".join(ratio(m.result.rate, o.result.rate) for m, o in pairs)
    cpu_rounds = ", ".join(ratio(m.cpu_ms, o.cpu_ms) for m, o in pairs)
    median_rate = ratio(
        statistics.median(r.result.rate for r in many),
        statistics.median(r.result.rate for r in one),
    )
    median_cpu = ratio(
        statistics.median(r.cpu_ms for r in many), statistics.median(r.cpu_ms for r in one)
    )
    print(f"many / one req/s: {median_rate} (medians); per round {rate_rounds}")
    print(f"many / one CPU per request: {median_cpu} (medians); per round {cpu_rounds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
