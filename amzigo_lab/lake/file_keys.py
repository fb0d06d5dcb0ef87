"""A lake file's own data key (DEK), for engines that decrypt Parquet natively.

Every lake file is standard Parquet Modular Encryption with an encrypted footer, written by
pyarrow with double wrapping and internal key material (`lake/pme.py`). The tail of such a file
is `FileCryptoMetaData | encrypted footer | length (4 bytes LE) | "PARE"`; the crypto metadata
(plaintext Thrift, compact protocol) holds the key material JSON: the DEK wrapped by a
key-encryption key (KEK), the KEK wrapped by the partition key. `data_key` unwraps both with the
partition key and returns the 32-byte DEK, which decrypts that one file only.

The DEK is as secret as the partition key for that file: keep it in memory, never in SQL text,
settings, logs or exceptions. Destroying the partition key (crypto-shred) makes it unrecoverable
from the file; a DEK already handed to an engine is not: callers must not keep one beyond the
scan that asked for it (see `lake/native_read.py`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from amzigo_lab.errors import IntegrityError, KeyProviderError
from amzigo_lab.lake.keys import unwrap

_MAGIC_ENCRYPTED_FOOTER = b"PARE"
_NONCE = 12
#: The crypto metadata is a few hundred bytes; the footer after it can be large.
_TAIL_LIMIT = 64 * 1024 * 1024


class _Compact:
    """Just enough of Thrift's compact protocol to walk one struct and skip the rest."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ValueError("truncated")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def binary(self) -> bytes:
        n = self.varint()
        if n > len(self.data) - self.pos:
            raise ValueError("truncated binary")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def field_header(self, last: int) -> tuple[int, int] | None:
        """(field id, type) of the next field, or None at the struct's stop byte."""
        b = self.byte()
        if b == 0:
            return None
        delta, ftype = b >> 4, b & 0x0F
        if delta:
            return last + delta, ftype
        n = self.varint()
        return (n >> 1) ^ -(n & 1), ftype

    def skip(self, ftype: int, depth: int = 0) -> None:
        if depth > 32:
            raise ValueError("nesting too deep")
        if ftype in (1, 2):  # bool packed in the type
            return
        if ftype == 3:
            self.byte()
        elif ftype in (4, 5, 6):
            self.varint()
        elif ftype == 7:
            self.pos += 8
        elif ftype == 8:
            self.binary()
        elif ftype in (9, 10):
            head = self.byte()
            size, etype = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            for _ in range(size):
                self.skip_element(etype, depth + 1)
        elif ftype == 11:
            size = self.varint()
            if size:
                kv = self.byte()
                for _ in range(size):
                    self.skip_element(kv >> 4, depth + 1)
                    self.skip_element(kv & 0x0F, depth + 1)
        elif ftype == 12:
            last = 0
            while (field := self.field_header(last)) is not None:
                last, t = field
                self.skip(t, depth + 1)
        else:
            raise ValueError(f"unknown thrift type {ftype}")

    def skip_element(self, etype: int, depth: int) -> None:
        # inside collections a bool is one byte
        if etype in (1, 2):
            self.byte()
        else:
            self.skip(etype, depth)


def footer_key_metadata(path: str | os.PathLike[str]) -> bytes:
    """The footer key metadata (the key material JSON) of an encrypted-footer Parquet file."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size < 12:
            raise IntegrityError(f"{os.fspath(path)}: too short for an encrypted Parquet file")
        f.seek(size - 8)
        tail = f.read(8)
        if tail[4:] != _MAGIC_ENCRYPTED_FOOTER:
            raise IntegrityError(f"{os.fspath(path)}: not a Parquet file with an encrypted footer")
        length = int.from_bytes(tail[:4], "little")
        if length <= 0 or length > min(size - 12, _TAIL_LIMIT):
            raise IntegrityError(f"{os.fspath(path)}: bad footer length")
        f.seek(size - 8 - length)
        # the crypto metadata sits at the start of the footer region; it is small
        head = f.read(min(length, 64 * 1024))
    reader = _Compact(head)
    try:
        last = 0
        while (field := reader.field_header(last)) is not None:
            last, ftype = field
            if last == 2 and ftype == 8:
                return reader.binary()
            reader.skip(ftype)
    except ValueError as e:
        raise IntegrityError(f"{os.fspath(path)}: unreadable crypto metadata ({e})") from None
    raise IntegrityError(f"{os.fspath(path)}: no footer key metadata")


def data_key(path: str | os.PathLike[str], partition_keys: Mapping[str, bytes]) -> bytes:
    """The file's data key, unwrapped with its partition key (one of `partition_keys`).

    Raises `IntegrityError` (naming the file, never a key) if the key material is malformed,
    names a partition key that is not given, or does not unwrap (wrong key or tampering)."""
    where = os.fspath(path)
    try:
        material = json.loads(footer_key_metadata(path))
        if not isinstance(material, dict) or material.get("keyMaterialType") != "PKMT1":
            raise ValueError("not PKMT1 key material")
        if not material.get("internalStorage") or not material.get("isFooterKey"):
            raise ValueError("external or non-footer key material")
        partition_key_id = str(material["masterKeyID"])
        wrapped_dek = base64.b64decode(material["wrappedDEK"], validate=True)
        double = bool(material.get("doubleWrapping"))
        if double:
            kek_id = base64.b64decode(material["keyEncryptionKeyID"], validate=True)
            wrapped_kek = base64.b64decode(material["wrappedKEK"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise IntegrityError(f"{where}: malformed key material") from None
    partition_key = partition_keys.get(partition_key_id)
    if partition_key is None:
        raise IntegrityError(
            f"{where}: partition key {partition_key_id} is not available "
            "(destroyed, or not in this scan)"
        )
    try:
        if double:
            kek = unwrap(partition_key, wrapped_kek, partition_key_id)
            dek = AESGCM(kek).decrypt(wrapped_dek[:_NONCE], wrapped_dek[_NONCE:], kek_id)
        else:
            dek = unwrap(partition_key, wrapped_dek, partition_key_id)
    except (InvalidTag, ValueError, KeyProviderError) as e:
        raise IntegrityError(
            f"{where}: the file's data key does not unwrap ({type(e).__name__})"
        ) from None
    if len(dek) not in (16, 24, 32):
        raise IntegrityError(f"{where}: the file's data key has a bad length")
    return dek
