"""`amzigo dsr ...`: data-subject requests (export, rectify, erase, object, resume, list).

The subject (a buyer's e-mail, or name and postcode) and a rectification's new values are
personal data: they are read from stdin (`--subject-stdin`) or a file (`--subject-file PATH`),
never from argv (which other local users can see in `ps` and shells keep in history). The
input is `key=value` lines: `email=...`, or `name=...` and `postcode=...`; for `rectify` also
`set.FIELD=VALUE` lines. Every request acts as the logged-in compliance user of
$AMZIGO_SESSION: the home's gateway checks the role and runs the request (the subject travels
in the action's body over its socket, never in its log); this module never opens the home.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from amzigo_lab.cli.common import (
    client_home_option,
    console,
    handle_errors,
    json_option,
    print_json,
)
from amzigo_lab.cli.compliance_client import compliance_call
from amzigo_lab.client import protocol
from amzigo_lab.errors import AmzigoError

_SUBJECT_KEYS = ("email", "name", "postcode")


@dataclass
class Subject:
    """Who a request is about, and (rectify) the new values: never shown or logged."""

    email: str | None = field(default=None, repr=False)
    name: str | None = field(default=None, repr=False)
    postcode: str | None = field(default=None, repr=False)
    changes: dict[str, str] = field(default_factory=dict, repr=False)


def parse_subject(text: str, *, changes: bool = False) -> Subject:
    """`key=value` lines (blank lines and `#` comments ignored) as a Subject."""
    subject = Subject()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise AmzigoError(f"subject line {number}: expected key=value (value not shown)")
        if key in _SUBJECT_KEYS:
            setattr(subject, key, value)
        elif changes and key.startswith("set.") and len(key) > 4:
            subject.changes[key[4:]] = value
        else:
            allowed = ", ".join((*_SUBJECT_KEYS, *(("set.FIELD",) if changes else ())))
            raise AmzigoError(f"subject line {number}: unknown key {key!r}; use {allowed}")
    if not subject.email and not (subject.name and subject.postcode):
        raise AmzigoError("the subject needs email=..., or name=... and postcode=...")
    if changes and not subject.changes:
        raise AmzigoError("rectify needs at least one set.FIELD=VALUE line")
    return subject


def _request(home: str | None, action: str, who: Subject, tenant: str | None) -> dict[str, Any]:
    """Send a request about `who` to the home's gateway as the logged-in compliance user."""
    body: dict[str, Any] = {
        "tenant": tenant,
        "subject": {"email": who.email, "name": who.name, "postcode": who.postcode},
    }
    if who.changes:
        body["changes"] = dict(who.changes)
    return compliance_call(home, action, body)


def read_subject(stdin: bool, path: str | None, *, changes: bool = False) -> Subject:
    """The subject from stdin or a file (exactly one of them)."""
    if stdin == bool(path):
        raise AmzigoError(
            "give the subject with --subject-stdin or --subject-file PATH (exactly one); "
            "personal data is never taken from the command line"
        )
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise AmzigoError(f"cannot read the subject file {path}: {exc.strerror}") from None
    else:
        text = sys.stdin.read()
    return parse_subject(text, changes=changes)


def subject_options(func: click.decorators.FC) -> click.decorators.FC:
    """--subject-stdin or --subject-file PATH; optional --tenant."""
    for opt in (
        click.option("--tenant", default=None, help="Only this tenant (seller)."),
        click.option(
            "--subject-file",
            type=click.Path(dir_okay=False),
            default=None,
            help="Read the subject (key=value lines) from this file.",
        ),
        click.option(
            "--subject-stdin",
            is_flag=True,
            help="Read the subject (email=... | name=... + postcode=...) from stdin.",
        ),
    ):
        func = opt(func)
    return func


@click.group("dsr")
def dsr_group() -> None:
    """Data-subject requests, found through the keyed blind index (never a plaintext scan)."""


@dsr_group.command("export")
@subject_options
@client_home_option
@json_option
@handle_errors
def export_cmd(
    subject_stdin: bool,
    subject_file: str | None,
    tenant: str | None,
    home: str | None,
    as_json: bool,
) -> None:
    """Export everything held about a subject to an encrypted file (key shown once).

    Example:

        printf 'email=%s\\n' "$BUYER" | amzigo dsr export --subject-stdin
    """
    who = read_subject(subject_stdin, subject_file)
    files = _request(home, protocol.DSR_EXPORT, who, tenant)["files"]
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
@client_home_option
@handle_errors
def rectify_cmd(
    subject_stdin: bool, subject_file: str | None, tenant: str | None, home: str | None
) -> None:
    """Correct a subject's PII (rewrites the affected partitions under new keys).

    The new values come with the subject as `set.FIELD=VALUE` lines.

    Example:

        printf 'email=%s\\nset.ship_city=%s\\n' "$BUYER" "$CITY" | \\
            amzigo dsr rectify --subject-stdin
    """
    who = read_subject(subject_stdin, subject_file, changes=True)
    n = _request(home, protocol.DSR_RECTIFY, who, tenant)["records"]
    console.print(f"rectified {n} record(s)")


@dsr_group.command("erase")
@subject_options
@client_home_option
@handle_errors
def erase_cmd(
    subject_stdin: bool, subject_file: str | None, tenant: str | None, home: str | None
) -> None:
    """Erase a subject: rewrite their PII partitions without them, destroy old keys, certify.

    Example:

        amzigo dsr erase --subject-file request-0042.txt
    """
    who = read_subject(subject_stdin, subject_file)
    cert_id = _request(home, protocol.DSR_ERASE, who, tenant)["certificate_id"]
    console.print(f"erased; certificate {cert_id}" if cert_id else "nothing held: nothing erased")


@dsr_group.command("object")
@subject_options
@client_home_option
@handle_errors
def object_cmd(
    subject_stdin: bool, subject_file: str | None, tenant: str | None, home: str | None
) -> None:
    """Record an objection: the subject's orders leave review requests and further processing.

    Example:

        amzigo dsr object --subject-stdin < request-0042.txt
    """
    who = read_subject(subject_stdin, subject_file)
    n = _request(home, protocol.DSR_OBJECT, who, tenant)["orders"]
    console.print(f"objection recorded; {n} order(s) excluded")


@dsr_group.command("resume")
@client_home_option
@handle_errors
def resume_cmd(home: str | None) -> None:
    """Finish requests a crash interrupted: staged rewrites, and erasures (then certified).

    Every erase and rectify runs this first; run it on its own after a crash (needs a
    compliance user's session).

    Example:

        amzigo dsr resume
    """
    done = compliance_call(home, protocol.DSR_RESUME, {})["done"]
    console.print(f"resumed {', '.join(done)}" if done else "nothing to resume")


@dsr_group.command("list")
@client_home_option
@json_option
@handle_errors
def list_cmd(home: str | None, as_json: bool) -> None:
    """List requests with received date, one-month deadline and status (compliance session).

    Example:

        amzigo dsr list --json
    """
    rows = compliance_call(home, protocol.DSR_LIST, {})["requests"]
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
