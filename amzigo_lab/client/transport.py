"""The Flight transport to a home's gateway, and starting one on demand (non-hardened homes).

`GatewayClient(address, token)` sends JSON actions and Arrow tickets with the token as a bearer
header and turns Flight errors back into the package's exceptions. `ensure_gateway(home)`
returns the address of a running gateway, starting one for a non-hardened home if none answers
(one per home: the gateway takes a lock, so racing starters leave exactly one running).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amzigo_lab.client import protocol
from amzigo_lab.client.protocol import GatewayUnavailable

if TYPE_CHECKING:  # pyarrow is imported by the first connection, not by `amzigo --help`
    import pyarrow as pa
    import pyarrow.flight as flight

# Arrow received over Flight/gRPC can sit at any byte offset; DuckDB scans registered Arrow
# through Acero, which otherwise warns on stderr for every such buffer. Copy them aligned
# instead (read once, at Acero's first use in this process).
os.environ.setdefault("ACERO_ALIGNMENT_HANDLING", "reallocate")

#: The CA certificate (PEM file) a client trusts for a `grpc+tls://` gateway (else the system's).
CA_ENV = "AMZIGO_GATEWAY_CA"

#: Seconds an on-demand gateway stays up with no request (env AMZIGO_GATEWAY_IDLE_EXIT).
IDLE_EXIT_ENV = "AMZIGO_GATEWAY_IDLE_EXIT"
DEFAULT_IDLE_EXIT = 900
START_TIMEOUT = 60.0
CALL_TIMEOUT = 600.0


class GatewayClient:
    """One connection to a gateway, authenticated by a bearer token (or none)."""

    def __init__(self, address: str, token: str | None = None) -> None:
        import pyarrow.flight as flight

        self.address = address
        self.token = token
        kwargs: dict[str, Any] = {}
        if address.startswith("grpc+tls://"):
            ca = os.environ.get(CA_ENV, "").strip()
            if ca:  # a private CA (the home's local one by default on the gateway's side)
                kwargs["tls_root_certs"] = Path(ca).expanduser().read_bytes()
        self._client = flight.FlightClient(address, **kwargs)
        self._bulk = protocol.bulk_socket_path(address)
        self._bulk_size = 0  # bytes of the last result fetched from the bulk socket

    def _options(self, timeout: float | None) -> flight.FlightCallOptions:
        import pyarrow.flight as flight

        headers = [(b"authorization", f"Bearer {self.token}".encode())] if self.token else []
        return flight.FlightCallOptions(headers=headers, timeout=timeout or CALL_TIMEOUT)

    def _translate(self, exc: flight.FlightError) -> Exception:
        import pyarrow.flight as flight

        if isinstance(exc, flight.FlightUnavailableError) and not exc.extra_info:
            return GatewayUnavailable(
                f"no amzigo gateway answers at {self.address}: start it with "
                "`amzigo gateway` (or check $AMZIGO_GATEWAY)"
            )
        return protocol.error_from(exc.extra_info, str(exc).split(". Detail:")[0])

    def action(
        self, name: str, payload: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Run one action; its JSON answer."""
        import pyarrow.flight as flight

        body = protocol.encode(payload or {})
        try:
            results = list(
                self._client.do_action(flight.Action(name, body), self._options(timeout))
            )
        except flight.FlightError as exc:
            raise self._translate(exc) from None
        return protocol.decode(results[0].body.to_pybytes()) if results else {}

    def table(self, ticket: dict[str, Any], *, timeout: float | None = None) -> pa.Table:
        """The whole Arrow result of a ticket. A local gateway may hand a large result over
        its bulk socket instead of the Flight stream (`gateway/bulk.py`)."""
        import pyarrow.flight as flight

        bulk = self._bulk is not None and self._bulk.exists()
        spare = None
        if bulk:
            ticket = {**ticket, "bulk": 1}
            if self._bulk_size:  # the last large result's size: get memory ready meanwhile
                from amzigo_lab.client.bulk import Spare

                spare = Spare(self._bulk_size)
        try:
            reader = self._client.do_get(
                flight.Ticket(protocol.encode(ticket)), self._options(timeout)
            )
            table = reader.read_all()
        except flight.FlightError as exc:
            raise self._translate(exc) from None
        key = (table.schema.metadata or {}).get(protocol.BULK_META_KEY)
        if not bulk or key is None or self._bulk is None:
            self._bulk_size = 0  # a small result: the next one need not get memory ready
            return table
        from amzigo_lab.client.bulk import fetch

        result = fetch(
            self._bulk, key.decode("ascii"), timeout=timeout or CALL_TIMEOUT, spare=spare
        )
        self._bulk_size = result.nbytes + 64 * 1024  # the IPC framing adds a little
        return result

    def health(self, timeout: float = 3.0) -> dict[str, Any]:
        """The gateway's liveness and readiness (GatewayUnavailable when none answers)."""
        return self.action(protocol.HEALTH, timeout=timeout)

    def close(self) -> None:
        """Close the connection."""
        self._client.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _answers(address: str, home: Path | None = None) -> bool:
    """Whether a gateway answers at `address` (for `home`: one serving this very folder, not
    an earlier home deleted and created again at the same path, which exits by itself)."""
    try:
        with GatewayClient(address) as client:
            health = client.health(timeout=2.0)
    except GatewayUnavailable:
        return False
    if home is None:
        return True
    served, here = str(health.get("home_id") or ""), protocol.home_identity(home)
    return not (served and here and served != here)


