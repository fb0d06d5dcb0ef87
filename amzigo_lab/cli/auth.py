"""How administrative commands authenticate: the caller's login session, or break-glass.

Every administrative command acts as a person. $AMZIGO_SESSION (from `amzigo login NAME`) is
presented to the home's gateway, which checks the session's roles against the policy (a denial
is audited naming the user) and performs the action (`act`: `users ...`, `lake ls`, `hold ...`,
`dsr ...`; see `amzigo_lab.gateway.commands`). `authorize` (`admin.authorize`) only answers
with the acting user, for a command that must run in-process; the CLI's own commands no longer
need it. This module, like every client command's, never imports the home's packages.

The service account may instead pass `--break-glass REASON` where a command offers it: the CLI
presents the gateway's operator credential (readable only by the account that runs the
gateway), the gateway records an `admin.break_glass` event with the reason as actor
`break-glass:<os user>`, and the `break_glass` alert rule fires. Compliance commands never take
break-glass: they need a named person with the compliance role.

Neither a session nor --break-glass: `NotLoggedIn` (exit 2), before anything is opened or read.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from amzigo_lab.client import protocol
from amzigo_lab.client.service import operator_token
from amzigo_lab.client.transport import GatewayClient, ensure_gateway, hardened
from amzigo_lab.client.workbench import SESSION_ENV
from amzigo_lab.errors import AccessDenied, AmzigoError, ConfigError

F = TypeVar("F", bound=Callable[..., Any])
NOT_LOGGED_IN = f"log in first: amzigo login NAME, then export {SESSION_ENV}=..."


class NotLoggedIn(AccessDenied):
    """An administrative command ran without a session (and without --break-glass)."""


def break_glass_option(func: F) -> F:
    """Add `--break-glass REASON` (service account only; audited; raises an alert)."""
    return click.option(
        "--break-glass",
        "break_glass",
        metavar="REASON",
        default=None,
        help="Service account only, when no administrator can log in (e.g. the first admin): "
        "act as break-glass:<os user>; audited with REASON and raises an alert.",
    )(func)


@dataclass(frozen=True)
class Caller:
    """Where and as whom an administrative command talks to the gateway."""

    address: str
    token: str = field(repr=False)
    extra: dict[str, str] = field(default_factory=dict)


def caller(home: Path, break_glass: str | None = None) -> Caller:
    """The session's (or the break-glass operator's) credentials for the home's gateway."""
    token = os.environ.get(SESSION_ENV, "").strip()
    if break_glass is not None:
        reason = " ".join(break_glass.split())
        if not reason:
            raise AmzigoError("--break-glass needs a reason (the incident or ticket reference)")
        if token:
            raise AmzigoError(
                f"--break-glass is for when nobody can log in: unset {SESSION_ENV} or drop "
                "--break-glass"
            )
        address = ensure_gateway(home)
        extra = {"break_glass": reason, "os_user": getpass.getuser()}
        return Caller(address, operator_token(home), extra)
    if not token:
        _require_home(home)  # "no home here" says more than "log in first"
        raise NotLoggedIn(NOT_LOGGED_IN)
    return Caller(ensure_gateway(home), token)


def _require_home(home: Path) -> None:
    """A ConfigError when `home` is plainly no home (as `ensure_gateway` would say)."""
    if os.environ.get(protocol.ADDRESS_ENV, "").strip() or hardened(home):
        return
    if not (home / "catalog.sqlite").exists():
        raise ConfigError(f"no amzigo home at {home}: run `amzigo init` (or set AMZIGO_HOME)")


def call(who: Caller, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run one administrative gateway action as `who`."""
    with GatewayClient(who.address, who.token) as client:
        return client.action(action, {**payload, **who.extra})


def authorize(
    home: Path,
    action: str,
    *,
    right: str | None = None,
    role: str | None = None,
    break_glass: str | None = None,
) -> str:
    """The acting user for a command that runs in-process: the session's user holding `right`
    (or `role`), or `break-glass:<os user>`; AccessDenied (audited by the gateway) otherwise."""
    body: dict[str, Any] = {"action": action}
    if role is not None:
        body["role"] = role
    else:
        body["right"] = right
    answer = call(caller(home, break_glass), protocol.ADMIN_AUTHORIZE, body)
    return str(answer["user"])


def act(
    home: Path, action: str, payload: dict[str, Any], break_glass: str | None = None
) -> dict[str, Any]:
    """Run a client command's gateway action as the caller's session (or break-glass)."""
    return call(caller(home, break_glass), action, payload)
