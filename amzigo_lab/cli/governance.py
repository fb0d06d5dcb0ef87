"""`amzigo users|login|logout|access-review|audit search|alerts|credentials`: gateway clients.

Who may run what: administrative commands act as the user of $AMZIGO_SESSION (from `amzigo
login`), whose roles must hold the right the command needs (manage_users, read_audit,
access_review); the gateway checks it, audits a denial naming the user, and runs the command
on the home: this module never opens the home itself. The service account may use
`--break-glass REASON` instead (see `amzigo_lab.cli.auth`). Passwords and credentials are read
from stdin, a hidden prompt or the environment, never from argv. `amzigo audit verify` is an
operator command (`amzigo_lab.cli.audit`): it must work when the log is too damaged for the
gateway to open it.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from amzigo_lab.cli.auth import act, break_glass_option, call, caller
from amzigo_lab.cli.common import (
    client_home_option,
    console,
    err_console,
    handle_errors,
    json_option,
    print_json,
)
from amzigo_lab.client import protocol
from amzigo_lab.client.workbench import SESSION_ENV, home_path
from amzigo_lab.errors import AmzigoError


def _write_private(path: Path, data: bytes) -> Path:
    """Write `data` to `path` with mode 0600 (refusing a symlink there)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(path, flags, 0o600), "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)  # an existing file would keep its old mode otherwise
        fh.write(data)
    return path


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
@client_home_option
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
    who = caller(home_path(home), break_glass)
    password = _read_password(password_stdin, confirm=True)
    answer = call(
        who,
        protocol.USERS_ADD,
        {"name": name, "roles": list(roles), "tenant": tenant, "password": password,
         "qr": bool(qr), "new_tenant": new_tenant},
    )  # fmt: skip
    console.print(f"created {name} ({', '.join(roles)}{', tenant ' + tenant if tenant else ''})")
    console.print("the password is one-time: changed at first login, unused it expires in 72 h")
    console.print("TOTP provisioning URI (shown once; add it to an authenticator app):")
    click.echo(str(answer["provisioning_uri"]))
    if qr:
        _write_private(Path(qr), base64.b64decode(str(answer["qr_png"])))
        console.print(f"QR code written to {qr} (mode 0600); delete it after enrolment")


@users_group.command("list")
@break_glass_option
@client_home_option
@json_option
@handle_errors
def users_list(break_glass: str | None, home: str | None, as_json: bool) -> None:
    """List users: roles, tenant, grants, status, last login, MFA.

    Needs a session with access_review (admin or compliance).

    Example:

        amzigo users list --json
    """
    rows = act(home_path(home), protocol.USERS_LIST, {}, break_glass)["users"]
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
    @client_home_option
    @handle_errors
    def command(name: str, break_glass: str | None, home: str | None) -> None:
        call(caller(home_path(home), break_glass), action, {"name": name})
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
@client_home_option
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
    who = caller(home_path(home), break_glass)
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
@client_home_option
@handle_errors
def users_passwd(
    name: str, password_stdin: bool, break_glass: str | None, home: str | None
) -> None:
    """Set a new password (admin reset; revokes the user's sessions).

    Needs a session with manage_users (admin).

    Example:

        printf '%s\\n' "$NEW" | amzigo users passwd alice --password-stdin
    """
    who = caller(home_path(home), break_glass)
    password = _read_password(password_stdin, confirm=True)
    call(who, protocol.USERS_PASSWD, {"name": name, "password": password})
    console.print(
        f"{name}: password changed (one-time: {name} must change it at first login; "
        "unused, it expires after 72 h)"
    )


# -- login / logout ---------------------------------------------------------------------------


@click.command("login")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--code", help="The current TOTP code (prompted if absent).")
@client_home_option
@handle_errors
def login_cmd(name: str, password_stdin: bool, code: str | None, home: str | None) -> None:
    """Log in with password + TOTP code; print `export AMZIGO_SESSION=...` for eval.

    A one-time password (set by an administrator or the demo; it expires after 72 h) or an
    expired one must be changed first: you are asked for a new password (twice; with
    --password-stdin, the next line of stdin) and the session is issued with it.

    Example:

        eval "$(amzigo login alice)"
    """
    from amzigo_lab.client.directory import Directory

    password = _read_password(password_stdin, confirm=False)
    otp = code or str(click.prompt("authenticator code", err=True))
    directory = Directory(home_path(home))
    try:
        session = directory.authenticate(name, password, otp)
    except protocol.identity_errors.PasswordChangeRequired as exc:
        session = _change_password_at_login(directory, exc, password_stdin)
    days, warn = session.password_days, session.password_warn
    if warn and days is not None:
        err_console.print(f"warning: your password expires in {days} day(s); change it soon")
    from amzigo_lab.cli.policy import notice_lines  # data policy 7: users are notified

    for line in notice_lines(session.policy):
        click.echo(line, err=True)  # stderr: stdout is for eval
    click.echo(f"export {SESSION_ENV}={session.token}")


