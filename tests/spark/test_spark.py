"""Spark over the governed lake (issue 15): one local[2] session for the whole module, a real
encrypted home, its real gateway (`scale.plan`, the HTTPS unwrap endpoint) and the Java
KmsClient compiled from the package's source.

Skipped only when pyspark is absent (`.ci/run` installs the spark extra and a JDK)."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "pyspark", reason="pyspark is not installed (extra amzigo-lab[spark]; .ci/run installs it)"
)

from amzigo_lab.client import service
from amzigo_lab.client.transport import GatewayClient
from amzigo_lab.config import Settings, load_settings
from amzigo_lab.datasets import REGISTRY
from amzigo_lab.events import MemorySink
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake
from amzigo_lab.lake.keys import unwrap
from tests.analysis.data import ACME, END, OTHER, START, populate

PURPOSE = "sales_analysis"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = load_settings(tmp_path_factory.mktemp("spark") / "home", env={})
    lake = init_home(settings, audit=MemorySink())
    try:
        populate(lake)
    finally:
        lake.close()
    return settings


@pytest.fixture(scope="module")
def lake(home: Settings) -> Iterator[Lake]:
    lk = Lake.open(home, REGISTRY, audit=MemorySink())
    yield lk
    lk.close()


@pytest.fixture(scope="module")
def event_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark-events")


@pytest.fixture(scope="module")
def spark(event_log: Path) -> Iterator[Any]:
    """The module's one Spark session: event log on (uncompressed, to scan it), UI on a free
    port (its REST API is scanned too)."""
    from amzigo_lab import spark as amzigo_spark

    session = amzigo_spark.session(
        app_name="amzigo-tests",
        conf={
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": event_log.as_uri(),
            "spark.eventLog.compress": "false",
            "spark.ui.enabled": "true",
            "spark.ui.port": "0",
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def client(home: Settings) -> Iterator[GatewayClient]:
    """The report service's connection for ACME (a minted svc:reports token)."""
    minted = service.mint(home.home, "svc:reports", ACME, [PURPOSE], 3600)
    with GatewayClient(minted.address, minted.token) as c:
        yield c
    service.revoke(minted.address, minted.token)


def _rows(table: Any) -> list[tuple]:
    """Rows as sorted tuples of (column, value) pairs, time zones normalised to UTC."""
    import pyarrow as pa

    cols = []
    for name in sorted(table.column_names):
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("us", tz="UTC"))
        cols.append(col.to_pylist())
    return sorted(zip(*cols, strict=True), key=repr)


def test_kms_jar_is_built_from_source_once(tmp_path: Path) -> None:
    """javac builds the jar from the package's Java source into the cache; the next call
    finds it (no rebuild); the jar holds the KmsClient class and nothing downloaded."""
    import zipfile

    from amzigo_lab.spark.kms_jar import kms_jar

    jar = kms_jar(tmp_path)
    built = jar.stat().st_mtime_ns
    assert kms_jar(tmp_path) == jar and jar.stat().st_mtime_ns == built
    names = zipfile.ZipFile(jar).namelist()
    assert "com/amzigo/kms/GatewayKmsClient.class" in names
    assert all(n.startswith(("META-INF/", "com/amzigo/kms/")) for n in names)


@pytest.mark.parametrize("dataset", ["orders", "order_items", "sales_traffic_by_date"])
def test_spark_read_equals_the_lake_reader(spark, client, lake, dataset: str) -> None:
    """The governed Spark read returns exactly the lake reader's latest-state rows."""
    from amzigo_lab import spark as amzigo_spark

    got = amzigo_spark.read(spark, client, dataset, tenants=[ACME], purpose=PURPOSE).toArrow()
    want = lake.scan(dataset, [ACME]).latest()
    assert got.num_rows == want.num_rows > 0
    assert set(got.column_names) == set(want.column_names)
    assert _rows(got) == _rows(want.select(got.column_names))


