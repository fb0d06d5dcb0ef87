"""Report benchmarks: the sales builders vs the same aggregation hand-written in DuckDB, over the
same encrypted lake, and the end-to-end `amzigo report sales` time split into its phases.

    python -m bench.reports             # 10M order items (5M orders), 60 days
    python -m bench.reports --quick     # 300k items, smoke run

1. compute: `scope_tables` + `sales_totals` + `sku_table` through `LakeTableSource` (ibis ->
   DuckDB, latest state by window, the period's lines materialised once) vs the same written by
   hand in DuckDB (QUALIFY latest state, anti-join of canceled orders, a temp table of lines,
   two GROUP BYs) on a fresh connection over the same decrypting pyarrow datasets. Both sides
   include opening the scan (catalog, keys, footers). Target: ratio <= 1.2.
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

from amzigo_lab.datasets import ORDER_ITEMS, ORDERS
from amzigo_lab.synthetic import _cents_to_money
from bench.common import Row, log, median, render_table, timed, write_json

TENANT = "bench-seller"
MARKETS = (("ATVPDKIKX0DER", "USD"), ("A1F83G8C2ARO7P", "GBP"), ("A1PA6795UKMFR9", "EUR"))


@dataclass
class Config:
    items: int = 10_000_000
    days: int = 60
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


HAND_LINES = """
CREATE TEMP TABLE lines AS
WITH items AS (SELECT * FROM items_v QUALIFY row_number() OVER (PARTITION BY amazon_order_id,
        order_item_id ORDER BY last_update_date DESC, ingest_date DESC) = 1),
     orders AS (SELECT * FROM orders_v QUALIFY row_number() OVER (PARTITION BY amazon_order_id
        ORDER BY last_update_date DESC, ingest_date DESC) = 1),
     lines AS (SELECT * FROM items WHERE CAST(purchase_date AS DATE) BETWEEN $1 AND $2
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


def hand_duckdb(lake: Any, start: dt.date, end: dt.date) -> tuple[Any, Any]:
    """The same aggregation written by hand, on a fresh DuckDB connection."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("items_v", lake.scan("order_items", [TENANT]).arrow_dataset())
    con.register("orders_v", lake.scan("orders", [TENANT]).arrow_dataset())
    con.register("fin_v", lake.scan("financial_events", [TENANT]).arrow_dataset())
    con.execute(HAND_LINES, [start, end])
    totals = con.execute(HAND_TOTALS).to_arrow_table()
    skus = con.execute(HAND_SKUS).to_arrow_table()
    con.close()
    return totals, skus


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


def run(cfg: Config, write_results: bool = True) -> int:
    from amzigo_lab.config import load_settings
    from amzigo_lab.events import NullSink
    from amzigo_lab.home import init_home

    work = Path(tempfile.mkdtemp(prefix="amzigo-bench-reports-"))
    rows: list[Row] = []
    try:
        settings = load_settings(work / "home", env={})
        lake = init_home(settings, audit=NullSink())
        rng = np.random.default_rng(cfg.seed)
        log(f"writing {cfg.items:,} order items over {cfg.days} days to the encrypted lake")
        for d in range(cfg.days):
            orders, items = day_tables(cfg, d, rng)
            day = cfg.start + dt.timedelta(days=d)
            lake.write("orders", TENANT, day, orders, f"bench-{d}")
            lake.write("order_items", TENANT, day, items, f"bench-{d}")
        total_items = lake.scan("order_items", [TENANT]).row_count
        start = cfg.start + dt.timedelta(days=cfg.days - 30)
        end = cfg.start + dt.timedelta(days=cfg.days - 1)
        ours, hand = [], []
        check_b, check_h = builders(lake, start, end), hand_duckdb(lake, start, end)  # warm-up
        b_sales = {k: v.sales for k, v in check_b[0].items()}
        h_sales = {r["currency"]: r["sales"] for r in check_h[0].to_pylist()}
        assert b_sales == h_sales, (b_sales, h_sales)
        assert check_b[1].height == check_h[1].num_rows
        for i in range(cfg.reps):
            log(f"compute rep {i + 1}/{cfg.reps}")
            ours.append(timed(lambda: builders(lake, start, end))[0])
            hand.append(timed(lambda: hand_duckdb(lake, start, end))[0])
        rows.append(
            Row(
                "compute",
                f"sales_totals + sku_table, {total_items:,} items, last 30 of {cfg.days} days",
                median(ours),
                "ms",
                baseline=median(hand),
                target="<= 1.2x hand-written DuckDB",
                limit=1.2,
                samples=ours,
                baseline_samples=hand,
                note=f"same results checked: sales per currency {sorted(b_sales)}",
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
        lake.close()
        print(render_table(rows))
        if write_results:
            path = write_json(
                "reports", rows, {"config": {**cfg.__dict__, "start": str(cfg.start)}}
            )
            log(f"results: {path}")
        return 0
    finally:
        if not cfg.keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="300k items, 2 reps")
    p.add_argument("--items", type=int)
    p.add_argument("--days", type=int)
    p.add_argument("--reps", type=int)
    p.add_argument("--no-end-to-end", action="store_true")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--no-json", action="store_true")
    a = p.parse_args(argv)
    cfg = Config(items=300_000, reps=2) if a.quick else Config()
    for name in ("items", "days", "reps"):
        if getattr(a, name) is not None:
            setattr(cfg, name, getattr(a, name))
    cfg.end_to_end = not a.no_end_to_end
    cfg.keep = a.keep
    return run(cfg, write_results=not a.no_json)


if __name__ == "__main__":
    sys.exit(main())
