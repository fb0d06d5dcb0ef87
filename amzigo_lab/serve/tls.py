"""TLS for the dashboard and lab servers: a local certificate by default, TLS 1.2 minimum.

With no `--certfile/--keyfile`, a local CA and a certificate for `localhost`/`127.0.0.1` are
created (or re-used) under `<home>/state/serve-tls` by the sandbox's PKI helper; browsers and
clients trust `ca.pem` there. Plain HTTP is only allowed on a loopback address.
"""

from __future__ import annotations

import ipaddress
import ssl
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
