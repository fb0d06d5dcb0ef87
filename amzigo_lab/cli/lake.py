"""`amzigo init`, `amzigo lake ...`, `amzigo doctor`, `amzigo keys rotate`."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from amzigo_lab.cli.common import (
    console,
    err_console,
    handle_errors,
    home_option,
    human_bytes,
    json_option,
    print_json,
    settings_for,
)
from amzigo_lab.home import init_home, open_lake
from amzigo_lab.lake.integrity import VerifyReport, doctor


@click.command("init")
@click.option(
    "--service-user",
    default=None,
    help="Harden the home (root only): this OS user (created if missing) owns it and runs "
    "the gateway; nobody else can read it.",
)
@click.option(
    "--kernel-user",
    default=None,
    help="With --service-user: the unprivileged OS user notebook and dashboard kernels run as "
    "(created if missing; default <service-user>-kernel).",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Make this a sandbox home: `amzigo ingest` then reads the local synthetic SP-API. "
    "Without it, connect Amazon with `amzigo credentials set` (a home is one or the other).",
)
@home_option
@handle_errors
def init_cmd(
    service_user: str | None, kernel_user: str | None, sandbox: bool, home: str | None
) -> None:
    """Create a home: folders, master key (0600), catalog. Safe to re-run.

    The only command that creates a master key. A home ingests either from the local sandbox
    (--sandbox, synthetic data) or from Amazon (`amzigo credentials set`), never both.

    With --service-user (as root) the home is hardened: owned by that user (0700, files 0600),
    its gateway socket in /run/amzigo, kernels run as --kernel-user. Re-run it after a reboot
    (or let the systemd unit do it): see docs/operations.md.

    Example:

        amzigo init --home ./.amzigo          # then: amzigo credentials set ...
        amzigo init --sandbox --home ./demo   # synthetic data only
        sudo amzigo init --home /srv/amzigo --service-user amzigo --kernel-user amzigo-kernel
    """
    from amzigo_lab import hardening

    if kernel_user and not service_user:
        raise click.UsageError("--kernel-user needs --service-user")
    settings = settings_for(home)
    if service_user:
        hardening._require_root("amzigo init --service-user")
    lake = init_home(settings, sandbox=sandbox)
    mode = home_mode(lake)["mode"]
    lake.close()
    console.print(f"home      {settings.home}")
    console.print(f"mode      {mode}")
    console.print(f"catalog   {settings.catalog_path}")
    console.print(f"lake      {settings.lake_dir}")
    console.print(f"keys      {lake.keys.description}")
    if service_user:
        marker = hardening.harden(settings, service_user, kernel_user)
        console.print(
            f"hardened  owner {marker.service_user} (0700), kernels as {marker.kernel_user}"
        )
        console.print(f"socket    {marker.socket_dir}/gateway.sock")
        console.print(
            f"next      runuser -u {marker.service_user} -- amzigo gateway --home {settings.home}"
            " (or the systemd unit in docs/operations.md)"
        )
        return
    if sandbox:
        console.print("ready: next, `amzigo ingest` (sandbox) or `amzigo lake ls`")
    else:
        console.print(
            "ready: next, `amzigo credentials set` then `amzigo ingest` (or, for synthetic "
            "data, `amzigo init --sandbox` on another home / `amzigo demo --no-serve`)"
        )


def home_mode(lake: Any) -> dict[str, str]:
    """The home's source mode for summaries (source/mode.py)."""
    from amzigo_lab.source.mode import describe, mode

    return {"mode": describe(lake), "mode_name": mode(lake)}


@click.group("lake")
def lake_group() -> None:
    """Inspect and verify the encrypted lake."""


def _summary(parts: list[Any]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}  # values are Any: mixed columns
    for p in parts:
        r = rows.setdefault(
            (p.dataset, p.tenant),
            {"dataset": p.dataset, "tenant": p.tenant, "partitions": 0, "rows": 0, "bytes": 0,
             "first_ingest": p.ingest_date, "last_ingest": p.ingest_date,
             "next_purge": p.purge_date},
        )  # fmt: skip
        r["partitions"] += 1
        r["rows"] += p.row_count
        r["bytes"] += p.bytes
        r["first_ingest"] = min(r["first_ingest"], p.ingest_date)
        r["last_ingest"] = max(r["last_ingest"], p.ingest_date)
        r["next_purge"] = min(r["next_purge"], p.purge_date)
    return list(rows.values())


@lake_group.command("ls")
@click.option("--dataset", help="Only this dataset.")
@click.option("--tenant", help="Only this tenant.")
@click.option("--partitions", "each", is_flag=True, help="One line per partition.")
@home_option
@json_option
@handle_errors
def ls_cmd(
    dataset: str | None, tenant: str | None, each: bool, home: str | None, as_json: bool
) -> None:
    """List datasets, tenants, partitions, rows, bytes and purge dates.

    Example:

        amzigo lake ls --dataset orders --json
    """
    with open_lake(settings_for(home)) as lake:
        parts = lake.catalog.partitions(dataset, [tenant] if tenant else None)
        mode = home_mode(lake)["mode"]
    rows: list[dict[str, Any]]
    if each:
        rows = [
            {"id": p.id, "dataset": p.dataset, "tenant": p.tenant, "ingest_date": p.ingest_date,
             "purge_date": p.purge_date, "rows": p.row_count, "bytes": p.bytes}
            for p in parts
        ]  # fmt: skip
    else:
        rows = _summary(parts)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(
            f"the lake is empty (mode {mode}): run `amzigo ingest` or `amzigo demo --no-serve`"
        )
        return
    table = Table(*rows[0].keys(), title=f"lake ({len(parts)} partitions), mode {mode}")
    for r in rows:
        table.add_row(*(human_bytes(v) if k == "bytes" else str(v) for k, v in r.items()))
    console.print(table)


