"""Golden capture: this code and an older revision answer the same scripted requests;
every difference in what they answer is printed.

    python -m bench.golden --before <git rev> [--save answers.json]

Both codes run side by side, each its Procfile's release, web and one worker on
a private redis-server, with call history on SQLite (``DATABASE_URL``), plus a
second web process without ``DATABASE_URL`` (and without
``SUBSCRIPTION_ALLOW_PRIVATE``) on the same Redis. The older revision is checked
out in a temporary git worktree (bench/tenants.py's ``checkout`` and
``CodeService``). Both get the same requests (bench/golden_requests.py: every
route, good and bad arguments, every webhook event in both encodings, refused
bodies, subscriptions delivering to a local receiver, streams' first events, and
at the end Redis stopped), phase by phase, each phase waiting until the calls are
decided, archived and delivered.

What legitimately differs between two runs is normalised before comparing:
timestamps of the last days, outcome ids, subscription ids, secrets and history
cursors (each numbered in order of first appearance, so "the same id again"
still shows), durations (``*_seconds`` figures and lags), metric values (only
the names are compared) and Content-Length. Every difference in status, headers
(all but Date, Server, Content-Length, Connection, Keep-Alive) and body is
printed; the exit status is 1 if there is one.

Over 400 lines as one tool read top to bottom: the services, sending, waiting,
normalising, comparing.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import io
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from difflib import unified_diff
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.common import progress
from bench.golden_requests import (
    API_KEYS,
    WEBHOOK_TOKENS,
    Call,
    Phase,
    script,
)
from bench.service import ROOT, wait_for
from bench.tenants import CodeService, checkout
from devtools.service import free_port, wait_healthy

SKIPPED_HEADERS = {"date", "server", "content-length", "connection", "keep-alive"}
STREAM_SECONDS = 3.0


# -- the services --------------------------------------------------------------------


class GoldenService(CodeService):
    """One code's release, web and worker, with history on SQLite, and a second web
    (``plain``) without history or private subscription URLs."""

    def __init__(self, root: Path) -> None:
        super().__init__(
            root,
            {
                "OUTCOME_GRACE_SECONDS": "1",
                "API_KEYS": API_KEYS,
                "WEBHOOK_TOKENS": WEBHOOK_TOKENS,
                "SUBSCRIPTION_ALLOW_PRIVATE": "1",
                "WEB_CONCURRENCY": "1",
            },
        )
        self.env["DATABASE_URL"] = f"sqlite:///{self.workdir / 'history.sqlite3'}"
        self.plain_url = ""

    def start(self, workers: int = 1) -> GoldenService:
        release = self.start_process("release")
        if release.wait(120) != 0:
            raise RuntimeError(f"release failed:\n{release.tails()}")
        super().start(workers)
        port = free_port()
        plain = self.start_process(
            "web",
            {
                "PORT": str(port),
                "DATABASE_URL": "",
                "SUBSCRIPTION_ALLOW_PRIVATE": "0",
                "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics-plain"),
            },
        )
        self.plain_url = f"http://127.0.0.1:{port}"
        wait_healthy(self.plain_url, plain, 30)
        return self

    def url(self, web: str) -> str:
        return self.plain_url if web == "plain" else self.base_url


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    """A local endpoint that takes every delivery (204)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


# -- sending -------------------------------------------------------------------------


