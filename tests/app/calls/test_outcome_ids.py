"""Outcome ids and paging numbers from clients: a bad one is a 400, never a 5xx.

Found by schemathesis against the live service: ids Redis refuses (out of
64-bit range, other scripts' digits, a trailing newline) were answered 503
"redis unavailable", and ``limit=²`` was a 500.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from app.calls.schemas import is_outcome_id
from tests.conftest import API_KEY, TOKEN

AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX = 2**64 - 1


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("1764064805123456-0", True),
        ("1764064805123456", True),
        (f"{MAX}-{MAX - 1}", True),
        (f"{MAX}", True),
        (f"{MAX + 1}", False),
        (f"1-{MAX + 1}", False),
        (f"{MAX}-{MAX}", False),
        ("١٢٣", False),
        ("123\n", False),
        ("12-", False),
        ("", False),
    ],
)
def test_outcome_ids_are_what_redis_can_read_after(text: str, valid: bool) -> None:
    """An outcome id is ASCII digits, each part a 64-bit unsigned, short of the last id."""
    assert is_outcome_id(text) is valid


@pytest.fixture
def with_call(client: FlaskClient) -> FlaskClient:
    posted = client.post(
        f"/webhooks/primevox/{TOKEN}", data="eventType=InboundCall&tenantId=t1&callUuid=c1"
    )
    assert posted.status_code == 202
    return client


@pytest.mark.parametrize(
    "query",
    ["after=78713550534900221407", "after=%D9%A3", "after=1%0A", "limit=%C2%B2", "limit=%D9%A3"],
)
def test_bad_paging_parameters_are_a_400(with_call: FlaskClient, query: str) -> None:
    """?after= an id Redis refuses, or a limit in non-ASCII digits, is a 400 with an error."""
    answer = with_call.get(f"/v1/outcomes?{query}", headers=AUTH)
    assert answer.status_code == 400
    assert "error" in answer.get_json()


@pytest.mark.parametrize("path", ["/v1/outcomes", "/v1/outcomes/stream"])
def test_an_out_of_range_last_event_id_is_a_400(with_call: FlaskClient, path: str) -> None:
    """A Last-Event-ID beyond Redis's id range is refused up front, not a 503 or a stuck stream."""
    answer = with_call.get(path, headers={**AUTH, "Last-Event-ID": "78713550534900221407"})
    assert answer.status_code == 400
    assert "Last-Event-ID" in answer.get_json()["error"] or "after" in answer.get_json()["error"]
