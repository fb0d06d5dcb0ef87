"""Report benchmarks: the sales builders vs the naive limit (hand-written SQL, DuckDB's own
reader over a plaintext copy, full latest-state windows), at two sizes of stored history, and the
end-to-end `amzigo report sales` time split into its phases.

    python -m bench.reports             # 10M order items (5M orders) over 60 days, and a
                                        # second home with 240 days (40M items: long)
    python -m bench.reports --quick     # 300k items, smoke run
    python -m bench reports --items 2000000 --history-days 240 --no-end-to-end

1. compute: `scope_tables` + `sales_totals` + `sku_table` (a 30-day report) through
   `LakeTableSource` (encrypted lake, pyarrow decrypts, ibis -> DuckDB; the period is filtered
   below the latest-state window, `period_table`) vs
   - the naive limit: the same aggregation written by hand in DuckDB (QUALIFY latest state over
     ALL versions, anti-join of canceled orders, a temp table of lines, two GROUP BYs) with
     `read_parquet` over a plaintext hive copy of the same data (target: ratio <= 0.8);
   - the same hand-written SQL over the lake's decrypting pyarrow datasets (info).
   A second home holds the same days plus older ones (same volume per day) up to
   `--history-days`; both homes are measured in the same interleaved reps: the builders' time
   must follow the period reported, not the history stored (target: 240 vs 60 days <= 1.25).
   Every side includes opening its sources (catalog, keys, footers; file globbing).
2. end to end: `generate("sales", ...)` (papermill + nbconvert), split with papermill's cell
   timestamps into kernel start, compute (the builder cell), rendering (charts, tables, HTML).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from amzigo_lab.analysis.local_days import local_day_sql
from amzigo_lab.datasets import ORDER_ITEMS, ORDERS
from amzigo_lab.synthetic import _cents_to_money
from bench.common import Row, log, median, render_table, timed, write_json

TENANT = "bench-seller"
MARKETS = (("ATVPDKIKX0DER", "USD"), ("A1F83G8C2ARO7P", "GBP"), ("A1PA6795UKMFR9", "EUR"))


@dataclass
class Config:
    items: int = 10_000_000
    days: int = 60
    history_days: int = 240  # second measurement with older days added (0: skip)
    skus: int = 2_000
    reps: int = 3
    seed: int = 42
    start: dt.date = dt.date(2026, 1, 1)
    end_to_end: bool = True
    keep: bool = False


def day_tables(cfg: Config, day_idx: int, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    """One day of orders (2 lines each) in the lake schemas, vectorised."""
    n_orders = cfg.items // 2 // cfg.days
    day = cfg.start + dt.timedelta(days=day_idx)
    base = np.datetime64(day, "us")
    ts = base + rng.integers(0, 86_400, n_orders).astype("timedelta64[s]")
    ts_arr = pa.array(ts, pa.timestamp("us", tz="UTC"))
    ids = np.char.add(f"B{day_idx:03d}-", np.arange(n_orders).astype(str))
    m = rng.choice(3, n_orders, p=[0.6, 0.25, 0.15])
    mkt = np.array([x[0] for x in MARKETS])[m]
    cur = np.array([x[1] for x in MARKETS])[m]
    status = np.where(rng.random(n_orders) < 0.95, "Shipped", "Canceled")
    orders = pa.table(
        {
            "amazon_order_id": pa.array(ids),
            "marketplace_id": pa.array(mkt),
            "purchase_date": ts_arr,
            "last_update_date": ts_arr,
            "order_status": pa.array(status),
            "fulfillment_channel": pa.array(np.where(m == 0, "AFN", "MFN")),
            "sales_channel": pa.array(np.full(n_orders, "Amazon")),
            "order_total": _cents_to_money(rng.integers(500, 20_000, n_orders)),
            "currency": pa.array(cur),
            "items_shipped": pa.array(np.full(n_orders, 2, dtype=np.int32)),
            "items_unshipped": pa.array(np.zeros(n_orders, dtype=np.int32)),
            "earliest_delivery_date": ts_arr,
            "latest_delivery_date": ts_arr,
            "delivered_date": pa.nulls(n_orders, pa.date32()),
            "is_business_order": pa.array(rng.random(n_orders) < 0.1),
        }
    ).cast(ORDERS.schema)
    n = n_orders * 2
    rep = np.repeat(np.arange(n_orders), 2)
    sku = rng.integers(0, cfg.skus, n)
    qty = rng.integers(1, 4, n).astype(np.int32)
    items = pa.table(
        {
            "amazon_order_id": pa.array(ids[rep]),
            "order_item_id": pa.array(np.char.add(ids[rep], np.tile(["-1", "-2"], n_orders))),
            "marketplace_id": pa.array(mkt[rep]),
            "purchase_date": ts_arr.take(pa.array(rep)),
            "last_update_date": ts_arr.take(pa.array(rep)),
            "asin": pa.array(np.char.add("B0BENCH", sku.astype(str))),
            "seller_sku": pa.array(np.char.add("SKU-", sku.astype(str))),
            "title": pa.array(np.full(n, "Bench product")),
            "quantity_ordered": pa.array(qty),
            "quantity_shipped": pa.array(qty),
            "item_price": _cents_to_money(rng.integers(500, 10_000, n) * qty),
            "item_tax": _cents_to_money(np.zeros(n, dtype=np.int64)),
            "promotion_discount": _cents_to_money(np.where(rng.random(n) < 0.1, 100, 0)),
            "currency": pa.array(cur[rep]),
        }
    ).cast(ORDER_ITEMS.schema)
    return orders, items


HAND_LINES = f"""
CREATE TEMP TABLE lines AS
WITH items AS (SELECT * FROM items_v QUALIFY row_number() OVER (PARTITION BY amazon_order_id,
        order_item_id ORDER BY last_update_date DESC, ingest_date DESC) = 1),
     orders AS (SELECT * FROM orders_v QUALIFY row_number() OVER (PARTITION BY amazon_order_id
        ORDER BY last_update_date DESC, ingest_date DESC) = 1),
     lines AS (SELECT * FROM items
        WHERE {local_day_sql("purchase_date", "marketplace_id")} BETWEEN $1 AND $2
        AND amazon_order_id NOT IN (SELECT amazon_order_id FROM orders
                                    WHERE lower(order_status) = 'canceled'))
