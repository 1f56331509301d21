"""Call-centre figures: the definitions (tables over outcome records) and GET /v1/stats."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

import app.stats.figures as stats
import app.stats.routes as stats_api
from core.settings import ConfigError, Settings
from core.store import Store, outcomes_key
from statemachine.events import micros
from tests.conftest import API_KEY, TENANT_KEY, TOKEN
from workers.engine import Engine

ADMIN = {"Authorization": f"Bearer {API_KEY}"}
T1 = {"Authorization": f"Bearer {TENANT_KEY}"}
SL = 20.0
DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a past day: every id is below the server's time
US = 1_000_000


def us(moment: datetime) -> int:
    return micros(moment)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def record(
    outcome: str = "answered",
    *,
    reason: str | None = None,
    wait: float | None = 5.0,
    talk: float | None = 60.0,
    queue: str | None = "600",
    tenant: str = "t1",
    call: str = "c",
    revision: int = 1,
    at: int = 0,
    caller: str | None = "+15551230000",
    answered_by: str | None = None,
    rang: tuple[str, ...] = (),
    voicemail_box: str | None = None,
    extension: str | None = None,
    dialed: str | None = None,
    did: str | None = "+18005550100",
    started: datetime | None = None,
) -> dict[str, Any]:
    """An outcome record as the stream holds it; ``at`` = seconds after DAY's midnight."""
    direction = "outbound" if outcome == "outbound" else "inbound"
    if outcome == "answered" and answered_by is None:
        answered_by = "101"
    start = started or DAY + timedelta(seconds=at) - timedelta(seconds=(wait or 0) + (talk or 0))
    return {
        "id": f"{us(DAY) + at * US}-0",
        "call_uuid": call,
        "tenant_id": tenant,
        "container_id": "pbx-1",
        "direction": direction,
        "outcome": outcome,
        "missed_reason": reason if outcome == "missed" else None,
        "answered_by": {"number": answered_by, "name": f"Agent {answered_by}"}
        if answered_by
        else None,
        "voicemail_box": {"number": voicemail_box, "name": "Box"} if voicemail_box else None,
        "caller": {"number": caller, "name": "Zoë"} if caller is not None else None,
        "did": {"number": did, "description": "Main", "group": ""} if did else None,
        "number_dialed": dialed,
        "extension": {"number": extension, "name": f"Agent {extension}"} if extension else None,
        "queue": queue,
        "ring_group": None,
        "rang": [{"number": r, "name": f"Agent {r}"} for r in rang],
        "started_at": iso(start),
        "answered_at": iso(start + timedelta(seconds=wait or 0)) if outcome == "answered" else None,
        "ended_at": iso(start + timedelta(seconds=(wait or 0) + (talk or 0))),
        "wait_seconds": wait,
        "talk_seconds": talk if outcome in ("answered", "outbound") else 0.0,
        "ended_by": "hangup",
        "revision": revision,
    }


# -- definitions --------------------------------------------------------------------------

