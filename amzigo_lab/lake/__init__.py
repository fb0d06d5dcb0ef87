"""The encrypted, partitioned lake: keys, catalog, writer, readers, drops, integrity.

It knows nothing of users or purposes (governance does) and nothing of Amazon (source does).
"""

from amzigo_lab.lake.catalog import Catalog, FileEntry, Partition
from amzigo_lab.lake.drop import DestructionRecord
from amzigo_lab.lake.integrity import VerifyReport, doctor
from amzigo_lab.lake.keys import EnvKeyProvider, FileKeyProvider, KeyProvider, MasterKey
from amzigo_lab.lake.reader import Scan
from amzigo_lab.lake.store import Lake
from amzigo_lab.lake.writer import WriteResult
from amzigo_lab.schema import Column, DatasetSpec

__all__ = [
    "Catalog",
    "Column",
    "DatasetSpec",
    "DestructionRecord",
    "EnvKeyProvider",
    "FileEntry",
    "FileKeyProvider",
    "KeyProvider",
    "Lake",
    "MasterKey",
    "Partition",
    "Scan",
    "VerifyReport",
    "WriteResult",
    "doctor",
]
