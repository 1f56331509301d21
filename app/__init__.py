"""The web edge: webhook intake, the read API, health and metrics.

``create_app(config=None)``: defaults, then the environment, then ``config``
(tests pass a Redis client and settings there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from workers.observability import configure_logging
from workers.settings import Settings

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
    from app import api, cli, health, history, intake, metrics, resources, stream, subscriptions

    if not app.testing:
        configure_logging()
        stream.end_streams_on_signal()
    from app.errors import register_error_handlers

    resources.init_app(app, client)
    history.init_app(app)
    register_error_handlers(app)
    for blueprint in (intake.bp, api.bp, stream.bp, subscriptions.bp, health.bp, metrics.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(history.bp)
    from app import live_stream, stats_api, wallboard

    for reader in (stats_api.bp, live_stream.bp, wallboard.bp):
        app.register_blueprint(reader)
    from app import supervisor

    app.register_blueprint(supervisor.bp)
    from app import openapi

    app.register_blueprint(openapi.bp)
    cli.init_app(app)
    from app.webhook_path import WebhookPath

    app.wsgi_app = WebhookPath(app, app.wsgi_app)  # type: ignore[method-assign]
    return app
