"""`amzigo login|logout`, and the list of the administrative commands: gateway clients.

Who may run what: administrative commands act as the user of $AMZIGO_SESSION (from `amzigo
login`), whose roles must hold the right the command needs (manage_users, read_audit,
access_review); the gateway checks it, audits a denial naming the user, and runs the command
on the home: these modules never open the home themselves. The service account may use
`--break-glass REASON` instead (see `amzigo_lab.cli.auth`). Passwords and credentials are read
from stdin, a hidden prompt or the environment, never from argv. The commands, by module:
`users` (users ...), `access_review` (access-review), `audit_client` (audit search, alerts),
`credentials` (credentials ...) and this one (login, logout). `amzigo audit verify` is an
operator command (`amzigo_lab.cli.audit`): it must work when the log is too damaged for the
gateway to open it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from rich.markup import escape

from amzigo_lab.cli.access_review import access_review_cmd
from amzigo_lab.cli.audit_client import alerts_cmd, audit_group
from amzigo_lab.cli.common import (
    client_home_option,
    console,
    err_console,
    handle_errors,
    read_password,
)
from amzigo_lab.cli.credentials import credentials_group
from amzigo_lab.cli.users import users_group
from amzigo_lab.client import protocol
from amzigo_lab.client.workbench import SESSION_ENV, home_path
from amzigo_lab.errors import AmzigoError

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

    password = read_password(password_stdin, confirm=False)
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


COMMANDS = (
    users_group,
    login_cmd,
    logout_cmd,
    access_review_cmd,
    audit_group,
    alerts_cmd,
    credentials_group,
)