def _change_password_at_login(directory: Any, exc: Any, password_stdin: bool) -> Any:
    """Ask for the new password (3 tries when typed) and finish the login with the ticket."""
    errors = protocol.identity_errors  # the gateway's refusals, re-raised by name
    err_console.print(f"{escape(str(exc))}")
    for attempt in range(1 if password_stdin else 3):
        if password_stdin:
            line = sys.stdin.readline()
            new = line[:-1] if line.endswith("\n") else line
            if not new:
                raise AmzigoError(
                    "a new password is required: give it on the next line of stdin"
                ) from None
        else:
            new = str(
                click.prompt("new password", hide_input=True, confirmation_prompt=True, err=True)
            )
        try:
            session = directory.change_password(exc.ticket, new)
        except errors.SessionExpired:
            raise
        except errors.IdentityError as err:  # the policy refused it: say why, try again
            if password_stdin or attempt == 2:
                raise
            err_console.print(f"{escape(str(err))}")
            continue
        err_console.print("password changed")
        return session
    raise AmzigoError("no new password was accepted; log in again")


@click.command("logout")
@client_home_option
@handle_errors
def logout_cmd(home: str | None) -> None:
    """End the session in $AMZIGO_SESSION.

    Example:

        amzigo logout && unset AMZIGO_SESSION
    """
    from amzigo_lab.client.directory import Directory

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
@client_home_option
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
    answer = act(
        home_path(home),
        protocol.ACCESS_REVIEW,
        {"today": dt.date.today().isoformat()},
        break_glass,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = (
        _write_private(out / os.path.basename(f["name"]), str(f["text"]).encode("utf-8"))
        for f in answer["files"]
    )
    n = int(answer["users"])
    if as_json:
        print_json({"csv": str(csv_path), "html": str(html_path), "users": n})
    else:
        console.print(f"access review of {n} users: {csv_path} and {html_path}")


# -- audit ------------------------------------------------------------------------------------


@click.group("audit")
def audit_group() -> None:
    """Verify and search the tamper-evident audit log."""


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


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
@client_home_option
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
    answer = act(
        home_path(home),
        protocol.AUDIT_SEARCH,
        {"actor": actor, "action": action, "resource": resource, "limit": limit,
         "since": _iso(_when(since)), "until": _iso(_when(until))},
    )  # fmt: skip
    rows: list[dict[str, Any]] = answer["events"]
    total = int(answer["total"])
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
    console.print(f"{total} event(s){' (last ' + str(limit) + ' shown)' if total > limit else ''}")


# -- alerts -----------------------------------------------------------------------------------


@click.command("alerts")
@click.option("--since", help="Only events from this UTC time (YYYY-MM-DD[THH:MM]).")
@click.option("--no-send", is_flag=True, help="List only; do not deliver to the sink.")
@break_glass_option
@client_home_option
@json_option
@handle_errors
def alerts_cmd(
    since: str | None, no_send: bool, break_glass: str | None, home: str | None, as_json: bool
) -> None:
    """Evaluate the alert rules over the audit log; deliver new alerts to the configured sink.

    Needs a session with read_audit (admin or compliance).

    Thresholds and the sink come from `[alerts]` in <home>/config.toml, e.g.
    denials_count = 5, denials_window_minutes = 10, volume_factor = 10,
    command = ["/usr/local/bin/page-oncall"] or webhook_url = "https://...".

    Example:

        amzigo alerts --json
    """
    answer = act(
        home_path(home),
        protocol.ALERTS_RUN,
        {"since": _iso(_when(since)), "send": not no_send},
        break_glass,
    )
    alerts: list[dict[str, Any]] = answer["alerts"]
    if as_json:
        print_json(alerts)
    elif not alerts:
        console.print("no alerts")
    else:
        for a in alerts:
            console.print(f"[red]{a['rule']}[/] {a['time']} {a['actor']}: {a['detail']}")
    for failure in answer["failures"]:
        err_console.print(f"error: alert delivery of {escape(failure)}")
    if answer.get("failed_sinks"):
        err_console.print(
            f"alert delivery failed for {', '.join(answer['failed_sinks'])}; the other sinks "
            "have their alerts; the failed ones are retried by the gateway and the next run"
        )
        sys.exit(1)


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
@client_home_option
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
    who = caller(home_path(home), break_glass)  # refused before anything is read
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
    answer = call(who, protocol.CREDENTIALS_SET, {"tenant": tenant, "values": values})
    names = [str(n) for n in answer["names"]]
    console.print(f"stored {len(names)} credential(s): {', '.join(names)}")


@credentials_group.command("list")
@break_glass_option
@client_home_option
@json_option
@handle_errors
def credentials_list(break_glass: str | None, home: str | None, as_json: bool) -> None:
    """List stored credentials: names and ages only (warns at 365 days).

    Needs a session with manage_users (admin).

    Example:

        amzigo credentials list --json
    """
    answer = act(home_path(home), protocol.CREDENTIALS_LIST, {}, break_glass)
    items: list[dict[str, Any]] = answer["credentials"]
    if as_json:
        print_json(items)
        return
    if not items:
        console.print("no SP-API credentials stored: `amzigo credentials set --help`")
    for c in items:
        flag = f"  [red]older than {answer['warn_age_days']} days: rotate[/]" if c["rotate"] else ""
        console.print(f"{c['name']:<40} {c['age_days']:>5} days{flag}")


COMMANDS = (
    users_group,
    login_cmd,
    logout_cmd,
    access_review_cmd,
    audit_group,
    alerts_cmd,
    credentials_group,
)
