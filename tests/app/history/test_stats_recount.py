"""The new figures of /v1/stats recounted a second way: plain loops over the outcome
records in the test, against the API reading Redis and the API reading the history
database (SQLite and PostgreSQL). A month-like mix of calls from the benchmark's
generator, with call-backs placed at and around the callback delays."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from flask.testing import FlaskClient

from app import create_app
from app.stats.figures import parse_instant
from bench.history_data import outcome_records
from core.history.archive import archive_pass
from core.history.database import create_engine, upgrade
from core.history.records import decided_us, extensions_of
from core.settings import Settings
from core.store import TENANTS_KEY, Store, dumps, outcomes_key
from statemachine.events import isoformat, micros
from statemachine.phone_numbers import e164
from tests.conftest import API_KEY

Record = dict[str, Any]
TENANTS = ("t1", "t2")
THRESHOLDS = (20.0, 30.0, 60.0)
MINUTES = (15.0, 60.0)
# Call-back delays: before, at and just past 15 minutes, within and past the hour.
DELAYS = (300.0, 900.0, 900.5, 3600.0, 7200.0)
COUNTRY = "1"  # DEFAULT_COUNTRY below: how the tenants' numbers are read


def with_call_backs(records: list[Record]) -> list[Record]:
    """``records`` and an outbound call to every other missed caller, after a delay."""
    made = list(records)
    missed = [
        r for r in records
        if r["outcome"] == "missed" and r["missed_reason"] in ("abandoned", "no_answer")
        and r["caller"]
    ]  # fmt: skip
    for index, call in enumerate(missed[::2]):
        placed = parse_instant(call["ended_at"]) + timedelta(seconds=DELAYS[index % len(DELAYS)])
        made.append(
            {
                **call,
                "id": f"{micros(placed + timedelta(seconds=1000))}-5",
                "call_uuid": f"back-{call['call_uuid']}",
                "direction": "outbound",
                "outcome": "outbound",
                "missed_reason": None,
                "short_abandon": False,
                "caller": None,
                "did": None,
                "queue": None,
                "ring_group": None,
                "rang": [],
                "number_dialed": call["caller"]["number"],
                "extension": {"number": "150", "name": "Agent 150"},
                "started_at": isoformat(placed),
                "ended_at": isoformat(placed + timedelta(seconds=60)),
                "revision": 1,
            }
        )
    made.sort(key=lambda r: (decided_us(r), r["id"]))
    return made


# -- the second way: plain loops ----------------------------------------------------------


def latest_calls(records: list[Record]) -> list[Record]:
    latest: dict[tuple[str, str], Record] = {}
    for r in records:
        key = (r["tenant_id"], r["call_uuid"])
        if key not in latest or r["revision"] > latest[key]["revision"]:
            latest[key] = r
    return list(latest.values())


def number(party: Any) -> str | None:
    return party["number"] if party else None


def call_back_delays(calls: list[Record]) -> dict[str, float | None]:
    """Each missed caller's call (uuid) -> seconds to its call-back, None if the first
    call to reach the number after the miss was the caller getting through."""
    reached: dict[tuple[str, str], list[tuple[Any, str, str]]] = defaultdict(list)
    for c in calls:
        if c["direction"] == "outbound":
            dialed = e164(c["number_dialed"] or "", COUNTRY)
            if dialed:
                reached[(c["tenant_id"], dialed)].append((c["started_at"], c["call_uuid"], "out"))
        elif c["outcome"] == "answered":
            caller = e164(number(c["caller"]) or "", COUNTRY)
            at = c["answered_at"] or c["ended_at"]
            if caller:
                reached[(c["tenant_id"], caller)].append((at, c["call_uuid"], "in"))
    delays: dict[str, float | None] = {}
    for c in calls:
        if c["outcome"] != "missed" or c["missed_reason"] not in ("abandoned", "no_answer"):
            continue
        caller = e164(number(c["caller"]) or "", COUNTRY)
        if not caller:
            continue
        missed_at = parse_instant(c["ended_at"])
        later = sorted(
            (parse_instant(at), uuid, kind)
            for at, uuid, kind in reached[(c["tenant_id"], caller)]
            if parse_instant(at) >= missed_at
        )
        first = later[0] if later else None
        delays[c["call_uuid"]] = (
            (first[0] - missed_at).total_seconds() if first and first[2] == "out" else None
        )
    return delays


def recount(
    calls: list[Record], delays: dict[str, float | None], extension: str | None, per_extension: bool
) -> Any:
    """The new figures of ``calls`` (as ``extension``'s when given)."""
    inbound = [c for c in calls if c["direction"] == "inbound"]
    mine = [
        c for c in inbound
        if c["outcome"] == "answered"
        and (extension is None or number(c["answered_by"]) == extension)
    ]  # fmt: skip
    abandons = [c for c in inbound if c["missed_reason"] == "abandoned"]
    short = [c for c in abandons if c["short_abandon"]]
    levels = {}
    for threshold in THRESHOLDS:
        within = sum(
            1 for c in mine if c["wait_seconds"] is not None and c["wait_seconds"] <= threshold
        )
        whole = len(inbound) - len(short)  # sl_abandons=exclude_short
        levels[f"{threshold:g}"] = {
            "answered_within": within,
            "denominator": whole,
            "value": round(within / whole, 4) if whole else None,
        }
    back = [delays[c["call_uuid"]] for c in inbound if c["call_uuid"] in delays]
    done = [d for d in back if d is not None]
    figures = {
        "short_abandoned": len(short),
        "service_levels": levels,
        "callbacks": {
            "missed_callers": len(back),
            "called_back": len(done),
            "called_back_within": {f"{m:g}": sum(1 for d in done if d <= m * 60) for m in MINUTES},
            "avg_callback_seconds": round(sum(done) / len(done), 1) if done else None,
        },
    }
    if per_extension:
        rang = [c for c in inbound if extension in {number(p) for p in c["rang"]}]
        unanswered = sum(1 for c in rang if c not in mine)
        figures["rang_unanswered"] = unanswered
        figures["answer_rate"] = (
            round(len(mine) / (len(mine) + unanswered), 4) if mine or unanswered else None
        )
    return figures


def expected(calls: list[Record], group_by: str | None) -> Any:
    delays = call_back_delays(calls)
    if group_by is None:
        return {None: recount(calls, delays, None, False)}
    groups: dict[str | None, list[Record]] = defaultdict(list)
    for c in calls:
        if group_by == "queue" and c["direction"] != "outbound":
            groups[c["queue"]].append(c)
        elif group_by == "extension":
            for key in extensions_of(c) or [None]:
                groups[key].append(c)
    return {
        key: recount(
            members, delays, key if group_by == "extension" else None, group_by == "extension"
        )
        for key, members in groups.items()
    }


def answered(body: Any, group_by: str | None) -> Any:
    fields = ["short_abandoned", "service_levels", "callbacks"]
    if group_by == "extension":
        fields += ["rang_unanswered", "answer_rate"]
    if group_by is None:
        return {None: {f: body["totals"][f] for f in fields}}
    return {g["key"]: {f: g[f] for f in fields} for g in body["groups"]}


# -- the two paths of /v1/stats ---------------------------------------------------------------


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return with_call_backs(
        list(outcome_records(1500, tenants=TENANTS, seed=26, spacing_seconds=40))
    )


def publish(client: fakeredis.FakeRedis, records: list[Record]) -> None:
    for r in records:
        body = {k: v for k, v in r.items() if k != "id"}
        client.xadd(outcomes_key(r["tenant_id"]), {"record": dumps(body)}, id=r["id"])
    client.sadd(TENANTS_KEY, *TENANTS)


QUERY = (
    "from=2026-01-01&to=2026-03-01&service_level_seconds=20,30,60"
    "&sl_abandons=exclude_short&callback_minutes=15,60"
)


def api(settings: Settings, client: fakeredis.FakeRedis) -> FlaskClient:
    return create_app(
        {"TESTING": True, "REDIS_CLIENT": client, "CALLSTATE_SETTINGS": settings}
    ).test_client()


SETTINGS = Settings(
    api_keys={API_KEY: "*"}, default_country=COUNTRY, default_timezone="Europe/Berlin"
)


def offered_by_local_hour(calls: list[Record]) -> list[list[int | None]]:
    """The offered heatmap counted by hand: Berlin weekday and hour of each inbound start."""
    counts = [[0] * 24 for _ in range(7)]
    for c in calls:
        if c["direction"] == "inbound":
            local = parse_instant(c["started_at"]).astimezone(ZoneInfo("Europe/Berlin"))
            counts[local.weekday()][local.hour] += 1
    return [[n or None for n in day] for day in counts]


HEADERS = {"Authorization": f"Bearer {API_KEY}"}


@pytest.mark.parametrize("group_by", [None, "queue", "extension"])
def test_the_redis_path_agrees_with_a_recount(records: list[Record], group_by: str | None) -> None:
    client = fakeredis.FakeRedis()
    publish(client, records)
    client_api = api(SETTINGS, client)
    body = client_api.get(
        f"/v1/stats?{QUERY}&group_by={group_by or ''}", headers=HEADERS
    ).get_json()
    assert body["window"]["source"] == "redis"
    assert answered(body, group_by) == expected(latest_calls(records), group_by)
    heat = client_api.get(f"/v1/stats/heatmap?{QUERY}&metric=offered", headers=HEADERS)
    assert heat.get_json()["cells"] == offered_by_local_hour(latest_calls(records))


def test_the_history_path_agrees_with_a_recount(history_url: str, records: list[Record]) -> None:
    engine = create_engine(history_url)
    upgrade(engine)
    client = fakeredis.FakeRedis()
    settings = replace(SETTINGS, database_url=history_url)
    publish(client, records)
    store = Store(client, retention_seconds=settings.retention_seconds)
    while archive_pass(store, engine):
        pass
    reader = api(settings, client)
    calls = latest_calls(records)
    for group_by in (None, "queue", "extension"):
        body = reader.get(
            f"/v1/stats?{QUERY}&group_by={group_by or ''}", headers=HEADERS
        ).get_json()
        assert body["window"]["source"] == "history"
        assert answered(body, group_by) == expected(calls, group_by)
    heat = reader.get(f"/v1/stats/heatmap?{QUERY}&metric=offered", headers=HEADERS).get_json()
    assert heat["cells"] == offered_by_local_hour(calls)
    levels = reader.get(f"/v1/stats/heatmap?{QUERY}&metric=service_level", headers=HEADERS)
    from_redis = api(replace(settings, database_url=None), client)
    same = from_redis.get(f"/v1/stats/heatmap?{QUERY}&metric=service_level", headers=HEADERS)
    assert levels.get_json() == same.get_json()
    engine.dispose()
