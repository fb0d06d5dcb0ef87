"""Parquet Modular Encryption through pyarrow: the only writer and decrypter of lake files.

Uniform AES_GCM_V1 encryption, a fresh random 256-bit data key (DEK) per file, double wrapping
with internal key material: pyarrow wraps the DEK with a key-encryption key (KEK) and asks our
`KmsClient` to wrap the KEK with the partition key (AES-GCM, AAD = partition key id). Destroying
the partition key makes every KEK and DEK under it unrecoverable. Files are readable by pyarrow,
polars, DuckDB and Spark given the same key service. See docs/architecture.md.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe

from amzigo_lab.errors import IntegrityError
from amzigo_lab.lake.keys import unwrap, wrap

#: How long a read factory keeps unwrapped key-encryption keys. Reads warm this cache in the
#: calling thread (`warm`), so engine threads never call back into Python (which deadlocks when
#: DuckDB holds the GIL while pulling Arrow batches). Scans are short-lived; keep it long.
_CACHE = dt.timedelta(hours=12)


class PartitionKms(pe.KmsClient):
    """A pyarrow KMS client over an in-memory map of unwrapped partition keys."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        pe.KmsClient.__init__(self)
        self._keys = keys

    def _key(self, key_id: str) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise IntegrityError(
                f"partition key {key_id} is not available (destroyed, or not in this catalog)"
            ) from None

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        """Wrap a file's data key with the partition key."""
        kek = self._key(master_key_identifier)
        return base64.b64encode(wrap(kek, key_bytes, master_key_identifier)).decode()

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        """Unwrap a file's data key with the partition key."""
        kek = self._key(master_key_identifier)
        return unwrap(kek, base64.b64decode(wrapped_key), master_key_identifier)


def _factory(keys: Mapping[str, bytes]) -> pe.CryptoFactory:
    return pe.CryptoFactory(lambda _config: PartitionKms(keys))


def encryption_properties(key_id: str, key: bytes) -> pe.FileEncryptionProperties:
    """Properties for writing one file under partition key `key_id` (fresh data key)."""
    config = pe.EncryptionConfiguration(
        footer_key=key_id,
        uniform_encryption=True,
        encryption_algorithm="AES_GCM_V1",
        double_wrapping=True,
        internal_key_material=True,
        data_key_length_bits=256,
        cache_lifetime=_CACHE,
    )
    factory = _factory({key_id: key})
    props = factory.file_encryption_properties(pe.KmsConnectionConfig(), config)
    factory.remove_cache_entries_for_all_tokens()
    return props


def decryption_properties(keys: Mapping[str, bytes]) -> pe.FileDecryptionProperties:
    """Properties for reading files written under any of `keys`."""
    factory = _factory(keys)
    return factory.file_decryption_properties(
        pe.KmsConnectionConfig(), pe.DecryptionConfiguration(cache_lifetime=_CACHE)
    )


def parquet_format(keys: Mapping[str, bytes]) -> ds.ParquetFileFormat:
    """A dataset file format that decrypts files written under any of `keys`."""
    config = ds.ParquetDecryptionConfig(
        _factory(keys), pe.KmsConnectionConfig(), pe.DecryptionConfiguration(cache_lifetime=_CACHE)
    )
    options = ds.ParquetFragmentScanOptions(decryption_config=config)
    return ds.ParquetFileFormat(default_fragment_scan_options=options)


def read_file(path: str, keys: Mapping[str, bytes]) -> pq.ParquetFile:
    """Open one encrypted file (raises on a wrong key or tampering)."""
    return pq.ParquetFile(path, decryption_properties=decryption_properties(keys))
