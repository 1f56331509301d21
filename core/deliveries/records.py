"""The records of outbound webhooks: a subscription and one delivery to it.

Both are stored as JSON (core/store) and read by the dispatcher, the
delivery process and the API; this module describes their shape and imports
nothing, so every one of them can use it. No check at run time: a field added
later is ``NotRequired`` here, and read with a default where it may be absent.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict, get_args

# A delivery's status, in the order of its life.
DeliveryStatus = Literal["pending", "succeeded", "failed", "cancelled"]
DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)


class SigningSecret(TypedDict):
    """A secret a subscription's deliveries are signed with (Standard Webhooks)."""

    secret: str  # "whsec_" and base64
    # Unix seconds after which it no longer signs (a rotated-out secret's grace);
    # None: the current secret.
    expires_at: float | None


class Subscription(TypedDict):
    """Where outcome records go, and which."""

    id: str
    # The tenant whose outcomes it gets, or "*" (an admin key's: every tenant).
    tenant_id: str
    # Where it posts (webhook, slack, teams); None for email.
    url: str | None
    # Outcome kinds it wants; None or empty: all of them.
    outcomes: list[str] | None
    enabled: bool
    # Attempts under way at once per delivery process; None: DELIVERY_MAX_IN_FLIGHT.
    max_in_flight: int | None
    created_at: str | None
    # Redis's clock when it was made: it gets outcomes decided from then on.
    created_us: int
    secrets: list[SigningSecret]
    # Why it was disabled (a receiver that answered 410 Gone).
    disabled_reason: NotRequired[str]
    # How deliveries are rendered and sent (core/deliveries/kinds.py); absent: webhook.
    kind: NotRequired[str]
    # email: the addresses its messages go to.
    to: NotRequired[list[str] | None]
    # Live call events and alerts it wants (call.ringing, alert.long_wait...); absent
    # or None: none.
    events: NotRequired[list[str] | None]


class Delivery(TypedDict):
    """One outcome record on its way to one subscription, with its attempts so far."""

    # ``<subscription id>_<digest of tenant, call and revision>`` for an outcome:
    # one per revision, made twice (the revision published again under a new id
    # too), stored once; ``<subscription id>_ev<event id>`` for a live event or an
    # alert.
    id: str
    # The Standard Webhooks ``webhook-id``, the same on every attempt.
    webhook_id: str
    subscription_id: str
    # The tenant (or "*") the subscription is stored under.
    subscription_tenant: str
    tenant_id: str
    outcome_id: str
    call_uuid: str
    outcome: str
    revision: int
    # The outcome record as sent (JSON text): every attempt sends the same bytes.
    body: str
    # What it carries: absent for an outcome record, else the event's type
    # (call.ringing, alert.long_wait...); then outcome_id is the event's id.
    type: NotRequired[str]
    status: DeliveryStatus
    attempts: int
    # The receiver's last HTTP status (None: no answer) and what went wrong.
    last_status: int | None
    last_error: str | None
    created_at: str | None
    last_attempt_at: str | None
    next_attempt_at: str | None
    delivered_at: str | None