def test_other_tenants_files_are_denied_and_audited(spark, client, lake, home) -> None:
    """A job token for ACME cannot unwrap OTHER's keys: Spark fails with a key-access denial
    and the gateway audits the refused unwrap."""
    from amzigo_lab import spark as amzigo_spark
    from amzigo_lab.client.scale import plan_job

    plan = plan_job(client, ["orders"], tenants=[ACME], purpose=PURPOSE, engine="spark")
    foreign = lake.scan("orders", [OTHER]).paths
    assert foreign
    with pytest.raises(Exception, match=r"(?s)key access denied.*HTTP 403"):
        spark.read.options(**amzigo_spark.read_options(plan)).parquet(*foreign).count()
    with pytest.raises(PermissionError, match="not in job"):
        amzigo_spark.scan(spark, plan, "orders", foreign)
    from amzigo_lab.governance.context import Governance

    with Governance.open(home) as gov:
        refused = [
            e
            for e in gov.audit_log.search(action="scale.unwrap")
            if e.resource == f"job:{plan.job_id}"
        ]
    assert refused and all(e.decision == "deny" and "403" in e.reason for e in refused)
    assert {e.actor for e in refused} == {"svc:reports"}


def _key_forms(key: bytes) -> list[bytes]:
    """Every way a key could be written down: raw, base64 (standard, url-safe, unpadded), hex."""
    b64 = base64.b64encode(key)
    url = base64.urlsafe_b64encode(key)
    return [key, b64, b64.rstrip(b"="), url, url.rstrip(b"="), key.hex().encode(),
            key.hex().upper().encode()]  # fmt: skip


def _keks(lake: Lake, paths: list[str], keys: dict[str, bytes]) -> list[bytes]:
    """The KEKs the gateway unwraps for these files (from each footer's key material)."""
    out = []
    for path in paths:
        for raw in re.findall(rb'\{"[^{}]*"wrappedKEK"[^{}]*\}', Path(path).read_bytes()):
            material = json.loads(raw)
            key_id = material["masterKeyID"]
            out.append(unwrap(keys[key_id], base64.b64decode(material["wrappedKEK"]), key_id))
    return out


def _leaks(blob: bytes, secrets: list[bytes]) -> list[int]:
    return [i for i, s in enumerate(secrets) if any(f in blob for f in _key_forms(s))]


def test_no_key_in_spark_conf_ui_event_log_or_plans(spark, client, lake, event_log, capsys) -> None:
    """After governed reads, no partition key and no KEK (raw, base64 or hex) appears in the
    session conf, the UI's REST API (environment, SQL plans), the event log or explain(True)."""
    from amzigo_lab import spark as amzigo_spark

    scan = lake.scan("order_items", [ACME])
    keys = dict(scan.keys)
    secrets = list(keys.values()) + _keks(lake, scan.paths, keys)
    assert len(secrets) > len(keys)  # the KEKs were found
    from amzigo_lab.client.scale import plan_job

    plan = plan_job(client, ["order_items"], tenants=[ACME], purpose=PURPOSE, engine="spark")
    frame = amzigo_spark.latest(amzigo_spark.scan(spark, plan, "order_items"), "order_items")
    assert frame.count() > 0
    frame.explain(True)
    plans = capsys.readouterr().out.encode()
    assert b"FileScan parquet" in plans or b"Scan parquet" in plans
    conf = repr(spark.sparkContext.getConf().getAll()).encode()
    ui = spark.sparkContext.uiWebUrl
    app = spark.sparkContext.applicationId
    rest = b""
    for page in ("environment", "sql?details=true&planDescription=true", "jobs", "stages"):
        with urllib.request.urlopen(f"{ui}/api/v1/applications/{app}/{page}", timeout=60) as r:
            rest += r.read()
    assert b"spark.hadoop.parquet.crypto.factory.class" in rest  # the environment was read
    events = b"".join(p.read_bytes() for p in event_log.rglob("*") if p.is_file())  # rolling logs
    assert b"SparkListenerSQLExecutionStart" in events  # the plans were logged
    for where, blob in {"plans": plans, "conf": conf, "ui": rest, "event log": events}.items():
        assert _leaks(blob, secrets) == [], f"key material in the {where}"
        assert plan.job_token.encode() not in blob, f"the job token in the {where}"
    # the scanner finds what it looks for
    assert _leaks(conf + base64.b64encode(secrets[-1]), secrets) == [len(secrets) - 1]


