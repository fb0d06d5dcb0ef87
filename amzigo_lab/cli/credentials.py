"""`amzigo credentials set|list`: the SP-API credentials, through the gateway (manage_users);
values from stdin or the environment, never argv; listed by name and age only."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from amzigo_lab.cli.auth import act, break_glass_option, call, caller
from amzigo_lab.cli.common import (
    client_home_option,
    console,
    handle_errors,
    json_option,
    print_json,
)
from amzigo_lab.client import protocol
from amzigo_lab.client.workbench import home_path
from amzigo_lab.errors import AmzigoError

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
