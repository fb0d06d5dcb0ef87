"""TLS: a local CA, a localhost/127.0.0.1 certificate re-used across runs, TLS 1.2 minimum."""

from __future__ import annotations

import contextlib
import socket
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from amzigo_lab.sandbox import SandboxServer, ca_path, ensure_certificates


def test_certificates_persist_and_are_reused(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path)
    for key in (first.ca_key, first.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = first.server_cert.read_bytes()
    second = ensure_certificates(tmp_path)
    assert second.server_cert.read_bytes() == before
    assert ca_path(tmp_path) == tmp_path / "ca.pem" == first.ca_cert
    cert = x509.load_pem_x509_certificate(before)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_invalid_certificates_are_replaced(tmp_path: Path) -> None:
    paths = ensure_certificates(tmp_path)
    paths.server_cert.write_text("garbage")
    again = ensure_certificates(tmp_path)
    x509.load_pem_x509_certificate(again.server_cert.read_bytes())


def _handshake(server: SandboxServer, version: ssl.TLSVersion, host: str) -> str | None:
    context = ssl.create_default_context(cafile=str(server.ca_path))
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = version
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                return tls.version()
        except (ssl.SSLError, ConnectionResetError):
            return None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls12_accepted_tls11_refused(server: SandboxServer) -> None:
    assert _handshake(server, ssl.TLSVersion.TLSv1_2, "localhost") == "TLSv1.2"
    assert _handshake(server, ssl.TLSVersion.TLSv1_3, "127.0.0.1") == "TLSv1.3"
    assert _handshake(server, ssl.TLSVersion.TLSv1_1, "localhost") is None


def test_untrusted_client_rejects_certificate(server: SandboxServer) -> None:
    context = ssl.create_default_context()  # system CAs only
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")