def test_the_sales_report_on_spark_equals_duckdb(spark, client, lake) -> None:
    """Every table and figure of the sales report (and its advertising section) built on
    ibis' PySpark backend over governed Spark reads equals the default DuckDB build."""
    from amzigo_lab.analysis.ads import build_ads_report
    from amzigo_lab.analysis.period import Period, comparison_period
    from amzigo_lab.analysis.sales import SalesScope, build_sales_report
    from amzigo_lab.gateway.sources import LakeTableSource
    from amzigo_lab.spark.reports import SparkTableSource

    period = Period(START, END)
    scope = SalesScope(period)
    previous = comparison_period(period, "previous_period")
    duck = LakeTableSource(lake, ACME)
    on_spark = SparkTableSource(spark, client, ACME, PURPOSE)
    try:
        want = build_sales_report(duck, scope, previous)
        got = build_sales_report(on_spark, scope, previous)
        want_ads, got_ads = build_ads_report(duck, scope), build_ads_report(on_spark, scope)
    finally:
        on_spark.close()
    assert want.totals and got.totals == want.totals and got.previous == want.previous
    assert got.tiles == want.tiles and got.notes == want.notes
    for name in ("daily", "weekly", "skus", "marketplaces", "traffic", "traffic_daily"):
        assert getattr(got, name).equals(getattr(want, name)), name
    assert not want_ads.empty and got_ads.totals == want_ads.totals
    for name in ("daily", "marketplaces", "skus"):
        assert getattr(got_ads, name).equals(getattr(want_ads, name)), name


def _job_end(home: Settings, job_id: str) -> Any:
    from amzigo_lab.governance.context import Governance

    with Governance.open(home) as gov:
        ended = [
            e for e in gov.audit_log.search(action="scale.job") if e.resource == f"job:{job_id}"
        ]
    return ended[0] if ended else None


def test_a_purge_during_a_job_makes_later_unwraps_fail(spark, client, home) -> None:
    """(Last: it purges.) A job reads one day's files; the retention purge then drops that
    day's partitions; the gateway ends the job (at its next unwrap or its 30-second
    housekeeping) and Spark's later unwraps, for a day still live, fail with 401."""
    import datetime as dt
    import time

    from amzigo_lab import spark as amzigo_spark
    from amzigo_lab.client.scale import plan_job
    from amzigo_lab.compliance.retention import purge
    from amzigo_lab.home import open_lake, release_gateway_cache_on_drop

    dataset = "sales_traffic_by_date"
    plan = plan_job(client, [dataset], tenants=[ACME], purpose=PURPOSE, engine="spark")
    days = sorted({re.search(r"ingest_date=([0-9-]+)", f)[1] for f in plan.files[dataset]})
    assert len(days) == 2
    first, second = ([f for f in plan.files[dataset] if f"ingest_date={d}/" in f] for d in days)
    assert amzigo_spark.scan(spark, plan, dataset, first).count() > 0
    lake = open_lake(home)
    release_gateway_cache_on_drop(lake, "amzigo purge")  # as `amzigo purge` does
    try:
        due = [p for p in lake.catalog.partitions(dataset, [ACME]) if p.state == "live"]
        as_of = min(p.purge_date for p in due)
        assert max(p.purge_date for p in due) > as_of  # the second day stays
        assert purge(lake, as_of=as_of).plan.drop
        live = {
            p.ingest_date for p in lake.catalog.partitions(dataset, [ACME]) if p.state == "live"
        }
    finally:
        lake.close()
    assert live == {dt.date.fromisoformat(days[1])}
    deadline = time.monotonic() + 180  # the gateway's housekeeping runs every 30 s
    while _job_end(home, plan.job_id) is None and time.monotonic() < deadline:
        time.sleep(1)
    ended = _job_end(home, plan.job_id)
    assert ended is not None and "dropped" in ended.reason
    with pytest.raises(Exception, match=r"(?s)key access denied.*HTTP 401"):
        amzigo_spark.scan(spark, plan, dataset, second).count()