SELECT * FROM lines
"""
HAND_TOTALS = """
SELECT currency, sum(coalesce(item_price, 0)) AS sales,
       sum(coalesce(promotion_discount, 0)) AS promotions,
       count(DISTINCT amazon_order_id) AS orders, sum(quantity_ordered::BIGINT) AS units
FROM lines GROUP BY currency
"""
HAND_SKUS = HAND_TOTALS.replace(
    "SELECT currency, sum(", "SELECT currency, seller_sku, max(asin), max(title), sum("
).replace("GROUP BY currency", "GROUP BY currency, seller_sku")


def _hand(con: Any, start: dt.date, end: dt.date) -> tuple[Any, Any]:
    con.execute(HAND_LINES, [start, end])
    totals = con.execute(HAND_TOTALS).to_arrow_table()
    skus = con.execute(HAND_SKUS).to_arrow_table()
    con.close()
    return totals, skus


def hand_duckdb(lake: Any, start: dt.date, end: dt.date) -> tuple[Any, Any]:
    """The aggregation written by hand over the lake's decrypting pyarrow datasets."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("items_v", lake.scan("order_items", [TENANT]).arrow_dataset())
    con.register("orders_v", lake.scan("orders", [TENANT]).arrow_dataset())
    return _hand(con, start, end)


