"""`amzigo lake ls|verify`: gateway clients (they never open the lake themselves).

Both act as the user of $AMZIGO_SESSION, who needs the read_audit right (admin, compliance),
or the service account with `--break-glass REASON`; the home's gateway lists the catalog or
verifies every file and answers with JSON.
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from amzigo_lab.cli.auth import act, break_glass_option
from amzigo_lab.cli.common import (
    client_home_option,
    console,
    handle_errors,
    human_bytes,
    json_option,
    print_json,
)
from amzigo_lab.client import protocol
from amzigo_lab.client.workbench import home_path


@click.group("lake")
def lake_group() -> None:
    """Inspect and verify the encrypted lake (through the home's gateway)."""


def _summary(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}  # values are Any: mixed columns
    for p in parts:
        r = rows.setdefault(
            (p["dataset"], p["tenant"]),
            {"dataset": p["dataset"], "tenant": p["tenant"], "partitions": 0, "rows": 0,
             "bytes": 0, "first_ingest": p["ingest_date"], "last_ingest": p["ingest_date"],
             "next_purge": p["purge_date"]},
        )  # fmt: skip
        r["partitions"] += 1
        r["rows"] += p["rows"]
        r["bytes"] += p["bytes"]
        r["first_ingest"] = min(r["first_ingest"], p["ingest_date"])
        r["last_ingest"] = max(r["last_ingest"], p["ingest_date"])
        r["next_purge"] = min(r["next_purge"], p["purge_date"])
    return list(rows.values())


@lake_group.command("ls")
@click.option("--dataset", help="Only this dataset.")
@click.option("--tenant", help="Only this tenant (an unknown one is an error).")
@click.option("--partitions", "each", is_flag=True, help="One line per partition.")
@break_glass_option
@client_home_option
@json_option
@handle_errors
def ls_cmd(
    dataset: str | None,
    tenant: str | None,
    each: bool,
    break_glass: str | None,
    home: str | None,
    as_json: bool,
) -> None:
    """List datasets, tenants, partitions, rows, bytes and purge dates.

    Needs a session with read_audit (admin or compliance).

    Example:

        amzigo lake ls --dataset orders --json
    """
    answer = act(
        home_path(home),
        protocol.LAKE_LS,
        {"dataset": dataset, "tenant": tenant},
        break_glass,
    )
    parts: list[dict[str, Any]] = answer["partitions"]
    rows = parts if each else _summary(parts)
    if as_json:
        print_json(rows)
        return
    mode = answer.get("mode", "unknown")
    if not rows:
        console.print(
            f"the lake is empty (mode {mode}): run `amzigo ingest` or `amzigo demo --no-serve`"
        )
        return
    table = Table(*rows[0].keys(), title=f"lake ({len(parts)} partitions), mode {mode}")
    for r in rows:
        table.add_row(*(human_bytes(v) if k == "bytes" else str(v) for k, v in r.items()))
    console.print(table)


def print_report(report: dict[str, Any], as_json: bool, what: str) -> None:
    """A verification report (`VerifyReport.to_dict()`); exit 1 unless it is OK."""
    if as_json:
        print_json(report)
    else:
        for p in report["problems"]:
            console.print(f"[red]{p['kind']:<14}[/] {p['subject']}: {p['detail']}")
        status = "[green]OK[/]" if report["ok"] else f"[red]{len(report['problems'])} problem(s)[/]"
        console.print(
            f"{what}: {status} ({report['files_checked']} files, "
            f"{report['rows_checked']} rows checked)"
        )
    if not report["ok"]:
        raise SystemExit(1)


@lake_group.command("verify")
@break_glass_option
@client_home_option
@json_option
@handle_errors
def verify_cmd(break_glass: str | None, home: str | None, as_json: bool) -> None:
    """Check every catalog row's MAC, then read every committed file. Exit 1 on any problem.

    Names each catalog row edited outside amzigo-lab (dataset, tenant, ingest date, failed
    check), then checks each file's presence, SHA-256, decryption and row count, and names
    each destroyed partition no destruction certificate covers. Needs a
    session with read_audit (admin or compliance); `amzigo doctor` (the service account) runs
    the same checks in-process.

    Example:

        amzigo lake verify --json
    """
    report = act(home_path(home), protocol.LAKE_VERIFY, {}, break_glass)
    print_report(report, as_json, "lake verify")
