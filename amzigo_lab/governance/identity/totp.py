"""TOTP (RFC 6238) secrets, single-use code checks and AES-256-GCM sealing of secrets at rest."""

from __future__ import annotations

import datetime as dt
import hmac
import os
from collections.abc import Callable

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import IdentityError

ISSUER = "amzigo-lab"
STEP_SECONDS = 30
VALID_WINDOW = 1  # accept the previous and the next step too (clock drift)
_FORMAT = b"\x01"  # version byte of a sealed secret: 1 = AES-256-GCM, 12-byte nonce

KeyProvider = Callable[[], bytes]


def new_secret() -> str:
    """Return a fresh base32 TOTP secret (160 bits from the OS CSPRNG)."""
    return pyotp.random_base32()


def provisioning_uri(user_id: str, secret: str) -> str:
    """Return the otpauth:// URI an authenticator app imports."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=user_id, issuer_name=ISSUER
    )


def time_step(when: dt.datetime) -> int:
    """Return the TOTP time step (30 s counter) that contains `when`."""
    return int(when.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, when: dt.datetime, last_step: int | None) -> int | None:
    """Return the step `code` is valid for if it is newer than `last_step`, else None.

    Every step of the window is compared (constant time) so timing does not reveal which
    matched; a code for `last_step` or earlier is refused, which makes codes single use.
    """
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    candidate = "".join(code.split())
    current = time_step(when)
    accepted: int | None = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        expected = totp.generate_otp(step)
        if hmac.compare_digest(expected.encode(), candidate.encode()) and (
            last_step is None or step > last_step
        ):
            accepted = step
    return accepted


def _key(key_provider: KeyProvider) -> bytes:
    """Fetch the sealing key and check it is 32 bytes (AES-256)."""
    key = key_provider()
    if not isinstance(key, bytes) or len(key) != 32:
        raise IdentityError(
            "the identity key provider must return exactly 32 bytes (an AES-256 key); "
            "check the master key configuration"
        )
    return key


def seal_secret(key_provider: KeyProvider, user_id: str, secret: str) -> bytes:
    """Encrypt `secret` with AES-256-GCM, bound to `user_id` as associated data."""
    nonce = os.urandom(12)
    sealed = AESGCM(_key(key_provider)).encrypt(nonce, secret.encode(), user_id.encode())
    return _FORMAT + nonce + sealed


def open_secret(key_provider: KeyProvider, user_id: str, blob: bytes) -> str:
    """Decrypt a secret sealed by `seal_secret` for `user_id`; raise IdentityError if it fails."""
    if blob[:1] != _FORMAT:
        raise IdentityError(f"unknown TOTP secret format for {user_id!r}; re-enrol MFA")
    try:
        plain = AESGCM(_key(key_provider)).decrypt(blob[1:13], blob[13:], user_id.encode())
    except InvalidTag:
        raise IdentityError(
            f"cannot decrypt the TOTP secret of {user_id!r}: wrong key or tampered row; "
            "check the key provider, or re-enrol MFA for this user"
        ) from None
    return plain.decode()
