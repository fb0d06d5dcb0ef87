"""`amzigo users|login|logout|access-review|audit|alerts|credentials`: governance from the shell.

Who may run what: administrative commands act as the user of $AMZIGO_SESSION (from `amzigo
login`), whose roles must hold the right the command needs (manage_users, read_audit,
access_review); the gateway checks it and audits a denial naming the user. `users add|grant|
disable|enable|unlock|passwd` are gateway actions (no local access to the home needed);
`access-review` and `credentials set` are authorised by the gateway, then run in-process. The
service account may use `--break-glass REASON` instead (see `amzigo_lab.cli.auth`). Passwords
are read from stdin or a hidden prompt, never from argv.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.table import Table

from amzigo_lab.cli.auth import authorize, break_glass_option, call, caller
from amzigo_lab.cli.common import (
    console,
    err_console,
    handle_errors,
    home_option,
    json_option,
    print_json,
    settings_for,
)
from amzigo_lab.client import protocol
from amzigo_lab.errors import AccessDenied, AmzigoError
from amzigo_lab.governance.identity import Session
from amzigo_lab.governance.session import SESSION_ENV


@contextmanager
def _gov(home: str | None) -> Iterator[object]:
    from amzigo_lab.governance.context import Governance

    gov = Governance.open(settings_for(home))
    try:
        yield gov
    finally:
        gov.close()


def _session(gov: object) -> Session | None:
    """The caller's session from $AMZIGO_SESSION, if set (an ended one is refused)."""
    from amzigo_lab.governance.context import Governance
    from amzigo_lab.governance.identity import SessionExpired

    assert isinstance(gov, Governance)
    token = os.environ.get(SESSION_ENV)
    if not token:
        return None
    try:
        return gov.identity.validate_session(token)
    except SessionExpired as exc:
        raise AccessDenied(f"{SESSION_ENV}: {exc} (run `amzigo login NAME`)") from None


