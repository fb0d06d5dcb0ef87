"""`amzigo purge`, `amzigo hold ...`, `amzigo delete`, `amzigo certificate ...`, `amzigo ropa`.

Holds, deletion notices and certificate validation act as the logged-in user of
$AMZIGO_SESSION, who must have the compliance role (checked by the home's gateway, a denial
audited); the command then runs in-process on the home with that user as the actor.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from amzigo_lab.cli.auth import authorize
from amzigo_lab.cli.common import console, handle_errors, home_option, json_option, print_json
from amzigo_lab.cli.common import settings_for as _settings
from amzigo_lab.compliance import certificates as certs
from amzigo_lab.compliance.holds import add_hold, list_holds, release_hold
from amzigo_lab.compliance.notices import delete_scope
from amzigo_lab.compliance.retention import purge
from amzigo_lab.compliance.roles import COMPLIANCE
from amzigo_lab.compliance.ropa import write_ropa
from amzigo_lab.config import Settings
from amzigo_lab.home import open_lake


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


def compliance_actor(settings: Settings, action: str) -> str:
    """The logged-in compliance user running `action` ($AMZIGO_SESSION, checked by the
    gateway; a denial is audited naming the user). No session: exit 2, nothing changed."""
    return authorize(settings.home, action, role=COMPLIANCE)


@click.command("purge")
@click.option("--as-of", type=DATE, default=None, help="Purge as of this date (default: today).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@home_option
@json_option
@handle_errors
def purge_cmd(as_of: dt.date | None, dry_run: bool, home: str | None, as_json: bool) -> None:
    """Drop everything past its purge date that no legal hold keeps; sign a certificate.

    Run daily from cron (see docs/compliance.md). Example:

        amzigo purge --dry-run
        amzigo purge --as-of 2026-06-01 --json
    """
    with open_lake(_settings(home)) as lake:
        result = purge(lake, as_of, dry_run=dry_run)
        data = result.to_dict(lake)
    if as_json:
        print_json(data)
        if data["plan"]["refused_tampered"]:
            raise SystemExit(1)
        return
    plan = data["plan"]
    verb = "would drop" if dry_run else "dropped"
    for cat, c in sorted(plan["drop_summary"].items()):
        console.print(f"{verb} {c['partitions']:>6} {cat} partition(s), {c['rows']} rows")
    console.print(f"{verb} {len(plan['outputs_drop'])} derived output(s)")
    for k in plan["kept_under_hold"]:
        console.print(
            f"kept   partition {k['partition_id']} {k['dataset']} {k['tenant']} "
            f"(due {k['purge_date']}) under hold {k['hold']}"
        )
    for k in plan["outputs_kept_under_hold"]:
        console.print(f"kept   output {k['output_id']} under hold {k['hold']}")
    for k in plan["refused_tampered"]:
        console.print(
            f"[red]REFUSED[/] partition {k['partition_id']} {k['dataset']} {k['tenant']} "
            f"ingest {k['ingest_date']}: {k['check']} (edited outside amzigo-lab; run "
            "`amzigo lake verify`, restore the catalog from backup)"
        )
    if not dry_run:
        console.print(f"audit  {data['audit_note']}")
        if data["certificate_id"]:
            console.print(f"certificate {data['certificate_id']} (amzigo certificate show ID)")
        else:
            console.print("nothing was due: no certificate")
    if plan["refused_tampered"]:
        raise SystemExit(1)


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
@home_option
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
    settings = _settings(home)
    actor = compliance_actor(settings, "hold.add")
    with open_lake(settings) as lake:
        hold = add_hold(
            lake,
            tenant=tenant,
            dataset=dataset,
            from_date=from_date,
            to_date=to_date,
            reason=reason,
            until=until,
            actor=actor,
        )
    if as_json:
        print_json(hold.to_dict())
    else:
        console.print(f"hold {hold.id}: {hold.scope} until {hold.until}")


@hold_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include released and expired holds.")
@home_option
@json_option
@handle_errors
def hold_list_cmd(show_all: bool, home: str | None, as_json: bool) -> None:
    """List legal holds (active ones unless --all).

    Example:

        amzigo hold list --json
    """
    with open_lake(_settings(home)) as lake:
        holds = list_holds(lake, include_inactive=show_all)
    rows = [h.to_dict() for h in holds]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no legal holds")
        return
    table = Table("id", "scope", "until", "reason", "by", "released")
    for h in holds:
        table.add_row(h.id, h.scope, str(h.until), h.reason, h.created_by, h.released_at or "")
    console.print(table)


@hold_group.command("release")
@click.argument("hold_id")
@home_option
@handle_errors
def hold_release_cmd(hold_id: str, home: str | None) -> None:
    """Release a legal hold (a compliance user's session); the next purge drops what it kept.

    Example:

        amzigo hold release hold-0123456789abcdef
    """
    settings = _settings(home)
    actor = compliance_actor(settings, "hold.release")
    with open_lake(settings) as lake:
        hold = release_hold(lake, hold_id, actor=actor)
    console.print(f"released {hold.id} ({hold.scope})")


@click.command("delete")
@click.option("--tenant", required=True, help="Tenant named in the notice.")
@click.option("--dataset", "datasets", multiple=True, help="Only these datasets (repeatable).")
@click.option("--notice", required=True, help="Amazon's notice reference.")
@home_option
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
    interruption. Example:

        amzigo delete --tenant acme --notice AMZ-2026-0042
    """
    settings = _settings(home)
    actor = compliance_actor(settings, "notice.delete")
    with open_lake(settings) as lake:
        result = delete_scope(
            lake, tenant=tenant, notice=notice, actor=actor, datasets=list(datasets) or None
        )
    if as_json:
        print_json(result.to_dict())
        return
    console.print(
        f"notice {notice}: dropped {result.partitions_dropped} partitions "
        f"({result.rows_dropped} rows), {result.outputs_deleted} outputs, "
        f"{result.folders_deleted} folders, {result.sync_state_rows} sync-state rows"
    )
    for k in result.kept_under_hold:
        console.print(f"[yellow]kept[/] partition {k['partition_id']} under hold {k['hold']}")
    console.print(f"certificate {result.certificate_id} (validation by a second user required)")


@click.group("certificate")
def certificate_group() -> None:
    """Signed destruction certificates (NIST SP 800-88 fields)."""


@certificate_group.command("list")
@home_option
@json_option
@handle_errors
def certificate_list_cmd(home: str | None, as_json: bool) -> None:
    """List destruction certificates.

    Example:

        amzigo certificate list --json
    """
    with open_lake(_settings(home)) as lake:
        found = certs.list_certificates(lake)
    rows = [
        {
            "id": c.id,
            "kind": c.body["kind"],
            "reference": c.body["reference"],
            "date": c.body["date"],
            "items": len(c.body["items"]),
            "result": c.body["sanitization"]["verification_result"],
            "validated_by": (c.validation or {}).get("validated_by"),
        }
        for c in found
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
@home_option
@handle_errors
def certificate_show_cmd(cert_id: str, home: str | None) -> None:
    """Print one certificate as JSON.

    Example:

        amzigo certificate show cert-0123456789abcdef
    """
    with open_lake(_settings(home)) as lake:
        click.echo(certs.get_certificate(lake, cert_id).to_json())


@certificate_group.command("export")
@click.argument("cert_id")
@click.option("--out", type=click.Path(file_okay=False), default=".", help="Output folder.")
@home_option
@handle_errors
def certificate_export_cmd(cert_id: str, out: str, home: str | None) -> None:
    """Write the certificate as JSON and HTML, with the public key to check it.

    Example:

        amzigo certificate export cert-0123456789abcdef --out ./certificates
    """
    with open_lake(_settings(home)) as lake:
        paths = certs.export_certificate(lake, cert_id, Path(out))
    for p in paths:
        console.print(str(p))


@certificate_group.command("verify")
@click.argument("cert_id")
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="With FILE.json: the signer's public key PEM (default: the one exported beside it).",
)
@home_option
@json_option
@handle_errors
def certificate_verify_cmd(
    cert_id: str, public_key: str | None, home: str | None, as_json: bool
) -> None:
    """Check the signature, published public key, row MAC, covered records and audit events.

    Exit 1 if anything is wrong. Given an exported FILE.json instead of an id, verify it
    offline with no home (signature, destruction records, validation): exit 0 valid, 1
    invalid, 3 not yet valid (a required second-person validation is pending).

    Example:

        amzigo certificate verify cert-0123456789abcdef
        amzigo certificate verify ./certificates/cert-0123456789abcdef.json
    """
    from amzigo_lab.client.certificate_file import looks_like_file

    if looks_like_file(cert_id):  # an exported file: offline, no home needed
        from amzigo_lab.cli.certificate_file import verify_file

        verify_file(cert_id, public_key, as_json)
        return
    with open_lake(_settings(home)) as lake:
        report = certs.verify_certificate(lake, cert_id)
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
@home_option
@handle_errors
def certificate_validate_cmd(cert_id: str, home: str | None) -> None:
    """Validate a certificate as a second person (compliance session, not the performer).

    Example:

        amzigo certificate validate cert-0123456789abcdef
    """
    settings = _settings(home)
    actor = compliance_actor(settings, "certificate.validate")
    with open_lake(settings) as lake:
        cert = certs.validate_certificate(lake, cert_id, actor)
    console.print(f"{cert.id} validated by {actor}")


@click.command("ropa")
@click.option("--out", type=click.Path(file_okay=False), default=".", help="Output folder.")
@home_option
@handle_errors
def ropa_cmd(out: str, home: str | None) -> None:
    """Write the record of processing activities (ropa.json, ropa.html) from the
    declarations and this home's facts: PII rows held, where copies live, their retention.

    Example:

        amzigo ropa --out ./compliance
    """
    from amzigo_lab.compliance.ropa import installation_facts
    from amzigo_lab.governance.policy import load_policy

    settings = _settings(home)
    with open_lake(settings) as lake:  # what this home holds (counts only) and where
        facts = installation_facts(lake, load_policy(settings.home))
    for p in write_ropa(Path(out), settings.pii_purposes, facts):
        console.print(str(p))


COMMANDS = (purge_cmd, hold_group, delete_cmd, certificate_group, ropa_cmd)
