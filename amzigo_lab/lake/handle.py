"""What the lake's operations need of an open lake, as a Protocol.

The operations (writer, reader, drop, integrity, rotation) are typed against `LakeHandle`
instead of importing `Lake` from lake/store.py: `Lake` satisfies it and calls them, and none of
them imports the store, so the lake's modules form no import loop (an import-linter contract
in pyproject.toml keeps it so).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from amzigo_lab.config import Settings
from amzigo_lab.events import AuditSink
from amzigo_lab.lake.catalog import Catalog
from amzigo_lab.lake.keys import KeyProvider, MasterKey
from amzigo_lab.schema import DatasetSpec

#: A test seam: called with the name of each step of the commit protocol.
FaultHook = Callable[[str], None]


class LakeHandle(Protocol):
    """An open lake as its operations see it (implemented by `amzigo_lab.lake.store.Lake`)."""

    settings: Settings
    keys: KeyProvider
    catalog: Catalog
    audit: AuditSink
    clock: Callable[[], dt.datetime]
    fault_hook: FaultHook
    root: Path

    @property
    def master_key_id(self) -> str:
        """The id of the master key the catalog is wrapped under."""
        ...

    def master(self) -> MasterKey:
        """The current master key."""
        ...

    def held_master(self, key_id: str) -> MasterKey:
        """A held master key by id (KeyProviderError if it is not held)."""
        ...

    def reload_keys(self) -> None:
        """Re-read the key provider (after a rotation)."""
        ...

    def row_mac_key(self) -> bytes:
        """The catalog-row MAC key."""
        ...

    def require_intact(self, partition_ids: Iterable[int], action: str = "read") -> None:
        """Raise `TamperedRow` naming any of these partitions whose rows fail their MAC."""
        ...

    def partition_keys(self, key_ids: Iterable[str]) -> dict[str, bytes]:
        """Unwrapped partition keys for the given ids (destroyed keys are absent)."""
        ...

    def new_partition_key(self) -> tuple[str, bytes]:
        """A fresh partition key id and 256-bit key."""
        ...

    def spec(self, dataset: str) -> DatasetSpec:
        """The declared dataset, or UnknownDataset."""
        ...

    def ensure_registered(self, spec: DatasetSpec) -> None:
        """Record the dataset's classification in the catalog (inside a transaction)."""
        ...

    def write_lock(self) -> AbstractContextManager[None]:
        """Serialise writers, drops and rotations of this home across processes."""
        ...

    def path(self, rel: str) -> Path:
        """Absolute path of a lake-relative path."""
        ...