@dataclass
class Answer:
    """What one request got: status, headers (lower-case names), body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes
    streamed: bool = False

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def send(base_url: str, call: Call, seen: dict[str, Any]) -> Answer:
    """Send ``call`` (built from ``seen``) on a connection of its own."""
    parsed = urlparse(base_url)
    path = call.path(seen) if callable(call.path) else call.path
    body = call.body(seen) if callable(call.body) else call.body
    headers = dict(call.headers)
    if call.key is not None:
        headers["Authorization"] = f"Bearer {call.key}"
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
    try:
        connection.request(call.method, path, body=body, headers=headers)
        response = connection.getresponse()
        found = {name.lower(): value for name, value in response.getheaders()}
        if found.get("content-type", "").startswith("text/event-stream"):
            return Answer(response.status, found, _first_events(response, call.events), True)
        return Answer(response.status, found, response.read())
    finally:
        connection.close()


def _first_events(response: http.client.HTTPResponse, events: int) -> bytes:
    """The first ``events`` blocks of a stream, or what came in STREAM_SECONDS."""
    data = b""
    deadline = time.monotonic() + STREAM_SECONDS
    while data.count(b"\n\n") < events and time.monotonic() < deadline:
        try:
            chunk = response.read1(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    blocks = data.split(b"\n\n")
    return b"\n\n".join(blocks[:events]) + b"\n\n"


# -- waiting -------------------------------------------------------------------------


def _read(service: GoldenService, path: str, web: str = "main") -> Any:
    answer = send(service.url(web), Call("wait", "GET", path), {})
    if answer.status != 200:
        raise RuntimeError(f"GET {path} answered {answer.status}")
    return answer.json()


def settle(service: GoldenService, seen: dict[str, Any]) -> None:
    """Wait until every ended call's outcome is decided, archived, and delivered to
    every subscription, and nothing is pending."""
    ended = {
        value["call_uuid"]
        for label, value in seen.items()
        if isinstance(value, dict)
        and value.get("status") == "accepted"
        and value.get("event_type") == "HangupCall"
        and label.startswith(("webhook", "sample", "refused", "acme token", "basic"))
    }

    def decided() -> bool:
        records = _read(service, "/v1/outcomes?limit=1000")["outcomes"]
        return {r["call_uuid"] for r in records} >= ended

    def archived() -> bool:
        archived = _read(service, "/v1/calls?limit=1000")["calls"]
        outcomes = _read(service, "/v1/outcomes?limit=1000")["outcomes"]
        return len(archived) == len({r["call_uuid"] for r in outcomes})

    def delivered() -> bool:
        """Every subscription has a finished delivery of each record it matches."""
        records = _read(service, "/v1/outcomes?limit=1000")["outcomes"]
        for subscription in _read(service, "/v1/subscriptions")["subscriptions"]:
            path = f"/v1/subscriptions/{subscription['id']}/deliveries"
            deliveries = _read(service, path)["deliveries"]
            matching = [
                r
                for r in records
                if subscription["tenant_id"] in ("*", r["tenant_id"])
                and (not subscription["outcomes"] or r["outcome"] in subscription["outcomes"])
            ]
            if len(deliveries) != len(matching) or any(
                d["status"] == "pending" for d in deliveries
            ):
                return False
        return True

    def count() -> int:
        return len(_read(service, "/v1/outcomes?limit=1000")["outcomes"])

    wait_for(decided, 120, "every ended call's outcome", interval=0.2)
    # Calls that end otherwise than by a hangup are decided by their own timers.
    last = -1
    while (current := count()) != last:
        last = current
        time.sleep(2.0)
    wait_for(archived, 120, "the history archive", interval=0.2)
    wait_for(delivered, 120, "every delivery", interval=0.2)


# -- normalising ---------------------------------------------------------------------

_TIME = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
_PATTERNS = {
    "time": _TIME,
    "outcome": r"(?<![\d-])\d{16}-\d+(?![\d])",
    "sub": r"sub_[0-9a-f]{16}",
    "secret": r"whsec_[A-Za-z0-9+/=]+",
    "webhook": r"msg_[0-9a-f]{32}",
}
_ANY = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _PATTERNS.items()))
# Figures that are durations measured in this run.
_DURATION = re.compile(r"(seconds|_ms|lag)$|^(wait|talk|ring|hold|handle|duration)")
# Keys whose strings are opaque cursors (history pages).
_CURSOR_KEYS = {"next", "cursor"}


@dataclass
class Normaliser:
    """Replaces what differs run to run, numbering each distinct value by kind."""

    recent: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(days=2))
    numbers: dict[tuple[str, str], int] = field(default_factory=dict)

    def number(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self.numbers:
            self.numbers[key] = sum(1 for k in self.numbers if k[0] == kind) + 1
        return f"<{kind}#{self.numbers[key]}>"

    def text(self, text: str) -> str:
        text = _ANY.sub(self._replace, text)
        for (kind, value), number in self.numbers.items():
            if kind == "cursor" and value in text:
                text = text.replace(value, f"<cursor#{number}>")
        return text

    def _replace(self, match: re.Match[str]) -> str:
        kind = match.lastgroup or ""
        value = match.group(0)
        if kind == "time":
            return "<time>" if self._is_recent(value) else value
        return self.number(kind, value)

    def _is_recent(self, value: str) -> bool:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment >= self.recent

    def json(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.json(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v, key) for v in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            return "<duration>" if _DURATION.search(key) else value
        if isinstance(value, str):
            shown = self.text(value)
            if key in _CURSOR_KEYS and shown == value:
                return self.number("cursor", value)
            return shown
        return value


def shown(call: Call, answer: Answer, normaliser: Normaliser) -> dict[str, Any]:
    """What is compared of one answer."""
    headers = {
        name: normaliser.text(value)
        for name, value in sorted(answer.headers.items())
        if name not in SKIPPED_HEADERS
    }
    content_type = answer.headers.get("content-type", "")
    text = answer.body.decode("utf-8", "replace")
    body: Any
    if answer.streamed:
        body = [_event(block, normaliser) for block in text.split("\n\n") if block]
    elif content_type.startswith("application/json"):
        parsed = answer.json()
        body = normaliser.json(parsed) if parsed is not None else normaliser.text(text)
    elif content_type.startswith("text/csv"):
        body = _csv(normaliser.text(text))
    elif call.path == "/metrics":
        body = sorted({line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")})
    else:
        body = normaliser.text(text).splitlines()
    return {"status": answer.status, "headers": headers, "body": body}


def _csv(text: str) -> list[list[str]]:
    """CSV rows, durations replaced (by their column's name)."""
    rows = list(csv.reader(io.StringIO(text)))
    durations = {n for n, name in enumerate(rows[0] if rows else []) if _DURATION.search(name)}
    return [
        [("<duration>" if n in durations and cell and i else cell) for n, cell in enumerate(row)]
        for i, row in enumerate(rows)
    ]


def _event(block: str, normaliser: Normaliser) -> list[Any]:
    lines: list[Any] = []
    for line in block.split("\n"):
        name, _, value = line.partition(": ")
        if name == "data" and value.startswith(("{", "[")):
            with contextlib.suppress(ValueError):
                lines.append({"data": normaliser.json(json.loads(value))})
                continue
        lines.append(normaliser.text(line))
    return lines


# -- running -------------------------------------------------------------------------


@dataclass
class Side:
    """One code under test: its service, its answers so far, and what is compared."""

    name: str
    service: GoldenService
    seen: dict[str, Any] = field(default_factory=dict)
    normaliser: Normaliser = field(default_factory=Normaliser)
    shown: dict[str, dict[str, Any]] = field(default_factory=dict)

    def run(self, phase: Phase) -> None:
        if phase.name == "redis down":
            self.service.redis.stop()
        for call in phase.calls:
            if call.label in self.shown:
                raise ValueError(f"two requests are labelled {call.label!r}")
            try:
                answer = send(self.service.url(call.web), call, self.seen)
            except (KeyError, IndexError, TypeError) as exc:
                # Built from an answer this code did not give: that is the difference.
                self.shown[call.label] = {"not sent": f"{type(exc).__name__}: {exc}"}
                continue
            self.seen[call.label] = answer.json()
            compared = shown(call, answer, self.normaliser)
            request = self.normaliser.text(_request_line(call, self.seen))
            self.shown[call.label] = {"request": request, **compared}
            time.sleep(call.pause)
        if phase.settle:
            settle(self.service, self.seen)


def _request_line(call: Call, seen: dict[str, Any]) -> str:
    path = call.path(seen) if callable(call.path) else call.path
    return f"{call.method} {path}" + (f" ({call.web} web)" if call.web != "main" else "")


def differences(before: Side, now: Side) -> list[str]:
    """A unified diff per request whose answer differs."""
    found = []
    for label, then in before.shown.items():
        current = now.shown.get(label)
        if current == then:
            continue
        old = json.dumps(then, indent=1, sort_keys=True, ensure_ascii=False).splitlines()
        new = json.dumps(current, indent=1, sort_keys=True, ensure_ascii=False).splitlines()
        diff = unified_diff(old, new, "before", "now", lineterm="", n=2)
        found.append(f"== {label}\n" + "\n".join(diff))
    return found


def run(before_root: Path, phases: Callable[[str], list[Phase]]) -> tuple[Side, Side]:
    with receiver() as url:
        sides = [Side("before", GoldenService(before_root)), Side("now", GoldenService(ROOT))]
        try:
            for side in sides:
                progress(f"starting {side.name}")
                side.service.start()
            for phase in phases(url):
                for side in sides:
                    progress(f"{side.name}: {phase.name} ({len(phase.calls)} requests)")
                    side.run(phase)
        finally:
            for side in sides:
                side.service.stop()
    return sides[0], sides[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the older git revision")
    parser.add_argument("--save", type=Path, help="write this code's answers here (JSON)")
    args = parser.parse_args()
    with checkout(args.before) as before_root:
        before, now = run(before_root, script)
    if args.save:
        args.save.write_text(json.dumps(now.shown, indent=1, ensure_ascii=False) + "\n")
    found = differences(before, now)
    for text in found:
        print(text + "\n")
    print(f"{len(before.shown)} requests, {len(found)} answers differ (before {args.before})")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