def hardened(home: Path) -> bool:
    """A hardened home (`amzigo init --service-user`): its marker exists, or the caller cannot
    even look (the home is another user's, mode 0700), or its socket directory exists."""
    marker = protocol.runtime_dir(home).parent / "hardened"
    try:
        if marker.exists():
            return True
    except PermissionError:
        return True
    return protocol.hardened_socket_dir(home) is not None


def ensure_gateway(home: Path, *, timeout: float = START_TIMEOUT) -> str:
    """The address of the home's running gateway, started on demand when allowed.

    $AMZIGO_GATEWAY or a hardened home: the gateway must already run (GatewayUnavailable says
    so). Otherwise a gateway for this home is started in the background (it exits after
    $AMZIGO_GATEWAY_IDLE_EXIT seconds without requests) and this waits until it answers.
    """
    address = protocol.default_address(home)
    if _answers(address, home):
        return address
    if os.environ.get(protocol.ADDRESS_ENV, "").strip():
        raise GatewayUnavailable(
            f"no amzigo gateway answers at {address} (from ${protocol.ADDRESS_ENV}): start it, "
            "or unset the variable to use the home's own gateway"
        )
    if hardened(home):
        raise GatewayUnavailable(
            f"no amzigo gateway answers at {address}; on a hardened home it runs as a service: "
            "ask the operator to start it (`systemctl start amzigo-gateway`)"
        )
    if not (home / "catalog.sqlite").exists():
        from amzigo_lab.errors import ConfigError

        raise ConfigError(
            f"no amzigo home at {home}: run `amzigo demo --no-serve` or `amzigo init`, or set "
            "AMZIGO_HOME"
        )
    runtime = protocol.runtime_dir(home)
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    idle = os.environ.get(IDLE_EXIT_ENV, str(DEFAULT_IDLE_EXIT))
    command = [sys.executable, "-m", "amzigo_lab.gateway", "--home", str(home)]
    command += ["--idle-exit", idle, "--on-demand"]
    with open(runtime / "gateway.log", "ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(address, home):
            return address
        if proc.poll() is not None and proc.returncode != 0 and not _answers(address, home):
            # lost a start race (another gateway holds the lock) or failed: keep polling a
            # little for the winner, else report the log's last line
            time.sleep(0.2)
            if _answers(address, home):
                return address
            if proc.returncode != 3:  # 3 = another gateway holds the lock
                raise GatewayUnavailable(
                    f"the gateway for {home} did not start: {_last_line(runtime / 'gateway.log')}"
                )
        time.sleep(0.05)
    raise GatewayUnavailable(f"the gateway for {home} did not answer within {timeout:.0f} s")


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1][-400:] if lines else "(empty log)"
