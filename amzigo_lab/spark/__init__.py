"""Spark over the governed lake (optional extra `amzigo-lab[spark]`): `session()` and `read()`.

Client side: this package never opens the lake or holds a key. The gateway plans each read and
unwraps key-encryption keys for the job's token; Spark's Parquet reader decrypts through the
Java KmsClient built from `java/` (`kms_jar`).
"""

from amzigo_lab.spark.kms_jar import KMS_CLIENT_CLASS, kms_jar
from amzigo_lab.spark.reader import latest, read, read_options, scan, session

__all__ = [
    "KMS_CLIENT_CLASS",
    "kms_jar",
    "latest",
    "read",
    "read_options",
    "scan",
    "session",
]
