"""Scale-out benchmark (issue 15): the sales builders over one encrypted order-item lake on
DuckDB (the default engine: the gateway reduces to the latest state, the report kernel computes
with DuckDB), on Spark local[2] (`amzigo_lab.spark`: Spark reads the files, keys unwrapped per
job by the gateway) and on Dask (`amzigo_lab.dask` reads, the same builders compute on DuckDB
over what Dask returns: ibis 12 has no Dask backend), in the same run.

    python -m bench scale                  # 2M order items over 60 days, 3 reps
    python -m bench scale --quick          # 200k items, 1 rep (smoke run)
    python -m bench scale --items 4000000 --days 90 --reps 3

Per engine: wall time of a 30-day sales report's computation (`scope_tables` + `sales_totals`
+ `sku_table`, plan and reads included, session start-up excluded and printed apart), the ratio
to DuckDB, and the unwrap calls per file the gateway counted for each Spark and Dask job (its
`scale.job` audit event). The results must agree (sales per currency, SKU rows) before timing.
The machine is shared: read the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Row, log, median, render_table, timed, write_json
from bench.reports import TENANT, day_tables
from bench.reports import Config as ReportConfig

PURPOSE = "sales_analysis"


@dataclass
class Config:
    items: int = 2_000_000
    days: int = 60
    period_days: int = 30
    reps: int = 3
    seed: int = 42
    start: dt.date = dt.date(2026, 1, 1)
    engines: tuple[str, ...] = ("duckdb", "spark", "dask")
    keep: bool = False


def build_home(cfg: Config, root: Path) -> Any:
    """An initialised home with `cfg.items` order items (and their orders) over `cfg.days`."""
    from amzigo_lab.config import load_settings
    from amzigo_lab.events import NullSink
    from amzigo_lab.home import init_home

    settings = load_settings(root / "home", env={})
    lake = init_home(settings, audit=NullSink())
    shape = ReportConfig(items=cfg.items, days=cfg.days, start=cfg.start)
    rng = np.random.default_rng(cfg.seed)
    try:
        for d in range(cfg.days):
            orders, items = day_tables(shape, d, rng)
            day = cfg.start + dt.timedelta(days=d)
            lake.write("orders", TENANT, day, orders, f"bench-orders-{d}")
            lake.write("order_items", TENANT, day, items, f"bench-items-{d}")
    finally:
        lake.close()
    return settings


def report(source: Any, cfg: Config) -> tuple[dict[str, Any], int]:
    """A period's sales totals per currency and the number of SKU rows."""
    from amzigo_lab.analysis.period import Period
    from amzigo_lab.analysis.sales import SalesScope, sales_totals, scope_tables, sku_table

    end = cfg.start + dt.timedelta(days=cfg.days - 1)
    scope = SalesScope(Period(end - dt.timedelta(days=cfg.period_days - 1), end))
    tables = scope_tables(source, scope)
    totals = sales_totals(source, scope, None, tables)
    return {k: v.sales for k, v in totals.items()}, sku_table(source, scope, None, tables).height


