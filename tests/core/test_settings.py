"""Settings: every variable read once, one error naming each bad one."""

from __future__ import annotations

import pytest

from core.settings import ConfigError, Settings


def test_unset_and_blank_variables_are_the_defaults() -> None:
    """A blank (or space-only) variable counts as unset."""
    blank = {name: " " for name in ("PORT", "WEB_THREADS", "REDIS_URL", "DEFAULT_COUNTRY")}
    assert Settings.from_env(blank) == Settings.from_env({}) == Settings()


def test_every_bad_variable_is_named_at_once() -> None:
    """One start-up names every variable it cannot use (in the order they are read),
    each with what is wrong."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(
            {
                "PORT": "two",
                "WEB_THREADS": "0",
                "STREAM_MAX_SECONDS": "-5",
                "OUTCOME_GRACE_SECONDS": "-1",
            }
        )
    assert str(refused.value) == (
        "OUTCOME_GRACE_SECONDS must not be negative; PORT must be a whole number, not 'two'; "
        "WEB_THREADS must be at least 1; STREAM_MAX_SECONDS must be at least 1.0"
    )


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("SUBSCRIPTION_ALLOW_PRIVATE", "maybe", "must be 1 or 0"),
        ("CALL_TIMEOUT_SECONDS", "nan", "must be a finite number"),
        ("DELIVERY_RETRY_SECONDS", "5,soon", "must be comma-separated whole seconds"),
        ("API_KEYS", "s3cret", "must be 'secret:tenant' pairs (entry 1 is not)"),
        ("SUBSCRIPTION_ALLOW_PORTS", "8443,ssh", "must be comma-separated TCP ports (got 'ssh')"),
        ("SUBSCRIPTION_ALLOW_PORTS", "70000", "must be comma-separated TCP ports (got '70000')"),
    ],
)
def test_a_bad_value_is_refused_with_what_is_wrong(name: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    assert str(refused.value).startswith(f"{name} {problem}")
    assert "s3cret" not in str(refused.value)


def test_switches_and_lists_read_as_before() -> None:
    settings = Settings.from_env(
        {
            "SUBSCRIPTION_ALLOW_PRIVATE": "yes",
            "DELIVERY_RETRY_SECONDS": "1, 2,,3",
            "HISTORY_RETENTION_DAYS": "0",
            "WEBHOOK_TOKENS": "a:t1, b:*",
            "WEBHOOK_TOKEN": "c",
            "SUBSCRIPTION_ALLOW_PORTS": "8443, 8080,",
        }
    )
    assert settings.subscription_allow_private is True
    assert settings.subscription_allow_ports == {8080, 8443}
    assert settings.delivery_retry_seconds == (1, 2, 3)
    assert settings.history_retention_days is None  # 0 keeps archived calls, as unset does
    assert settings.webhook_tokens == {"a": "t1", "b": "*", "c": "*"}