FIGURE_TABLE = [
    # (records, expected subset of totals)
    ([], {"offered": 0, "abandon_rate": None, "service_level": None, "avg_wait_seconds": None}),
    (
        [record("answered", wait=5, talk=60)],
        {"offered": 1, "answered": 1, "missed": 0, "service_level": 1.0, "abandon_rate": 0.0,
         "avg_wait_seconds": 5.0, "avg_answer_seconds": 5.0, "talk_seconds": 60.0},
    ),
    (
        [record("missed", reason="abandoned", wait=30, talk=None)],
        {"offered": 1, "missed": 1, "abandoned": 1, "abandon_rate": 1.0, "service_level": 0.0,
         "avg_answer_seconds": None, "max_wait_seconds": 30.0},
    ),
    (
        [record("missed", reason="no_answer", call="a"),
         record("missed", reason="unrouted", call="b")],
        {"offered": 2, "missed": 2, "no_answer": 1, "unrouted": 1, "abandoned": 0,
         "abandon_rate": 0.0},
    ),
    (
        [record("voicemail", voicemail_box="101", wait=25)],
        {"offered": 1, "voicemail": 1, "answered": 0, "missed": 0, "service_level": 0.0},
    ),
    (
        # service level: a wait of exactly SL counts, a moment more does not,
        # an unknown wait (answer time never seen) does not either.
        [record(call="a", wait=SL), record(call="b", wait=SL + 0.1),
         record(call="c", wait=None), record("missed", reason="abandoned", call="d", wait=3)],
        {"offered": 4, "answered": 3, "answered_in_service_level": 1, "service_level": 0.25,
         "abandon_rate": 0.25, "avg_wait_seconds": round((SL + SL + 0.1 + 3) / 3, 1),
         "max_wait_seconds": SL + 0.1, "avg_answer_seconds": round((SL + SL + 0.1) / 2, 1)},
    ),
    (
        # outbound calls are counted apart, never offered
        [record("outbound", extension="101", dialed="+15559876543", talk=40, wait=3)],
        {"offered": 0, "outbound": 1, "outbound_talk_seconds": 40.0, "talk_seconds": 0.0,
         "avg_wait_seconds": None},
    ),
    (
        [record(call="a", talk=30), record(call="b", talk=90, wait=10)],
        {"talk_seconds": 120.0, "avg_talk_seconds": 60.0, "avg_wait_seconds": 7.5},
    ),
]  # fmt: skip


