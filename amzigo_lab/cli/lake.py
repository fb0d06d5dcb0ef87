"""`amzigo init`, `amzigo doctor`, `amzigo keys rotate`: operator commands (the service account).

They open the home in-process (they hold the master key legitimately); `amzigo lake ls|verify`
are gateway clients (`amzigo_lab.cli.lake_client`).
"""

from __future__ import annotations

from typing import Any

import click

from amzigo_lab.cli.common import (
    console,
    err_console,
    handle_errors,
    home_option,
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
@home_option
@handle_errors
def init_cmd(service_user: str | None, kernel_user: str | None, home: str | None) -> None:
    """Create a home: folders, master key (0600), catalog. Safe to re-run.

    With --service-user (as root) the home is hardened: owned by that user (0700, files 0600),
    its gateway socket in /run/amzigo, kernels run as --kernel-user. Re-run it after a reboot
    (or let the systemd unit do it): see docs/operations.md.

    Example:

        amzigo init --home ./.amzigo
        sudo amzigo init --home /srv/amzigo --service-user amzigo --kernel-user amzigo-kernel
    """
    from amzigo_lab import hardening

    if kernel_user and not service_user:
        raise click.UsageError("--kernel-user needs --service-user")
    settings = settings_for(home)
    if service_user:
        hardening._require_root("amzigo init --service-user")
    lake = init_home(settings)
    lake.close()
    console.print(f"home      {settings.home}")
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
    console.print("ready: next, `amzigo demo --no-serve` or `amzigo lake ls`")


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
    from amzigo_lab.hardening import inspect

    settings = settings_for(home)
    hardening = inspect(settings)
    with open_lake(settings) as lake:
        report = doctor(lake, fix=fix)
    if as_json:
        print_json({**report.to_dict(), "hardening": hardening})
        if not (report.ok and hardening["ok"]):
            raise SystemExit(1)
        return
    if settings.audit_anchor is None:
        from amzigo_lab.governance.audit.anchor import NO_ANCHOR_WARNING

        err_console.print(f"[yellow]warning:[/] {NO_ANCHOR_WARNING}")
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
