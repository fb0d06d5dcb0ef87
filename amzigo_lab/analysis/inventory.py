"""Inventory report builder: stock, velocity, days of cover, reorder point and date, status.

- on hand = fulfillable quantity of the latest snapshot on or before `as_of`; inbound = working
  + shipped + receiving; reserved as reported.
- velocity = units ordered (canceled orders excluded) over the `velocity_days` days ending at
  `as_of`, divided by `velocity_days`; per marketplace and SKU.
- days of cover = on hand / velocity (None when nothing sold).
- reorder point = velocity x lead time + safety stock. Lead time is per SKU (default 30 days);
  safety stock is per SKU in units, else velocity x `safety_days`.
- reorder date = `as_of` + (on hand + inbound - reorder point) / velocity days, never before
  `as_of` (i.e. "now" when the position is already at or below the reorder point).
- status: out (on hand 0), critical (< 3 days), low (3-7 days), overstock (> `overstock_days`
  or stock with no sales), healthy otherwise. Sorted by urgency, then days of cover.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from amzigo_lab.analysis.money import MARKETPLACES, MarketplaceInfo
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.sales import SalesScope, order_lines
from amzigo_lab.analysis.source import TableSource

STATUSES = ("out", "critical", "low", "healthy", "overstock")
CRITICAL_DAYS = 3.0
LOW_DAYS = 7.0


@dataclass(frozen=True)
class InventoryParams:
    """How velocity, reorder points and statuses are computed."""

    velocity_days: int = 30
    default_lead_time: int = 30
    lead_times: Mapping[str, int] = field(default_factory=dict)
    safety_days: float = 7.0
    safety_stock: Mapping[str, int] = field(default_factory=dict)
    overstock_days: float = 90.0


def stock_levels(
    source: TableSource, as_of: dt.date, marketplace: MarketplaceInfo | None = None
) -> pl.DataFrame:
    """The latest snapshot on or before `as_of` per marketplace and SKU."""
    inv = source.table("inventory_snapshots")
    inv = inv.filter(inv.snapshot_date <= as_of)
    if marketplace is not None:
        inv = inv.filter(inv.marketplace_id == marketplace.marketplace_id)
    last = inv.group_by(["marketplace_id", "seller_sku"]).aggregate(last=inv.snapshot_date.max())
    cur = inv.join(last, ["marketplace_id", "seller_sku"]).filter(
        lambda t: t.snapshot_date == t.last
    )
    z = 0
    return cur.select(
        "marketplace_id",
        "seller_sku",
        "asin",
        "product_name",
        "snapshot_date",
        on_hand=cur.fulfillable_quantity.fill_null(z),
        inbound=cur.inbound_working.fill_null(z)
        + cur.inbound_shipped.fill_null(z)
        + cur.inbound_receiving.fill_null(z),
        reserved=cur.reserved_quantity.fill_null(z),
    ).to_polars()


def units_sold(
    source: TableSource, window: Period, marketplace: MarketplaceInfo | None = None
) -> pl.DataFrame:
    """Units ordered per marketplace and SKU in the window."""
    lines = order_lines(source, SalesScope(window, marketplace))
    agg = lines.group_by(["marketplace_id", "seller_sku"]).aggregate(units=lines.quantity.sum())
    return agg.to_polars()


def inventory_table(
    source: TableSource,
    as_of: dt.date,
    params: InventoryParams | None = None,
    marketplace: MarketplaceInfo | None = None,
) -> pl.DataFrame:
    """One row per marketplace and SKU, sorted by urgency (see the module docstring)."""
    p = params or InventoryParams()
    window = Period(as_of - dt.timedelta(days=p.velocity_days - 1), as_of)
    stock = stock_levels(source, as_of, marketplace)
    sold = units_sold(source, window, marketplace)
    df = stock.join(sold, on=["marketplace_id", "seller_sku"], how="left").with_columns(
        pl.col("units").fill_null(0).cast(pl.Int64),
        pl.col("on_hand").cast(pl.Int64),
        pl.col("inbound").cast(pl.Int64),
        pl.col("reserved").cast(pl.Int64),
    )
    rows = [_plan(r, as_of, p) for r in df.to_dicts()]
    codes = {m.marketplace_id: m.code for m in MARKETPLACES}
    schema = {
        "marketplace": pl.String, "seller_sku": pl.String, "asin": pl.String,
        "product_name": pl.String, "snapshot_date": pl.Date, "on_hand": pl.Int64,
        "inbound": pl.Int64, "reserved": pl.Int64, "units_sold": pl.Int64,
        "velocity": pl.Float64, "days_of_cover": pl.Float64, "lead_time": pl.Int64,
        "safety_stock": pl.Float64, "reorder_point": pl.Float64, "reorder_date": pl.Date,
        "status": pl.String,
    }  # fmt: skip
    out = pl.DataFrame(
        [
            {**r, "marketplace": codes.get(str(r["marketplace_id"]), r["marketplace_id"])}
            for r in rows
        ],
        schema=schema,
    )
    urgency = {s: i for i, s in enumerate(STATUSES)}
    return out.sort(
        [
            pl.col("status").replace_strict(urgency, return_dtype=pl.Int64),
            pl.col("days_of_cover"),
            "marketplace",
            "seller_sku",
        ],
        nulls_last=True,
    )


def _plan(r: dict[str, object], as_of: dt.date, p: InventoryParams) -> dict[str, object]:
    sku = str(r["seller_sku"])
    units = int(r["units"])  # type: ignore[call-overload]
    on_hand = int(r["on_hand"])  # type: ignore[call-overload]
    inbound = int(r["inbound"])  # type: ignore[call-overload]
    velocity = units / p.velocity_days
    lead = int(p.lead_times.get(sku, p.default_lead_time))
    safety = float(p.safety_stock[sku]) if sku in p.safety_stock else velocity * p.safety_days
    rop = velocity * lead + safety
    cover = on_hand / velocity if velocity > 0 else None
    reorder: dt.date | None = None
    if velocity > 0:
        days = math.floor((on_hand + inbound - rop) / velocity + 1e-9)
        reorder = as_of + dt.timedelta(days=max(0, days))
    if on_hand <= 0:
        status = "out"
    elif cover is None or cover > p.overstock_days:
        status = "overstock"
    elif cover < CRITICAL_DAYS:
        status = "critical"
    elif cover <= LOW_DAYS:
        status = "low"
    else:
        status = "healthy"
    return {
        **r,
        "units_sold": units,
        "velocity": velocity,
        "days_of_cover": cover,
        "lead_time": lead,
        "safety_stock": safety,
        "reorder_point": rop,
        "reorder_date": reorder,
        "status": status,
    }


def status_counts(table: pl.DataFrame) -> pl.DataFrame:
    """SKUs per status, in urgency order (zeros included)."""
    counts = table.group_by("status").agg(skus=pl.len().cast(pl.Int64))
    return (
        pl.DataFrame({"status": list(STATUSES)})
        .join(counts, on="status", how="left")
        .with_columns(pl.col("skus").fill_null(0))
    )


@dataclass
class InventoryReport:
    """Everything the inventory notebook shows."""

    as_of: dt.date
    params: InventoryParams
    table: pl.DataFrame
    counts: pl.DataFrame


def build_inventory_report(
    source: TableSource,
    as_of: dt.date,
    params: InventoryParams | None = None,
    marketplace: MarketplaceInfo | None = None,
) -> InventoryReport:
    """Compute every table of the inventory report."""
    p = params or InventoryParams()
    table = inventory_table(source, as_of, p, marketplace)
    return InventoryReport(as_of, p, table, status_counts(table))
