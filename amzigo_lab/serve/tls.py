"""TLS for the dashboard and lab servers: a local certificate by default, TLS 1.2 minimum.

With no `--certfile/--keyfile`, a local CA and a certificate for `localhost`/`127.0.0.1` are
created (or re-used) under `<home>/state/serve-tls` by the sandbox's PKI helper; browsers and
clients trust `ca.pem` there. Plain HTTP is only allowed on a loopback address.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from amzigo_lab.errors import ConfigError

TLS_DIR = "serve-tls"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class TlsFiles:
    """The certificate chain and key a server presents, and the CA clients should trust."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None


def local_certificate(state_dir: Path) -> TlsFiles:
    """The local CA's localhost certificate under `state_dir/serve-tls` (created if needed)."""
    from amzigo_lab.sandbox.tls import ensure_certificates

    paths = ensure_certificates(state_dir / TLS_DIR)
    return TlsFiles(paths.server_cert, paths.server_key, paths.ca_cert)


def resolve(state_dir: Path, certfile: str | None, keyfile: str | None) -> TlsFiles:
    """The given certificate and key, or the local certificate when neither is given."""
    if bool(certfile) != bool(keyfile):
        raise ConfigError("give both --certfile and --keyfile (or neither, for a local cert)")
    if certfile and keyfile:
        files = TlsFiles(Path(certfile).expanduser(), Path(keyfile).expanduser())
        for p in (files.certfile, files.keyfile):
            if not p.is_file():
                raise ConfigError(f"TLS file {p} does not exist")
        return files
    return local_certificate(state_dir)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A server TLS context presenting `files`, refusing anything older than TLS 1.2."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.load_cert_chain(str(files.certfile), str(files.keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate {files.certfile}: {exc}") from None
    return context


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, tls: bool) -> None:
    """Refuse plain HTTP on anything but a loopback address."""
    if not tls and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve {host} without TLS: drop --no-tls, or bind to 127.0.0.1"
        )


#: OpenSSL alerts a client sends when it does not trust the server's certificate.
_REJECTED = ("CERTIFICATE_UNKNOWN", "UNKNOWN_CA", "BAD_CERTIFICATE")


class RejectedCertificateLog(logging.Filter):
    """Tornado logs "SSL Error ... certificate unknown" for every connection of a browser that
    does not trust the certificate (dozens per page). This filter keeps the first as a hint on
    what to do and then one line per `every` seconds with the count. Other TLS errors (an old
    protocol version, garbage) pass unchanged."""

    def __init__(
        self, hint: str, every: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.hint = hint
        self.every = every
        self.clock = clock
        self._last: float | None = None
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        """False to drop a repeat; the first of a period is rewritten as the hint."""
        message = record.getMessage()
        if not message.startswith("SSL Error") or not any(k in message for k in _REJECTED):
            return True
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            self._dropped += 1
            return False
        repeats = f"; {self._dropped} more since the last note" if self._dropped else ""
        record.msg = f"a client rejected the server certificate ({self.hint}){repeats}"
        record.args = ()
        self._last, self._dropped = now, 0
        return True


def quiet_rejected_certificates(files: TlsFiles) -> RejectedCertificateLog:
    """Install `RejectedCertificateLog` on tornado's logger; the filter."""
    hint = (
        f"browsers must trust {files.cafile}"
        if files.cafile
        else f"check the chain in {files.certfile}"
    )
    log_filter = RejectedCertificateLog(hint)
    logging.getLogger("tornado.general").addFilter(log_filter)
    return log_filter
