"""The supervisor's panels of the wallboard in a real headless Chromium, against the real
service: the extension board follows rings, answers and hang-ups; a missed caller appears
in the callbacks and goes when an agent dials the number back (written another way); a
click on a call opens its story."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException

from bench.service import Service, wait_for
from tests.integration.test_wallboard_browser import (  # noqa: F401 - fixtures
    ARTIFACTS,
    TENANT_KEY,
    Pbx,
    browser,
    page,
    row_text,
    service,
    status,
)

# Bounded waits, not latency claims (test_wallboard_browser.py measures those).
WITHIN = 10.0


def soon(check: Any, what: str) -> None:
    wait_for(check, WITHIN, what)


def click(driver: Any, by: str, target: str) -> None:
    """Click what ``target`` finds, found again if the page redrew it between the
    find and the click: the panels redraw on every live event, and a busy machine
    widens that window (a stale element, not a missing one)."""

    def clicked() -> bool:
        try:
            driver.find_element(by, target).click()
        except StaleElementReferenceException:
            return False
        return True

    soon(clicked, f"a click on {target}")


def get_json(running: Service, path: str) -> Any:
    request = urllib.request.Request(
        running.base_url + path, headers={"Authorization": f"Bearer {TENANT_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def ext_state(driver: Any, number: str) -> str | None:
    found = page(
        driver,
        f"const r = document.querySelector('#extensions tr[data-extension=\"{number}\"]');"
        " return r ? r.dataset.state : null;",
    )
    return None if found is None else str(found)


def callback_numbers(driver: Any) -> list[str]:
    found = page(
        driver,
        "return [...document.querySelectorAll('#callbacks tr[data-callback] .num')]"
        ".map(e => e.textContent)",
    )
    return [str(n) for n in found]


def timeline_texts(driver: Any) -> list[str]:
    found = page(
        driver,
        "return [...document.querySelectorAll('#timeline-steps li .text')].map(e => e.textContent)",
    )
    return [str(t) for t in found]


def test_extensions_callbacks_and_a_calls_story(
    service: Service,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """Extensions change state as calls ring and end; a dialled-back caller leaves the
    callbacks; clicking a call shows its timeline, every text shown as text."""
    acme = Pbx(service.webhook_url, "acme")
    beta = Pbx(service.webhook_url, "beta")
    browser.get(f"{service.base_url}/wallboard#key={TENANT_KEY}")
    wait_for(lambda: status(browser) == "live", 15, "the wallboard's streams to open")

    # Another tenant's extension and missed caller never show.
    theirs = f"beta-{uuid.uuid4()}"
    beta.arrive(theirs, "+15550009999", "Beta Caller")
    beta.ring(theirs, "909", "Beta Agent")

    # A call rings 101 and 102; 101 answers; the caller hangs up.
    call = f"acme-{uuid.uuid4()}"
    caller = "+15551234567"
    acme.arrive(call, caller, "Ana García")
    acme.queue(call, "600", caller)
    acme.ring(call, "101", "Alice <b>Smith</b>")
    acme.ring(call, "102", "Bob O'Neil")
    soon(lambda: ext_state(browser, "102") == "ringing", "102 ringing")
    assert ext_state(browser, "101") == "ringing"
    acme.answer(call, "101", "Alice <b>Smith</b>", caller)
    soon(lambda: ext_state(browser, "101") == "on_call", "101 on the call")
    assert ext_state(browser, "102") == "idle"
    # Click the call in progress: its story so far, names as text.
    talking = f'#talking [data-call="{call}"]'
    soon(lambda: row_text(browser, talking) is not None, "the call in progress")
    click(browser, "css selector", f'#talking [data-call="{call}"]')
    wait_for(lambda: any("answered after" in s for s in timeline_texts(browser)), 5,
             "the answered call's story")  # fmt: skip
    story = timeline_texts(browser)
    assert any("Alice <b>Smith</b>" in s for s in story), story
    assert page(browser, "return document.querySelectorAll('#timeline-steps b').length") == 0
    click(browser, "id", "timeline-close")
    time.sleep(1.1)
    acme.hangup(call, "101", "Alice <b>Smith</b>")
    soon(lambda: ext_state(browser, "101") == "idle", "101 idle again")
    answered = row_text(browser, '#extensions tr[data-extension="101"] td[data-field="answered"]')
    assert answered == "1"
    name = row_text(browser, '#extensions tr[data-extension="101"]') or ""
    assert "Alice <b>Smith</b>" in name, "a name is shown as text, never as HTML"

    # A caller gives up in the queue: an open callback, oldest first, with its wait.
    gone = f"acme-{uuid.uuid4()}"
    acme.arrive(gone, "555-765-4321", "Bob Núñez")
    acme.queue(gone, "600", "555-765-4321")
    acme.ring(gone, "102", "Bob O'Neil")
    acme.hangup(gone)
    soon(lambda: callback_numbers(browser) == ["+15557654321"], "the open callback")
    missed = '#extensions tr[data-extension="102"] td[data-field="missed"]'
    soon(lambda: row_text(browser, missed) == "1", "102's missed ring counted")
    assert ext_state(browser, "102") == "idle"

    # 102 dials the caller back as "+1 (555) 765-4321": the item is resolved and goes.
    back = f"acme-{uuid.uuid4()}"
    acme.post("outboundCall", back, extNumber="102", extName="Bob O'Neil",
                  numberDialed="+1 (555) 765-4321")  # fmt: skip
    soon(lambda: callback_numbers(browser) == [], "the callback resolved")
    soon(lambda: ext_state(browser, "102") == "on_call", "102 dialling out")

    # Click the dialling extension: the live call's story.
    click(browser, "css selector", '#extensions tr[data-extension="102"]')
    wait_for(lambda: any("dialled" in s for s in timeline_texts(browser)), 5, "the live story")
    assert page(browser, "return document.getElementById('timeline').open") is True
    click(browser, "id", "timeline-close")
    wait_for(
        lambda: page(browser, "return document.getElementById('timeline').open") is False,
        5,
        "the story to close",
    )

    # Click the missed call on the callback list of today's figures: its whole story.
    wait_for(lambda: row_text(browser, f'#missed tr[data-call="{gone}"]') is not None, 10,
             "the missed call in today's list")  # fmt: skip
    click(browser, "css selector", f'#missed tr[data-call="{gone}"]')
    wait_for(lambda: any("hung up" in s for s in timeline_texts(browser)), 5, "the missed story")
    story = timeline_texts(browser)
    assert story[0].startswith("call from 555-765-4321 (Bob Núñez)"), story
    assert any(s.startswith("waited") and "queue 600" in s for s in story), story
    assert any("rang 102" in s for s in story), story
    assert any(s.startswith("outcome: missed") for s in story), story
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "wallboard-timeline.png"))
    click(browser, "id", "timeline-close")

    # The call-back ends: the missed call's follow-up links to its story.
    acme.hangup(back, "102", "Bob O'Neil")
    follow_up = f'#missed tr[data-call="{gone}"] .pill.done'
    wait_for(lambda: row_text(browser, follow_up) is not None, 10, "the follow-up")
    click(browser, "css selector", follow_up)
    wait_for(lambda: any("dialled" in s for s in timeline_texts(browser)), 5, "the call-back")
    story = timeline_texts(browser)
    assert "102 Bob O'Neil dialled +1 (555) 765-4321" in story, story

    click(browser, "id", "timeline-close")

    # Two more callers give up; one is resolved by hand with a note, one stays open.
    by_hand, still = f"acme-{uuid.uuid4()}", f"acme-{uuid.uuid4()}"
    for missed_call, number in ((by_hand, "+44 20 7946 0018"), (still, "(555) 010-9999")):
        acme.arrive(missed_call, number, "Caller")
        acme.queue(missed_call, "601", number)
        acme.hangup(missed_call)
    soon(lambda: callback_numbers(browser) == ["+442079460018", "+15550109999"],
          "two open callbacks, oldest first")  # fmt: skip
    click(browser, "css selector", "#callbacks tr[data-callback] button.resolve")
    alert = browser.switch_to.alert
    alert.send_keys("left a voicemail")
    alert.accept()
    wait_for(lambda: callback_numbers(browser) == ["+15550109999"], 5, "the note to resolve it")
    resolved = get_json(service, "/v1/callbacks?status=resolved")["callbacks"]
    assert {c["resolved_by"] for c in resolved} == {back, "left a voicemail"}

    text = str(page(browser, "return document.body.innerText"))
    assert "909" not in text and "+15550009999" not in text
    errors = [
        entry for entry in browser.get_log("browser")
        if entry.get("level") == "SEVERE" and entry.get("source") != "network"
    ]  # fmt: skip
    assert not errors, errors
    height = int(page(browser, "return document.documentElement.scrollHeight"))
    browser.set_window_size(1600, max(1000, height + 20))
    assert browser.save_screenshot(str(ARTIFACTS / "wallboard-supervisor.png"))
