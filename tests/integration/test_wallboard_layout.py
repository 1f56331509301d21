"""The wallboard tells one callback story and fits a wall screen, in a real headless Chromium.

Against the real service (bench.service), with seeded calls: more missed calls
than the panel lists, an anonymous caller, an unrouted call, a caller called
back, callers still to call back, and a call in progress. At 1366x768 and at
1920x1080: no element is wider than its box (nothing scrolls sideways, nothing
is cut); the Missed tile and the missed-calls panel's count agree; the
callbacks panel lists exactly the open items of /v1/callbacks; the missed-calls
panel offers "Call back" exactly where /v1/callbacks has an open item (never
for the anonymous caller, the unrouted call or the caller called back); the
extension panel shows the caller of its call. A screenshot per size, and one
of the whole page at each width, are left in tests/artifacts/.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

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

SIZES = ((1366, 768), (1920, 1080))
FILLER = 52  # missed callers before the ones checked: more than the panel's 50

# Every element of the page whose content is wider than its box, with what it holds.
OVERFLOWING = """
return [...document.querySelectorAll('body *')]
  .filter((e) => e.offsetParent !== null && e.clientWidth > 0 && e.scrollWidth > e.clientWidth)
  .map((e) => `${e.tagName}#${e.id}.${e.className} ${e.scrollWidth}>${e.clientWidth}: `
    + e.innerText.slice(0, 60))
  .concat(document.documentElement.scrollWidth > window.innerWidth
    ? [`the page: ${document.documentElement.scrollWidth}>${window.innerWidth}`] : []);
"""
FOLLOW_UPS = """
return Object.fromEntries([...document.querySelectorAll('#missed tr[data-call]')].map((r) => [
  r.dataset.call, r.querySelector('[data-follow-up]').textContent]));
"""


def open_callbacks(running: Service) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        running.base_url + "/v1/callbacks?status=open",
        headers={"Authorization": f"Bearer {TENANT_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        items: list[dict[str, Any]] = json.loads(response.read())["callbacks"]
        return items


def text_of(driver: Any, element_id: str) -> str:
    return str(page(driver, f"return document.getElementById('{element_id}').textContent"))


def missed(acme: Pbx, number: str, *, queue: str | None = "600") -> str:
    """A caller from ``number`` who hangs up unanswered (in ``queue``, or unrouted)."""
    call = f"acme-{uuid.uuid4()}"
    acme.arrive(call, number, "Caller")
    if queue:
        acme.queue(call, queue, number)
    acme.hangup(call)
    return call


def test_the_callback_panels_agree_and_nothing_overflows_at_either_size(
    service: Service,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    acme = Pbx(service.webhook_url, "acme")
    for n in range(FILLER):
        missed(acme, f"+1555010{n:04d}")
    anonymous = missed(acme, "anonymous")
    unrouted = missed(acme, "+15553334444", queue=None)
    called_back = missed(acme, "+15551112222")
    back = f"acme-{uuid.uuid4()}"
    acme.post("outboundCall", back, extNumber="102", extName="Bob O'Neil",
              numberDialed="555-111-2222")  # fmt: skip
    acme.hangup(back, "102", "Bob O'Neil")
    still_open = missed(acme, "(555) 765-4321")
    talking = f"acme-{uuid.uuid4()}"
    acme.arrive(talking, "+15550007777", "Jürgen O'Connor-Vasquez de la Cruz")
    acme.ring(talking, "105", "Léa Müller")
    acme.answer(talking, "105", "Léa Müller", "+15550007777")
    total_missed = FILLER + 4
    wait_for(lambda: len(open_callbacks(service)) == FILLER + 1, 20, "the callbacks decided")

    browser.get(f"{service.base_url}/wallboard#key={TENANT_KEY}")
    wait_for(lambda: status(browser) == "live", 15, "the wallboard's streams to open")
    wait_for(
        lambda: (
            text_of(browser, "missed-count") == f"newest 50 of {total_missed}"
            and text_of(browser, "callbacks-count") == str(FILLER + 1)
            and page(browser, FOLLOW_UPS).get(called_back, "").startswith("Called back")
        ),
        15,
        "the missed calls and callbacks on the board",
    )
    tile = row_text(browser, "#tile-missed .value")
    assert tile == str(total_missed)

    # One story: "Call back" exactly where /v1/callbacks has an open item.
    items = open_callbacks(service)
    open_calls = {item["missed_call_uuid"] for item in items}
    follow_ups = page(browser, FOLLOW_UPS)
    assert len(follow_ups) == 50
    for call, shown in follow_ups.items():
        assert (shown == "Call back") == (call in open_calls), (call, shown)
    assert follow_ups[anonymous] == "no number"
    assert follow_ups[unrouted] == "not routed"
    assert follow_ups[still_open] == "Call back"
    listed = page(browser, "return [...document.querySelectorAll('#callbacks tr[data-callback]')]"
                  ".map((r) => r.dataset.callback)")  # fmt: skip
    assert listed == [item["id"] for item in items]

    # The extension on the call shows its caller, not an id.
    cell = '#extensions tr[data-extension="105"] td[data-field="call"]'
    wait_for(lambda: "+15550007777" in (row_text(browser, cell) or ""), 10, "105's caller")
    assert talking[:8] not in (row_text(browser, cell) or "")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        wait_for(lambda w=width: page(browser, "return window.innerWidth") == w, 5, "the size")
        shot = ARTIFACTS / f"wallboard-{width}x{height}.png"
        assert browser.save_screenshot(str(shot))
        overflowing = page(browser, OVERFLOWING)
        assert overflowing == [], f"at {width}x{height} (see {shot.name}): {overflowing}"
        # And the whole page at that width, the missed calls below the fold included.
        tall = int(page(browser, "return document.documentElement.scrollHeight"))
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": tall, "deviceScaleFactor": 1, "mobile": False},
        )
        assert browser.save_screenshot(str(ARTIFACTS / f"wallboard-{width}-whole-page.png"))
