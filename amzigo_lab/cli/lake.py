"""`amzigo init`, `amzigo doctor`, `amzigo keys rotate`: operator commands (the service account).

They open the home in-process (they hold the master key legitimately); `amzigo lake ls|verify`
are gateway clients (`amzigo_lab.cli.lake_client`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # the home and the lake are imported by the commands that open them
    from amzigo_lab.lake.integrity import VerifyReport


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

        amzigo init --home ~/seller-home        # then: amzigo credentials set ...
        amzigo init --sandbox --home ~/demo     # synthetic data only
        sudo amzigo init --home /srv/amzigo --service-user amzigo --kernel-user amzigo-kernel
    """
    from amzigo_lab import hardening
    from amzigo_lab.home import init_home

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
    from amzigo_lab.compliance.recovery import resume_interrupted, uncovered_partitions
    from amzigo_lab.hardening import inspect
    from amzigo_lab.home import open_lake, release_gateway_cache_on_drop
    from amzigo_lab.lake.integrity import Problem, doctor

    settings = settings_for(home)
    hardening = inspect(settings)
    resumed: dict[str, Any] = {}

    def resume(lake: Any) -> None:
        resumed.update(resume_interrupted(lake).to_dict())

    with open_lake(settings) as lake:
        release_gateway_cache_on_drop(lake, "amzigo doctor --fix")  # resumed drops
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

    No data file is rewritten.

    Example:

        amzigo keys rotate
    """
    from amzigo_lab.home import open_lake

    with open_lake(settings_for(home)) as lake:
        old = lake.master_key_id
        new = lake.rotate_master_key()
        n = lake.catalog.db.execute("SELECT count(*) FROM keys WHERE destroyed_at IS NULL")
        count = n.fetchone()[0]
    console.print(f"rotated master key {old} -> {new}; {count} partition keys re-wrapped")


@keys_group.command("export")
@click.option(
    "--to",
    "target",
    type=click.Choice(["env", "file", "kms"]),
    required=True,
    help="env: print the variables for key_provider = env; file: write a 0600 key file; "
    "kms: write the key encrypted by a KMS key.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="file/kms: the new file (must not exist; default: the home's key file / master.kms).",
)
@click.option("--kms-key-id", default=None, help="kms: the KMS key (default: the setting).")
@click.option("--kms-endpoint", default=None, help="kms: the KMS (default: the setting).")
@home_option
@handle_errors
def export_key_cmd(
    target: str,
    out: str | None,
    kms_key_id: str | None,
    kms_endpoint: str | None,
    home: str | None,
) -> None:
    """Copy the current master key to another provider (file, environment, KMS); audited.

    The key's id is derived from the key, so the catalog opens under the new provider as it
    is; then set `key_provider` and remove the old copy. See docs/operations.md.

    Examples:

        amzigo keys export --to env > /etc/amzigo/master.env   # EnvironmentFile, chmod 600
        amzigo keys export --to file --out /secure/master.key
        amzigo keys export --to kms --kms-key-id kms-0123 --kms-endpoint local:/srv/kms
    """
    import base64
    import sys
    from pathlib import Path

    from amzigo_lab.errors import AmzigoError
    from amzigo_lab.home import open_lake
    from amzigo_lab.lake.keys import FileKeyProvider

    settings = settings_for(home)
    with open_lake(settings) as lake:
        master = lake.master()
        if target == "env":
            err_console.print(
                "[yellow]warning:[/] this prints the master key: whoever holds it can read the "
                "whole lake. Redirect it into a 0600 file or a secret store, never a shared "
                "terminal, log or shell history."
            )
            if sys.stdout.isatty():
                err_console.print("[yellow]warning:[/] stdout is a terminal (scrollback)")
            click.echo("AMZIGO_KEY_PROVIDER=env")
            click.echo(f"{settings.key_env_var}={base64.b64encode(master.secret).decode()}")
            where = f"stdout ({settings.key_env_var})"
        elif target == "file":
            path = Path(out) if out else settings.master_key_file
            try:
                FileKeyProvider(path).write(master)
            except FileExistsError:
                raise AmzigoError(f"{path} exists (never overwritten): choose --out") from None
            where = str(path)
            err_console.print(
                f"[yellow]warning:[/] {path} (0600) holds the master key; keep it off the lake's "
                "storage and its backups"
            )
        else:
            from amzigo_lab.lake.kms import KmsKeyProvider, kms_client

            key_id = kms_key_id or settings.kms_key_id
            if not key_id:
                raise click.UsageError("--to kms needs --kms-key-id (or the kms_key_id setting)")
            client = kms_client(kms_endpoint or settings.kms_endpoint)
            path = Path(out) if out else settings.master_key_kms_file
            try:
                KmsKeyProvider(client, key_id, path).write(master)
            except FileExistsError:
                raise AmzigoError(f"{path} exists (never overwritten): choose --out") from None
            where = f"{path} (encrypted by KMS key {key_id})"
        lake.audit.emit(
            "keys.exported",
            actor="system:cli",
            resource="master_key",
            reason=f"{master.key_id} exported to {target}: {where}"[:250],
        )
    err_console.print(f"master key {master.key_id} exported to {where}")
