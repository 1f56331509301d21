"""``GET /wallboard``: one static page (inline script and style, no build step,
nothing fetched from elsewhere), rendered from ``templates/wallboard.html``. It
carries no data: the page asks for the API key (or reads it from the URL
fragment, which browsers never send) and reads the API with it
(``/v1/stats``: ``app.stats.routes``; ``/v1/calls/live/stream``: ``app.calls.live_stream``;
the extensions, callbacks and timelines: ``app.supervisor.routes``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache

from flask import Response, render_template

from app.web.rest import ApiBlueprint

bp = ApiBlueprint("wallboard", __name__)


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def static_page(template: str, *, own_scripts: bool = False) -> tuple[str, str]:
    """A page rendered from ``template`` and its Content-Security-Policy: only its own
    inline script and style run (and, ``own_scripts``, scripts served by this app),
    and it talks to this origin only."""
    html = render_template(template)
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src "
            + " ".join([*(["'self'"] if own_scripts else []), *map(_digest, scripts)]),
            "style-src " + " ".join(_digest(s) for s in styles),
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return html, policy


def page_response(html: str, policy: str) -> Response:
    """A static page's answer: its policy, never cached stale, no referrer."""
    return Response(
        html,
        mimetype="text/html",
        headers={
            "Content-Security-Policy": policy,
            "Cache-Control": "no-cache",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


@cache
def _page() -> tuple[str, str]:
    return static_page("wallboard.html")


@bp.operation(
    "GET",
    "/wallboard",
    "wallboard",
    tag="statistics",
    key=False,
    schema={"type": "string"},
    content_type="text/html",
    answer="an HTML page",
    summary="The wallboard: live calls and today's figures, for a wall screen",
    description="A static page (no data in it): it asks for an API key, or reads "
    "it from the URL fragment (`/wallboard#key=<read key>`, never sent to the "
    "server), and reads /v1/stats and /v1/calls/live/stream with it.",
)
def wallboard() -> Response:
    """The wallboard page: static, no data, no credentials needed to load it."""
    return page_response(*_page())
