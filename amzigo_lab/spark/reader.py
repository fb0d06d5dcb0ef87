"""Governed Spark reads of the encrypted lake: plan with the gateway, read exactly the planned
files, reduce to the latest state.

The gateway (`scale.plan`) checks the policy for the caller (role, tenant grants, purpose) and
answers the committed files of the granted partitions, a short-lived job token bound to their
partition key ids and the URL and CA of its unwrap endpoint (notes: docs/operations.md). Spark's
own Parquet reader decrypts: for each file footer parquet-mr asks our Java KmsClient to unwrap
the file's key-encryption key, which POSTs it with the job token to the gateway. No partition
key, and no KEK, ever enters a Spark conf, a plan or the event log: only the token (which Spark
redacts as a secret) and the URL travel as per-read options. Reads only; the lake is written by
its own commit protocol.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from amzigo_lab.datasets import REGISTRY
from amzigo_lab.errors import AccessDenied, ConfigError, UnknownDataset
from amzigo_lab.spark.kms_jar import KMS_CLIENT_CLASS, cache_dir, kms_jar

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from amzigo_lab.schema import DatasetSpec

#: parquet-mr keeps unwrapped KEKs this long per token (its default is 600 s): a revoked job
#: stops reading new files at once, and a KEK already in an executor's cache lives at most this.
CACHE_LIFETIME_SECONDS = 60
#: The Hadoop conf key (a per-read option) naming the CA PEM file the KmsClient trusts.
CA_PATH_OPTION = "amzigo.kms.ca.path"
CRYPTO_FACTORY = "org.apache.parquet.crypto.keytools.PropertiesDrivenCryptoFactory"
#: Partition columns the lake's hive paths hold, with their types.
_PARTITION_DDL = {"tenant": "STRING", "ingest_date": "DATE", "purge_date": "DATE"}


#: Python warnings pyspark 4.3 and ibis print about pandas 3 on every conversion (harmless
#: here: the reports compare equal to DuckDB's); kept out of notebooks and reports.
_QUIET = (r"pyspark\..*", r"ibis\.formats\.pandas")


@contextlib.contextmanager
def _jvm_output(log: Path) -> Iterator[None]:
    """Point this process's stdout/stderr at `log` while the JVM starts: the JVM inherits them
    and keeps writing its start-up notices and log lines there (never into a notebook's or a
    report's output, where they would show host names and addresses)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (*saved, fd):
            os.close(f)


def session(
    app_name: str = "amzigo",
    master: str = "local[2]",
    conf: dict[str, str] | None = None,
    jvm_log: Path | None = None,
) -> SparkSession:
    """A Spark session that reads the lake through the gateway: builds (or finds) the KMS client
    jar and sets the crypto factory and KMS client class. Times are UTC. `conf` adds to or
    overrides the rest (a real cluster: `master` and its own settings; see docs/operations.md;
    the Spark UI is off unless `conf` sets `spark.ui.enabled`).
    The JVM's own output goes to `jvm_log` (default: `<cache>/logs/spark-<pid>.log`, 0600)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("pyspark is not installed: pip install 'amzigo-lab[spark]'") from None
    for module in _QUIET:
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=module)
    settings = {
        "spark.jars": str(kms_jar()),
        "spark.hadoop.parquet.crypto.factory.class": CRYPTO_FACTORY,
        "spark.hadoop.parquet.encryption.kms.client.class": KMS_CLIENT_CLASS,
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        # the UI listens on every interface without authentication: off unless asked for
        "spark.ui.enabled": "false",
    }
    if master.startswith("local"):
        settings["spark.sql.shuffle.partitions"] = "8"  # Spark's 200 are for clusters
        # a local session's driver serves this machine only
        settings["spark.driver.bindAddress"] = "127.0.0.1"
        settings["spark.driver.host"] = "127.0.0.1"
    settings.update(conf or {})
    builder = SparkSession.builder.appName(app_name).master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    with _jvm_output(jvm_log or cache_dir() / "logs" / f"spark-{os.getpid()}.log"):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_schema(spec: DatasetSpec) -> str:
    """The dataset's columns then its partition columns, as a Spark DDL string."""
    cols = [f"`{c.name}` {_ddl(c.type)}" for c in spec.columns]
    cols += [f"`{n}` {_PARTITION_DDL[n]}" for n in spec.partition_fields]
    return ", ".join(cols)


def _ddl(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "STRING"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP" if t.tz else "TIMESTAMP_NTZ"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_date32(t):
        return "DATE"
    simple = {
        pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INT", pa.int64(): "BIGINT",
        pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
    }  # fmt: skip
    if t in simple:
        return simple[t]
    raise ConfigError(f"no Spark type for the lake's Arrow type {t}")


_ca_dir: Path | None = None


def ca_file(pem: str) -> Path:
    """The gateway CA's PEM in a private (0600) file of this process, removed at exit. The CA
    is public, but only this exact file is trusted by the KmsClient."""
    global _ca_dir
    if _ca_dir is None:
        _ca_dir = Path(tempfile.mkdtemp(prefix="amzigo-spark-ca-"))
        atexit.register(shutil.rmtree, _ca_dir, True)
    path = _ca_dir / f"ca-{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(pem)
    return path


def read_options(plan: Any) -> dict[str, str]:
    """Per-read options of a planned job: unwrap URL, job token, KEK cache lifetime, CA path.
    Per-read options stay out of the session conf (and Spark redacts the token)."""
    return {
        "parquet.encryption.kms.instance.url": plan.unwrap_url,
        "parquet.encryption.key.access.token": plan.job_token,
        "parquet.encryption.cache.lifetime.seconds": str(CACHE_LIFETIME_SECONDS),
        CA_PATH_OPTION: str(ca_file(plan.ca_pem)),
    }


def scan(spark: SparkSession, plan: Any, dataset: str, files: list[str] | None = None) -> DataFrame:
    """Every version of `dataset`'s rows in the planned files (or `files`, a subset of them):
    the dataset's columns then its partition columns, read by Spark's Parquet reader."""
    spec = _spec(dataset)
    planned = list(plan.files.get(dataset, []))
    if files is None:
        files = planned
    elif outside := sorted(set(files) - set(planned)):
        raise AccessDenied(
            f"{len(outside)} file(s) are not in job {plan.job_id}'s plan for {dataset}: "
            "Spark reads only the files the gateway planned"
        )
    schema = spark_schema(spec)
    if not files:
        return spark.createDataFrame([], schema)
    base = str(Path(plan.lake_dir) / spec.origin / spec.name)
    if stray := [f for f in files if not f.startswith(base + os.sep)]:
        raise AccessDenied(f"planned file {stray[0]} is not under the dataset's folder {base}")
    return (
        spark.read.schema(schema)
        .option("basePath", base)
        .options(**read_options(plan))
        .parquet(*files)
    )


def latest(frame: DataFrame, dataset: str) -> DataFrame:
    """The latest state per tenant and natural key, as the lake reader defines it
    (`amzigo_lab.lake.reader.latest_sql`): the highest version, then the latest ingest date,
    nulls last. Datasets without a natural key: every row."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spec = _spec(dataset)
    if not spec.natural_key:
        return frame
    order = [spec.version_column] if spec.version_column else []
    order.append("ingest_date")
    window = Window.partitionBy("tenant", *spec.natural_key).orderBy(
        *(F.col(c).desc_nulls_last() for c in order)
    )
    rank = "__amzigo_latest_rank"
    return frame.withColumn(rank, F.row_number().over(window)).filter(F.col(rank) == 1).drop(rank)


def read(
    spark: SparkSession,
    connection: Any,
    dataset: str,
    tenants: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    purpose: str = "",
) -> DataFrame:
    """The latest-state rows of `dataset` that `connection` (a governed session or a gateway
    connection) may read for `purpose`, as a lazy Spark DataFrame.

    The gateway plans the job (policy, grants, audit) and answers the files and a job token;
    the token expires (15 minutes by default) and a purge or deletion notice covering a
    planned partition revokes it, after which actions on the DataFrame fail with a key-access
    denial. `since`/`until`: ingest dates (YYYY-MM-DD), as the lake reader's range."""
    from amzigo_lab.client.scale import plan_job

    _spec(dataset)
    plan = plan_job(
        connection, [dataset], tenants=tenants, since=since, until=until, purpose=purpose,
        engine="spark",
    )  # fmt: skip
    return latest(scan(spark, plan, dataset), dataset)


def _spec(dataset: str) -> DatasetSpec:
    try:
        return REGISTRY[dataset]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {dataset!r}") from None
