"""`amzigo users add|list|disable|enable|unlock|grant|passwd`: gateway clients (manage_users;
`users list` needs access_review). See `amzigo_lab.cli.governance` for who may run what."""

from __future__ import annotations

import base64
from pathlib import Path

import click
from rich.table import Table

from amzigo_lab.cli.auth import act, break_glass_option, call, caller
from amzigo_lab.cli.common import (
    client_home_option,
    console,
    handle_errors,
    json_option,
    print_json,
    read_password,
    write_private,
)
from amzigo_lab.client import protocol
from amzigo_lab.client.workbench import home_path


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
    password = read_password(password_stdin, confirm=True)
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
        write_private(Path(qr), base64.b64decode(str(answer["qr_png"])))
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
    password = read_password(password_stdin, confirm=True)
    call(who, protocol.USERS_PASSWD, {"name": name, "password": password})
    console.print(
        f"{name}: password changed (one-time: {name} must change it at first login; "
        "unused, it expires after 72 h)"
    )
