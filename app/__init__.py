"""The web edge: webhook intake, the read API, health and metrics.

``create_app(config=None)``: defaults, then the environment, then ``config``
(tests pass a Redis client and settings there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from core.observability import configure_logging
from core.settings import Settings

MAX_BODY_BYTES = 64 * 1024


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app. Raises ConfigError on a bad environment."""
    app = Flask(__name__)
    app.config.from_mapping(MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    overrides = dict(config or {})
    client = overrides.pop("REDIS_CLIENT", None)
    app.config["CALLSTATE_SETTINGS"] = (
        overrides.pop("CALLSTATE_SETTINGS", None) or Settings.from_env()
    )
    app.config.update(overrides)
    from app import cli
    from app.blueprints import blueprints
    from app.history.routes import init_app as init_history
    from app.intake.fast_path import WebhookPath
    from app.web.errors import register_error_handlers
    from app.web.resources import init_app as init_resources
    from app.web.sse import end_streams_on_signal

    if not app.testing:
        configure_logging()
        end_streams_on_signal()
    init_resources(app, client)
    init_history(app)
    register_error_handlers(app)
    for blueprint in blueprints():
        app.register_blueprint(blueprint)
    cli.init_app(app)
    app.wsgi_app = WebhookPath(app, app.wsgi_app)  # type: ignore[method-assign]
    return app