@pytest.mark.parametrize("records,expected", FIGURE_TABLE)
def test_figures_follow_the_definitions(
    records: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    """Each row: outcome records in, the totals the definitions (docs/stats.md) give out."""
    totals = stats.summarize(stats.calls_in_window(records), None, SL)["totals"]
    assert {k: totals[k] for k in expected} == expected


def test_missed_is_the_sum_of_its_reasons_and_offered_adds_up() -> None:
    """offered = answered + voicemail + missed, missed = abandoned + no_answer + unrouted."""
    records = [
        record(call="1"), record(call="2"), record("voicemail", call="3", voicemail_box="1"),
        record("missed", reason="abandoned", call="4"),
        record("missed", reason="no_answer", call="5"),
        record("missed", reason="unrouted", call="6"),
        record("outbound", call="7", extension="1"),
    ]  # fmt: skip
    totals = stats.summarize(stats.calls_in_window(records), None, SL)["totals"]
    assert totals["offered"] == totals["answered"] + totals["voicemail"] + totals["missed"] == 6
    assert totals["missed"] == totals["abandoned"] + totals["no_answer"] + totals["unrouted"] == 3
    assert totals["outbound"] == 1


def test_only_the_latest_revision_of_a_call_counts() -> None:
    """A missed call answered after all (revision 2) counts once, as answered."""
    records = [
        record("missed", reason="abandoned", call="x", revision=1, at=10),
        record("answered", call="x", revision=2, at=20),
    ]
    calls = stats.calls_in_window(records)
    assert [(c["call_uuid"], c["revision"]) for c in calls] == [("x", 2)]
    totals = stats.summarize(calls, None, SL)["totals"]
    assert (totals["offered"], totals["answered"], totals["missed"]) == (1, 1, 0)


def test_a_call_first_decided_before_the_window_is_not_counted_again() -> None:
    """Only revision 2 in the window: the call belongs to the window of its revision 1."""
    records = [record("answered", call="x", revision=2, at=20), record(call="y", at=30)]
    assert [c["call_uuid"] for c in stats.calls_in_window(records)] == ["y"]


GROUP_TABLE = [
    ("queue", record(queue="600"), ["600"]),
    ("queue", record(queue=None), [None]),
    ("did", record(did="+18005550111"), ["+18005550111"]),
    ("did", record(did=None), [None]),
    ("tenant", record(tenant="acme"), ["acme"]),
    ("hour", record(started=DAY + timedelta(hours=13, minutes=59)), ["2026-03-02T13:00:00Z"]),
    ("extension", record(rang=("101", "102"), answered_by="102"), ["101", "102"]),
    ("extension", record("voicemail", rang=("103",), voicemail_box="104"), ["103", "104"]),
    ("extension", record("missed", reason="abandoned"), [None]),
    ("extension", record("outbound", extension="105", rang=("105",)), ["105"]),
]


@pytest.mark.parametrize("group_by,rec,keys", GROUP_TABLE)
def test_group_keys(group_by: str, rec: dict[str, Any], keys: list[str | None]) -> None:
    """Which group(s) a call falls in, for every grouping."""
    assert stats.group_keys(rec, group_by) == keys


def test_groups_are_sorted_with_no_key_last_and_totals_cover_all() -> None:
    """Groups by queue: sorted keys, calls without a queue last, totals over every call."""
    records = [
        record(call="a", queue="601"), record(call="b", queue=None),
        record("missed", reason="abandoned", call="c", queue="600"), record(call="d", queue="600"),
    ]  # fmt: skip
    summary = stats.summarize(stats.calls_in_window(records), "queue", SL)
    assert [(g["key"], g["offered"]) for g in summary["groups"]] == [
        ("600", 2), ("601", 1), (None, 1),
    ]  # fmt: skip
    assert summary["groups"][0]["abandon_rate"] == 0.5
    assert summary["totals"]["offered"] == 4


def test_extension_groups_count_calls_presented_to_each_extension() -> None:
    """By extension: a call rung at two extensions is offered to both, answered by one."""
    records = [
        record(call="a", rang=("101", "102"), answered_by="102"),
        record("missed", reason="no_answer", call="b", rang=("101",)),
        record("outbound", call="c", extension="101"),
    ]
    groups = {g["key"]: g for g in stats.summarize(records, "extension", SL)["groups"]}
    assert (groups["101"]["offered"], groups["101"]["answered"], groups["101"]["elsewhere"]) == (
        2, 0, 1,
    )  # fmt: skip
    assert (groups["101"]["no_answer"], groups["101"]["outbound"]) == (1, 1)
    assert (groups["102"]["offered"], groups["102"]["answered"], groups["102"]["elsewhere"]) == (
        1, 1, 0,
    )  # fmt: skip


def test_unknown_grouping_is_refused() -> None:
    """group_keys raises ValueError for a grouping it does not know."""
    with pytest.raises(ValueError, match="group_by"):
        stats.group_keys(record(), "agent")


def test_missed_calls_newest_first_with_follow_up() -> None:
    """The callback list: newest first; a later callback or answered call is its follow-up."""
    records = [
        record("missed", reason="abandoned", call="m1", at=100, caller="+15551112222"),
        record("missed", reason="no_answer", call="m2", at=200, caller="5553334444"),
        record("missed", reason="unrouted", call="m3", at=300, caller="anonymous"),
        # m1's caller is called back (number written differently)
        record("outbound", call="o1", at=400, extension="101", dialed="15551112222",
               started=DAY + timedelta(seconds=390)),
        # m2's caller called earlier and was answered: not a follow-up
        record("answered", call="a0", at=50, caller="+15553334444"),
    ]  # fmt: skip
    missed = stats.missed_calls(stats.calls_in_window(records))
    assert [m["call_uuid"] for m in missed] == ["m3", "m2", "m1"]
    follow = {m["call_uuid"]: m["follow_up"] for m in missed}
    assert follow["m1"] is not None and follow["m1"]["kind"] == "called_back"
    assert follow["m1"]["call_uuid"] == "o1"
    assert follow["m2"] is None and follow["m3"] is None
    assert missed[2]["caller"]["number"] == "+15551112222"
    assert missed[2]["missed_reason"] == "abandoned"
    assert len(stats.missed_calls(stats.calls_in_window(records), limit=1)) == 1


def test_a_caller_answered_on_a_later_call_is_followed_up() -> None:
    """The same caller calls again and is answered: follow_up kind 'answered'."""
    records = [
        record("missed", reason="abandoned", call="m", at=100),
        record("answered", call="again", at=500, started=DAY + timedelta(seconds=400)),
    ]
    (missed,) = stats.missed_calls(stats.calls_in_window(records))
    assert missed["follow_up"]["kind"] == "answered"
    assert missed["follow_up"]["call_uuid"] == "again"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026-03-02T10:00:00Z", DAY + timedelta(hours=10)),
        ("2026-03-02T10:00:00+01:00", DAY + timedelta(hours=9)),
        ("2026-03-02T10:00:00 01:00", DAY + timedelta(hours=9)),  # '+' arrived as a space
        ("2026-03-02T10:00:00", DAY + timedelta(hours=10)),  # no offset: UTC
        ("2026-03-02", DAY),
    ],
)
def test_parse_instant(text: str, expected: datetime) -> None:
    """ISO-8601 times with Z, offsets, a '+' turned space, no offset, a bare date."""
    assert stats.parse_instant(text) == expected


