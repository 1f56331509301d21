"""Configuration from the environment, shared by web and worker processes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_RETRY_SCHEDULE = (5, 30, 120, 600, 1800, 7200, 21600)
EVENTS_QUEUE = "callstate-events"
_TRUE = {"1", "true", "yes", "on"}


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


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from exc
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


def _schedule(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be comma-separated whole seconds") from exc


@dataclass(frozen=True)
class Settings:
    """Everything both process types read from the environment."""

    redis_url: str = DEFAULT_REDIS_URL
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
    # Outbound webhooks (README "Outbound webhooks"): attempts under way at once
    # per delivery process, and per subscription unless it sets its own.
    delivery_threads: int = 32
    delivery_max_in_flight: int = 4
    # A subscription's breaker opens after this many failed attempts in a row
    # (0: never) over at least DELIVERY_BREAKER_SECONDS, and stays open that long
    # the first time, doubling per failed probe up to 300 s.
    delivery_breaker_failures: int = 5
    delivery_breaker_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default: the process environment). Raises ConfigError."""
        env = os.environ if env is None else env
        return cls(
            redis_url=env.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL,
            webhook_tokens=parse_bindings(env.get("WEBHOOK_TOKENS", ""), "WEBHOOK_TOKENS"),
            api_keys=parse_bindings(env.get("API_KEYS", ""), "API_KEYS"),
            outcome_grace_seconds=_number(env, "OUTCOME_GRACE_SECONDS", 5.0),
            call_timeout_seconds=_number(env, "CALL_TIMEOUT_SECONDS", 4 * 3600.0),
            retention_seconds=_number(env, "RETENTION_SECONDS", 7 * 24 * 3600.0),
            pending_check_seconds=_number(env, "PENDING_CHECK_SECONDS", 3.0),
            delivery_retry_seconds=_schedule(env, "DELIVERY_RETRY_SECONDS", DEFAULT_RETRY_SCHEDULE),
            subscription_allow_private=env.get("SUBSCRIPTION_ALLOW_PRIVATE", "").strip().lower()
            in _TRUE,
            service_level_seconds=_number(env, "SERVICE_LEVEL_SECONDS", 20.0),
            delivery_threads=max(1, int(_number(env, "DELIVERY_THREADS", 32))),
            delivery_max_in_flight=max(1, int(_number(env, "DELIVERY_MAX_IN_FLIGHT", 4))),
            delivery_breaker_failures=int(_number(env, "DELIVERY_BREAKER_FAILURES", 5)),
            delivery_breaker_seconds=_number(env, "DELIVERY_BREAKER_SECONDS", 5.0),
        )
