"""Running a gateway: one per home (a lock), a Unix socket, an operator credential, a JSON log.

`serve(settings)` blocks until SIGTERM/SIGINT, the `shutdown` action, or (for a gateway started
on demand) `idle_exit` seconds without a request; then it shuts down gracefully: new calls are
refused, running ones finish, the governed sessions and the audit log are closed.

Files in `<home>/state/gateway/` (0700): `gateway.lock` (flock + pid), `operator.token` (0600:
what local administrative commands present; only the service account can read it on a hardened
home), `gateway.log` (the on-demand gateway's output). The socket is `gateway.sock` beside them
(or a short path under the temp dir for deep homes), mode 0600. On a hardened home (see
`amzigo_lab.hardening`) the gateway runs as the service user only and its socket lives outside
the home, in `/run/amzigo/<home digest>/` (group: the kernel user's), mode 0660.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

from amzigo_lab.client import protocol
from amzigo_lab.client.protocol import GatewayError
from amzigo_lab.client.service import OPERATOR_TOKEN_FILE
from amzigo_lab.errors import AmzigoError
from amzigo_lab.governance.audit.errors import AuditError

EXIT_LOCKED = 3
#: The unwrap endpoint (key service for Spark and Dask): this machine only, any free port.
DEFAULT_UNWRAP_LISTEN = "127.0.0.1:0"
REAP_EVERY = 30.0


class GatewayLocked(GatewayError):
    """Another gateway already serves this home."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event and the event's fields (never secrets)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "pid": record.process,
        }
        entry.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(stream: IO[str] | None = None) -> None:
    """Structured log on stderr (or `stream`)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("amzigo.gateway")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """Hold the home's gateway lock (GatewayLocked if another gateway has it)."""
    runtime = protocol.runtime_dir(home)
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = runtime / "gateway.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise GatewayLocked(
                f"another gateway already serves {home} (pid {pid}); stop it with "
                "`amzigo gateway stop` or use it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def lock_holder(home: Path) -> int | None:
    """The pid of the gateway holding the home's lock, or None."""
    path = protocol.runtime_dir(home) / "gateway.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _write_secret(path: Path, value: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
    os.replace(tmp, path)


