"""The Redis connection budget: per-dyno settings shared by the dyno's processes,
and a pool that never holds more than its share."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest
import redis

from workers.settings import WORKER_PROCESS_MIN_CONNECTIONS, ConfigError, Settings
from workers.store import BudgetedPool, PoolExhausted

ENTRY_PLAN_CLIENTS = 20  # an entry-level managed Redis plan's connection limit


def test_defaults_fit_an_entry_redis_plan() -> None:
    """One web and one worker dyno at the defaults may hold at most 20 connections."""
    settings = Settings.from_env({})
    assert settings.web_process_connections * settings.web_concurrency <= 10
    assert settings.formation_connections() <= ENTRY_PLAN_CLIENTS


def test_a_dyno_budget_is_shared_by_its_processes() -> None:
    """WEB_REDIS_CONNECTIONS / WORKER_REDIS_CONNECTIONS are per dyno, split evenly."""
    settings = Settings.from_env(
        {
            "WEB_REDIS_CONNECTIONS": "12",
            "WEB_CONCURRENCY": "4",
            "WORKER_REDIS_CONNECTIONS": "20",
            "WORKER_CONCURRENCY": "3",
            "DELIVERY_CONCURRENCY": "1",
        }
    )
    assert settings.web_process_connections == 3
    assert settings.worker_process_connections == 5
    assert settings.formation_connections(web_dynos=2, worker_dynos=3) == 2 * 12 + 3 * 20


def test_each_process_keeps_what_it_cannot_work_without() -> None:
    """A share below a process's floor is raised to the floor (the dyno then holds more)."""
    settings = Settings.from_env(
        {"WEB_REDIS_CONNECTIONS": "2", "WEB_CONCURRENCY": "5", "WORKER_CONCURRENCY": "3"}
    )
    assert settings.web_process_connections == 1
    assert settings.worker_process_connections == WORKER_PROCESS_MIN_CONNECTIONS
    assert settings.formation_connections() == 5 + 4 * WORKER_PROCESS_MIN_CONNECTIONS


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEB_REDIS_CONNECTIONS", "0"),
        ("WORKER_REDIS_CONNECTIONS", "many"),
        ("WEB_CONCURRENCY", "-1"),
    ],
)
def test_bad_budget_values_are_named(name: str, value: str) -> None:
    """A budget that is not a whole number of at least 1 is refused, naming the variable."""
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def pool_of(size: int, wait: float) -> BudgetedPool:
    return BudgetedPool(
        connection_class=fakeredis.FakeRedisConnection,
        server=fakeredis.FakeServer(),
        max_connections=size,
        timeout=wait,
    )


def test_pool_never_opens_more_than_its_budget() -> None:
    """Eight threads working at once through a pool of two open two connections."""
    pool = pool_of(2, wait=5.0)
    client = redis.Redis(connection_pool=pool)
    peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal peak
        for n in range(50):
            client.incr("counter")
            with lock:
                peak = max(peak, len(pool._connections))
            if n % 10 == 0:
                time.sleep(0.001)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert int(client.get("counter") or 0) == 400
    assert peak == 2


def test_a_caller_beyond_the_budget_waits_then_is_told_busy() -> None:
    """With every connection held, a command waits the pool's time, then PoolExhausted
    (a redis.ConnectionError); one freed during the wait is handed over."""
    pool = pool_of(1, wait=0.2)
    client = redis.Redis(connection_pool=pool)
    held = pool.get_connection()
    started = time.monotonic()
    with pytest.raises(PoolExhausted) as caught:
        client.ping()
    assert time.monotonic() - started >= 0.2
    assert isinstance(caught.value, redis.ConnectionError)
    threading.Timer(0.05, pool.release, args=(held,)).start()
    assert client.ping()
