"""GET /reports: a static page with no data and no key needed, its script and style
hashed into its CSP, and its chart library served by the app with its licence."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_the_page_is_static_and_locked_down(client: FlaskClient) -> None:
    answer = client.get("/reports")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "script-src 'self' 'sha256-" in policy
    html = answer.get_data(as_text=True)
    assert '<script src="/static/vendor/chart.js/chart.umd.min.js"></script>' in html
    # Nothing is loaded from elsewhere.
    assert "http://" not in html and "https://" not in html and "//cdn" not in html


def test_the_chart_library_is_served_with_its_licence(client: FlaskClient) -> None:
    library = client.get("/static/vendor/chart.js/chart.umd.min.js")
    assert library.status_code == 200
    assert b"Chart.js v4" in library.data[:200]
    licence = client.get("/static/vendor/chart.js/LICENSE.md")
    assert licence.status_code == 200 and b"MIT" in licence.data
