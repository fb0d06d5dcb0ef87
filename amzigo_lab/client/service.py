"""Service tokens for report runs and dashboard kernels, minted by the gateway.

The process that starts a run (the CLI, the scheduler, the dashboard server: processes of the
service account on a hardened home) presents the gateway's operator credential and receives a
token bound to one service, one tenant and the run's purposes; the kernel gets only that token.
`GatewayTableSource` (analysis) and the dashboard read through it; nothing else is needed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amzigo_lab.client import protocol
from amzigo_lab.client.transport import GatewayClient, ensure_gateway

OPERATOR_TOKEN_FILE = "operator.token"  # noqa: S105 - a file name


def operator_token(home: Path) -> str:
    """The running gateway's operator credential (readable by the service account only)."""
    path = protocol.runtime_dir(home) / OPERATOR_TOKEN_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise protocol.GatewayUnavailable(
            f"no gateway runs for {home} (no operator credential): start one with `amzigo gateway`"
        ) from None
    except PermissionError:
        from amzigo_lab.errors import AccessDenied

        raise AccessDenied(
            f"only the service account of {home} may use the operator credential"
        ) from None


#: The address of each home's gateway, once found (looked up again when it stops answering).
_ADDRESSES: dict[Path, str] = {}


def gateway_of(home: Path) -> str:
    """The address of the home's gateway (started on demand where allowed), remembered: the
    servers call the gateway on every request and need not ask `health` first each time."""
    address = _ADDRESSES.get(home)
    if address is None:
        address = _ADDRESSES[home] = ensure_gateway(home)
    return address


def home_action(
    home: Path,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    operator: bool = False,
) -> dict[str, Any]:
    """One action at the home's gateway, as `token` or (`operator`) with the operator
    credential. If the remembered gateway no longer answers (it restarted or exited idle), the
    address is looked up again, starting a gateway where allowed, and the action sent once
    more: an unanswered action never ran."""
    for attempt in (1, 2):
        address = gateway_of(home)  # first: a gateway started now writes the credential
        bearer = operator_token(home) if operator else token
        try:
            with GatewayClient(address, bearer) as client:
                return client.action(name, payload)
        except protocol.GatewayUnavailable:
            _ADDRESSES.pop(home, None)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ServiceToken:
    """A minted token and where to use it."""

    address: str
    token: str
    expires: str


def mint(
    home: Path,
    actor: str,
    tenant: str,
    purposes: list[str],
    ttl_s: float = 900.0,
    *,
    require_data: bool = True,
) -> ServiceToken:
    """A new service token for `actor` on `tenant` (UnknownTenant when it has no data, unless
    `require_data` is False: a seller's dashboard before the first ingest)."""
    request = {
        "actor": actor,
        "tenant": tenant,
        "purposes": purposes,
        "ttl_s": ttl_s,
        "require_data": require_data,
    }
    answer = home_action(home, protocol.SERVICE_MINT, request, operator=True)
    return ServiceToken(gateway_of(home), str(answer["token"]), str(answer["expires"]))


def revoke(address: str, token: str) -> None:
    """Revoke a service token (the token itself may ask); quiet if the gateway is gone."""
    with contextlib.suppress(protocol.GatewayError), GatewayClient(address, token) as client:
        client.action(protocol.SERVICE_REVOKE, {"token": token})