def _read_password(password_stdin: bool, confirm: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    return str(click.prompt("password", hide_input=True, confirmation_prompt=confirm, err=True))


# -- users ------------------------------------------------------------------------------------


@click.group("users")
def users_group() -> None:
    """Create users, grant tenants, disable, unlock, change passwords."""


@users_group.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A policy role (repeatable).")
@click.option("--tenant", help="The tenant a seller is bound to.")
@click.option("--new-tenant", is_flag=True, help="--tenant is not ingested yet (else: an error).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--qr", type=click.Path(dir_okay=False), help="Also write the TOTP QR code (PNG).")
@break_glass_option
@home_option
@handle_errors
def users_add(
    name: str,
    roles: tuple[str, ...],
    tenant: str | None,
    new_tenant: bool,
    password_stdin: bool,
    qr: str | None,
    break_glass: str | None,
    home: str | None,
) -> None:
    """Create a user with a password and TOTP MFA; print the provisioning URI once.

    Needs a session with manage_users (admin). The first admin of a new home is created by
    the service account with --break-glass.

    Example:

        printf '%s\\n' "$PW" | amzigo users add alice --role analyst --password-stdin --qr alice.png
    """
    from amzigo_lab.governance.identity.users import Enrollment

    who = caller(settings_for(home).home, break_glass)
    password = _read_password(password_stdin, confirm=True)
    answer = call(
        who,
        protocol.USERS_ADD,
        {
            "name": name,
            "roles": list(roles),
            "tenant": tenant,
            "password": password,
            "new_tenant": new_tenant,
        },
    )
    enrollment = Enrollment(name, str(answer["provisioning_uri"]))
    console.print(f"created {name} ({', '.join(roles)}{', tenant ' + tenant if tenant else ''})")
    console.print("TOTP provisioning URI (shown once; add it to an authenticator app):")
    click.echo(enrollment.provisioning_uri)
    if qr:
        enrollment.write_qr(qr)
        console.print(f"QR code written to {qr} (mode 0600); delete it after enrolment")


@users_group.command("list")
@home_option
@json_option
@handle_errors
def users_list(home: str | None, as_json: bool) -> None:
    """List users: roles, tenant, grants, status, last login, MFA.

    Example:

        amzigo users list --json
    """
    from amzigo_lab.governance.admin import review_rows
    from amzigo_lab.governance.context import Governance

    with _gov(home) as g:
        assert isinstance(g, Governance)
        rows = review_rows(g)
    if as_json:
        print_json(rows)
        return
    table = Table("user", "roles", "tenant", "grants", "status", "last login", "mfa", "flags")
    for r in rows:
        table.add_row(
            str(r["user"]), ",".join(r["roles"]), r["tenant"] or "-", ",".join(r["grants"]) or "-",
            r["status"], r["last_login"] or "never", "yes" if r["mfa_enrolled"] else "NO",
            ",".join(r["flags"]) or "-",
        )  # fmt: skip
    console.print(table)


def _simple(action: str, verb: str) -> click.Command:
    @click.command(action.split(".")[1])
    @click.argument("name")
    @break_glass_option
    @home_option
    @handle_errors
    def command(name: str, break_glass: str | None, home: str | None) -> None:
        call(caller(settings_for(home).home, break_glass), action, {"name": name})
        console.print(f"{name}: {verb}d" if verb != "unlock" else f"{name}: unlocked")

    return command


users_disable = _simple("users.disable", "disable")
users_disable.help = """Disable a user and revoke every session at once (deprovisioning).

Example:

    amzigo users disable alice
"""
users_enable = _simple("users.enable", "enable")
users_enable.help = """Re-enable a disabled user.

Example:

    amzigo users enable alice
"""
users_unlock = _simple("users.unlock", "unlock")
users_unlock.help = """End a lockout now (admin unlock) and clear the failure count.

Example:

    amzigo users unlock alice
"""
for _cmd in (users_disable, users_enable, users_unlock):
    users_group.add_command(_cmd)


@users_group.command("grant")
@click.argument("name")
@click.option("--tenant", required=True, help="Tenant to grant.")
@click.option("--revoke", is_flag=True, help="Withdraw the grant instead.")
@click.option("--new-tenant", is_flag=True, help="The tenant is not ingested yet (else: an error).")
@break_glass_option
@home_option
@handle_errors
def users_grant(
    name: str,
    tenant: str,
    revoke: bool,
    new_tenant: bool,
    break_glass: str | None,
    home: str | None,
) -> None:
    """Grant (or with --revoke withdraw) a tenant to an analyst or PII processor.

    Needs a session with manage_users (admin).

    Example:

        amzigo users grant alice --tenant acme
    """
    who = caller(settings_for(home).home, break_glass)
    answer = call(
        who,
        protocol.USERS_GRANT,
        {"name": name, "tenant": tenant, "revoke": revoke, "new_tenant": new_tenant},
    )
    state = "revoked" if revoke else "granted"
    console.print(
        f"{name}: tenant {tenant} {state}" + ("" if answer["changed"] else " (no change)")
    )


@users_group.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
@break_glass_option
@home_option
@handle_errors
def users_passwd(
    name: str, password_stdin: bool, break_glass: str | None, home: str | None
) -> None:
    """Set a new password (admin reset; revokes the user's sessions).

    Needs a session with manage_users (admin).

    Example:

        printf '%s\\n' "$NEW" | amzigo users passwd alice --password-stdin
    """
    who = caller(settings_for(home).home, break_glass)
    password = _read_password(password_stdin, confirm=True)
    call(who, protocol.USERS_PASSWD, {"name": name, "password": password})
    console.print(f"{name}: password changed")


# -- login / logout ---------------------------------------------------------------------------


@click.command("login")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--code", help="The current TOTP code (prompted if absent).")
@home_option
@handle_errors
def login_cmd(name: str, password_stdin: bool, code: str | None, home: str | None) -> None:
    """Log in with password + TOTP code; print `export AMZIGO_SESSION=...` for eval.

    Example:

        eval "$(amzigo login alice)"
    """
    from amzigo_lab.client.directory import Directory
    from amzigo_lab.client.workbench import home_path

    password = _read_password(password_stdin, confirm=False)
    otp = code or str(click.prompt("authenticator code", err=True))
    session = Directory(home_path(home)).authenticate(name, password, otp)
    days, warn = session.password_days, session.password_warn
    if warn and days is not None:
        err_console.print(f"warning: your password expires in {days} day(s); change it soon")
    click.echo(f"export {SESSION_ENV}={session.token}")


@click.command("logout")
@home_option
@handle_errors
def logout_cmd(home: str | None) -> None:
    """End the session in $AMZIGO_SESSION.

    Example:

        amzigo logout && unset AMZIGO_SESSION
    """
    from amzigo_lab.client.directory import Directory
    from amzigo_lab.client.workbench import home_path

    token = os.environ.get(SESSION_ENV)
    if not token:
        raise AmzigoError(f"{SESSION_ENV} is not set: nothing to log out")
    ended = Directory(home_path(home)).end(token)
    console.print("logged out" if ended else "the session had already ended")


# -- access review ----------------------------------------------------------------------------


@click.command("access-review")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default="reports", show_default=True
)
@home_option
@break_glass_option
@json_option
@handle_errors
def access_review_cmd(
    out_dir: str, break_glass: str | None, home: str | None, as_json: bool
) -> None:
    """Write the quarterly access review as CSV and HTML (audited; needs access_review).

    Example:

        amzigo access-review --out reports/
    """
    from amzigo_lab.governance.admin import write_access_review
    from amzigo_lab.governance.context import Governance

    settings = settings_for(home)
    actor = authorize(
        settings.home, "access.review", right="access_review", break_glass=break_glass
    )
    with _gov(home) as g:
        assert isinstance(g, Governance)
        csv_path, html_path, n = write_access_review(g, Path(out_dir), dt.date.today())
        g.emit("access.review", actor=actor, resource="identity", row_count=n, reason="csv+html")
    if as_json:
        print_json({"csv": str(csv_path), "html": str(html_path), "users": n})
    else:
        console.print(f"access review of {n} users: {csv_path} and {html_path}")


