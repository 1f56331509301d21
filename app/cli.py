"""Operator commands: ``flask --app app <command>``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.calls.schemas import OUTCOME_KINDS
from app.tenants.cli import tenants
from app.web.resources import get_resources, get_store
from core.queue import enqueue_event
from statemachine.outcome import OutcomeRecord
from workers.engine import Engine


@click.command("rebuild")
@click.option("--fix", is_flag=True, help="Write the recomputed state and outcomes.")
@click.option("--tenant", "tenants", multiple=True, help="Only these tenants (default: all).")
def rebuild(fix: bool, tenants: tuple[str, ...]) -> None:
    """Recompute every call's state, outcome and part in the supervisor's view (its
    extension legs and callback contact) from its event log and report differences.

    Exits 1 when a difference was found and not fixed.
    """
    store = get_store()
    engine = Engine(store, current_app.config["CALLSTATE_SETTINGS"])
    checked = 0
    problems: list[str] = []
    for tenant in tenants or store.tenants.all():
        for call_uuid in store.calls.scan_calls(tenant):
            problems += engine.rebuild_call(tenant, call_uuid, fix=fix)
            checked += 1
            if checked % 1000 == 0:
                click.echo(f"... {checked} calls checked", err=True)
    for problem in problems:
        click.echo(problem)
    verdict = "fixed" if fix else "found"
    click.echo(f"{checked} calls checked, {len(problems)} differences {verdict}")
    if problems and not fix:
        sys.exit(1)


outcomes = click.Group("outcomes", help="Watch and list outcome records.")


def _one_line(record: OutcomeRecord) -> str:
    """A person's line for one outcome: when, what, who, how long."""
    caller = (record.get("caller") or {}).get("number") or "unknown caller"
    what = record["outcome"]
    if record.get("missed_reason"):
        what += f" ({record['missed_reason']})"
    who = record.get("answered_by") or record.get("voicemail_box") or record.get("extension")
    by = f" by {who['number']} {who.get('name') or ''}".rstrip() if who else ""
    revision = f" rev {record['revision']}" if record.get("revision", 1) > 1 else ""
    return (
        f"{record.get('ended_at') or '':27} {record['tenant_id']:>12} {what:<22}{by}"
        f"  {caller}  wait {record.get('wait_seconds')}s talk {record.get('talk_seconds')}s"
        f"  [{record['call_uuid']}]{revision}"
    )


@outcomes.command("tail")
@click.option("--outcome", type=click.Choice(OUTCOME_KINDS))
@click.option("--tenant", "tenant", help="Only this tenant (default: all).")
@click.option("--after", help="Start after this outcome id (default: from now on).")
@click.option("--history", is_flag=True, help="Start from the oldest record kept.")
@click.option("--json", "as_json", is_flag=True, help="One JSON record a line.")
@click.option("--follow/--no-follow", default=True, help="Keep watching (default) or stop.")
def tail(
    outcome: str | None,
    tenant: str | None,
    after: str | None,
    history: bool,
    as_json: bool,
    follow: bool,
) -> None:
    """Print outcome records as they are decided (Ctrl-C to stop)."""
    store = get_store()
    cursor = after
    if cursor is None and not history:
        cursor = f"{store.outcomes.server_time_us()}-0"
    try:
        while True:
            tenants = [tenant] if tenant else store.tenants.all()
            records, next_cursor = store.outcomes.read_outcomes(
                tenants, after=cursor, limit=500, outcome=outcome
            )
            for record in records:
                click.echo(json.dumps(record, sort_keys=True) if as_json else _one_line(record))
            cursor = next_cursor or cursor
            if not records:
                if not follow:
                    return
                time.sleep(0.5)
    except KeyboardInterrupt:
        return


failed = click.Group("failed", help="Events that could not be applied (poisoned events).")


