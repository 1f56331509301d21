"""Schemathesis against the live service: the OpenAPI document says what the service does.

The real service (a private redis-server, the Procfile's web and worker) is
started once for the module, given a little history (a finished call with
its outcome, a live call, an SMS conversation, subscriptions with
deliveries), and its own ``/openapi.json`` is loaded. Schemathesis then sends
every operation generated requests, valid and invalid, and checks each
answer: no 5xx, a documented status, a body that matches the documented
schema. On top of schemathesis's checks, bodies are held to *exactly* the
documented fields (the served document leaves objects open so the API may
grow; here every field must be in it).

Credentials: the admin API key as Bearer on /v1; the webhook token in the
path (or as Basic-auth password) for most webhook posts, and a wrong one for
some, so 401s are exercised too. Generated ids are, for some cases, swapped
for the ids of the seeded records so "found" answers are checked, not only
404s. Subscription URLs are always swapped for a loopback receiver: nothing
generated here ever leaves the machine.

One pytest test per operation and generation mode (positive, negative), each
a Hypothesis test over schemathesis's strategy for that operation
(``APIOperation.as_strategy``), derandomized, with ``call_and_validate``
running the checks. Not schemathesis's own pytest plugin
(``schemathesis.pytest.from_fixture``): its lazy loader reads
``request.node._nodeid``, which pytest 9.2 no longer has.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from schemathesis import Case as AnyCase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

import app.intake.openapi_webhooks as openapi_webhooks
import app.ops.openapi as openapi
import app.web.schema_fields as schema_fields
from bench.service import Service, wait_for

MAX_EXAMPLES = 50
# A stream answers for STREAM_MAX_SECONDS (1 s here): fewer examples keep the run short.
STREAM_EXAMPLES = 4
DOCUMENT = openapi.build_spec()
OPERATIONS = [
    (path, method, mode)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if method in ("get", "post", "put", "patch", "delete")
    # Negative cases need something to get wrong: a parameter or a body.
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE
    or operation.get("parameters")
    or operation.get("requestBody")
]
Case = AnyCase[Any]
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
LIVE_CALL_UUID = "7a0c1e52-3b4d-4f6e-8a9b-0c1d2e3f4a5b"


class Receiver:
    """A loopback HTTP server that takes outbound webhooks: 200, or 500 under /fail."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Seeded:
    """The live service, its credentials and the ids of what it was given."""

    def __init__(self, service: Service, receiver: Receiver) -> None:
        self.service = service
        self.receiver = receiver
        self.base_url = service.base_url
        self.bearer = {"Authorization": f"Bearer {service.key}"}
        self.subscription_ids: list[str] = []
        self.delivery_ids: list[tuple[str, str]] = []
        self.document: dict[str, Any] = {}
        self.strict_components: dict[str, Any] = {}

    def post_event(self, fields: dict[str, str]) -> None:
        answer = requests.post(self.service.webhook_url, data=fields, timeout=10)
        assert answer.status_code == 202, answer.text

    def get(self, path: str) -> Any:
        answer = requests.get(f"{self.base_url}{path}", headers=self.bearer, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def seed(self) -> None:
        """Give the service a finished call with an outcome delivered, a live call and an SMS."""
        for url in (self.receiver.url + "/ok", self.receiver.url + "/fail"):
            made = requests.post(
                f"{self.base_url}/v1/subscriptions",
                json={"url": url},
                headers=self.bearer,
                timeout=10,
            )
            assert made.status_code == 201, made.text
            self.subscription_ids.append(made.json()["id"])
        samples = openapi_webhooks.WEBHOOK_SAMPLES
        ids = {"tenantId": samples["tenantId"], "containerId": samples["containerId"]}
        caller = {"callerIdNum": samples["callerIdNum"], "callerIdName": samples["callerIdName"]}
        call = {**ids, **caller, "callUuid": samples["callUuid"]}
        ext = {"extNumber": samples["extNumber"], "extName": samples["extName"]}
        for fields in (
            {"eventType": "InboundCall", "eventTarget": "phoneNumber", **call,
             "didNumber": samples["didNumber"], "didDescription": samples["didDescription"],
             "didGroup": samples["didGroup"]},
            {"eventType": "queueEntered", "eventTarget": "queue", **call,
             "queueNumber": samples["queueNumber"]},
            {"eventType": "ringAttempt", "eventTarget": "extension", **call, **ext},
            {"eventType": "ExtensionAnswered", **call, "extensionNumber": ext["extNumber"],
             "extensionName": ext["extName"]},
            {"eventType": "HangupCall", **call, **ext},
            {"eventType": "InboundCall", **ids, **caller, "callUuid": LIVE_CALL_UUID},
            {"eventType": "ringAttempt", "eventTarget": "ringGroup", **ids,
             "callUuid": LIVE_CALL_UUID, "rgNumber": samples["rgNumber"]},
        ):  # fmt: skip
            self.post_event(fields)
        for event_type in ("inboundMessage", "outboundMessage"):
            answer = requests.post(
                self.service.webhook_url,
                json={
                    "eventType": event_type,
                    "tenantID": samples["tenantId"],
                    "containerID": samples["containerId"],
                    "conversationID": samples["conversationId"],
                    "fromNumber": samples["fromNumber"],
                    "toNumber": samples["toNumber"],
                    "messageText": samples["messageText"],
                },
                timeout=10,
            )
            assert answer.status_code == 202, answer.text
        wait_for(lambda: bool(self.get("/v1/outcomes")["outcomes"]), 30, "the seeded outcome")
        # The receiver takes /ok at once (so loopback deliveries bypass the dead-end
        # proxy) and fails /fail until its retries run out.
        for subscription_id, final in zip(
            self.subscription_ids, ("succeeded", "failed"), strict=True
        ):
            path = f"/v1/subscriptions/{subscription_id}/deliveries?status={final}"
            wait_for(lambda p=path: bool(self.get(p)["deliveries"]), 30, f"a {final} delivery")  # type: ignore[misc]
            for delivery in self.get(path)["deliveries"]:
                self.delivery_ids.append((subscription_id, delivery["id"]))
        self.document = requests.get(f"{self.base_url}/openapi.json", timeout=10).json()
        self.strict_components = _strict(self.document)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The live service with its seeded history (module-wide: starting it takes seconds)."""
    workdir: Path = tmp_path_factory.mktemp("schemathesis-service")
    env = {
        # prepare() swaps every generated subscription URL for the loopback
        # receiver. (Proxy variables cannot serve as a second guard: deliveries
        # connect to the address the URL guard checked, never through a proxy.)
        "OUTCOME_GRACE_SECONDS": "0.2",
        "SUBSCRIPTION_ALLOW_PRIVATE": "1",
        "DELIVERY_RETRY_SECONDS": "1",
        # A stream sends what it has and closes after a second: each generated
        # request to a stream endpoint gets a complete answer to check.
        "STREAM_MAX_SECONDS": "1",
        "WEB_CONCURRENCY": "1",
        # Call history on: /v1/calls answers from the seeded calls, archived.
        "DATABASE_URL": f"sqlite:///{workdir / 'history.sqlite3'}",
    }
    subprocess.run(
        [sys.executable, "-m", "core.history", "upgrade"],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with Receiver() as receiver, Service(env, workdir=workdir) as service:
        service.start(workers=1)
        state = Seeded(service, receiver)
        state.seed()
        yield state


@pytest.fixture(scope="module")
def api_schema(seeded: Seeded) -> schemathesis.BaseSchema:
    """The OpenAPI document as the live service serves it, loaded by schemathesis."""
    return schemathesis.openapi.from_url(f"{seeded.base_url}/openapi.json")


def _chosen(value: Any, one_in: int) -> bool:
    """A deterministic pick of about one case in ``one_in``, by the generated value."""
    return zlib.crc32(repr(value).encode()) % one_in == 0


def prepare(case: Case, seeded: Seeded) -> dict[str, str]:
    """Point some generated ids at seeded records; give credentials; keep URLs on loopback.

    Returns the headers to send.
    """
    params = case.path_parameters if isinstance(case.path_parameters, dict) else {}
    generated = repr(sorted(params.items()))
    if case.path == "/webhooks/primevox/{token}" and not _chosen(generated, 4):
        params["token"] = seeded.service.token
    if "subscription_id" in params and case.method != "DELETE" and not _chosen(generated, 3):
        subscription_id, delivery_id = seeded.delivery_ids[
            zlib.crc32(generated.encode()) % len(seeded.delivery_ids)
        ]
        params["subscription_id"] = subscription_id
        if "delivery_id" in params and not _chosen(generated + "delivery", 3):
            params["delivery_id"] = delivery_id
    if case.path == "/v1/subscriptions" and case.method == "POST" and isinstance(case.body, dict):
        url = case.body.get("url")
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is not None and parsed.scheme in ("http", "https") and parsed.netloc:
            case.body["url"] = seeded.receiver.url + "/generated"
    if case.path == "/webhooks/primevox":
        password = seeded.service.token if not _chosen(case.body, 4) else "wrong"
        basic = base64.b64encode(f"pbx:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return dict(seeded.bearer)


def _strict(document: dict[str, Any]) -> dict[str, Any]:
    """The document's schemas, with every object that lists properties closed to others."""
    components: dict[str, Any] = copy.deepcopy(document["components"])

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(components["schemas"])
    return components


def assert_documented_fields(seeded: Seeded, case: Case, response: Any) -> None:
    """Every field of a JSON (or SSE) answer is documented, with its documented type."""
    operation = seeded.document["paths"][case.path][case.method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    if documented is None or media_type not in documented.get("content", {}):
        return  # schemathesis's checks have said what is wrong
    components = seeded.strict_components
    schema = documented["content"][media_type].get("schema", {})
    if media_type == "application/json":
        bodies = [response.json()]
    elif media_type == "text/event-stream":
        content_schema = schema["properties"]["data"]["contentSchema"]
        schema = content_schema
        bodies = [
            json.loads(line[len("data: ") :])
            for line in response.text.splitlines()
            if line.startswith("data: ")
        ]
    else:
        return
    validator = Draft202012Validator({"components": components, **schema})
    for body in bodies:
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: the body does not "
            f"match the documented schema exactly: "
            + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
        )


@pytest.mark.parametrize(
    ("path", "method", "mode"), OPERATIONS, ids=[f"{m.upper()} {p} {g}" for p, m, g in OPERATIONS]
)
def test_live_service_conforms_to_its_openapi_document(
    api_schema: schemathesis.BaseSchema,
    seeded: Seeded,
    path: str,
    method: str,
    mode: GenerationMode,
) -> None:
    """Generated requests to every operation get no 5xx and answers its schema documents."""
    operation = api_schema[path][method.upper()]
    strategy = operation.as_strategy(generation_mode=mode)
    streams = path.endswith("/stream")

    @settings(
        max_examples=STREAM_EXAMPLES if streams else MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def requests_conform(case: Case) -> None:
        headers = prepare(case, seeded)
        response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=15)
        assert_documented_fields(seeded, case, response)

    requests_conform()


def test_the_live_document_is_the_one_this_code_builds(seeded: Seeded) -> None:
    """The service serves the document ``app.ops.openapi`` builds (what the tests above walk)."""
    assert seeded.document == json.loads(json.dumps(openapi.build_spec()))


def test_the_seeded_history_is_visible(seeded: Seeded) -> None:
    """The service the document is tested against has calls, outcomes and deliveries to show."""
    assert (
        seeded.get(f"/v1/calls/{schema_fields.EXAMPLE_CALL_UUID}")["outcome"]["outcome"]
        == "answered"
    )
    assert seeded.get("/v1/calls/live")["calls"]
    assert seeded.get(f"/v1/conversations/{schema_fields.EXAMPLE_CONVERSATION}/messages")[
        "messages"
    ]
    assert seeded.delivery_ids
