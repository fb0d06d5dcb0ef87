"""A KMS-style key provider: the master key is kept only encrypted by a KMS key (envelope).

`<home>/keys/master.kms` holds the master key's ciphertext under a KMS key (`kms_key_id`); each
open asks the KMS to decrypt it. The KMS key itself never leaves the KMS: clients can only ask
it to encrypt or decrypt by key id (`KmsClient`), exactly the calls a cloud KMS offers (AWS
KMS Encrypt/Decrypt, GCP Cloud KMS, Azure Key Vault wrapKey/unwrapKey). Losing access to the
KMS key makes the lake unreadable, which is the point (revocation from the KMS console).

`LocalKms` is a local test double that behaves like one: its keys live in its own folder (the
"service side", readable only through `encrypt`/`decrypt`), every call is recorded, a disabled
key refuses to decrypt, and ciphertexts are bound to the key id and an encryption context.
A cloud client plugs in by implementing `KmsClient` and returning it from `kms_client`.

    key_provider = "kms"
    kms_key_id = "kms-0123456789abcdef"
    kms_endpoint = "local:/srv/kms-double"     # the only client shipped
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amzigo_lab.errors import ConfigError, KeyProviderError
from amzigo_lab.lake.keys import KEY_BYTES, FileKeyProvider, MasterKey

if TYPE_CHECKING:
    from amzigo_lab.config import Settings

#: The encryption context every master-key ciphertext is bound to.
CONTEXT = {"purpose": "amzigo-lab master key"}
_MAGIC = b"LKMS1"


class KmsClient(Protocol):
    """What amzigo needs of a KMS: encrypt and decrypt small blobs under a remote key id."""

    description: str

    def encrypt(self, key_id: str, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        """Ciphertext of `plaintext` under the KMS key `key_id`, bound to `context`."""
        ...

    def decrypt(self, key_id: str, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """The plaintext; KeyProviderError if the key is unknown, disabled or does not match."""
        ...


def _aad(key_id: str, context: Mapping[str, str]) -> bytes:
    return json.dumps([key_id, dict(sorted(context.items()))], separators=(",", ":")).encode()


class LocalKms:
    """A local stand-in for a cloud KMS (tests, demos, air-gapped trials; not for production:
    its keys are files on the same machine)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self.description = f"local KMS double at {root}"
        self.calls: list[tuple[str, str]] = []  # (operation, key id), like a KMS's audit trail

    def create_key(self) -> str:
        """A new KMS key; only its id is returned."""
        key_id = "kms-" + secrets.token_hex(8)
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._path(key_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"enabled": True, "key": secrets.token_bytes(32).hex()}, fh)
        self.calls.append(("CreateKey", key_id))
        return key_id

    def disable_key(self, key_id: str) -> None:
        """Disable a key (decrypt is refused from now on)."""
        data = self._load(key_id)
        data["enabled"] = False
        self._path(key_id).write_text(json.dumps(data), encoding="utf-8")
        self.calls.append(("DisableKey", key_id))

    def _path(self, key_id: str) -> Path:
        if not key_id.replace("-", "").isalnum():
            raise KeyProviderError(f"invalid KMS key id {key_id!r}")
        return self._root / f"{key_id}.json"

    def _load(self, key_id: str) -> dict[str, object]:
        try:
            data: dict[str, object] = json.loads(self._path(key_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise KeyProviderError(f"{self.description}: no KMS key {key_id}") from None
        return data

    def _key(self, key_id: str) -> bytes:
        data = self._load(key_id)
        if not data.get("enabled"):
            raise KeyProviderError(f"{self.description}: KMS key {key_id} is disabled")
        return bytes.fromhex(str(data["key"]))

    def encrypt(self, key_id: str, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        """Encrypt under the KMS key (AES-256-GCM, bound to the key id and context)."""
        self.calls.append(("Encrypt", key_id))
        nonce = secrets.token_bytes(12)
        return (
            _MAGIC
            + nonce
            + AESGCM(self._key(key_id)).encrypt(nonce, plaintext, _aad(key_id, context))
        )

    def decrypt(self, key_id: str, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """Decrypt a ciphertext of `encrypt` (same key id and context)."""
        self.calls.append(("Decrypt", key_id))
        key = self._key(key_id)
        if not ciphertext.startswith(_MAGIC):
            raise KeyProviderError(f"{self.description}: not a ciphertext of this KMS")
        body = ciphertext[len(_MAGIC) :]
        try:
            return AESGCM(key).decrypt(body[:12], body[12:], _aad(key_id, context))
        except (InvalidTag, ValueError):
            raise KeyProviderError(
                f"{self.description}: KMS key {key_id} cannot decrypt this ciphertext "
                "(another key, or the encryption context differs)"
            ) from None


class KmsKeyProvider(FileKeyProvider):
    """The master key as a KMS ciphertext in a 0600 file; rotation stages and promotes files
    like the file provider (the new master key is encrypted by the same KMS key)."""

    def __init__(self, client: KmsClient, kms_key_id: str, path: Path) -> None:
        super().__init__(path)
        self.client = client
        self.kms_key_id = kms_key_id
        self.description = f"KMS key {kms_key_id} ({client.description}; ciphertext {path})"

    def _dump(self, key: MasterKey) -> bytes:
        blob = self.client.encrypt(self.kms_key_id, key.secret, CONTEXT)
        payload = {
            "version": 1,
            "key_id": key.key_id,
            "kms_key_id": self.kms_key_id,
            "ciphertext": base64.b64encode(blob).decode(),
        }
        return json.dumps(payload).encode()

    def _parse(self, raw: bytes, where: str) -> MasterKey:
        try:
            data = json.loads(raw)
            blob = base64.b64decode(data["ciphertext"], validate=True)
            kms_key_id = str(data["kms_key_id"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise KeyProviderError(f"{where} is not a valid amzigo KMS key file") from None
        if kms_key_id != self.kms_key_id:
            raise KeyProviderError(
                f"{where} was encrypted under KMS key {kms_key_id}, but kms_key_id is "
                f"{self.kms_key_id}: fix the setting or re-export the key"
            )
        secret = self.client.decrypt(kms_key_id, blob, CONTEXT)
        if len(secret) != KEY_BYTES:
            raise KeyProviderError(f"{where} does not hold a 256-bit key")
        return MasterKey.from_secret(secret)


def kms_client(endpoint: str) -> KmsClient:
    """The KMS client for an endpoint setting ("local:<dir>" is the test double)."""
    if endpoint.startswith("local:") and len(endpoint) > len("local:"):
        return LocalKms(Path(endpoint.removeprefix("local:")).expanduser())
    raise ConfigError(
        f"kms_endpoint = {endpoint!r}: the only KMS client shipped is the local double "
        "('local:<dir>'); a cloud KMS plugs in by implementing amzigo_lab.lake.kms.KmsClient"
    )


def kms_provider(settings: Settings) -> KmsKeyProvider:
    """The provider for key_provider = "kms"."""
    if not settings.kms_key_id:
        raise ConfigError('key_provider = "kms" needs kms_key_id (the KMS key\'s id)')
    return KmsKeyProvider(
        kms_client(settings.kms_endpoint), settings.kms_key_id, settings.master_key_kms_file
    )