def test_parse_instant_refuses_what_is_not_a_time() -> None:
    """Not a time: ValueError."""
    with pytest.raises(ValueError):
        stats.parse_instant("yesterday")


def test_service_level_seconds_is_read_from_the_environment() -> None:
    """SERVICE_LEVEL_SECONDS: default 20, a number of seconds, refused when not a number."""
    assert Settings.from_env({}).service_level_seconds == 20.0
    assert Settings.from_env({"SERVICE_LEVEL_SECONDS": "30"}).service_level_seconds == 30.0
    with pytest.raises(ConfigError, match="SERVICE_LEVEL_SECONDS"):
        Settings.from_env({"SERVICE_LEVEL_SECONDS": "soon"})


# -- GET /v1/stats ------------------------------------------------------------------------


def put(redis_client: fakeredis.FakeRedis, rec: dict[str, Any]) -> None:
    """Write a record into its tenant's outcome stream under its own id."""
    body = {k: v for k, v in rec.items() if k != "id"}
    redis_client.xadd(outcomes_key(rec["tenant_id"]), {"record": json.dumps(body)}, id=rec["id"])
    redis_client.sadd("cs:tenants", rec["tenant_id"])


def window(start: int, end: int) -> str:
    """Query string for DAY + start s .. DAY + end s."""
    begin = DAY + timedelta(seconds=start)
    finish = DAY + timedelta(seconds=end)
    return f"from={iso(begin)}&to={iso(finish)}"