def naive_limit(plain: Path, start: dt.date, end: dt.date) -> tuple[Any, Any]:
    """The naive limit: the same SQL, DuckDB's own reader, the plaintext copy, full windows."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for view, name in (("items_v", "order_items"), ("orders_v", "orders")):
        glob = f"{plain / name}/*/*/*.parquet"
        con.execute(
            f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)"
        )
    return _hand(con, start, end)


def write_days(
    targets: list[tuple[Any, Path]], cfg: Config, days: range, rng: np.random.Generator
) -> None:
    """Days of orders and items into each (encrypted lake, plaintext copy) target (the same
    tables; plaintext: zstd, the lake's row-group size)."""
    for d in days:
        orders, items = day_tables(cfg, d, rng)
        day = cfg.start + dt.timedelta(days=d)
        for lake, plain in targets:
            for name, table in (("orders", orders), ("order_items", items)):
                lake.write(name, TENANT, day, table, f"bench-{name}-{d}")
                folder = plain / name / f"tenant={TENANT}" / f"ingest_date={day.isoformat()}"
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(
                    table,
                    folder / "part-0.parquet",
                    compression="zstd",
                    row_group_size=lake.settings.row_group_rows,
                )


def builders(lake: Any, start: dt.date, end: dt.date) -> tuple[Any, Any]:
    """`sales_totals` + `sku_table` through a fresh LakeTableSource."""
    from amzigo_lab.analysis.period import Period
    from amzigo_lab.analysis.sales import SalesScope, sales_totals, scope_tables, sku_table
    from amzigo_lab.gateway.sources import LakeTableSource

    src = LakeTableSource(lake, TENANT)
    scope = SalesScope(Period(start, end))
    tables = scope_tables(src, scope)  # what build_sales_report does
    return sales_totals(src, scope, None, tables), sku_table(src, scope, None, tables)


def phases(notebook: Path) -> dict[str, float]:
    """Kernel start, compute and rendering seconds from papermill's cell timestamps."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    t0 = dt.datetime.fromisoformat(nb["metadata"]["papermill"]["start_time"])
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    first = dt.datetime.fromisoformat(cells[0]["metadata"]["papermill"]["start_time"])
    compute = sum(
        c["metadata"]["papermill"]["duration"] or 0.0
        for c in cells
        if "build_sales_report" in "".join(c["source"])
    )
    total = sum(c["metadata"]["papermill"]["duration"] or 0.0 for c in cells)
    return {"kernel_start": (first - t0).total_seconds(), "compute": compute, "cells": total}


def _check(b: tuple[Any, Any], h: tuple[Any, Any], what: str) -> list[str]:
    """The builders' and a hand-written side's results agree (sales per currency, SKU rows)."""
    b_sales = {k: v.sales for k, v in b[0].items()}
    h_sales = {r["currency"]: r["sales"] for r in h[0].to_pylist()}
    assert b_sales == h_sales, (what, b_sales, h_sales)
    assert b[1].height == h[1].num_rows, (what, b[1].height, h[1].num_rows)
    return sorted(b_sales)


def measure(cfg: Config, sides: dict[str, Any]) -> dict[str, list[float]]:
    """Interleaved reps of every side (rotating the order); a warm-up run of each first checks
    that every hand-written side agrees with the builders over the same history."""
    results = {name: fn() for name, fn in sides.items()}
    for name in sides:
        history = name.split("@")[1]
        if not name.startswith("builders"):
            _check(results[f"builders@{history}"], results[name], name)
    samples: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for i in range(cfg.reps):
        log(f"compute rep {i + 1}/{cfg.reps}")
        for name in names[i % len(names) :] + names[: i % len(names)]:
            samples[name].append(timed(sides[name])[0])
    log(", ".join(f"{k} {median(v):.0f} ms" for k, v in samples.items()))
    return samples


def run(cfg: Config, write_results: bool = True) -> int:
    from amzigo_lab.config import load_settings
    from amzigo_lab.events import NullSink
    from amzigo_lab.home import init_home

    work = Path(tempfile.mkdtemp(prefix="amzigo-bench-reports-"))
    rows: list[Row] = []
    lakes: list[Any] = []
    try:
        settings = load_settings(work / "home", env={})
        lake = init_home(settings, audit=NullSink())
        lakes.append(lake)
        targets = [(lake, work / "plain")]
        histories = [cfg.days]
        if cfg.history_days > cfg.days:
            histories.append(cfg.history_days)
            long_lake = init_home(load_settings(work / "home-long", env={}), audit=NullSink())
            lakes.append(long_lake)
            targets.append((long_lake, work / "plain-long"))
        rng = np.random.default_rng(cfg.seed)
        log(f"writing {cfg.items:,} order items over {cfg.days} days (lake + plaintext copy)")
        write_days(targets, cfg, range(cfg.days), rng)
        if len(targets) == 2:
            older = range(cfg.days - cfg.history_days, 0)
            log(f"second home: {len(older)} older days (same volume per day) before them")
            write_days(targets[1:], cfg, older, rng)
        start = cfg.start + dt.timedelta(days=cfg.days - 30)
        end = cfg.start + dt.timedelta(days=cfg.days - 1)
        sides: dict[str, Any] = {}
        items: dict[int, int] = {}
        for history, (lk, plain) in zip(histories, targets, strict=True):
            items[history] = lk.scan("order_items", [TENANT]).row_count
            sides[f"builders@{history}"] = lambda lk=lk: builders(lk, start, end)
            sides[f"naive@{history}"] = lambda plain=plain: naive_limit(plain, start, end)
        sides[f"hand_lake@{cfg.days}"] = lambda: hand_duckdb(lake, start, end)
        samples = measure(cfg, sides)
        med = {k: median(v) for k, v in samples.items()}
        for history in histories:
            what = f"{items[history]:,} items, last 30 of {history} days"
            b, n = f"builders@{history}", f"naive@{history}"
            rows.append(
                Row(
                    "compute",
                    f"builders vs naive limit, {what}",
                    med[b],
                    "ms",
                    baseline=med[n],
                    target="<= 0.8x naive limit",
                    limit=0.8,
                    samples=samples[b],
                    baseline_samples=samples[n],
                    note="naive limit: hand-written SQL, DuckDB read_parquet, plaintext copy, "
                    "full latest-state windows; same results checked",
                )
            )
        h = f"hand_lake@{cfg.days}"
        rows.append(
            Row(
                "compute",
                f"builders vs hand SQL over the lake's pyarrow datasets, {cfg.days} days",
                med[f"builders@{cfg.days}"],
                "ms",
                baseline=med[h],
                samples=samples[f"builders@{cfg.days}"],
                baseline_samples=samples[h],
                note="the pre-issue-17 baseline (full windows, same decrypting scan)",
            )
        )
        if len(histories) == 2:
            short, long = histories
            for who, target, limit in (
                ("builders", "<= 1.25 (follows the period)", 1.25),
                ("naive limit", "", None),
            ):
                key = "builders" if who == "builders" else "naive"
                rows.append(
                    Row(
                        "compute",
                        f"{who}, 30-day report: {long} vs {short} days stored",
                        med[f"{key}@{long}"],
                        "ms",
                        baseline=med[f"{key}@{short}"],
                        target=target,
                        limit=limit,
                        samples=samples[f"{key}@{long}"],
                        baseline_samples=samples[f"{key}@{short}"],
                        note=f"history x{long / short:.0f}, same period, interleaved reps",
                    )
                )
        if cfg.end_to_end:
            from amzigo_lab.analysis.generate import generate
            from amzigo_lab.analysis.period import Period

            log("end to end: amzigo report sales (papermill + nbconvert)")
            wall, res = timed(
                lambda: generate(
                    settings, "sales", TENANT, Period(start, end), out_dir=work / "out"
                )
            )
            ph = phases(res.notebook)
            render_s = ph["cells"] - ph["compute"] + res.timings["html"]
            rows += [
                Row("end to end", "amzigo report sales, wall", wall, "ms", target="info"),
                Row("end to end", "  kernel start", ph["kernel_start"] * 1000, "ms"),
                Row("end to end", "  compute (builder cell)", ph["compute"] * 1000, "ms"),
                Row("end to end", "  rendering (charts, tables, HTML)", render_s * 1000, "ms"),
            ]
        print(
            f"amzigo_lab reports benchmark: {cfg.items:,} items per {cfg.days} days, "
            f"medians of {cfg.reps} interleaved reps"
        )
        print(render_table(rows))
        if write_results:
            path = write_json(
                "reports", rows, {"config": {**cfg.__dict__, "start": str(cfg.start)}}
            )
            log(f"results: {path}")
        return 0
    finally:
        for lk in lakes:
            lk.close()
        if not cfg.keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="300k items, 2 reps")
    p.add_argument("--items", type=int)
    p.add_argument("--days", type=int, help="days of history (default 60)")
    p.add_argument(
        "--history-days", type=int, help="then measure again with this many days (240; 0: skip)"
    )
    p.add_argument("--reps", type=int)
    p.add_argument("--no-end-to-end", action="store_true")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--no-json", action="store_true")
    a = p.parse_args(argv)
    cfg = Config(items=300_000, reps=2) if a.quick else Config()
    for name in ("items", "days", "history_days", "reps"):
        if getattr(a, name) is not None:
            setattr(cfg, name, getattr(a, name))
    cfg.end_to_end = not a.no_end_to_end
    cfg.keep = a.keep
    return run(cfg, write_results=not a.no_json)


if __name__ == "__main__":
    sys.exit(main())
