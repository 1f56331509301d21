"""core.deliveries.webhooks signs the Standard Webhooks way, checked by an independent verifier."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.deliveries.webhooks import new_secret, sign, signature_header
from tests.kit.webhooks import WebhookVerificationError, verifies, verify

# The example of the Standard Webhooks / Svix documentation.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

BODY = '{"call_uuid": "u-1", "outcome": "missed", "caller": "Zoë"}'.encode()


def headers(webhook_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_spec_example_signs_and_verifies() -> None:
    """sign() reproduces the specification's example and the verifier accepts it."""
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    verify(SPEC_SECRET, headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE), SPEC_BODY,
           now=SPEC_TIMESTAMP)


def test_new_secret_is_whsec_and_base64_key() -> None:
    """new_secret() is 'whsec_' + base64 of at least 24 random bytes, different every time."""
    made = {new_secret() for _ in range(50)}
    assert len(made) == 50
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret[len("whsec_"):], validate=True)) >= 24


@given(
    body=st.text(max_size=2000).map(str.encode),  # outbound bodies are UTF-8 JSON
    webhook_id=st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1),
    offset=st.integers(-250, 250),
)
def test_signature_header_verifies(body: bytes, webhook_id: str, offset: int) -> None:
    """A header from signature_header() verifies for any body, id and fresh timestamp."""
    secret = new_secret()
    timestamp = int(time.time()) + offset
    header = signature_header([secret], webhook_id, timestamp, body)
    assert header.startswith("v1,") and " " not in header
    verify(secret, headers(webhook_id, timestamp, header), body)


@pytest.mark.parametrize("what", ["body", "id", "timestamp", "secret", "signature"])
def test_tampering_fails(what: str) -> None:
    """Changing the body, id, timestamp, secret or signature makes verification fail."""
    secret = new_secret()
    timestamp = int(time.time())
    sent = headers("msg_1", timestamp, signature_header([secret], "msg_1", timestamp, BODY))
    body = BODY
    assert verifies(secret, sent, body)
    if what == "body":
        body = BODY.replace(b"missed", b"answered")
    elif what == "id":
        sent["webhook-id"] = "msg_2"
    elif what == "timestamp":
        sent["webhook-timestamp"] = str(timestamp - 1)
    elif what == "secret":
        secret = new_secret()
    else:
        raw = bytearray(base64.b64decode(sent["webhook-signature"][3:]))
        raw[0] ^= 1
        sent["webhook-signature"] = "v1," + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(WebhookVerificationError):
        verify(secret, sent, body)


def test_stale_timestamp_fails() -> None:
    """A correctly signed message with a timestamp outside the tolerance is refused."""
    secret = new_secret()
    old = int(time.time()) - 3600
    sent = headers("msg_1", old, signature_header([secret], "msg_1", old, BODY))
    with pytest.raises(WebhookVerificationError):
        verify(secret, sent, BODY)
    verify(secret, sent, BODY, now=old + 10)


def test_rotated_secrets_both_verify() -> None:
    """With two secrets in force the header holds two v1 signatures; each secret verifies."""
    old, new, other = new_secret(), new_secret(), new_secret()
    timestamp = int(time.time())
    header = signature_header([new, old], "msg_rot", timestamp, BODY)
    parts = header.split(" ")
    assert len(parts) == 2 and all(p.startswith("v1,") for p in parts)
    sent = headers("msg_rot", timestamp, header)
    verify(new, sent, BODY)
    verify(old, sent, BODY)
    assert not verifies(other, sent, BODY)
    # Once the old secret is out of force it no longer verifies.
    alone = headers("msg_rot", timestamp, signature_header([new], "msg_rot", timestamp, BODY))
    verify(new, alone, BODY)
    assert not verifies(old, alone, BODY)
