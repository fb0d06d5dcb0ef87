"""Signing keys (Ed25519) and per-segment keys wrapped by the master key (crypto-shredding)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amzigo_lab.governance.audit.errors import AuditKeyError

KEY_BYTES = 32
NONCE_BYTES = 12
_WRAP_AAD = b"amzigo-audit-segment-key/"


def public_key_path(signing_key_path: Path) -> Path:
    """Where the public key of `signing_key_path` is kept (same name plus '.pub')."""
    return signing_key_path.with_name(signing_key_path.name + ".pub")


def key_id(public: Ed25519PublicKey) -> str:
    """A short, public fingerprint of an Ed25519 public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600, failing if it already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the Ed25519 key at `path`, creating it (0600) and its '.pub' if absent."""
    pub_path = public_key_path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        new = Ed25519PrivateKey.generate()
        pem = new.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with contextlib.suppress(FileExistsError):  # another process won the race
            _write_private(path, pem)
    if path.stat().st_mode & 0o077:
        raise AuditKeyError(f"signing key {path} is readable by others; chmod 600 it")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise AuditKeyError(f"signing key {path} is not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"signing key {path} is not an Ed25519 key")
    pub_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if not pub_path.exists():
        tmp = pub_path.with_name(pub_path.name + f".tmp{os.getpid()}")
        tmp.write_bytes(pub_pem)
        os.replace(tmp, pub_path)
    elif pub_path.read_bytes() != pub_pem:
        raise AuditKeyError(f"{pub_path} does not match the signing key {path}")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Load a PEM Ed25519 public key (the trust anchor for verifying checkpoints)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError as exc:
        raise AuditKeyError(f"{path} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"{path} is not an Ed25519 public key")
    return key


def master_key(provider_result: bytes) -> bytes:
    """Check that a key provider returned a 256-bit key."""
    if not isinstance(provider_result, bytes) or len(provider_result) != KEY_BYTES:
        raise AuditKeyError("key_provider must return exactly 32 bytes (AES-256)")
    return provider_result


def kek_id(master: bytes) -> str:
    """A public fingerprint of the master key, to name the wrong key in errors."""
    return hmac.new(master, b"amzigo-audit-kek-id", hashlib.sha256).hexdigest()[:16]


def key_file(segment_path: Path) -> Path:
    """The sidecar file holding a segment's wrapped key."""
    return segment_path.with_suffix(".key")


def create_segment_key(segment_path: Path, segment_id: str, master: bytes) -> bytes:
    """Generate a random segment key, store it wrapped under `master`, return it."""
    seg_key = secrets.token_bytes(KEY_BYTES)
    nonce = secrets.token_bytes(NONCE_BYTES)
    wrapped = AESGCM(master).encrypt(nonce, seg_key, _WRAP_AAD + segment_id.encode())
    doc = {
        "format": 1,
        "segment": segment_id,
        "kek": kek_id(master),
        "nonce": nonce.hex(),
        "wrapped": wrapped.hex(),
    }
    _write_private(key_file(segment_path), json.dumps(doc, sort_keys=True).encode())
    return seg_key


def unwrap_segment_key(segment_path: Path, segment_id: str, master: bytes) -> bytes:
    """Read and unwrap a segment's key; AuditKeyError if missing, foreign or tampered."""
    path = key_file(segment_path)
    try:
        doc = json.loads(path.read_bytes())
        nonce, wrapped = bytes.fromhex(doc["nonce"]), bytes.fromhex(doc["wrapped"])
        if doc["segment"] != segment_id:
            raise AuditKeyError(f"key file of {segment_id} names another segment")
    except FileNotFoundError as exc:
        raise AuditKeyError(f"key of segment {segment_id} is missing (shredded?)") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditKeyError(f"key file of segment {segment_id} is malformed") from exc
    try:
        return AESGCM(master).decrypt(nonce, wrapped, _WRAP_AAD + segment_id.encode())
    except InvalidTag as exc:
        hint = "" if doc.get("kek") == kek_id(master) else " (wrapped under another master key)"
        raise AuditKeyError(f"key of segment {segment_id} cannot be unwrapped{hint}") from exc


def shred_segment_key(segment_path: Path) -> bool:
    """Overwrite a segment's wrapped key with random bytes, fsync, delete it; True if it existed."""
    path = key_file(segment_path)
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        os.pwrite(fd, secrets.token_bytes(max(size, 1)), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()
    return True
