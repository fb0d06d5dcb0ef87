"""Inventory report builder: stock position, velocity, days of cover, reorder point, reorder
quantity and date, status. The seller dashboard's stock section calls the same function
(`build_inventory_report`), so the two always agree.

- stock = the latest snapshot on or before the end of the period (`as_of`). When the period
  reaches the present (`as_of` is the latest complete local day, see `period`), a snapshot
  taken during today counts too: it is the current stock position. Its date is shown.
- on hand = fulfillable quantity; inbound = working + shipped + receiving; position = on hand +
  inbound; reserved as reported.
- velocity = units ordered (canceled orders excluded) over the `velocity_days` marketplace-local
  days ending at `as_of`, divided by `velocity_days`; per marketplace and SKU.
- days of cover = on hand / velocity (None when nothing sold).
- lead time and safety stock per SKU: defaults `[inventory] lead_time_days` and
  `safety_stock_days` in `<home>/config.toml`, overridden per SKU (`params_from_config`).
- safety stock = the SKU's units if set, else velocity x safety days; reorder point = velocity x
  lead time + safety stock.
- reorder quantity (when position < reorder point) = reorder point + velocity x `order_days` -
  position, rounded up: what brings the position back to the reorder point plus `order_days`
  of sales. Reorder date: the stock date when the position is below the reorder point (order
  now, with that quantity); otherwise the first day the position is projected to fall below
  it, stock date + floor((position - reorder point) / velocity) + 1 days, so always in the
  future. "Reorder by" today therefore always comes with a quantity to order; a SKU just above
  its reorder point shows tomorrow and quantity 0, not today and quantity 0.
- status: out (nothing on hand); critical (the position runs out before a reorder placed today
  could land: position / velocity < lead time); reorder (position below the reorder point,
  i.e. cover below lead time + safety); overstock (no sales, or on-hand cover > `overstock_days`);
  healthy otherwise. Sorted by urgency, then days of cover.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from amzigo_lab.analysis.money import MARKETPLACES, MarketplaceInfo
from amzigo_lab.analysis.period import Period, is_current
from amzigo_lab.analysis.sales import SalesScope, order_lines
from amzigo_lab.analysis.source import ReportError, TableSource

STATUSES = ("out", "critical", "reorder", "healthy", "overstock")
#: What each status means, for report footers and the dashboard.
STATUS_RULES = (
    "out = nothing on hand; critical = on hand plus inbound runs out before a reorder placed "
    "today could land ((on hand + inbound) / units per day < lead time); reorder = on hand plus "
    "inbound below the reorder point (lead time + safety stock); overstock = no sales or more "
    "than {overstock:g} days of cover; healthy otherwise. Days of cover = on hand / units per "
    "day: inbound is not counted, so a SKU with stock on the way may be healthy with short cover."
)


@dataclass(frozen=True)
class InventoryParams:
    """How velocity, reorder points, quantities and statuses are computed.

    Per-SKU overrides: `lead_times` (days), `safety_days_by_sku` (days of sales) and
    `safety_stock` (units; wins over days)."""

    velocity_days: int = 30
    default_lead_time: int = 30
    lead_times: Mapping[str, int] = field(default_factory=dict)
    safety_days: float = 7.0
    safety_days_by_sku: Mapping[str, float] = field(default_factory=dict)
    safety_stock: Mapping[str, int] = field(default_factory=dict)
    order_days: int = 30
    overstock_days: float = 90.0

    def as_parameters(self) -> dict[str, Any]:
        """The notebook parameters (JSON-safe) that rebuild these params."""
        return {
            "velocity_days": self.velocity_days,
            "default_lead_time": self.default_lead_time,
            "lead_times": dict(self.lead_times),
            "safety_days": self.safety_days,
            "safety_days_by_sku": dict(self.safety_days_by_sku),
            "safety_stock": dict(self.safety_stock),
            "order_days": self.order_days,
            "overstock_days": self.overstock_days,
        }


_DEFAULT_KEYS = {
    "lead_time_days": "default_lead_time",
    "safety_stock_days": "safety_days",
    "velocity_days": "velocity_days",
    "order_days": "order_days",
    "overstock_days": "overstock_days",
}
_SKU_KEYS = ("lead_time_days", "safety_stock_days", "safety_stock_units")


def params_from_config(section: Mapping[str, Any], tenant: str) -> InventoryParams:
    """Inventory params from the `[inventory]` section of `<home>/config.toml` for `tenant`:

        [inventory]
        lead_time_days = 30         # default lead time (days from ordering to sellable)
        safety_stock_days = 7       # default safety stock, in days of sales
        velocity_days = 30          # sales window of the velocity (local days)
        order_days = 30             # days of sales a reorder covers beyond the reorder point
        overstock_days = 90
        [inventory.skus."acme-outdoor"."SKU-RED"]   # per tenant and SKU
        lead_time_days = 14
        safety_stock_units = 20     # or safety_stock_days = 10

    A bad key or value raises ReportError naming it."""
    values: dict[str, Any] = {}
    for key, value in section.items():
        if key == "skus":
            continue
        if key not in _DEFAULT_KEYS:
            known = ", ".join([*_DEFAULT_KEYS, "skus"])
            raise ReportError(f"[inventory] {key!r} is not a setting; known: {known}")
        values[_DEFAULT_KEYS[key]] = _number(value, f"[inventory] {key}")
    leads: dict[str, int] = {}
    safety_days: dict[str, float] = {}
    safety_units: dict[str, int] = {}
    skus = section.get("skus", {})
    if not isinstance(skus, Mapping):
        raise ReportError('[inventory.skus] must be a table: [inventory.skus."TENANT"."SKU"]')
    for sku, row in dict(skus.get(tenant, {}) or {}).items():
        where = f"[inventory.skus.{tenant!r}.{sku!r}]"
        if not isinstance(row, Mapping):
            raise ReportError(f"{where} must be a table of {', '.join(_SKU_KEYS)}")
        for key, value in row.items():
            if key not in _SKU_KEYS:
                raise ReportError(
                    f"{where} {key!r} is not a setting; known: {', '.join(_SKU_KEYS)}"
                )
            n = _number(value, f"{where} {key}")
            if key == "lead_time_days":
                leads[str(sku)] = int(n)
            elif key == "safety_stock_days":
                safety_days[str(sku)] = float(n)
            else:
                safety_units[str(sku)] = int(n)
    base = InventoryParams()
    return InventoryParams(
        velocity_days=int(values.get("velocity_days", base.velocity_days)),
        default_lead_time=int(values.get("default_lead_time", base.default_lead_time)),
        lead_times=leads,
        safety_days=float(values.get("safety_days", base.safety_days)),
        safety_days_by_sku=safety_days,
        safety_stock=safety_units,
        order_days=int(values.get("order_days", base.order_days)),
        overstock_days=float(values.get("overstock_days", base.overstock_days)),
    )


def params_from_parameters(values: Mapping[str, Any]) -> InventoryParams:
    """InventoryParams from notebook parameters (`InventoryParams.as_parameters` keys)."""
    base = InventoryParams()
    return InventoryParams(
        velocity_days=int(values.get("velocity_days", base.velocity_days)),
        default_lead_time=int(values.get("default_lead_time", base.default_lead_time)),
        lead_times={str(k): int(v) for k, v in dict(values.get("lead_times") or {}).items()},
        safety_days=float(values.get("safety_days", base.safety_days)),
        safety_days_by_sku={
            str(k): float(v) for k, v in dict(values.get("safety_days_by_sku") or {}).items()
        },
        safety_stock={str(k): int(v) for k, v in dict(values.get("safety_stock") or {}).items()},
        order_days=int(values.get("order_days", base.order_days)),
        overstock_days=float(values.get("overstock_days", base.overstock_days)),
    )


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ReportError(f"{where} = {value!r}: give a number of 0 or more")
    return float(value)


def snapshot_cutoff(
    as_of: dt.date, now: dt.datetime | None = None, marketplace: MarketplaceInfo | None = None
) -> dt.date | None:
    """The newest snapshot date that may give the stock at the end of `as_of`: `as_of` itself,
    or None (no bound: the latest snapshot) when `as_of` reaches the present at `now`, since a
    snapshot taken during today is the current stock position. (Snapshot dates are ingest
    dates, which may be later than a data clock `now`.)"""
    markets = [marketplace] if marketplace else list(MARKETPLACES)
    return None if is_current(as_of, now, markets) else as_of


def stock_levels(
    source: TableSource, as_of: dt.date | None, marketplace: MarketplaceInfo | None = None
) -> pl.DataFrame:
    """The latest snapshot on or before `as_of` (a snapshot date; None: the latest of all) per
    marketplace and SKU."""
    inv = _snapshots(source, marketplace)
    if as_of is not None:
        inv = inv.filter(inv.snapshot_date <= as_of)
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


def _snapshots(source: TableSource, marketplace: MarketplaceInfo | None) -> Any:
    inv = source.table("inventory_snapshots")
    if marketplace is not None:
        inv = inv.filter(inv.marketplace_id == marketplace.marketplace_id)
    return inv


def empty_reason(
    source: TableSource, cutoff: dt.date | None, marketplace: MarketplaceInfo | None = None
) -> str:
    """Why no stock is shown as of `cutoff` (call it when the table is empty)."""
    inv = _snapshots(source, marketplace)
    first = inv.snapshot_date.min().to_pyarrow().as_py()
    where = f" for {marketplace.code}" if marketplace else ""
    if first is None or cutoff is None:
        return (
            f"No inventory snapshot yet{where}: stock appears once the inventory stream has "
            "been ingested (amzigo ingest --streams inventory)."
        )
    return (
        f"No inventory snapshot{where} on or before {cutoff.isoformat()}: the first one is "
        f"dated {first.isoformat()}. Choose a period ending on or after that day."
    )


def units_sold(
    source: TableSource, window: Period, marketplace: MarketplaceInfo | None = None
) -> pl.DataFrame:
    """Units ordered per marketplace and SKU in the window (marketplace-local days)."""
    lines = order_lines(source, SalesScope(window, marketplace))
    agg = lines.group_by(["marketplace_id", "seller_sku"]).aggregate(units=lines.quantity.sum())
    return agg.to_polars()


SCHEMA = {
    "marketplace": pl.String, "seller_sku": pl.String, "asin": pl.String,
    "product_name": pl.String, "snapshot_date": pl.Date, "on_hand": pl.Int64,
    "inbound": pl.Int64, "reserved": pl.Int64, "units_sold": pl.Int64,
    "velocity": pl.Float64, "days_of_cover": pl.Float64, "lead_time": pl.Int64,
    "safety_stock": pl.Float64, "reorder_point": pl.Float64, "reorder_quantity": pl.Int64,
    "reorder_date": pl.Date, "status": pl.String,
}  # fmt: skip


def inventory_table(
    source: TableSource,
    as_of: dt.date,
    params: InventoryParams | None = None,
    marketplace: MarketplaceInfo | None = None,
    now: dt.datetime | None = None,
) -> pl.DataFrame:
    """One row per marketplace and SKU, sorted by urgency (see the module docstring)."""
    p = params or InventoryParams()
    window = Period(as_of - dt.timedelta(days=p.velocity_days - 1), as_of)
    stock = stock_levels(source, snapshot_cutoff(as_of, now, marketplace), marketplace)
    sold = units_sold(source, window, marketplace)
    df = stock.join(sold, on=["marketplace_id", "seller_sku"], how="left").with_columns(
        pl.col("units").fill_null(0).cast(pl.Int64),
        pl.col("on_hand").cast(pl.Int64),
        pl.col("inbound").cast(pl.Int64),
        pl.col("reserved").cast(pl.Int64),
    )
    rows = [plan(r, as_of, p) for r in df.to_dicts()]
    codes = {m.marketplace_id: m.code for m in MARKETPLACES}
    out = pl.DataFrame(
        [
            {**r, "marketplace": codes.get(str(r["marketplace_id"]), r["marketplace_id"])}
            for r in rows
        ],
        schema=SCHEMA,
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


def plan(r: Mapping[str, Any], as_of: dt.date, p: InventoryParams) -> dict[str, Any]:
    """The stock advice of one SKU: `r` holds seller_sku, units (sold in the velocity window),
    on_hand, inbound and (optionally) snapshot_date."""
    sku = str(r["seller_sku"])
    units, on_hand, inbound = int(r["units"]), int(r["on_hand"]), int(r["inbound"])
    velocity = units / p.velocity_days
    lead = int(p.lead_times.get(sku, p.default_lead_time))
    if sku in p.safety_stock:
        safety = float(p.safety_stock[sku])
    else:
        safety = velocity * float(p.safety_days_by_sku.get(sku, p.safety_days))
    rop = velocity * lead + safety
    position = on_hand + inbound
    cover = on_hand / velocity if velocity > 0 else None
    base = max(as_of, r.get("snapshot_date") or as_of)
    reorder: dt.date | None = None
    quantity = 0
    if velocity > 0:
        if position < rop - 1e-9:
            # below the reorder point: order now, and the quantity says how much
            reorder = base
            quantity = math.ceil(rop + velocity * p.order_days - position - 1e-9)
        else:
            # at or above it: nothing to order yet; the date is the first day the position is
            # projected below the reorder point, so always after the stock date ("reorder by
            # today" only ever appears with a quantity to order)
            days = math.floor((position - rop) / velocity + 1e-9) + 1
            reorder = base + dt.timedelta(days=days)
    if on_hand <= 0:
        status = "out"
    elif velocity <= 0:
        status = "overstock"
    elif position / velocity < lead - 1e-9:
        status = "critical"
    elif position < rop - 1e-9:
        status = "reorder"
    elif cover is not None and cover > p.overstock_days:
        status = "overstock"
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
        "reorder_quantity": quantity,
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
    """Everything the inventory notebook (and the dashboard's stock section) shows.

    `stock_date`: the newest snapshot date used (None when no stock is shown); `cutoff`: the
    newest snapshot date that could be used; `current`: the period reaches the present;
    `reason`: why the table is empty ("" when it is not)."""

    as_of: dt.date
    params: InventoryParams
    table: pl.DataFrame
    counts: pl.DataFrame
    cutoff: dt.date | None = None  # None: the latest snapshot (the period reaches the present)
    current: bool = False
    stock_date: dt.date | None = None
    reason: str = ""

    def stock_label(self) -> str:
        """ "stock as of the snapshot of 2026-03-08 (current)" or the empty reason."""
        if self.stock_date is None:
            return self.reason
        dates = sorted(set(self.table["snapshot_date"].drop_nulls().to_list()))
        oldest = f"; oldest SKU snapshot {dates[0].isoformat()}" if len(dates) > 1 else ""
        now = ", the current position" if self.current else ""
        return f"stock from the snapshot of {self.stock_date.isoformat()}{now}{oldest}"


def build_inventory_report(
    source: TableSource,
    as_of: dt.date,
    params: InventoryParams | None = None,
    marketplace: MarketplaceInfo | None = None,
    now: dt.datetime | None = None,
) -> InventoryReport:
    """Compute every table of the inventory report (`now`: the clock, default the current
    time; it decides whether `as_of` reaches the present)."""
    p = params or InventoryParams()
    table = inventory_table(source, as_of, p, marketplace, now)
    cutoff = snapshot_cutoff(as_of, now, marketplace)
    current = is_current(as_of, now, [marketplace] if marketplace else None)
    newest = table["snapshot_date"].max() if table.height else None
    stock_date = newest if isinstance(newest, dt.date) else None
    reason = "" if table.height else empty_reason(source, cutoff, marketplace)
    return InventoryReport(
        as_of,
        p,
        table,
        status_counts(table),
        cutoff,
        current,
        stock_date,
        reason,
    )