class DaskSource:
    """The tenant's latest-state tables read by Dask (gateway-planned job per dataset), handed
    to an in-memory DuckDB for the builders (`MemoryTableSource`)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.plans: dict[str, Any] = {}
        self._memory: Any = None

    def table(self, name: str) -> Any:
        import pyarrow as pa

        import amzigo_lab.dask as adask
        from amzigo_lab.analysis.source import MemoryTableSource
        from amzigo_lab.datasets import REGISTRY

        if self._memory is None:
            self._memory = MemoryTableSource({})
        if name not in self._memory._tables:
            job = self.plans[name] = adask.plan(self.client, name, [TENANT], purpose=PURPOSE)
            if not job.files.get(name):  # nothing ingested: the source's empty typed table
                return self._memory.table(name)
            frame = adask.read(
                self.client, name, [TENANT], purpose=PURPOSE, job=job, decimals="arrow"
            )
            schema = REGISTRY[name].schema
            data = pa.Table.from_pandas(frame.compute(), preserve_index=False)
            data = data.select(schema.names).cast(schema)
            self._memory.backend.con.register(name, data)
            self._memory._tables[name] = self._memory.backend.table(name)
        return self._memory._tables[name]

    def close(self) -> None:
        from amzigo_lab.client.scale import revoke_job

        for plan in self.plans.values():
            revoke_job(self.client, plan)
        self.plans = {}


def unwraps_per_file(settings: Any, plans: list[Any]) -> float | None:
    """Unwrap calls per planned file of these (ended) jobs, from their `scale.job` events."""
    from amzigo_lab.governance.context import Governance

    ids = {f"job:{p.job_id}": sum(len(v) for v in p.files.values()) for p in plans}
    with Governance.open(settings) as gov:
        events = [e for e in gov.audit_log.search(action="scale.job") if e.resource in ids]
    files = sum(ids[e.resource] for e in events)
    calls = sum(int(e.row_count or 0) for e in events)
    return None if not events or not files else calls / files


def run(cfg: Config) -> int:
    from amzigo_lab.analysis.source import GatewayTableSource
    from amzigo_lab.client import service
    from amzigo_lab.client.transport import GatewayClient

    work = Path(tempfile.mkdtemp(prefix="amzigo-bench-scale-"))
    rows: list[Row] = []
    spark = None
    try:
        log(f"writing {cfg.items:,} order items over {cfg.days} days")
        t_write, settings = timed(lambda: build_home(cfg, work))
        log(f"written in {t_write / 1000:.1f} s")
        minted = service.mint(settings.home, "svc:reports", TENANT, [PURPOSE], 3600)
        client = GatewayClient(minted.address, minted.token)
        engines: dict[str, Any] = {}
        if "duckdb" in cfg.engines:
            engines["duckdb"] = lambda: GatewayTableSource(client, TENANT, PURPOSE)
        if "spark" in cfg.engines:
            from amzigo_lab import spark as aspark
            from amzigo_lab.spark.reports import SparkTableSource

            t_session, spark = timed(lambda: aspark.session(app_name="amzigo-bench-scale"))
            rows.append(Row("start-up", "Spark local[2] session (once)", t_session, "ms"))
            engines["spark"] = lambda: SparkTableSource(spark, client, TENANT, PURPOSE)
        if "dask" in cfg.engines:
            t_import, _ = timed(lambda: __import__("dask.dataframe"))
            rows.append(Row("start-up", "Dask import (once)", t_import, "ms"))
            engines["dask"] = lambda: DaskSource(client)
        samples: dict[str, list[float]] = {name: [] for name in engines}
        plans: dict[str, list[Any]] = {name: [] for name in engines}
        answers: dict[str, Any] = {}
        names = list(engines)
        for i in range(cfg.reps):
            log(f"rep {i + 1}/{cfg.reps}")
            for name in names[i % len(names) :] + names[: i % len(names)]:
                t0 = time.perf_counter()
                source = engines[name]()
                answer = report(source, cfg)
                samples[name].append((time.perf_counter() - t0) * 1000)
                if hasattr(source, "close"):
                    plans[name] += list(source.plans.values())
                    source.close()
                answers.setdefault(name, answer)
                log(f"  {name}: {samples[name][-1] / 1000:.1f} s")
        base = answers.get("duckdb")
        for name, answer in answers.items():
            if base is not None and answer != base:
                raise AssertionError(f"{name} disagrees with duckdb: {answer} != {base}")
        baseline = median(samples["duckdb"]) if "duckdb" in samples else None
        for name in names:
            rows.append(
                Row(
                    "30-day sales report",
                    f"{name} ({cfg.items:,} items, {cfg.days} days)",
                    median(samples[name]),
                    "ms",
                    baseline=baseline,
                    samples=samples[name],
                )
            )
        for name in ("spark", "dask"):
            if plans.get(name):
                per_file = unwraps_per_file(settings, plans[name])
                note = "" if per_file is not None else "no scale.job event found"
                rows.append(
                    Row("key service", f"{name} unwrap calls per file", per_file or 0.0,
                        "calls", note=note)
                )  # fmt: skip
        client.close()
        service.revoke(minted.address, minted.token)
    finally:
        if spark is not None:
            spark.stop()
        if not cfg.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(render_table(rows))
    write_json("scale", rows, {"items": cfg.items, "days": cfg.days, "reps": cfg.reps})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="200k items, 1 rep")
    parser.add_argument("--items", type=int, help="order items (default 2,000,000)")
    parser.add_argument("--days", type=int, help="daily partitions (default 60)")
    parser.add_argument("--reps", type=int, help="repetitions (default 3)")
    parser.add_argument("--engines", default="duckdb,spark,dask", help="comma-separated subset")
    parser.add_argument("--keep", action="store_true", help="keep the temp home")
    args = parser.parse_args(argv)
    cfg = Config(items=200_000, reps=1) if args.quick else Config()
    if args.items:
        cfg.items = args.items
    if args.days:
        cfg.days = args.days
    if args.reps:
        cfg.reps = args.reps
    cfg.engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    cfg.keep = args.keep
    if cfg.days < cfg.period_days or cfg.items < cfg.days * 2:
        parser.error("need days >= 30 and items >= 2 * days")
    return run(cfg)
