"""Configuration from the environment, shared by web and worker processes.

``Settings.from_env()`` reads every variable once, with environs (marshmallow
fields and validators underneath), into one frozen ``Settings``. A bad value is
a ``ConfigError`` naming each variable and what is wrong with it, never the
value of a secret; the process types print it and exit with status 2 before
they start anything. A blank variable counts as unset.

Over 400 lines on purpose: every setting, its default and why it exists, read
in one place (the configuration table of docs/operations.md follows it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import marshmallow as ma
from environs import Env, EnvValidationError, validate

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_RETRY_SCHEDULE = (5, 30, 120, 600, 1800, 7200, 21600)
EVENTS_QUEUE = "callstate-events"
# A worker process holds one connection in its blocking dequeue, one in RQ's
# command listener (pubsub) and one in its housekeeper thread; fewer and one
# of them would wait for ever.
WORKER_PROCESS_MIN_CONNECTIONS = 3
# A token, key or metrics token shorter than this is warned of at start (not
# refused: a test set-up may use short ones on purpose).
MIN_SECRET_LENGTH = 16


class ConfigError(ValueError):
    """A configuration variable has a value we cannot use."""


Parsed = TypeVar("Parsed")


def _described(problems: Mapping[str, list[str]]) -> str:
    """``PORT must be at least 1; WEB_THREADS must be a whole number, not 'two'``."""
    return "; ".join(
        f"{name} {message}" for name, messages in problems.items() for message in messages
    )


def _named(variable: str, parse: Callable[[str], Parsed], raw: str) -> Parsed:
    """``parse(raw)``, its ValidationError a ConfigError naming ``variable``."""
    try:
        return parse(raw)
    except ma.ValidationError as exc:
        messages = exc.messages
        assert isinstance(messages, list)  # a parser's own message, not a schema's
        raise ConfigError(_described({variable: [str(m) for m in messages]})) from None


# Each message reads on from the variable's name ("PORT must be at least 1").
class _WholeNumber(ma.fields.Integer):
    default_error_messages = {  # noqa: RUF012  # marshmallow's own class attribute
        "invalid": "must be a whole number, not {input!r}",
        "too_large": "is too large",
    }


class _Number(ma.fields.Float):
    default_error_messages = {  # noqa: RUF012
        "invalid": "must be a number, not {input!r}",
        "too_large": "is too large",
        "special": "must be a finite number",
    }


class _Switch(ma.fields.Boolean):
    default_error_messages = {"invalid": "must be 1 or 0 (true/false, yes/no, on/off)"}  # noqa: RUF012


NOT_NEGATIVE = validate.Range(min=0, error="must not be negative")


def at_least(minimum: float) -> validate.Range:
    return validate.Range(min=minimum, error="must be at least {min}")


def parse_bindings(text: str) -> dict[str, str]:
    """Parse ``secret:tenant,secret:tenant`` (tenant ``*`` = every tenant).

    A bad pair is a ValidationError naming its position, never the secret.
    """
    bindings: dict[str, str] = {}
    for position, pair in enumerate(part.strip() for part in text.split(",")):
        if not pair:
            continue
        secret, sep, tenant = pair.rpartition(":")
        if not sep or not secret or not tenant:
            raise ma.ValidationError(f"must be 'secret:tenant' pairs (entry {position + 1} is not)")
        bindings[secret] = tenant
    return bindings


# API_KEYS' scopes: ``key:tenant`` is a write key, ``key:tenant:read`` a read
# key, ``key:*`` the admin's (every tenant, tenants and credentials).
READ_SUFFIX = ":read"


def parse_key_bindings(text: str) -> dict[str, str]:
    """Parse API_KEYS: ``secret:tenant`` pairs as ``parse_bindings`` does, where a
    pair may end in ``:read`` (a read key); its tenant then keeps the suffix
    (``{"k": "acme:read"}``). Raises ValidationError like parse_bindings."""
    bindings: dict[str, str] = {}
    for secret, tenant in parse_bindings(text).items():
        head, sep, bound = secret.rpartition(":")
        if tenant == READ_SUFFIX[1:] and sep and head and bound:
            secret, tenant = head, bound + READ_SUFFIX
        bindings[secret] = tenant
    return bindings


def bare_secret(text: str, *, pairs_in: str) -> str | None:
    """One bare secret for every tenant (``WEBHOOK_TOKEN``, ``API_KEY``), or None.

    The form a one-click deploy can generate (``token:tenant`` pairs it cannot).
    Anything that looks like a pair is a ValidationError that never shows it.
    """
    secret = text.strip()
    if any(mark in secret for mark in ":,/ "):
        raise ma.ValidationError(f"is one bare secret for every tenant; pairs go in {pairs_in}")
    return secret or None


def _with_single(bindings: dict[str, str], secret: str | None) -> dict[str, str]:
    return bindings if secret is None else {**bindings, secret: "*"}


def retry_schedule(text: str) -> tuple[int, ...]:
    """``5,30,120``: whole seconds between attempts (environs' list would report a
    bad item by its position only, without saying what is wrong with it)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ma.ValidationError("must be comma-separated whole seconds") from exc