def serve(
    settings: Any,
    *,
    idle_exit: float = 0.0,
    on_demand: bool = False,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    listen: str = "",
    tls_files: tuple[Path, Path] | None = None,
    unwrap_listen: str = DEFAULT_UNWRAP_LISTEN,
    unwrap_tls: Any = None,
) -> int:
    """Serve the home until stopped; the exit status (0, or EXIT_LOCKED).

    `listen` (HOST:PORT) also serves the gateway over TLS on TCP, presenting `tls_files`
    (certificate chain, key) to clients beyond this machine. `unwrap_listen` (HOST:PORT, port
    0: any free one) is where the key service for distributed reads listens (HTTPS), with
    `unwrap_tls` (`amzigo_lab.serve.tls.TlsFiles`; default: the home's local CA's localhost
    certificate); "" serves none."""
    from amzigo_lab.gateway.bulk import BulkResults
    from amzigo_lab.gateway.server import GatewayServer, TlsFront
    from amzigo_lab.hardening import SOCKET_MODE, check_gateway_user

    log = logging.getLogger("amzigo.gateway")
    home = settings.home
    check_gateway_user(home)  # a hardened home: its service user only (HardeningError)
    hardened_dir = protocol.hardened_socket_dir(home)
    try:
        lock = home_lock(home)
        lock.__enter__()
    except GatewayLocked as exc:
        log.error("locked", extra={"fields": {"message": str(exc)}})
        return EXIT_LOCKED
    sock = protocol.socket_path(home)
    runtime = protocol.runtime_dir(home)
    token_file = runtime / OPERATOR_TOKEN_FILE
    server: GatewayServer | None = None
    front: Any = None
    unwrap: Any = None
    owned: dict[Path, tuple[int, int] | None] = {}  # files this gateway made, by identity
    try:
        sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()  # stale: we hold the lock, so nobody else serves it
        secret = secrets.token_urlsafe(32)
        address = f"grpc+unix://{sock}"
        # the credential first: the server answers `health` as soon as it is built, and a
        # client that saw it answer (ensure_gateway) may read the credential at once
        _write_secret(token_file, secret)
        owned[token_file] = _file_id(token_file)
        old_umask = os.umask(0o077)
        try:
            server = GatewayServer(settings, address, operator_token=secret)
        except AuditError as exc:  # a damaged log: say so to the alert sinks, then refuse
            from amzigo_lab.governance.alerting import alert_unopenable_log

            alert_unopenable_log(settings, exc)
            raise
        finally:
            os.umask(old_umask)
        owned[sock] = _file_id(sock)
        if hardened_dir is not None:  # the kernel user's group may connect (setgid directory)
            os.chmod(sock, SOCKET_MODE)
        bulk_path = protocol.bulk_socket_path(address)
        if bulk_path is not None:  # large results to local clients, same permissions
            server.bulk = BulkResults(
                bulk_path, mode=SOCKET_MODE if hardened_dir is not None else None
            )
        if listen:
            if tls_files is None:
                raise GatewayError("--listen needs a TLS certificate and key")
            host, _, port = listen.rpartition(":")
            location = f"grpc+tls://{host or '127.0.0.1'}:{int(port)}"
            front = TlsFront(server, location, tls_files[0].read_bytes(), tls_files[1].read_bytes())
            log.info("listening", extra={"fields": {"address": location}})
        if unwrap_listen:
            unwrap = _start_unwrap(server, settings, unwrap_listen, unwrap_tls)
        server.scale.settle()  # plans waiting for the endpoint go on (with it, or refused)
        stop = stop or threading.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        log.info(
            "ready",
            extra={"fields": {"address": address, "home": str(home), "on_demand": on_demand}},
        )
        if ready is not None:
            ready.set()
        last_reap = time.monotonic()
        while not stop.wait(0.5) and not server.stopping.is_set():
            now = time.monotonic()
            if idle_exit and now - server.last_request > idle_exit:
                log.info("idle_exit", extra={"fields": {"idle_s": idle_exit}})
                break
            if on_demand and protocol.home_identity(home) != server.home_id:
                log.info("home_gone", extra={"fields": {}})  # deleted, or replaced by another
                _leave_without_writing()
            server.tick_alerts()  # cheap unless due (interval, security event, retry)
            if now - last_reap > REAP_EVERY:
                server.reap(max_idle=idle_exit or 3600.0)
                server.tick_audit()  # time-based checkpoints (audit.checkpoint_every_seconds)
                last_reap = now
        return 0
    finally:
        _unlink_own(token_file, owned)
        if front is not None:
            front.shutdown()
        if unwrap is not None:
            unwrap.close()
        if server is not None:
            server.stop()
        _unlink_own(sock, owned)
        lock.__exit__(None, None, None)


def _leave_without_writing() -> NoReturn:
    """End an on-demand gateway whose home was deleted or created again at the same path, at
    once and writing nothing: every path a graceful stop writes (the final audit checkpoint,
    the catalog, the credential and socket it removes) may now belong to the new home and its
    own gateway, and even gRPC's own shutdown unlinks the Unix socket path, which the new
    gateway may already serve. The kernel releases the lock and every open file."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def _unlink_own(path: Path, owned: dict[Path, tuple[int, int] | None]) -> None:
    """Remove `path` only if it is still the file this gateway made there (a gateway started
    for a home created again at the same path may have replaced it: its socket and credential
    are not ours to remove)."""
    if path in owned and owned[path] is not None and _file_id(path) == owned[path]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _start_unwrap(server: Any, settings: Any, listen: str, tls: Any) -> Any:
    """Start the unwrap endpoint; None (logged, distributed reads refused) if it cannot."""
    from amzigo_lab.gateway import unwrap_endpoint
    from amzigo_lab.serve.tls import local_certificate

    log = logging.getLogger("amzigo.gateway")
    try:
        endpoint = unwrap_endpoint.start(
            server, listen, tls or local_certificate(settings.state_dir)
        )
    except (OSError, ValueError, AmzigoError) as exc:
        log.error(
            "unwrap_endpoint_failed",
            extra={"fields": {"listen": listen, "error": type(exc).__name__, "message": str(exc)}},
        )
        return None
    server.scale.attach_endpoint(endpoint.url, endpoint.ca_pem)
    log.info("unwrap_listening", extra={"fields": {"url": endpoint.url}})
    return endpoint
