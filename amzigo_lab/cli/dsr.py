"""`amzigo dsr ...`: data-subject requests (export, rectify, erase, object, resume, list)."""

from __future__ import annotations

import click
from rich.table import Table

from amzigo_lab.cli.common import console, handle_errors, home_option, json_option, print_json
from amzigo_lab.cli.common import settings_for as _settings
from amzigo_lab.cli.compliance import as_option
from amzigo_lab.compliance import dsr
from amzigo_lab.home import open_lake


def subject_options(func: click.decorators.FC) -> click.decorators.FC:
    """--email, or --name with --postcode; optional --tenant."""
    for opt in (
        click.option("--tenant", default=None, help="Only this tenant (seller)."),
        click.option("--postcode", default=None, help="Postcode (with --name)."),
        click.option("--name", default=None, help="Buyer name (with --postcode)."),
        click.option("--email", default=None, help="Buyer e-mail address."),
    ):
        func = opt(func)
    return func


@click.group("dsr")
def dsr_group() -> None:
    """Data-subject requests, found through the keyed blind index (never a plaintext scan)."""


@dsr_group.command("export")
@subject_options
@as_option
@home_option
@json_option
@handle_errors
def export_cmd(
    email: str | None,
    name: str | None,
    postcode: str | None,
    tenant: str | None,
    actor: str,
    home: str | None,
    as_json: bool,
) -> None:
    """Export everything held about a subject to an encrypted file (key shown once).

    Example:

        amzigo dsr export --email buyer@example.com --as alice
    """
    with open_lake(_settings(home)) as lake:
        files = dsr.export_subject(
            lake, actor=actor, tenant=tenant, email=email, name=name, postcode=postcode
        )
    if as_json:
        print_json(files)
        return
    if not files:
        console.print("nothing is held about this subject")
    for f in files:
        console.print(f"{f['path']}  ({f['rows']} PII rows, tenant {f['tenant']})")
        console.print(f"  one-time key (shown once, send separately): {f['key']}")


@dsr_group.command("rectify")
@subject_options
@click.option("--set", "changes", multiple=True, required=True, help="FIELD=VALUE (repeatable).")
@as_option
@home_option
@handle_errors
def rectify_cmd(
    email: str | None,
    name: str | None,
    postcode: str | None,
    tenant: str | None,
    changes: tuple[str, ...],
    actor: str,
    home: str | None,
) -> None:
    """Correct a subject's PII (rewrites the affected partitions under new keys).

    Example:

        amzigo dsr rectify --email buyer@example.com --set ship_city=Springfield --as alice
    """
    parsed = dict(c.split("=", 1) for c in changes if "=" in c)
    if len(parsed) != len(changes):
        raise click.BadParameter("use --set FIELD=VALUE")
    with open_lake(_settings(home)) as lake:
        n = dsr.rectify_subject(
            lake,
            actor=actor,
            changes=parsed,
            tenant=tenant,
            email=email,
            name=name,
            postcode=postcode,
        )
    console.print(f"rectified {n} record(s)")


@dsr_group.command("erase")
@subject_options
@as_option
@home_option
@handle_errors
def erase_cmd(
    email: str | None,
    name: str | None,
    postcode: str | None,
    tenant: str | None,
    actor: str,
    home: str | None,
) -> None:
    """Erase a subject: rewrite their PII partitions without them, destroy old keys, certify.

    Example:

        amzigo dsr erase --email buyer@example.com --as alice
    """
    with open_lake(_settings(home)) as lake:
        cert = dsr.erase_subject(
            lake, actor=actor, tenant=tenant, email=email, name=name, postcode=postcode
        )
    console.print(f"erased; certificate {cert.id}" if cert else "nothing held: nothing erased")


@dsr_group.command("object")
@subject_options
@as_option
@home_option
@handle_errors
def object_cmd(
    email: str | None,
    name: str | None,
    postcode: str | None,
    tenant: str | None,
    actor: str,
    home: str | None,
) -> None:
    """Record an objection: the subject's orders leave review requests and further processing.

    Example:

        amzigo dsr object --email buyer@example.com --as alice
    """
    with open_lake(_settings(home)) as lake:
        n = dsr.object_subject(
            lake, actor=actor, tenant=tenant, email=email, name=name, postcode=postcode
        )
    console.print(f"objection recorded; {n} order(s) excluded")


@dsr_group.command("resume")
@as_option
@home_option
@handle_errors
def resume_cmd(actor: str, home: str | None) -> None:
    """Finish requests a crash interrupted: staged rewrites, and erasures (then certified).

    Every erase and rectify runs this first; run it on its own after a crash.

    Example:

        amzigo dsr resume --as alice
    """
    from amzigo_lab.compliance.roles import COMPLIANCE, require_role

    settings = _settings(home)
    require_role(actor, COMPLIANCE, settings.home)
    with open_lake(settings) as lake:
        done = dsr.resume_requests(lake)
    console.print(f"resumed {', '.join(done)}" if done else "nothing to resume")


@dsr_group.command("list")
@home_option
@json_option
@handle_errors
def list_cmd(home: str | None, as_json: bool) -> None:
    """List requests with received date, one-month deadline and status.

    Example:

        amzigo dsr list --json
    """
    with open_lake(_settings(home)) as lake:
        rows = dsr.list_requests(lake)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no data-subject requests")
        return
    table = Table("id", "kind", "subject", "received", "deadline", "status")
    for r in rows:
        status = r["status"] + (" [red]OVERDUE[/]" if r["overdue"] else "")
        table.add_row(r["id"], r["kind"], r["subject_id"], r["received"], r["deadline"], status)
    console.print(table)
