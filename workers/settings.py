"""Configuration from the environment, shared by web and worker processes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_RETRY_SCHEDULE = (5, 30, 120, 600, 1800, 7200, 21600)
EVENTS_QUEUE = "callstate-events"
_TRUE = {"1", "true", "yes", "on"}
# A worker process holds one connection in its blocking dequeue, one in RQ's
# command listener (pubsub) and one in its housekeeper thread; fewer and one
# of them would wait for ever.
WORKER_PROCESS_MIN_CONNECTIONS = 3


Number = TypeVar("Number", int, float)


class ConfigError(ValueError):
    """A configuration variable has a value we cannot use."""


def parse_bindings(text: str, variable: str) -> dict[str, str]:
    """Parse ``secret:tenant,secret:tenant`` (tenant ``*`` = every tenant).

    Raises ConfigError naming the variable (never the secret) on a bad pair.
    """
    bindings: dict[str, str] = {}
    for position, pair in enumerate(part.strip() for part in text.split(",")):
        if not pair:
            continue
        secret, sep, tenant = pair.rpartition(":")
        if not sep or not secret or not tenant:
            raise ConfigError(f"{variable}: entry {position + 1} is not 'secret:tenant'")
        bindings[secret] = tenant
    return bindings


def _with_single(
    bindings: dict[str, str], env: Mapping[str, str], variable: str, plural: str
) -> dict[str, str]:
    """Add ``env[variable]``, one bare secret for every tenant, to ``bindings``.

    The form a one-click deploy can generate (``token:tenant`` pairs it cannot).
    Raises ConfigError naming the variable (never the secret) if it is not bare.
    """
    secret = env.get(variable, "").strip()
    if not secret:
        return bindings
    if any(mark in secret for mark in ":,/ "):
        raise ConfigError(f"{variable} is one bare secret for every tenant; pairs go in {plural}")
    return {**bindings, secret: "*"}


def env_number(
    env: Mapping[str, str], name: str, default: Number, minimum: Number, unit: str = "seconds"
) -> Number:
    """``env[name]`` as the type of ``default`` (seconds, or a whole count), at least
    ``minimum``; ``default`` when unset or blank. Raises ConfigError naming the variable."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    kind = type(default)
    try:
        value = kind(raw)
    except ValueError as exc:
        what = "a whole number" if kind is int else f"a number of {unit}"
        raise ConfigError(f"{name} must be {what}, not {raw!r}") from exc
    if value < minimum:
        raise ConfigError(
            f"{name} must not be negative" if minimum == 0 else f"{name} must be at least {minimum}"
        )
    return value


def database_url(raw: str) -> str | None:
    """The SQLAlchemy URL for ``DATABASE_URL``, or None when unset (no history).

    Heroku-style platforms hand out ``postgres://`` (which SQLAlchemy refuses)
    and ``postgresql://`` (which it would open with psycopg2, not installed
    here): both become ``postgresql+psycopg://``. ``sqlite:///path`` is kept.
    Raises ConfigError for anything else.
    """
    url = raw.strip()
    if not url:
        return None
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgres", "postgresql", "postgresql+psycopg") and rest:
        return f"postgresql+psycopg://{rest}"
    if sep and scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return url
    shown = f"a {scheme!r} URL" if sep and scheme.isalnum() else "something else"
    raise ConfigError(
        f"DATABASE_URL must be postgres://, postgresql:// or sqlite:///path (got {shown})"
    )