# -- audit ------------------------------------------------------------------------------------


@click.group("audit")
def audit_group() -> None:
    """Verify and search the tamper-evident audit log."""


@audit_group.command("verify")
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


def _when(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise AmzigoError(f"invalid time {value!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@audit_group.command("search")
@click.option("--actor")
@click.option("--action", help="Exact action, or a prefix like 'auth.*'.")
@click.option("--resource")
@click.option("--since", help="From this UTC time (YYYY-MM-DD[THH:MM]).")
@click.option("--until", help="Before this UTC time.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@home_option
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
    from amzigo_lab.governance.context import Governance

    with _gov(home) as g:
        assert isinstance(g, Governance)
        session = _session(g)
        if session is None:
            raise AccessDenied(
                f"audit search needs a session of a compliance or admin user: run "
                f'`eval "$(amzigo login NAME)"` first ({SESSION_ENV} is not set)'
            )
        g.require_right(session, "read_audit", "audit.search")
        events = g.audit_log.search(
            actor=actor, action=action, resource=resource, since=_when(since), until=_when(until)
        )
        g.emit(
            "audit.search",
            actor=session.user_id,
            session=f"s{session.session_id}",
            resource="audit:log",
            purpose="compliance",
            row_count=len(events),
            decision="allow",
        )
    rows = [e.to_dict() for e in events[-limit:]]
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
    console.print(
        f"{len(events)} event(s){' (last ' + str(limit) + ' shown)' if len(events) > limit else ''}"
    )


# -- alerts -----------------------------------------------------------------------------------


@click.command("alerts")
@click.option("--since", help="Only events from this UTC time (YYYY-MM-DD[THH:MM]).")
@click.option("--no-send", is_flag=True, help="List only; do not deliver to the sink.")
@home_option
@json_option
@handle_errors
def alerts_cmd(since: str | None, no_send: bool, home: str | None, as_json: bool) -> None:
    """Evaluate the alert rules over the audit log; deliver new alerts to the configured sink.

    Thresholds and the sink come from `[alerts]` in <home>/config.toml, e.g.
    denials_count = 5, denials_window_minutes = 10, volume_factor = 10,
    command = ["/usr/local/bin/page-oncall"] or webhook_url = "https://...".

    Example:

        amzigo alerts --json
    """
    from amzigo_lab.governance.admin import alert_rules, mark_sent, new_alerts, run_alerts
    from amzigo_lab.governance.audit import dispatch
    from amzigo_lab.governance.context import Governance

    failures = []
    with _gov(home) as g:
        assert isinstance(g, Governance)
        alerts = run_alerts(g, _when(since))
        _rules, sinks = alert_rules(g)
        fresh = new_alerts(g, alerts)
        if sinks and not no_send and fresh:
            failures = dispatch(fresh, sinks)
            if not failures:
                mark_sent(g, fresh)
            g.emit(
                "alerts.sent",
                actor=f"local:{getpass.getuser()}",
                resource="alerts",
                row_count=len(fresh),
                decision="deny" if failures else "info",
                reason=f"{len(failures)} delivery failure(s)" if failures else "delivered",
            )
    if as_json:
        print_json([a.to_dict() for a in alerts])
    elif not alerts:
        console.print("no alerts")
    else:
        for a in alerts:
            console.print(f"[red]{a.rule}[/] {a.time} {a.actor}: {a.detail}")
    for _alert, exc in failures:
        err_console.print(f"warning: alert delivery failed: {type(exc).__name__}")


# -- credentials ------------------------------------------------------------------------------

_ENV = {
    "client_id": "AMZIGO_LWA_CLIENT_ID",
    "client_secret": "AMZIGO_LWA_CLIENT_SECRET",
    "refresh_token": "AMZIGO_REFRESH_TOKEN",
}


@click.group("credentials")
def credentials_group() -> None:
    """Store the SP-API app's LWA credentials and refresh tokens, encrypted in the catalog."""


@credentials_group.command("set")
@click.option("--tenant", help="The tenant a refresh token belongs to.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read key=value lines from stdin.")
@break_glass_option
@home_option
@handle_errors
def credentials_set(
    tenant: str | None, from_stdin: bool, break_glass: str | None, home: str | None
) -> None:
    """Store LWA client id/secret and a tenant's refresh token (stdin or env, never argv).

    Needs a session with manage_users (admin).

    Fields: client_id, client_secret, refresh_token. From the environment:
    AMZIGO_LWA_CLIENT_ID, AMZIGO_LWA_CLIENT_SECRET, AMZIGO_REFRESH_TOKEN. Replacing a value
    is recorded as a rotation in the audit log.

    Example:

        printf 'refresh_token=%s\\n' "$TOKEN" | amzigo credentials set --tenant acme --stdin
    """
    from amzigo_lab.governance.admin import set_credentials
    from amzigo_lab.governance.context import Governance

    settings = settings_for(home)
    actor = authorize(
        settings.home, "credentials.set", right="manage_users", break_glass=break_glass
    )
    values: dict[str, str] = {}
    if from_stdin:
        for line in sys.stdin.read().splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or key.strip() not in _ENV:
                raise AmzigoError(
                    f"stdin lines must be key=value with key one of {', '.join(_ENV)}"
                )
            values[key.strip()] = value.strip()
    else:
        values = {k: os.environ[v] for k, v in _ENV.items() if os.environ.get(v)}
    if not values:
        raise AmzigoError(
            "no credentials given: pipe key=value lines with --stdin, or set "
            + ", ".join(_ENV.values())
        )
    with _gov(home) as g:
        assert isinstance(g, Governance)
        names = set_credentials(g, tenant, values, actor)
    console.print(f"stored {len(names)} credential(s): {', '.join(names)}")


@credentials_group.command("list")
@home_option
@json_option
@handle_errors
def credentials_list(home: str | None, as_json: bool) -> None:
    """List stored credentials: names and ages only (warns at 365 days).

    Example:

        amzigo credentials list --json
    """
    from amzigo_lab.governance.admin import WARN_AGE_DAYS, list_credentials
    from amzigo_lab.governance.context import Governance

    with _gov(home) as g:
        assert isinstance(g, Governance)
        items = list_credentials(g, dt.datetime.now(dt.UTC))
    if as_json:
        print_json(
            [
                {"name": c.name, "created_at": c.created_at, "rotated_at": c.rotated_at,
                 "age_days": c.age_days, "rotate": c.stale}
                for c in items
            ]
        )  # fmt: skip
        return
    if not items:
        console.print("no SP-API credentials stored: `amzigo credentials set --help`")
    for c in items:
        flag = f"  [red]older than {WARN_AGE_DAYS} days: rotate[/]" if c.stale else ""
        console.print(f"{c.name:<40} {c.age_days:>5} days{flag}")


COMMANDS = (
    users_group,
    login_cmd,
    logout_cmd,
    access_review_cmd,
    audit_group,
    alerts_cmd,
    credentials_group,
)
