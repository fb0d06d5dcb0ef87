"""Local certificate authority and server certificate for the sandbox's HTTPS endpoint."""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
SERVER_HOSTS = ("localhost",)
SERVER_IPS = ("127.0.0.1",)
_VALIDITY = timedelta(days=825)
_RENEW_BEFORE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class CertPaths:
    """Locations of the PEM files of the sandbox PKI."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def ca_path(state_dir: Path | str) -> Path:
    """Path of the CA certificate clients should trust (``ssl.create_default_context(cafile=)``)."""
    return Path(state_dir) / CA_CERT_FILE


def _paths(state_dir: Path) -> CertPaths:
    """File locations inside ``state_dir``."""
    return CertPaths(
        ca_cert=state_dir / CA_CERT_FILE,
        ca_key=state_dir / CA_KEY_FILE,
        server_cert=state_dir / SERVER_CERT_FILE,
        server_key=state_dir / SERVER_KEY_FILE,
    )


def _write(path: Path, data: bytes, private: bool) -> None:
    """Write ``data`` atomically; private files get mode 0600 from creation."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(tmp, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    if private:
        os.chmod(path, 0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Serialize ``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _is_valid(paths: CertPaths, now: datetime) -> bool:
    """Whether existing files form a usable, unexpired chain for localhost/127.0.0.1."""
    try:
        ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        cert = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.server_key.read_bytes(), password=None)
    except (OSError, ValueError):
        return False
    if cert.issuer != ca.subject or not isinstance(key, ec.EllipticCurvePrivateKey):
        return False
    if cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return False
    for certificate in (ca, cert):
        if certificate.not_valid_after_utc - _RENEW_BEFORE < now:
            return False
    try:
        ca_public = ca.public_key()
        assert isinstance(ca_public, ec.EllipticCurvePublicKey)
        hash_algorithm = cert.signature_hash_algorithm
        assert hash_algorithm is not None
        ca_public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hash_algorithm))
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except Exception:
        return False
    names = set(san.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return set(SERVER_HOSTS) <= names and set(SERVER_IPS) <= ips


def _issue(paths: CertPaths, now: datetime) -> None:
    """Create a new CA and a server certificate signed by it."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amzigo sandbox local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName(h) for h in SERVER_HOSTS]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    )
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(paths.ca_key, _key_pem(ca_key), private=True)
    _write(paths.server_key, _key_pem(server_key), private=True)
    _write(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(paths.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), private=False)


def ensure_certificates(state_dir: Path | str) -> CertPaths:
    """Create (or re-use, if present and valid) the CA and server certificate in ``state_dir``."""
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = _paths(directory)
    now = datetime.now(UTC)
    if not _is_valid(paths, now):
        _issue(paths, now)
    return paths


def server_context(paths: CertPaths) -> ssl.SSLContext:
    """Server-side TLS context (TLS 1.2 minimum) for the sandbox certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.server_cert, paths.server_key)
    return context


def client_context(state_dir: Path | str) -> ssl.SSLContext:
    """Client-side TLS context trusting only the sandbox CA."""
    return ssl.create_default_context(cafile=str(ca_path(state_dir)))