def _schedule(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be comma-separated whole seconds") from exc


# ISO 3166 codes DEFAULT_COUNTRY also takes, for the countries seen most; any
# other country is named by its calling code ("DEFAULT_COUNTRY=43").
COUNTRY_CODES = {
    "US": "1", "CA": "1", "PR": "1", "GB": "44", "IE": "353", "FR": "33", "DE": "49",
    "ES": "34", "IT": "39", "NL": "31", "BE": "32", "CH": "41", "PT": "351", "AU": "61",
    "NZ": "64", "MX": "52", "BR": "55", "IN": "91", "ZA": "27",
}  # fmt: skip


def country_code(raw: str) -> str:
    """DEFAULT_COUNTRY as a calling code: ``US`` -> ``1``, ``+44`` -> ``44``, ``none`` -> "".

    Raises ConfigError for anything else.
    """
    text = raw.strip()
    if text.upper() in ("", "NONE"):
        return "" if text else "1"
    if text.upper() in COUNTRY_CODES:
        return COUNTRY_CODES[text.upper()]
    digits = text.removeprefix("+")
    if digits.isascii() and digits.isdigit() and 1 <= len(digits) <= 3 and digits[0] != "0":
        return digits
    raise ConfigError(
        "DEFAULT_COUNTRY must be a calling code such as 1 or 44, one of "
        f"{', '.join(sorted(COUNTRY_CODES))}, or none (got {text[:20]!r})"
    )


@dataclass(frozen=True)
class Settings:
    """Everything both process types read from the environment."""

    redis_url: str = DEFAULT_REDIS_URL
    # The plain Redis of RQ's queues; None: REDIS_URL's (required if that is a cluster).
    rq_redis_url: str | None = None
    # Durability (README "Redis Cluster"): a 202 waits until the accepted event
    # is on this many replicas (WAIT), at most durable_wait_seconds; 0: off.
    durable_replicas: int = 0
    durable_wait_seconds: float = 1.0
    webhook_tokens: Mapping[str, str] = field(default_factory=dict)
    api_keys: Mapping[str, str] = field(default_factory=dict)
    outcome_grace_seconds: float = 5.0
    call_timeout_seconds: float = 4 * 3600.0
    retention_seconds: float = 7 * 24 * 3600.0
    # How long an accepted event may wait for its job before the reaper checks
    # on it; short enough that a killed worker costs seconds, not minutes.
    pending_check_seconds: float = 3.0
    delivery_retry_seconds: tuple[int, ...] = DEFAULT_RETRY_SCHEDULE
    # Subscription URLs on loopback/private networks are refused unless this
    # is set: otherwise anyone with an API key could make us probe our network.
    subscription_allow_private: bool = False
    # The wallboard's and /v1/stats' service level: answered within this many seconds.
    service_level_seconds: float = 20.0
    # The Redis connection budget (README: "Redis connections"): what one dyno
    # of each process type may hold, shared evenly by the processes it runs.
    web_redis_connections: int = 10
    worker_redis_connections: int = 8
    # Processes per dyno: the web server's (WEB_CONCURRENCY, which every
    # server the Procfile names must follow) and the worker's RQ workers.
    web_concurrency: int = 2
    worker_concurrency: int = 1
    delivery_concurrency: int = 1
    # Call history (SQL): None = not configured. A SQLAlchemy URL (see database_url).
    database_url: str | None = None
    # Archived calls older than this (by start) are deleted; None keeps them.
    history_retention_days: float | None = None
    # Outbound webhooks (README "Outbound webhooks"): attempts under way at once
    # per delivery process, and per subscription unless it sets its own.
    delivery_threads: int = 32
    delivery_max_in_flight: int = 4
    # A subscription's breaker opens after this many failed attempts in a row
    # (0: never) over at least DELIVERY_BREAKER_SECONDS, and stays open that long
    # the first time, doubling per failed probe up to 300 s.
    delivery_breaker_failures: int = 5
    delivery_breaker_seconds: float = 5.0
    # Webhook events a second one token may post (0: no limit), and the burst
    # it may post at once before the rate applies.
    webhook_rate_limit: float = 0.0
    webhook_rate_burst: int = 0

    @property
    def webhook_burst(self) -> int:
        """The bucket size of the per-token limit: WEBHOOK_RATE_BURST, or ten
        seconds' worth of the rate (at least 1)."""
        return self.webhook_rate_burst or max(1, round(self.webhook_rate_limit * 10))
    # Callbacks read national numbers in this country (a calling code such as
    # "1", or "" for none: only international numbers match). DEFAULT_COUNTRY.
    default_country: str = "1"

    @property
    def web_process_connections(self) -> int:
        """Redis connections one web process may hold: its share of the dyno's, at least 1."""
        return max(1, self.web_redis_connections // self.web_concurrency)

    @property
    def worker_process_connections(self) -> int:
        """Redis connections one worker process may hold: its share of the dyno's, at
        least what it cannot work without."""
        processes = self.worker_concurrency + self.delivery_concurrency
        return max(WORKER_PROCESS_MIN_CONNECTIONS, self.worker_redis_connections // processes)

    def formation_connections(self, web_dynos: int = 1, worker_dynos: int = 1) -> int:
        """The most Redis connections so many dynos of each type hold together."""
        web = self.web_process_connections * self.web_concurrency
        worker = self.worker_process_connections * (
            self.worker_concurrency + self.delivery_concurrency
        )
        return web_dynos * web + worker_dynos * worker

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default: the process environment). Raises ConfigError."""
        env = os.environ if env is None else env
        return cls(
            redis_url=env.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL,
            rq_redis_url=env.get("RQ_REDIS_URL", "").strip() or None,
            durable_replicas=env_number(env, "DURABLE_REPLICAS", 0, 0),
            durable_wait_seconds=env_number(env, "DURABLE_WAIT_SECONDS", 1.0, 0.001),
            webhook_tokens=_with_single(
                parse_bindings(env.get("WEBHOOK_TOKENS", ""), "WEBHOOK_TOKENS"),
                env,
                "WEBHOOK_TOKEN",
                "WEBHOOK_TOKENS",
            ),
            api_keys=_with_single(
                parse_bindings(env.get("API_KEYS", ""), "API_KEYS"), env, "API_KEY", "API_KEYS"
            ),
            outcome_grace_seconds=env_number(env, "OUTCOME_GRACE_SECONDS", 5.0, 0.0),
            call_timeout_seconds=env_number(env, "CALL_TIMEOUT_SECONDS", 4 * 3600.0, 0.0),
            retention_seconds=env_number(env, "RETENTION_SECONDS", 7 * 24 * 3600.0, 0.0),
            pending_check_seconds=env_number(env, "PENDING_CHECK_SECONDS", 3.0, 0.0),
            delivery_retry_seconds=_schedule(env, "DELIVERY_RETRY_SECONDS", DEFAULT_RETRY_SCHEDULE),
            subscription_allow_private=env.get("SUBSCRIPTION_ALLOW_PRIVATE", "").strip().lower()
            in _TRUE,
            service_level_seconds=env_number(env, "SERVICE_LEVEL_SECONDS", 20.0, 0.0),
            web_redis_connections=env_number(env, "WEB_REDIS_CONNECTIONS", 10, 1),
            worker_redis_connections=env_number(env, "WORKER_REDIS_CONNECTIONS", 8, 1),
            web_concurrency=env_number(env, "WEB_CONCURRENCY", 2, 1),
            worker_concurrency=env_number(env, "WORKER_CONCURRENCY", 1, 1),
            delivery_concurrency=env_number(env, "DELIVERY_CONCURRENCY", 1, 1),
            database_url=database_url(env.get("DATABASE_URL", "")),
            history_retention_days=(
                env_number(env, "HISTORY_RETENTION_DAYS", 0.0, 0.0, "days") or None
            ),
            delivery_threads=env_number(env, "DELIVERY_THREADS", 32, 1),
            delivery_max_in_flight=env_number(env, "DELIVERY_MAX_IN_FLIGHT", 4, 1),
            delivery_breaker_failures=env_number(env, "DELIVERY_BREAKER_FAILURES", 5, 0),
            delivery_breaker_seconds=env_number(env, "DELIVERY_BREAKER_SECONDS", 5.0, 0.0),
            webhook_rate_limit=env_number(env, "WEBHOOK_RATE_LIMIT", 0.0, 0.0, "events a second"),
            webhook_rate_burst=env_number(env, "WEBHOOK_RATE_BURST", 0, 0, "events"),
            default_country=country_code(env.get("DEFAULT_COUNTRY", "US")),
        )
