"""`amzigo audit search` and `amzigo alerts`: gateway clients over the audit log (read_audit).

`amzigo audit verify`, in the same group, is an operator command (`amzigo_lab.cli.audit`)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from amzigo_lab.cli.auth import act, break_glass_option
from amzigo_lab.cli.common import (
    client_home_option,
    console,
    err_console,
    handle_errors,
    json_option,
    print_json,
)
from amzigo_lab.client import protocol
from amzigo_lab.client.workbench import home_path
from amzigo_lab.errors import AmzigoError


@click.group("audit")
def audit_group() -> None:
    """Verify and search the tamper-evident audit log."""


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _when(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise AmzigoError(f"invalid time {value!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@audit_group.command("search")
@click.option("--actor", help="Exact user name (e.g. ana, svc:reports, break-glass:root).")
@click.option("--action", help="Exact action, or a prefix like 'auth.*'.")
@click.option("--resource", help="Exact resource, e.g. dataset:orders or session.")
@click.option("--since", help="From this UTC time (YYYY-MM-DD[THH:MM]).")
@click.option("--until", help="Before this UTC time.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@client_home_option
@json_option
@handle_errors
def audit_search(
    actor: str | None,
    action: str | None,
    resource: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    home: str | None,
    as_json: bool,
) -> None:
    """Search audit events (needs a session of a compliance or admin user).

    Example:

        eval "$(amzigo login carol)"; amzigo audit search --action 'data.*' --since 2026-11-01
    """
    answer = act(
        home_path(home),
        protocol.AUDIT_SEARCH,
        {"actor": actor, "action": action, "resource": resource, "limit": limit,
         "since": _iso(_when(since)), "until": _iso(_when(until))},
    )  # fmt: skip
    rows: list[dict[str, Any]] = answer["events"]
    total = int(answer["total"])
    if as_json:
        print_json(rows)
        return
    table = Table("time", "actor", "action", "resource", "tenant", "decision", "rows", "reason")
    for r in rows:
        table.add_row(
            r["time"], r["actor"], r["action"], r["resource"], r["tenant"], r["decision"],
            "" if r["row_count"] is None else str(r["row_count"]), r["reason"],
        )  # fmt: skip
    console.print(table)
    console.print(f"{total} event(s){' (last ' + str(limit) + ' shown)' if total > limit else ''}")


# -- alerts -----------------------------------------------------------------------------------


@click.command("alerts")
@click.option("--since", help="Only events from this UTC time (YYYY-MM-DD[THH:MM]).")
@click.option("--no-send", is_flag=True, help="List only; do not deliver to the sink.")
@break_glass_option
@client_home_option
@json_option
@handle_errors
def alerts_cmd(
    since: str | None, no_send: bool, break_glass: str | None, home: str | None, as_json: bool
) -> None:
    """Evaluate the alert rules over the audit log; deliver new alerts to the configured sink.

    Needs a session with read_audit (admin or compliance).

    Thresholds and the sink come from `[alerts]` in <home>/config.toml, e.g.
    denials_count = 5, denials_window_minutes = 10, volume_factor = 10,
    command = ["/usr/local/bin/page-oncall"] or webhook_url = "https://...".

    Example:

        amzigo alerts --json
    """
    answer = act(
        home_path(home),
        protocol.ALERTS_RUN,
        {"since": _iso(_when(since)), "send": not no_send},
        break_glass,
    )
    alerts: list[dict[str, Any]] = answer["alerts"]
    if as_json:
        print_json(alerts)
    elif not alerts:
        console.print("no alerts")
    else:
        for a in alerts:
            console.print(f"[red]{a['rule']}[/] {a['time']} {a['actor']}: {a['detail']}")
    for failure in answer["failures"]:
        err_console.print(f"error: alert delivery of {escape(failure)}")
    if answer.get("failed_sinks"):
        err_console.print(
            f"alert delivery failed for {', '.join(answer['failed_sinks'])}; the other sinks "
            "have their alerts; the failed ones are retried by the gateway and the next run"
        )
        sys.exit(1)
