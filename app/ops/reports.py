"""``GET /reports``: the historical reports page, static like the wallboard (no data in
it, the key given by the viewer, the same key handling), rendered from
``templates/reports.html``. Its charts are drawn by Chart.js, served by this app
from ``static/vendor/chart.js`` (the package's built file and its licence), so
nothing is fetched from elsewhere. It reads ``/v1/stats`` (by day, queue and
extension) and ``/v1/stats/heatmap`` (``app.stats.routes``) with a read key.
"""

from __future__ import annotations

from functools import cache

from flask import Response

from app.ops.wallboard import page_response, static_page
from app.web.rest import ApiBlueprint

bp = ApiBlueprint("reports", __name__)


@cache
def _page() -> tuple[str, str]:
    return static_page("reports.html", own_scripts=True)


@bp.operation(
    "GET",
    "/reports",
    "reports",
    tag="statistics",
    key=False,
    schema={"type": "string"},
    content_type="text/html",
    answer="an HTML page",
    summary="Reports: a date range's figures, charts and tables, in the tenant's time zone",
    description="A static page (no data in it): it asks for an API key (a read key is "
    "enough), or reads it from the URL fragment (`/reports#key=<api key>`, never sent to "
    "the server), and reads /v1/stats and /v1/stats/heatmap with it.",
)
def reports() -> Response:
    """The reports page: static, no data, no credentials needed to load it."""
    return page_response(*_page())
