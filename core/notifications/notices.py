"""What a delivery says to a person: a title, one line, and labelled facts.

Built from the JSON a webhook subscription would get (an outcome record, a live
call event or an alert), in the tenant's time zone, so every kind of receiver
(Slack, Teams, email) says the same thing in its own format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

MISSED_REASONS = {
    "abandoned": "the caller hung up while waiting",
    "no_answer": "extensions rang, nobody answered",
    "unrouted": "the call was never queued or rung",
}


@dataclass(frozen=True)
class Notice:
    """One message for a person."""

    title: str  # a headline: "Missed call from Alice (+15551234567)"
    text: str  # the whole message in one or two sentences (previews, plain text)
    facts: tuple[tuple[str, str], ...]  # (label, value), in reading order
    when: str  # the moment it is about, in the tenant's time zone


def party(value: Mapping[str, Any] | None) -> str:
    """``Alice (+15551234567)``, ``+15551234567`` or ``unknown``."""
    if not value:
        return "unknown"
    number, name = value.get("number") or "", value.get("name") or ""
    if name and number and name != number:
        return f"{name} ({number})"
    return name or number or "unknown"


def duration(seconds: float | None) -> str:
    """``0:42``, ``12:05``, ``1:02:03``."""
    if seconds is None:
        return "unknown"
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def local_time(iso: str | None, zone: ZoneInfo) -> str:
    """``Mon 7 Dec 2026 09:14:05 CET`` in ``zone``; ``unknown`` without a time."""
    if not iso:
        return "unknown"
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(zone)
    return f"{moment:%a} {moment.day} {moment:%b %Y %H:%M:%S} {moment.tzname()}"


def _called(record: Mapping[str, Any]) -> str:
    did = record.get("did") or {}
    if record.get("direction") == "outbound":
        return str(record.get("number_dialed") or "unknown")
    number, description = did.get("number") or "", did.get("description") or ""
    if number and description:
        return f"{description} ({number})"
    return number or description or "unknown"


def _route(record: Mapping[str, Any]) -> str | None:
    if record.get("queue"):
        return f"queue {record['queue']}"
    if record.get("ring_group"):
        return f"ring group {record['ring_group']}"
    return None


def outcome_notice(record: Mapping[str, Any], zone: ZoneInfo) -> Notice:
    """A person's message about an outcome record (answered, voicemail, missed, outbound)."""
    caller, called, route = party(record.get("caller")), _called(record), _route(record)
    outcome = record.get("outcome")
    when = local_time(record.get("started_at") or record.get("ended_at"), zone)
    callback = (record.get("caller") or {}).get("number") or None
    if outcome == "missed":
        why = MISSED_REASONS.get(str(record.get("missed_reason")), "nobody answered")
        title = f"Missed call from {caller}"
        happened = f"missed: {why}"
    elif outcome == "voicemail":
        title = f"Voicemail from {caller}"
        happened = f"voicemail left in box {party(record.get('voicemail_box'))}"
    elif outcome == "answered":
        title = f"Call from {caller} answered by {party(record.get('answered_by'))}"
        happened = f"answered by {party(record.get('answered_by'))}"
        callback = None
    else:
        title = f"Outbound call to {called}"
        happened = "outbound call"
        caller = party(record.get("extension") or record.get("caller"))
        callback = None
    facts: list[tuple[str, str]] = [("Caller", caller), ("Number called", called)]
    if route:
        facts.append(("Queue" if record.get("queue") else "Ring group", route.split(" ", 1)[1]))
    facts += [("What happened", happened), ("Wait", duration(record.get("wait_seconds")))]
    if callback:
        facts.append(("Call back", callback))
    facts.append(("When", when))
    text = f"{title}, to {called}" + (f" via {route}" if route else "") + f": {happened}."
    text += f" Waited {duration(record.get('wait_seconds'))}."
    if callback:
        text += f" Call back {callback}."
    if record.get("revision", 1) > 1:
        text += f" (Revised: revision {record['revision']}.)"
    return Notice(title, text, tuple(facts), when)


ALERT_TITLES = {
    "alert.long_wait": ("A caller is waiting too long", "No caller waits too long any more"),
    "alert.service_level": ("Service level under target", "Service level back on target"),
    "alert.callback_overdue": ("Missed callers not called back", "Every callback is in time"),
}


def _alert_figures(alert: str, value: Any, threshold: Any, count: Any) -> list[tuple[str, str]]:
    if alert == "alert.long_wait":
        return [("Longest wait", duration(value)), ("Limit", duration(threshold)),
                ("Callers over it", str(count))]  # fmt: skip
    if alert == "alert.service_level":
        shown = "unknown" if value is None else f"{float(value):.0%}"
        return [("Service level (30 min)", shown), ("Target", f"{float(threshold):.0%}"),
                ("Calls offered", str(count))]  # fmt: skip
    oldest = "none" if value is None else f"{float(value):.0f} min"
    return [("Oldest open callback", oldest), ("Limit", f"{float(threshold):g} min"),
            ("Callbacks overdue", str(count))]  # fmt: skip


def alert_notice(alert: Mapping[str, Any], zone: ZoneInfo) -> Notice:
    """A person's message about an alert starting or ending."""
    started, ended = ALERT_TITLES.get(str(alert["type"]), (str(alert["type"]),) * 2)
    resolved = bool(alert.get("resolved"))
    title = ("Resolved: " + ended) if resolved else started
    when = local_time(alert.get("at"), zone)
    facts = _alert_figures(str(alert["type"]), alert.get("value"), alert.get("threshold"),
                           alert.get("count"))  # fmt: skip
    facts.append(("When", when))
    text = (
        f"{title} ({alert.get('tenant_id')}): "
        + ", ".join(f"{label.lower()} {value}" for label, value in facts[:2])
        + "."
    )
    return Notice(title, text, tuple(facts), when)


def notice_for(payload: Mapping[str, Any], zone: ZoneInfo) -> Notice:
    """The notice of whatever a delivery carries: an alert, or an outcome record."""
    if str(payload.get("type", "")).startswith("alert."):
        return alert_notice(payload, zone)
    return outcome_notice(payload, zone)
