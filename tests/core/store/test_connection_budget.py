"""The Redis connection budget: per-dyno settings shared by the dyno's processes,
and a pool that never holds more than its share."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest
import redis

from core.settings import WORKER_PROCESS_MIN_CONNECTIONS, ConfigError, Settings
from core.store import BudgetedPool, PoolExhausted

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
    """Eight threads each holding a connection for a while through a pool of two: all
    are served, in turn, and no more than two connections are ever open."""
    pool = pool_of(2, wait=5.0)
    held_at_once = 0
    holding = 0
    lock = threading.Lock()
    served: list[bool] = []

    def work() -> None:
        nonlocal held_at_once, holding
        connection = pool.get_connection()
        with lock:
            holding += 1
            held_at_once = max(held_at_once, holding)
        time.sleep(0.05)  # an unbounded pool would open one for each thread meanwhile
        with lock:
            holding -= 1
        pool.release(connection)
        served.append(True)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(served) == 8
    assert held_at_once <= 2
    assert len(pool._connections) <= 2


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


def test_a_signal_handler_may_use_redis_while_the_main_thread_is_inside_the_pool() -> None:
    """A handler (RQ's warm shutdown writes to Redis) interrupting its thread inside the
    pool's queue gets a connection instead of waiting for its own lock for ever."""
    pool = pool_of(2, wait=1.0)
    client = redis.Redis(connection_pool=pool)
    answers: list[bool] = []

    def interrupted_inside_the_pool() -> None:
        with pool.pool.mutex:  # where the main thread was when the signal came
            answers.append(bool(client.ping()))

    thread = threading.Thread(target=interrupted_inside_the_pool, daemon=True)
    thread.start()
    thread.join(5)
    assert answers == [True], "deadlocked on the pool's own lock"
