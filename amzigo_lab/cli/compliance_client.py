"""`amzigo hold ...`, `amzigo delete`, `amzigo certificate ...`, `amzigo ropa`: gateway clients.

Each acts as the logged-in user of $AMZIGO_SESSION, who must have the compliance role (checked
by the home's gateway; a denial is audited naming the user; break-glass cannot stand in for a
named compliance person). The gateway runs the compliance code on the home and answers with
JSON; files (a certificate's export, the ROPA) come back as text and are written here.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from amzigo_lab.cli.auth import act
from amzigo_lab.cli.common import (
    client_home_option,
    console,
    handle_errors,
    json_option,
    print_json,
)
from amzigo_lab.client import protocol
from amzigo_lab.client.workbench import home_path


class DateType(click.ParamType):
    """YYYY-MM-DD."""

    name = "DATE"

    def convert(self, value: Any, param: Any, ctx: Any) -> dt.date:
        """Parse an ISO date."""
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date: use YYYY-MM-DD", param, ctx)


DATE = DateType()


def compliance_call(home: str | None, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run `action` at the home's gateway as the logged-in compliance user ($AMZIGO_SESSION).
    No session: exit 2, nothing changed."""
    return act(home_path(home), action, payload)


def write_files(out: Path, files: list[dict[str, str]]) -> list[Path]:
    """Write the files of an answer (`name`, `text`) into `out` (created if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in files:
        name = os.path.basename(str(f["name"]))
        if name in ("", ".", ".."):
            raise click.ClickException(f"the gateway sent a bad file name {f['name']!r}")
        path = out / name
        path.write_text(str(f["text"]), encoding="utf-8")
        paths.append(path)
    return paths


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


@click.group("hold")
def hold_group() -> None:
    """Legal holds: the only way to keep data past its purge date."""


@hold_group.command("add")
@click.option("--tenant", required=True, help="Tenant in scope.")
@click.option("--dataset", default=None, help="Only this dataset (default: all).")
@click.option("--from", "from_date", type=DATE, default=None, help="First ingestion date.")
@click.option("--to", "to_date", type=DATE, default=None, help="Last ingestion date.")
@click.option("--reason", required=True, help="Why (case or request reference).")
@click.option("--until", type=DATE, required=True, help="The hold expires after this date.")
@client_home_option
@json_option
@handle_errors
def hold_add_cmd(
    tenant: str,
    dataset: str | None,
    from_date: dt.date | None,
    to_date: dt.date | None,
    reason: str,
    until: dt.date,
    home: str | None,
    as_json: bool,
) -> None:
    """Place a legal hold (a compliance user's session: $AMZIGO_SESSION).

    Example:

        amzigo hold add --tenant acme --dataset orders --reason "case 42" --until 2027-01-31
    """
    answer = compliance_call(
        home,
        protocol.HOLD_ADD,
        {"tenant": tenant, "dataset": dataset, "from_date": _iso(from_date),
         "to_date": _iso(to_date), "reason": reason, "until": until.isoformat()},
    )  # fmt: skip
    hold = answer["hold"]
    if as_json:
        print_json(hold)
    else:
        console.print(f"hold {hold['id']}: {answer['scope']} until {hold['until']}")


@hold_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include released and expired holds.")
@client_home_option
@json_option
@handle_errors
def hold_list_cmd(show_all: bool, home: str | None, as_json: bool) -> None:
    """List legal holds (active ones unless --all; a compliance user's session).

    Example:

        amzigo hold list --json
    """
    answer = compliance_call(home, protocol.HOLD_LIST, {"all": show_all})
    rows: list[dict[str, Any]] = answer["holds"]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no legal holds")
        return
    table = Table("id", "scope", "until", "reason", "by", "released")
    for h, scope in zip(rows, answer["scopes"], strict=True):
        table.add_row(
            h["id"], scope, str(h["until"]), h["reason"], h["created_by"], h["released_at"] or ""
        )
    console.print(table)


@hold_group.command("release")
@click.argument("hold_id")
@client_home_option
@handle_errors
def hold_release_cmd(hold_id: str, home: str | None) -> None:
    """Release a legal hold (a compliance user's session); the next purge drops what it kept.

    Example:

        amzigo hold release hold-0123456789abcdef
    """
    answer = compliance_call(home, protocol.HOLD_RELEASE, {"hold_id": hold_id})
    console.print(f"released {answer['id']} ({answer['scope']})")


@click.command("delete")
@click.option("--tenant", required=True, help="Tenant named in the notice.")
@click.option("--dataset", "datasets", multiple=True, help="Only these datasets (repeatable).")
@click.option("--notice", required=True, help="Amazon's notice reference.")
@client_home_option
@json_option
@handle_errors
def delete_cmd(
    tenant: str,
    datasets: tuple[str, ...],
    notice: str,
    home: str | None,
    as_json: bool,
) -> None:
    """Carry out an Amazon deletion notice now: partitions, keys, outputs, state; certify.

    Needs a compliance user's session. Re-run with the same --notice to resume after an
    interruption.

    Example:

        amzigo delete --tenant acme --notice AMZ-2026-0042
    """
    answer = compliance_call(
        home,
        protocol.NOTICE_DELETE,
        {"tenant": tenant, "notice": notice, "datasets": list(datasets)},
    )
    result: dict[str, Any] = answer["result"]
    if as_json:
        print_json(result)
        return
    console.print(
        f"notice {notice}: dropped {result['partitions_dropped']} partitions "
        f"({result['rows_dropped']} rows), {result['outputs_deleted']} outputs, "
        f"{result['folders_deleted']} folders, {result['sync_state_rows']} sync-state rows"
    )
    for k in result["kept_under_hold"]:
        console.print(f"[yellow]kept[/] partition {k['partition_id']} under hold {k['hold']}")
    console.print(f"certificate {result['certificate_id']} (validation by a second user required)")


@click.group("certificate")
def certificate_group() -> None:
    """Signed destruction certificates (NIST SP 800-88 fields)."""


@certificate_group.command("list")
@client_home_option
@json_option
@handle_errors
def certificate_list_cmd(home: str | None, as_json: bool) -> None:
    """List destruction certificates (a compliance user's session).

    Example:

        amzigo certificate list --json
    """
    rows: list[dict[str, Any]] = compliance_call(home, protocol.CERTIFICATE_LIST, {})[
        "certificates"
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no certificates yet")
        return
    table = Table(*rows[0].keys())
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    console.print(table)


@certificate_group.command("show")
@click.argument("cert_id")
@client_home_option
@handle_errors
def certificate_show_cmd(cert_id: str, home: str | None) -> None:
    """Print one certificate as JSON (a compliance user's session).

    Example:

        amzigo certificate show cert-0123456789abcdef
    """
    click.echo(compliance_call(home, protocol.CERTIFICATE_SHOW, {"id": cert_id})["json"])


@certificate_group.command("export")
@click.argument("cert_id")
@click.option("--out", type=click.Path(file_okay=False), default=".", help="Output folder.")
@client_home_option
@handle_errors
def certificate_export_cmd(cert_id: str, out: str, home: str | None) -> None:
    """Write the certificate as JSON and HTML, with the public key to check it.

    Example:

        amzigo certificate export cert-0123456789abcdef --out ./certificates
    """
    answer = compliance_call(home, protocol.CERTIFICATE_EXPORT, {"id": cert_id})
    for p in write_files(Path(out), answer["files"]):
        console.print(str(p))


@certificate_group.command("verify")
@click.argument("cert_id")
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="With FILE.json: the signer's public key PEM (default: the one exported beside it).",
)
@client_home_option
@json_option
@handle_errors
def certificate_verify_cmd(
    cert_id: str, public_key: str | None, home: str | None, as_json: bool
) -> None:
    """Check the signature, published public key, row MAC, covered records and audit events.

    Exit 1 if anything is wrong. Given an exported FILE.json instead of an id, verify it
    offline with no home and no gateway (signature, destruction records, validation): exit 0
    valid, 1 invalid, 3 not yet valid (a required second-person validation is pending).

    Example:

        amzigo certificate verify cert-0123456789abcdef
        amzigo certificate verify ./certificates/cert-0123456789abcdef.json
    """
    from amzigo_lab.client.certificate_file import looks_like_file

    if looks_like_file(cert_id):  # an exported file: offline, no home needed
        from amzigo_lab.cli.certificate_file import verify_file

        verify_file(cert_id, public_key, as_json)
        return
    report = compliance_call(home, protocol.CERTIFICATE_VERIFY, {"id": cert_id})["report"]
    if as_json:
        print_json(report)
    else:
        status = "[green]OK[/]" if report["ok"] else "[red]FAILED[/]"
        console.print(f"{cert_id}: {status}; audit: {report['audit']}")
        for p in report["problems"]:
            console.print(f"[red]problem[/] {p}")
    if not report["ok"]:
        raise SystemExit(1)


@certificate_group.command("validate")
@click.argument("cert_id")
@client_home_option
@handle_errors
def certificate_validate_cmd(cert_id: str, home: str | None) -> None:
    """Validate a certificate as a second person (compliance session, not the performer).

    Example:

        amzigo certificate validate cert-0123456789abcdef
    """
    answer = compliance_call(home, protocol.CERTIFICATE_VALIDATE, {"id": cert_id})
    console.print(f"{answer['id']} validated by {answer['actor']}")


@click.command("ropa")
@click.option("--out", type=click.Path(file_okay=False), default=".", help="Output folder.")
@client_home_option
@handle_errors
def ropa_cmd(out: str, home: str | None) -> None:
    """Write the record of processing activities (ropa.json, ropa.html; compliance session)
    from the declarations and this home's facts: PII rows held, where copies live, retention.

    Example:

        amzigo ropa --out ./compliance
    """
    answer = compliance_call(home, protocol.ROPA, {})
    for p in write_files(Path(out), answer["files"]):
        console.print(str(p))


COMMANDS = (hold_group, delete_cmd, certificate_group, ropa_cmd)