def get(client: FlaskClient, query: str, headers: dict[str, str] = ADMIN) -> Any:
    answer = client.get(f"/v1/stats?{query}", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def test_the_window_is_by_decision_time_from_included_to_excluded(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """A record decided exactly at ``from`` counts; one decided exactly at ``to`` does not."""
    for at, call in ((99, "before"), (100, "first"), (150, "middle"), (200, "at-end")):
        put(redis_client, record(call=call, at=at))
    body = get(client, window(100, 200))
    assert body["totals"]["offered"] == 2
    assert body["window"]["from"] == "2026-03-02T00:01:40.000000Z"
    assert body["window"]["group_by"] is None and body["groups"] == []


def test_group_by_queue_over_the_api(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """group_by=queue: one group per queue, None last, with the figures and the totals."""
    put(redis_client, record(call="a", at=10, queue="600", wait=4))
    put(redis_client, record("missed", reason="abandoned", call="b", at=20, queue="600", wait=50))
    put(redis_client, record("voicemail", call="c", at=30, queue=None, voicemail_box="101"))
    body = get(client, window(0, 60) + "&group_by=queue")
    assert [g["key"] for g in body["groups"]] == ["600", None]
    queue = body["groups"][0]
    assert (queue["offered"], queue["answered"], queue["abandoned"]) == (2, 1, 1)
    assert (queue["abandon_rate"], queue["service_level"], queue["max_wait_seconds"]) == (
        0.5, 0.5, 50.0,
    )  # fmt: skip
    assert body["totals"]["offered"] == 3 and body["totals"]["voicemail"] == 1
    assert [m["call_uuid"] for m in body["missed_calls"]] == ["b"]


@pytest.mark.parametrize("group_by", stats.GROUPINGS)
def test_every_grouping_answers(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, group_by: str
) -> None:
    """Each group_by value answers groups whose offered add up at least to the totals."""
    put(redis_client, record(call="a", at=10, rang=("101",)))
    put(redis_client, record("missed", reason="no_answer", call="b", at=20, rang=("102",)))
    body = get(client, f"{window(0, 60)}&group_by={group_by}")
    assert body["window"]["group_by"] == group_by
    assert sum(g["offered"] for g in body["groups"]) >= body["totals"]["offered"] == 2


def test_revisions_over_the_api(client: FlaskClient, redis_client: fakeredis.FakeRedis) -> None:
    """Revision 2 supersedes revision 1; a window with only revision 2 skips the call."""
    put(redis_client, record("missed", reason="abandoned", call="x", at=10))
    put(redis_client, record("answered", call="x", at=20, revision=2))
    both = get(client, window(0, 60))["totals"]
    assert (both["offered"], both["answered"], both["missed"]) == (1, 1, 0)
    assert get(client, window(15, 60))["totals"]["offered"] == 0


def test_default_window_is_today_utc(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """No from/to: from midnight UTC today to now."""
    today = stats.start_of_day(datetime.now(UTC))
    yesterday = record(call="old", at=0)
    yesterday["id"] = f"{us(today) - US}-0"
    now = record(call="new", at=0)
    now["id"] = f"{us(datetime.now(UTC)) - 1000}-0"
    put(redis_client, yesterday)
    put(redis_client, now)
    body = get(client, "")
    assert body["totals"]["offered"] == 1
    assert body["window"]["from"] == iso(today).replace("Z", ".000000Z")


def test_service_level_seconds_from_settings_and_query(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """service_level_seconds: SERVICE_LEVEL_SECONDS (20) unless the query names another."""
    put(redis_client, record(call="a", at=10, wait=25))
    body = get(client, window(0, 60))
    assert body["window"]["service_level_seconds"] == 20.0
    assert body["totals"]["service_level"] == 0.0
    thirty = get(client, window(0, 60) + "&service_level_seconds=30")
    assert thirty["totals"]["service_level"] == 1.0


def test_a_tenant_key_sees_only_its_tenant(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """A t1 key: t1's figures only; asking for t2 is 403. The admin key sees both."""
    put(redis_client, record(call="a", at=10, tenant="t1"))
    put(redis_client, record(call="b", at=20, tenant="t2"))
    put(redis_client, record("missed", reason="abandoned", call="c", at=30, tenant="t2"))
    mine = get(client, window(0, 60) + "&group_by=tenant", T1)
    assert [g["key"] for g in mine["groups"]] == ["t1"] and mine["totals"]["offered"] == 1
    assert mine["missed_calls"] == [] and mine["window"]["tenants"] == ["t1"]
    refused = client.get(f"/v1/stats?{window(0, 60)}&tenant_id=t2", headers=T1)
    assert refused.status_code == 403 and "error" in refused.get_json()
    every = get(client, window(0, 60) + "&group_by=tenant")
    assert [(g["key"], g["offered"]) for g in every["groups"]] == [("t1", 1), ("t2", 2)]
    only_t2 = get(client, window(0, 60) + "&tenant_id=t2")
    assert only_t2["totals"]["offered"] == 2


@pytest.mark.parametrize(
    "query,message",
    [
        ("from=yesterday", "from must be an ISO-8601 time"),
        ("to=2026-13-45T00:00:00Z", "to must be an ISO-8601 time"),
        ("from=2026-03-02T10:00:00Z&to=2026-03-02T10:00:00Z", "from must be before to"),
        ("from=2026-03-03T00:00:00Z&to=2026-03-02T00:00:00Z", "from must be before to"),
        ("group_by=agent", "group_by must be one of"),
        ("service_level_seconds=-1", "service_level_seconds must be a number"),
        ("service_level_seconds=soon", "service_level_seconds must be a number"),
        ("missed_limit=1000", "missed_limit must be a number"),
        ("from=0001-01-01T00:00:00%2B01:00", "from must be an ISO-8601 time"),
    ],
)
def test_bad_queries_answer_400(client: FlaskClient, query: str, message: str) -> None:
    """A bad window, grouping or number: 400 with {"error": ...} naming the parameter."""
    answer = client.get(f"/v1/stats?{query}", headers=ADMIN)
    assert answer.status_code == 400
    assert message in answer.get_json()["error"]


def test_no_key_is_401(client: FlaskClient) -> None:
    """Statistics need an API key like every read."""
    assert client.get("/v1/stats").status_code == 401


def test_a_window_too_large_is_refused(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More records in the window than the web process will hold: 400, ask for less."""
    monkeypatch.setattr(stats_api, "MAX_WINDOW_RECORDS", 2)
    for n in range(3):
        put(redis_client, record(call=f"c{n}", at=10 + n))
    answer = client.get(f"/v1/stats?{window(0, 60)}", headers=ADMIN)
    assert answer.status_code == 400 and "ask for less" in answer.get_json()["error"]


def test_cursor_continues_the_outcome_feed_without_a_gap(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """The answer's cursor, given to /v1/outcomes as after=, yields exactly what came later."""
    put(redis_client, record(call="a", at=10))
    body = get(client, window(0, 60))
    assert body["cursor"] >= record(at=10)["id"]
    put(redis_client, record(call="b", at=70))
    later = client.get(f"/v1/outcomes?after={body['cursor']}", headers=ADMIN).get_json()
    assert [o["call_uuid"] for o in later["outcomes"]] == ["b"]


def test_store_reads_a_window_across_tenants_in_id_order(
    store: Store, redis_client: fakeredis.FakeRedis
) -> None:
    """read_outcome_window merges tenants by id, ends included, capped at the server's time."""
    for at, tenant in ((5, "t2"), (10, "t1"), (15, "t2"), (20, "t1")):
        put(redis_client, record(call=f"c{at}", at=at, tenant=tenant))
    records, end = store.outcomes.read_outcome_window(
        ["t1", "t2"], us(DAY) + 10 * US, us(DAY) + 20 * US
    )
    assert [r["call_uuid"] for r in records] == ["c10", "c15", "c20"]
    assert end == us(DAY) + 20 * US
    future = us(datetime.now(UTC) + timedelta(days=1))
    _, capped = store.outcomes.read_outcome_window(["t1"], 0, future)
    assert capped < future


def test_figures_of_calls_made_through_the_engine(
    client: FlaskClient, drain: Any, engine: Engine
) -> None:
    """Webhooks through intake and engine: answered, abandoned and outbound calls counted."""
    base = "tenantId=t1&containerId=c1"
    bodies = {
        "ans": ["eventType=InboundCall&callerIdNum=%2B15551110000",
                "eventType=queueEntered&queueNumber=600",
                "eventType=ExtensionAnswered&extensionNumber=101&extensionName=Alice",
                "eventType=HangupCall&extNumber=101&extName=Alice"],
        "ab": ["eventType=InboundCall&callerIdNum=%2B15552220000",
               "eventType=queueEntered&queueNumber=600", "eventType=HangupCall"],
        "out": ["eventType=outboundCall&extNumber=101&extName=Alice&numberDialed=%2B15552220000",
                "eventType=inboundCallCompleted&extNumber=101&extName=Alice"],
    }  # fmt: skip
    for call, events in bodies.items():
        for event in events:
            answer = client.post(
                f"/webhooks/primevox/{TOKEN}", data=f"{event}&{base}&callUuid={call}"
            )
            assert answer.status_code == 202
    drain()
    for call in bodies:
        assert engine.decide("t1", call) == "published"
    body = get(client, "group_by=queue", T1)
    (queue,) = body["groups"]
    assert (queue["key"], queue["offered"], queue["answered"], queue["abandoned"]) == (
        "600", 2, 1, 1,
    )  # fmt: skip
    assert body["totals"]["outbound"] == 1
    (missed,) = body["missed_calls"]
    assert missed["call_uuid"] == "ab" and missed["caller"]["number"] == "+15552220000"
    assert missed["follow_up"]["kind"] == "called_back"


def test_windows_outside_the_streams_are_empty_not_errors(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """A window before 1970 or wholly in the future answers zero calls."""
    put(redis_client, record(call="a", at=10))
    assert get(client, "from=1900-01-01&to=1960-01-01")["totals"]["offered"] == 0
    assert get(client, "from=1900-01-01&to=2026-03-03")["totals"]["offered"] == 1
    assert get(client, "from=9000-01-01&to=9001-01-01")["totals"]["offered"] == 0
