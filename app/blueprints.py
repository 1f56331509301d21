"""The one list of the app's blueprints: what ``create_app`` registers and what the
API description documents, in the order the description shows them."""

from __future__ import annotations

from app.web.rest import ApiBlueprint


def blueprints() -> list[ApiBlueprint]:
    """Every blueprint of the app (imported here, when the app is built: a feature
    module reads its settings as it loads)."""
    import app.calls.conversations
    import app.calls.live_stream
    import app.calls.routes
    import app.events.stream
    import app.history.routes
    import app.intake.routes
    import app.ops.health
    import app.ops.metrics
    import app.ops.openapi
    import app.ops.reports
    import app.ops.wallboard
    import app.outcomes.routes
    import app.outcomes.stream
    import app.stats.routes
    import app.subscriptions.routes
    import app.supervisor.routes
    import app.tenants.routes

    return [
        app.intake.routes.bp,
        app.calls.routes.bp,
        app.calls.live_stream.bp,
        app.calls.conversations.bp,
        app.events.stream.bp,
        app.outcomes.routes.bp,
        app.outcomes.stream.bp,
        app.history.routes.bp,
        app.stats.routes.bp,
        app.subscriptions.routes.bp,
        app.supervisor.routes.bp,
        app.tenants.routes.bp,
        app.ops.health.bp,
        app.ops.metrics.bp,
        app.ops.wallboard.bp,
        app.ops.reports.bp,
        app.ops.openapi.bp,
    ]