def port_list(text: str) -> frozenset[int]:
    """``8080,8443``: TCP ports (1-65535)."""
    ports = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not (part.isascii() and part.isdigit() and 1 <= int(part) <= 65535):
            raise ma.ValidationError(f"must be comma-separated TCP ports (got {part[:10]!r})")
        ports.add(int(part))
    return frozenset(ports)


def _database_url(raw: str) -> str | None:
    url = raw.strip()
    if not url:
        return None
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgres", "postgresql", "postgresql+psycopg") and rest:
        return f"postgresql+psycopg://{rest}"
    if sep and scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return url
    shown = f"a {scheme!r} URL" if sep and scheme.isalnum() else "something else"
    raise ma.ValidationError(f"must be postgres://, postgresql:// or sqlite:///path (got {shown})")


def database_url(raw: str) -> str | None:
    """The SQLAlchemy URL for ``DATABASE_URL``, or None when unset (no history).

    Heroku-style platforms hand out ``postgres://`` (which SQLAlchemy refuses)
    and ``postgresql://`` (which it would open with psycopg2, not installed
    here): both become ``postgresql+psycopg://``. ``sqlite:///path`` is kept.
    Raises ConfigError for anything else, without showing the URL.
    """
    return _named("DATABASE_URL", _database_url, raw)


# ISO 3166 codes DEFAULT_COUNTRY also takes, for the countries seen most; any
# other country is named by its calling code ("DEFAULT_COUNTRY=43").
COUNTRY_CODES = {
    "US": "1", "CA": "1", "PR": "1", "GB": "44", "IE": "353", "FR": "33", "DE": "49",
    "ES": "34", "IT": "39", "NL": "31", "BE": "32", "CH": "41", "PT": "351", "AU": "61",
    "NZ": "64", "MX": "52", "BR": "55", "IN": "91", "ZA": "27",
}  # fmt: skip


def _country_code(raw: str) -> str:
    text = raw.strip()
    if text.upper() in ("", "NONE"):
        return "" if text else "1"
    if text.upper() in COUNTRY_CODES:
        return COUNTRY_CODES[text.upper()]
    digits = text.removeprefix("+")
    if digits.isascii() and digits.isdigit() and 1 <= len(digits) <= 3 and digits[0] != "0":
        return digits
    raise ma.ValidationError(
        "must be a calling code such as 1 or 44, one of "
        f"{', '.join(sorted(COUNTRY_CODES))}, or none (got {text[:20]!r})"
    )


def country_code(raw: str) -> str:
    """DEFAULT_COUNTRY as a calling code: ``US`` -> ``1``, ``+44`` -> ``44``, ``none`` -> "".

    Raises ConfigError for anything else.
    """
    return _named("DEFAULT_COUNTRY", _country_code, raw)


ACCESS_LOG_CHOICES = ("all", "errors", "off")
# available: wait for as many replicas as the master has now (fewer when one is
# lost: degraded, said by /readyz); strict: 503 until DURABLE_REPLICAS confirm.
DURABLE_MODE_CHOICES = ("available", "strict")


def _iana_timezone(name: str) -> None:
    """Refuse a name the IANA time zone database does not know."""
    if not is_timezone(name):
        raise ma.ValidationError(
            f"must be an IANA time zone such as America/Chicago (got {name[:40]!r})"
        )


