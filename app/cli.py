"""Operator commands: ``flask --app app <command>``."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app

from app.resources import get_store
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


def init_app(app: Flask) -> None:
    app.cli.add_command(rebuild)
