"""Service tokens for report runs and dashboard kernels, minted by the gateway.

The process that starts a run (the CLI, the scheduler, the dashboard server: processes of the
service account on a hardened home) presents the gateway's operator credential and receives a
token bound to one service, one tenant and the run's purposes; the kernel gets only that token.
`GatewayTableSource` (analysis) and the dashboard read through it; nothing else is needed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    address = ensure_gateway(home)
    with GatewayClient(address, operator_token(home)) as client:
        answer = client.action(
            protocol.SERVICE_MINT,
            {
                "actor": actor,
                "tenant": tenant,
                "purposes": purposes,
                "ttl_s": ttl_s,
                "require_data": require_data,
            },
        )
    return ServiceToken(address, str(answer["token"]), str(answer["expires"]))


def revoke(address: str, token: str) -> None:
    """Revoke a service token (the token itself may ask); quiet if the gateway is gone."""
    with contextlib.suppress(protocol.GatewayError), GatewayClient(address, token) as client:
        client.action(protocol.SERVICE_REVOKE, {"token": token})


@contextlib.contextmanager
def service_token(
    home: Path, actor: str, tenant: str, purposes: list[str], ttl_s: float = 900.0
) -> Iterator[ServiceToken]:
    """A service token valid for the `with` block, revoked when it ends."""
    minted = mint(home, actor, tenant, purposes, ttl_s)
    try:
        yield minted
    finally:
        revoke(minted.address, minted.token)
