"""`amzigo audit verify`: an operator command (the service account), run in-process.

It is the check of the audit log itself, so it cannot depend on the log's writer: it reads the
segments, checkpoints and anchor read-only with the home's audit key, and must report a wiped,
truncated or rolled-back log even when the gateway could not open it (a gateway starting on
demand would also append to and checkpoint the very log being checked). `--record` appends the
outcome as an `audit.verified` event. `amzigo audit search` is a gateway client
(`amzigo_lab.cli.audit_client`).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

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
from amzigo_lab.errors import AmzigoError


@contextmanager
def _gov(home: str | None) -> Iterator[object]:
    from amzigo_lab.governance.context import Governance

    gov = Governance.open(settings_for(home))
    try:
        yield gov
    finally:
        gov.close()


@click.command("verify")
@home_option
@json_option
@click.option(
    "--record",
    is_flag=True,
    help="Also append the outcome to the audit log as an `audit.verified` event (for alerts).",
)
@handle_errors
def audit_verify(home: str | None, as_json: bool, record: bool) -> None:
    """Verify the hash chain, encryption and signed checkpoints. Exit 1 on any problem.

    With an audit anchor configured (`[audit] anchor`), the log must also contain the newest
    anchored checkpoint: a wiped, truncated, re-created or rolled-back log fails. Read-only:
    nothing under the home or the anchor is created or changed (unless --record).

    Example:

        amzigo audit verify --json
    """
    from amzigo_lab.datasets import REGISTRY
    from amzigo_lab.governance.audit import AuditKeyError, verify_log
    from amzigo_lab.governance.audit.keys import public_key_path
    from amzigo_lab.governance.auditing import AUDIT_SECRET, signing_key_path
    from amzigo_lab.lake.catalog import Catalog
    from amzigo_lab.lake.store import Lake, key_provider_for

    settings = settings_for(home)
    catalog = Catalog.read_only(settings.catalog_path)
    try:  # no audit sink, a read-only catalog: verifying writes nothing
        lake = Lake(settings, REGISTRY, key_provider_for(settings), catalog)
    except BaseException:
        catalog.close()
        raise
    try:
        try:
            key: bytes | None = lake.secret(AUDIT_SECRET, create=False)
        except AmzigoError:
            key = None  # no audit log was ever opened in this home

        def provider() -> bytes:
            if key is None:
                raise AuditKeyError(f"this home has no {AUDIT_SECRET!r} secret")
            return key

        report = verify_log(  # read-only: works even when the log is too damaged to open
            settings.audit_path,
            settings.checkpoint_path,
            provider,
            public_key_path(signing_key_path(settings)),
            anchor=settings.audit_anchor,
        )
    finally:
        lake.close()
    if record:
        _record_verification(home, report.ok, report.problem, report.records_checked)
    data = {
        "ok": report.ok,
        "records_checked": report.records_checked,
        "checkpoints_checked": report.checkpoints_checked,
        "first_bad_seq": report.first_bad_seq,
        "problem": report.problem,
        "torn_tail": report.torn_tail,
        "anchored": report.anchored,
        "warnings": list(report.warnings),
    }
    if as_json:
        print_json(data)
    else:
        for warning in report.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}")
        if report.ok:
            console.print(
                f"audit verify: [green]OK[/] ({report.records_checked} records, "
                f"{report.checkpoints_checked} checkpoints"
                + (f", extends the anchored {report.anchored})" if report.anchored else ")")
            )
        else:
            at = "" if report.first_bad_seq is None else f" at record {report.first_bad_seq}"
            console.print(f"audit verify: [red]FAILED[/]{at}: {report.problem}")
    if not report.ok:
        raise SystemExit(1)


def _record_verification(home: str | None, ok: bool, problem: str, records: int) -> None:
    """Append an `audit.verified` event (best effort: a broken log may refuse the append)."""
    from amzigo_lab.governance.context import Governance

    try:
        with _gov(home) as g:
            assert isinstance(g, Governance)
            g.emit(
                "audit.verified",
                actor=f"local:{getpass.getuser()}",
                resource="audit:log",
                decision="allow" if ok else "deny",
                reason=problem or f"{records} records ok",
                row_count=records,
            )
    except Exception as exc:  # the report stands
        err_console.print(f"warning: could not record the verification: {type(exc).__name__}")