@failed.command("list")
@click.option("--tenant", "tenants", multiple=True, help="Only these tenants (default: all).")
def failed_list(tenants: tuple[str, ...]) -> None:
    """List poisoned events: tenant, id, call, event type, and why they failed."""
    store = get_store()
    count = 0
    for tenant in tenants or store.tenants.all():
        for field, entry in sorted(store.poisoned.read(tenant).items()):
            envelope = entry["envelope"]
            data = envelope.get("data") or {}
            count += 1
            click.echo(
                f"{tenant}  {field}  {data.get('call_uuid') or data.get('conversation_id')}  "
                f"{envelope.get('event_type')}  {entry['error']}"
            )
    click.echo(f"{count} poisoned")


@failed.command("replay")
@click.argument("fields", nargs=-1)
@click.option("--tenant", "tenants", multiple=True, help="Only these tenants (default: all).")
@click.option("--all", "replay_all", is_flag=True, help="Replay every poisoned event.")
def failed_replay(fields: tuple[str, ...], tenants: tuple[str, ...], replay_all: bool) -> None:
    """Accept poisoned events again (after a fix); applying is idempotent."""
    if not fields and not replay_all:
        raise click.UsageError("name event fields (see `failed list`), or pass --all")
    resources = get_resources()
    store = resources.store
    for tenant in tenants or store.tenants.all():
        chosen = list(store.poisoned.read(tenant)) if replay_all else list(fields)
        for field in chosen:
            envelope = store.poisoned.take_back(tenant, field)
            if envelope is not None:
                enqueue_event(store, resources.queue, envelope)
                click.echo(f"replayed {tenant} {field}")


history = AppGroup("history", help="The call history database (DATABASE_URL).")


def _history_engine() -> Any:
    from app.history.routes import get_history

    engine = get_history()
    if engine is None:
        raise click.ClickException("DATABASE_URL is not set: there is no call history")
    return engine


@history.command("upgrade")
def history_upgrade() -> None:
    """Create or migrate the history tables (what the release process does)."""
    from core.history.database import current_revision, upgrade

    engine = _history_engine()
    upgrade(engine)
    click.echo(f"history database at revision {current_revision(engine)}")


@history.command("backfill")
def history_backfill() -> None:
    """Archive every outcome record Redis still holds (safe to repeat: nothing doubles)."""
    from core.history.archive import backfill
    from core.history.numbers import tenant_countries

    store = get_store()
    countries = tenant_countries(store, current_app.config["CALLSTATE_SETTINGS"])
    count = backfill(store, _history_engine(), countries=countries)
    click.echo(f"{count} outcome records read from Redis and archived")


@history.command("status")
def history_status() -> None:
    """Show how far the archive is behind the outcome streams."""
    from core.history.archive import lag
    from core.history.writer import set_aside_count, set_aside_records

    store = get_store()
    engine = _history_engine()
    found = lag(store, engine)
    seconds = found.seconds(store.outcomes.server_time_us())
    click.echo(f"archived up to {found.archived_to or 'nothing yet'}; lag {seconds:.1f} s")
    with engine.connect() as connection:
        count = set_aside_count(connection)
        shown = set_aside_records(connection, limit=20)
    if not count:
        click.echo("no outcome record set aside")
        return
    click.echo(f"{count} outcome record(s) set aside: the database refused them (newest first)")
    for row in shown:
        record = json.loads(row["record"])
        click.echo(
            f"  {row['outcome_id']}  tenant {record.get('tenant_id')!r}  "
            f"call {record.get('call_uuid')!r}  {row['reason']}"
        )
    if count > len(shown):
        click.echo(f"  ... and {count - len(shown)} more (table history_set_aside)")


def init_app(app: Flask) -> None:
    from app.subscriptions import cli as subscription_commands

    subscription_commands.init_app(app)
    app.cli.add_command(rebuild)
    app.cli.add_command(outcomes)
    app.cli.add_command(failed)
    app.cli.add_command(history)
    app.cli.add_command(tenants)