def is_timezone(name: str) -> bool:
    """Whether ``name`` is a time zone of the IANA database (``Europe/Paris``, ``UTC``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Settings:
    """Everything both process types read from the environment."""

    redis_url: str = DEFAULT_REDIS_URL
    # The plain Redis of RQ's queues; None: REDIS_URL's (required if that is a cluster).
    rq_redis_url: str | None = None
    # Durability (docs/cluster.md): a 202 waits until the accepted event
    # is on this many replicas (WAIT), at most durable_wait_seconds; 0: off.
    durable_replicas: int = 0
    durable_mode: str = "available"
    durable_wait_seconds: float = 1.0
    webhook_tokens: Mapping[str, str] = field(default_factory=dict)
    api_keys: Mapping[str, str] = field(default_factory=dict)
    outcome_grace_seconds: float = 5.0
    call_timeout_seconds: float = 4 * 3600.0
    # A call's events past this many are kept unfolded: one runaway call's
    # fold (and its log) stays bounded, whoever sends it.
    max_events_per_call: int = 1000
    retention_seconds: float = 7 * 24 * 3600.0
    # How long an accepted event may wait for its job before the reaper checks
    # on it; short enough that a killed worker costs seconds, not minutes.
    pending_check_seconds: float = 3.0
    delivery_retry_seconds: tuple[int, ...] = DEFAULT_RETRY_SCHEDULE
    # Subscription URLs on loopback/private networks are refused unless this
    # is set: otherwise anyone with an API key could make us probe our network.
    subscription_allow_private: bool = False
    # Ports a subscription URL may name besides 80 and 443 (SUBSCRIPTION_ALLOW_PORTS).
    subscription_allow_ports: frozenset[int] = frozenset()
    # The wallboard's and /v1/stats' service level: answered within this many seconds.
    service_level_seconds: float = 20.0
    # The Redis connection budget (docs/deploy.md, "Redis connections"): what one dyno
    # of each process type may hold, shared evenly by the processes it runs.
    web_redis_connections: int = 10
    worker_redis_connections: int = 8
    # The web server (app/web/serve.py): its port, processes per dyno (WEB_CONCURRENCY,
    # which every server the Procfile names must follow) and app threads per process.
    port: int = 5000
    web_concurrency: int = 2
    web_threads: int = 16
    # Server-Sent Event streams one web process admits at once, and how long one
    # stays open (app/outcomes/stream.py).
    max_streams_per_process: int = 8
    stream_max_seconds: float = 300.0
    # Streams one tenant may hold in one web process (0: half the process's, at
    # least 1), so one tenant's streams never take the last slots from another.
    max_streams_per_tenant: int = 0
    # Exports (CSV downloads, large history pages) one web process serves at
    # once, and how long a download's reader may stop reading before it is cut
    # off (app/history/exports.py).
    max_exports_per_process: int = 2
    export_idle_seconds: float = 60.0
    # Where prometheus-client's multiprocess mode keeps its files (the Procfile
    # sets it for the web process); None: metrics of this process only.
    metrics_directory: str | None = None
    # The web's access log: every request (all), answers from 400 up (errors), none (off).
    access_log: str = "all"
    # Processes per worker dyno: RQ workers for events, and delivery processes.
    worker_concurrency: int = 1
    delivery_concurrency: int = 1
    # Call history (SQL): None = not configured. A SQLAlchemy URL (see database_url).
    database_url: str | None = None
    # Archived calls older than this (by start) are deleted; None keeps them.
    history_retention_days: float | None = None
    # Outbound webhooks (docs/subscriptions.md): attempts under way at once
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
    # On by default, far above what a 200-agent call centre posts (a few events a
    # second, a few hundred at the busiest moment; the burst is ten seconds' worth,
    # 10,000 events), so only a runaway sender meets it.
    webhook_rate_limit: float = 1000.0
    webhook_rate_burst: int = 0
    # Subscriptions one tenant (or the every-tenant "*") may hold: each one is a
    # delivery per outcome, so an unbounded count is an unbounded fan-out.
    max_subscriptions_per_tenant: int = 25
    # When set, /metrics and the detailed /readyz want it as a bearer token.
    metrics_token: str | None = None

    @property
    def webhook_burst(self) -> int:
        """The bucket size of the per-token limit: WEBHOOK_RATE_BURST, or ten
        seconds' worth of the rate (at least 1)."""
        return self.webhook_rate_burst or max(1, round(self.webhook_rate_limit * 10))

    # Callbacks read national numbers in this country (a calling code such as
    # "1", or "" for none: only international numbers match). DEFAULT_COUNTRY.
    default_country: str = "1"
    # Every tenant's day, unless its own settings name another (an IANA name).
    default_timezone: str = "UTC"
    # An abandoned call this short (seconds from its start) is a short abandon,
    # unless the tenant's settings say otherwise.
    short_abandon_seconds: float = 5.0
    # Where email subscriptions' messages go out: smtp:// (STARTTLS when the
    # server offers it, always before credentials) or smtps:// (TLS from the
    # start), with user:password@ when the server wants them. None: no email
    # subscriptions. A secret: never logged. SMTP_FROM is their From address.
    smtp_url: str | None = None
    smtp_from: str = "callstate@localhost"

    def short_secret_warnings(self) -> list[str]:
        """One warning per kind of secret that has one shorter than MIN_SECRET_LENGTH
        characters (never the secret itself): such a token or key can be guessed."""
        kinds = (
            ("WEBHOOK_TOKENS / WEBHOOK_TOKEN", list(self.webhook_tokens)),
            ("API_KEYS / API_KEY", list(self.api_keys)),
            ("METRICS_TOKEN", [self.metrics_token] if self.metrics_token else []),
        )
        return [
            f"{names} holds a secret shorter than {MIN_SECRET_LENGTH} characters: "
            "it can be guessed (openssl rand -hex 32 makes a good one)"
            for names, secrets in kinds
            if any(len(secret) < MIN_SECRET_LENGTH for secret in secrets)
        ]

    @property
    def streams_per_tenant(self) -> int:
        """Streams one tenant may hold in one web process: MAX_STREAMS_PER_TENANT, or
        half the process's (at least 1), never more than the process's."""
        share = self.max_streams_per_tenant or max(1, self.max_streams_per_process // 2)
        return min(share, self.max_streams_per_process)

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
        """Read settings from ``env`` (default: the process environment).

        Raises ConfigError naming every variable with a value we cannot use.
        """
        read = _Environment(os.environ if env is None else env)
        whole, number = read.whole_number, read.number
        settings = cls(
            redis_url=read.str("REDIS_URL", DEFAULT_REDIS_URL),
            rq_redis_url=read.str("RQ_REDIS_URL", None),
            durable_replicas=whole("DURABLE_REPLICAS", 0, validate=NOT_NEGATIVE),
            durable_wait_seconds=number("DURABLE_WAIT_SECONDS", 1.0, validate=at_least(0.001)),
            durable_mode=read.str(
                "DURABLE_MODE", "available", validate=validate.OneOf(DURABLE_MODE_CHOICES)
            ),
            webhook_tokens=_with_single(
                read.bindings("WEBHOOK_TOKENS", ""),
                read.bare_secret("WEBHOOK_TOKEN", "", pairs_in="WEBHOOK_TOKENS"),
            ),
            api_keys=_with_single(
                read.key_bindings("API_KEYS", ""),
                read.bare_secret("API_KEY", "", pairs_in="API_KEYS"),
            ),
            outcome_grace_seconds=number("OUTCOME_GRACE_SECONDS", 5.0, validate=NOT_NEGATIVE),
            call_timeout_seconds=number("CALL_TIMEOUT_SECONDS", 4 * 3600.0, validate=NOT_NEGATIVE),
            max_events_per_call=whole("MAX_EVENTS_PER_CALL", 1000, validate=at_least(1)),
            retention_seconds=number("RETENTION_SECONDS", 7 * 24 * 3600.0, validate=NOT_NEGATIVE),
            pending_check_seconds=number("PENDING_CHECK_SECONDS", 3.0, validate=NOT_NEGATIVE),
            delivery_retry_seconds=read.retry_schedule(
                "DELIVERY_RETRY_SECONDS", ",".join(map(str, DEFAULT_RETRY_SCHEDULE))
            ),
            subscription_allow_private=read.switch("SUBSCRIPTION_ALLOW_PRIVATE", False),
            subscription_allow_ports=read.port_list("SUBSCRIPTION_ALLOW_PORTS", ""),
            service_level_seconds=number("SERVICE_LEVEL_SECONDS", 20.0, validate=NOT_NEGATIVE),
            web_redis_connections=whole("WEB_REDIS_CONNECTIONS", 10, validate=at_least(1)),
            worker_redis_connections=whole("WORKER_REDIS_CONNECTIONS", 8, validate=at_least(1)),
            port=whole("PORT", 5000, validate=at_least(1)),
            web_concurrency=whole("WEB_CONCURRENCY", 2, validate=at_least(1)),
            web_threads=whole("WEB_THREADS", 16, validate=at_least(1)),
            max_streams_per_process=whole("MAX_STREAMS_PER_PROCESS", 8, validate=at_least(1)),
            stream_max_seconds=number("STREAM_MAX_SECONDS", 300.0, validate=at_least(1.0)),
            max_streams_per_tenant=whole("MAX_STREAMS_PER_TENANT", 0, validate=NOT_NEGATIVE),
            max_exports_per_process=whole("MAX_EXPORTS_PER_PROCESS", 2, validate=at_least(1)),
            export_idle_seconds=number("EXPORT_IDLE_SECONDS", 60.0, validate=at_least(1.0)),
            metrics_directory=read.str("PROMETHEUS_MULTIPROC_DIR", None),
            access_log=read.str(
                "ACCESS_LOG", "all", validate=validate.OneOf(ACCESS_LOG_CHOICES)
            ).lower(),
            worker_concurrency=whole("WORKER_CONCURRENCY", 1, validate=at_least(1)),
            delivery_concurrency=whole("DELIVERY_CONCURRENCY", 1, validate=at_least(1)),
            database_url=read.database_url("DATABASE_URL", ""),
            # 0 keeps archived calls, as unset does.
            history_retention_days=number("HISTORY_RETENTION_DAYS", None, validate=NOT_NEGATIVE)
            or None,
            delivery_threads=whole("DELIVERY_THREADS", 32, validate=at_least(1)),
            delivery_max_in_flight=whole("DELIVERY_MAX_IN_FLIGHT", 4, validate=at_least(1)),
            delivery_breaker_failures=whole("DELIVERY_BREAKER_FAILURES", 5, validate=NOT_NEGATIVE),
            delivery_breaker_seconds=number("DELIVERY_BREAKER_SECONDS", 5.0, validate=NOT_NEGATIVE),
            webhook_rate_limit=number("WEBHOOK_RATE_LIMIT", 1000.0, validate=NOT_NEGATIVE),
            webhook_rate_burst=whole("WEBHOOK_RATE_BURST", 0, validate=NOT_NEGATIVE),
            max_subscriptions_per_tenant=whole(
                "MAX_SUBSCRIPTIONS_PER_TENANT", 25, validate=at_least(1)
            ),
            metrics_token=read.str("METRICS_TOKEN", None),
            default_country=read.country_code("DEFAULT_COUNTRY", "US"),
            default_timezone=read.str("DEFAULT_TIMEZONE", "UTC", validate=_iana_timezone),
            short_abandon_seconds=number("SHORT_ABANDON_SECONDS", 5.0, validate=NOT_NEGATIVE),
            smtp_url=read.str("SMTP_URL", None, validate=_smtp_url),
            smtp_from=read.str("SMTP_FROM", "callstate@localhost"),
        )
        read.raise_problems()
        return settings


def _smtp_url(value: str) -> None:
    """An smtp:// or smtps:// URL naming a host; the message never quotes the value
    (it may carry a password)."""
    from urllib.parse import urlsplit

    try:
        parsed = urlsplit(value)
        parsed.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        raise ma.ValidationError("must be an smtp:// or smtps:// URL") from None
    if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
        raise ma.ValidationError("must be an smtp:// or smtps:// URL naming a host")


class _Environment(Env):
    """environs' reader over ``source`` (not necessarily the process environment),
    with this project's parsers. A blank value counts as unset. It collects every
    problem (eager=False) so one start-up reports them all."""

    def __init__(self, source: Mapping[str, str]) -> None:
        super().__init__(eager=False)
        self._source = source
        self.add_parser_from_field("whole_number", _WholeNumber)
        self.add_parser_from_field("number", _Number)
        self.add_parser_from_field("switch", _Switch)
        self.add_parser("bindings", parse_bindings)
        self.add_parser("key_bindings", parse_key_bindings)
        self.add_parser("bare_secret", bare_secret)
        self.add_parser("retry_schedule", retry_schedule)
        self.add_parser("port_list", port_list)
        self.add_parser("database_url", _database_url)
        self.add_parser("country_code", _country_code)

    # environs' hook for where a value comes from (its FileAwareEnv overrides it too).
    def _get_value(self, env_key: str, default: Any) -> Any:
        return self._source.get(env_key, "").strip() or default

    def raise_problems(self) -> None:
        """Raise ConfigError if any variable read so far had a value we cannot use."""
        try:
            self.seal()
        except EnvValidationError as exc:
            problems = exc.error_messages
            assert isinstance(problems, Mapping)  # seal() reports them by variable
            raise ConfigError(_described(problems)) from None
