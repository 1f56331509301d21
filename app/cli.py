"""Operator commands: ``flask --app app <command>``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from flask import Flask, current_app
from rq.registry import FailedJobRegistry

from app.resources import get_resources, get_store
from app.simulate_cli import simulate
from workers.engine import Engine


@click.command("rebuild")
@click.option("--fix", is_flag=True, help="Write the recomputed state and outcomes.")
@click.option("--tenant", "tenants", multiple=True, help="Only these tenants (default: all).")
def rebuild(fix: bool, tenants: tuple[str, ...]) -> None:
    """Recompute every call's state and outcome from its event log and report differences.

    Exits 1 when a difference was found and not fixed.
    """
    store = get_store()
    engine = Engine(store, current_app.config["CALLSTATE_SETTINGS"])
    checked = 0
    problems: list[str] = []
    for tenant in tenants or store.tenants():
        for call_uuid in store.scan_calls(tenant):
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


def _one_line(record: dict[str, Any]) -> str:
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
@click.option("--outcome", type=click.Choice(["answered", "missed", "voicemail", "outbound"]))
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
        cursor = f"{store.server_time_us()}-0"
    try:
        while True:
            tenants = [tenant] if tenant else store.tenants()
            records, next_cursor = store.read_outcomes(
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


failed = click.Group("failed", help="Events whose job failed for good (poisoned events).")


@failed.command("list")
def failed_list() -> None:
    """List failed event jobs: job id, tenant, call, event type, the error's last line."""
    registry = FailedJobRegistry(queue=get_resources().queue)
    job_ids = registry.get_job_ids()
    for job_id in job_ids:
        job = registry.job_class.fetch(
            job_id, connection=registry.connection, serializer=registry.serializer
        )
        envelope = job.args[0] if job.args else {}
        data = envelope.get("data", {})
        result = job.latest_result()
        reason = (result.exc_string if result is not None else "") or ""
        click.echo(
            f"{job_id}  {envelope.get('tenant_id')}  "
            f"{data.get('call_uuid') or data.get('conversation_id')}  "
            f"{envelope.get('event_type')}  {reason.strip().splitlines()[-1:]}"
        )
    click.echo(f"{len(job_ids)} failed")


@failed.command("replay")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every failed event job.")
def failed_replay(job_ids: tuple[str, ...], replay_all: bool) -> None:
    """Put failed event jobs back on the queue (applying is idempotent)."""
    registry = FailedJobRegistry(queue=get_resources().queue)
    chosen = registry.get_job_ids() if replay_all else list(job_ids)
    if not chosen:
        raise click.UsageError("name job ids, or pass --all")
    for job_id in chosen:
        registry.requeue(job_id)
        click.echo(f"replayed {job_id}")


def init_app(app: Flask) -> None:
    app.cli.add_command(rebuild)
    app.cli.add_command(outcomes)
    app.cli.add_command(failed)
    app.cli.add_command(simulate)