def _print_report(report: VerifyReport, as_json: bool, what: str) -> None:
    if as_json:
        print_json(report.to_dict())
    else:
        for p in report.problems:
            console.print(f"[red]{p.kind:<14}[/] {p.subject}: {p.detail}")
        status = "[green]OK[/]" if report.ok else f"[red]{len(report.problems)} problem(s)[/]"
        console.print(
            f"{what}: {status} ({report.files_checked} files, {report.rows_checked} rows checked)"
        )
    if not report.ok:
        raise SystemExit(1)


@lake_group.command("verify")
@home_option
@json_option
@handle_errors
def verify_cmd(home: str | None, as_json: bool) -> None:
    """Check every catalog row's MAC, then read every committed file. Exit 1 on any problem.

    Names each catalog row edited outside amzigo-lab (dataset, tenant, ingest date, failed
    check), then checks each file's presence, SHA-256, decryption and row count, and names
    each destroyed partition no destruction certificate covers.

    Example:

        amzigo lake verify --json
    """
    from amzigo_lab.compliance.recovery import uncovered_partitions
    from amzigo_lab.lake.integrity import Problem

    with open_lake(settings_for(home)) as lake:
        report = lake.verify()
        report.problems.extend(  # destroyed, but no destruction certificate covers it
            Problem("uncertified", f"partition {u.partition_id}", u.message())
            for u in uncovered_partitions(lake)
        )
    _print_report(report, as_json, "lake verify")


@click.command("doctor")
@click.option("--fix", is_flag=True, help="Remove orphan files and resume interrupted drops.")
@home_option
@json_option
@handle_errors
def doctor_cmd(fix: bool, home: str | None, as_json: bool) -> None:
    """Check key-file permissions, catalog integrity, orphans, then verify the lake.

    Example:

        amzigo doctor --fix
    """
    from amzigo_lab.compliance.recovery import resume_interrupted, uncovered_partitions
    from amzigo_lab.hardening import inspect
    from amzigo_lab.lake.integrity import Problem

    settings = settings_for(home)
    hardening = inspect(settings)
    resumed: dict[str, Any] = {}

    def resume(lake: Any) -> None:
        resumed.update(resume_interrupted(lake).to_dict())

    with open_lake(settings) as lake:
        report = doctor(lake, fix=fix, resume=resume)
        report.problems.extend(
            Problem("uncertified", f"partition {u.partition_id}", u.message())
            for u in uncovered_partitions(lake)
        )
        mode = home_mode(lake)
    if as_json:
        print_json({**report.to_dict(), "hardening": hardening, "recovered": resumed, **mode})
        if not (report.ok and hardening["ok"]):
            raise SystemExit(1)
        return
    if settings.audit_anchor is None:
        from amzigo_lab.governance.audit.anchor import NO_ANCHOR_WARNING

        err_console.print(f"[yellow]warning:[/] {NO_ANCHOR_WARNING}")
    console.print(f"mode: {mode['mode']}")
    if resumed.get("certificates"):
        console.print(
            "recovered interrupted destruction(s) inside their compliance runs; certificate(s) "
            + ", ".join(resumed["certificates"])
        )
    _print_hardening(hardening)
    _print_report(report, as_json, "doctor")
    if not hardening["ok"]:
        raise SystemExit(1)


def _print_hardening(info: dict[str, Any]) -> None:
    if not info["hardened"]:
        console.print(f"hardening: {info['note']}")
        return
    who = (
        f"service user {info.get('service_user', '?')}, kernel user {info.get('kernel_user', '?')}"
    )
    if info["ok"]:
        console.print(f"hardening: [green]hardened[/] ({who}, socket in {info['socket_dir']})")
        return
    console.print(f"hardening: [red]hardened, {len(info['problems'])} problem(s)[/] ({who})")
    for problem in info["problems"]:
        console.print(f"[red]{'hardening':<14}[/] {problem}")


@click.group("keys")
def keys_group() -> None:
    """Manage the master key."""


@keys_group.command("rotate")
@home_option
@handle_errors
def rotate_cmd(home: str | None) -> None:
    """Create a new master key, re-wrap every partition key, destroy the old master.

    No data file is rewritten. Example:

        amzigo keys rotate
    """
    with open_lake(settings_for(home)) as lake:
        old = lake.master_key_id
        new = lake.rotate_master_key()
        n = lake.catalog.db.execute("SELECT count(*) FROM keys WHERE destroyed_at IS NULL")
        count = n.fetchone()[0]
    console.print(f"rotated master key {old} -> {new}; {count} partition keys re-wrapped")
