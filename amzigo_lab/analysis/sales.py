"""Sales and profit report builders: KPI totals, trends, traffic, per-SKU profit, marketplaces.

Definitions (the notebooks print them under the tables):
- sales = sum of `item_price` of order lines (excluding tax) purchased in the period, canceled
  orders excluded; orders = distinct order ids; units = sum of `quantity_ordered`;
  promotions = sum of `promotion_discount`.
- refunds and fees come from `financial_events` POSTED in the period (money moves on that date):
  refunds = minus the principal of refund events, fees = minus every fee amount (commission
  refunded with a refund lowers the fees), refunded orders = distinct orders with a refund.
- net proceeds = sales - promotions - refunds - fees. Gross profit, COGS and margin come from
  the tenant's `product_costs` (or a `--costs FILE` override) through `analysis.profit`: the
  cost of each unit on its sale day, profit and margin over costed units only, and the number
  of units without a cost.
- Every money figure is per currency: amounts in different currencies are never added.
- Days are marketplace-local (`period` module): purchase and posting times are converted to the
  zone of their marketplace before taking the date; unknown marketplaces count in UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import polars as pl

from amzigo_lab.analysis.local_days import local_day
from amzigo_lab.analysis.money import MARKETPLACES, MarketplaceInfo, money, ratio
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.profit import Costs, cost_notes, currency_profit, with_profit
from amzigo_lab.analysis.profit import cost_rows as _cost_rows
from amzigo_lab.analysis.source import ReportError, TableSource, period_table

if TYPE_CHECKING:
    import ibis.expr.types as ir

#: Classification of `financial_events` rows (compared case-insensitively).
REFUND_EVENT_PREFIX = "refund"
FEE_KIND = "fee"
PRINCIPAL = "principal"
CANCELED = "canceled"

__all__ = ["Costs", "local_day"]  # Costs: (seller_sku, currency) -> unit cost (`--costs FILE`)


@dataclass(frozen=True)
class SalesScope:
    """What a sales figure covers: a period, optionally one marketplace and/or one currency."""

    period: Period
    marketplace: MarketplaceInfo | None = None
    currency: str | None = None


#: Every zone's UTC offset lies in [-12 h, +14 h]: a UTC instant at least this far inside the
#: period's UTC days has a local day inside the period in every zone.
_EARLIEST_OFFSET = dt.timedelta(hours=-12)
_LATEST_OFFSET = dt.timedelta(hours=14)


def in_period(
    ts: ir.TimestampValue, marketplace: ir.StringValue, period: Period
) -> ir.BooleanValue:
    """`period.start <= local_day(ts, marketplace) <= period.end`, converting to the zone only
    the instants within a day of the period's edges (a CASE evaluates its ELSE only for the
    rows its WHEN did not take); the zone conversion is the costly part of a report (issue 17)."""
    first = dt.datetime.combine(period.start, dt.time(), dt.UTC) - _EARLIEST_OFFSET
    after = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), dt.UTC)
    surely_in = (ts >= first) & (ts < after - _LATEST_OFFSET)
    day = local_day(ts, marketplace)
    return ibis.ifelse(surely_in, True, (day >= period.start) & (day <= period.end))


def order_lines(source: TableSource, scope: SalesScope) -> ir.Table:
    """Order lines purchased in the scope (marketplace-local days), canceled orders excluded
    (latest state of both). Only the period's records are reduced to their latest state when
    the source can (`period_table`: purchase dates never change, and an order's lines carry its
    purchase date, so the canceled orders that matter are in the same period)."""
    items = period_table(source, "order_items", scope.period)
    orders = period_table(source, "orders", scope.period)
    canceled = orders.filter(orders.order_status.lower() == CANCELED).select("amazon_order_id")
    lines = items.filter(in_period(items.purchase_date, items.marketplace_id, scope.period))
    if scope.marketplace is not None:
        lines = lines.filter(lines.marketplace_id == scope.marketplace.marketplace_id)
    if scope.currency:
        lines = lines.filter(lines.currency == scope.currency)
    lines = lines.anti_join(canceled, "amazon_order_id")
    return lines.select(
        "amazon_order_id",
        "marketplace_id",
        "currency",
        "seller_sku",
        "asin",
        "title",
        day=local_day(lines.purchase_date, lines.marketplace_id),
        quantity=lines.quantity_ordered.cast("int64"),
        item_price=lines.item_price.fill_null(0),
        promotion_discount=lines.promotion_discount.fill_null(0),
    )


def finance_lines(source: TableSource, scope: SalesScope) -> ir.Table:
    """Financial events posted in the scope (marketplace-local days) with `refund` and `fee` as
    positive costs."""
    fe = source.table("financial_events")
    fe = fe.filter(in_period(fe.posted_date, fe.marketplace_name, scope.period))
    if scope.marketplace is not None:
        m = scope.marketplace
        fe = fe.filter(fe.marketplace_name.isin([m.sales_channel, m.marketplace_id, m.code]))
    if scope.currency:
        fe = fe.filter(fe.currency == scope.currency)
    kind = fe.charge_kind.lower()
    is_refund = (
        fe.event_type.lower().startswith(REFUND_EVENT_PREFIX)
        & (kind != FEE_KIND)
        & (fe.charge_type.lower() == PRINCIPAL)
    )
    zero = ibis.literal(Decimal("0.00"), type="decimal(18,2)")
    return fe.select(
        "amazon_order_id",
        "seller_sku",
        "currency",
        "marketplace_name",
        day=local_day(fe.posted_date, fe.marketplace_name),
        refund=ibis.ifelse(is_refund, -fe.amount, zero),
        fee=ibis.ifelse(kind == FEE_KIND, -fe.amount, zero),
        refund_order=ibis.ifelse(is_refund, fe.amazon_order_id, ibis.null("string")),
    )


@dataclass(frozen=True)
class Totals:
    """The sales KPIs of one currency in one period."""

    currency: str
    sales: Decimal = Decimal("0.00")
    promotions: Decimal = Decimal("0.00")
    orders: int = 0
    units: int = 0
    refunds: Decimal = Decimal("0.00")
    refunded_orders: int = 0
    fees: Decimal = Decimal("0.00")
    #: COGS, sales and net proceeds of the costed (currency, SKU) rows (`analysis.profit`);
    #: cogs is None when no unit of the currency has a cost
    cogs: Decimal | None = None
    uncosted_units: int = 0
    costed_sales: Decimal | None = None
    costed_net: Decimal | None = None

    @property
    def average_order_value(self) -> Decimal | None:
        """sales / orders."""
        r = ratio(self.sales, self.orders)
        return None if r is None else money(r)

    @property
    def refund_rate(self) -> Decimal | None:
        """refunded orders / orders (a fraction)."""
        return ratio(self.refunded_orders, self.orders)

    @property
    def net_proceeds(self) -> Decimal:
        """sales - promotions - refunds - fees."""
        return self.sales - self.promotions - self.refunds - self.fees

    @property
    def profit(self) -> Decimal | None:
        """Gross profit: net proceeds - COGS of the costed SKUs (None when no unit has a
        cost; never a profit that takes a missing cost as zero)."""
        if self.cogs is None or self.costed_net is None:
            return None
        return self.costed_net - self.cogs

    @property
    def margin(self) -> Decimal | None:
        """profit / sales of the costed SKUs (a fraction)."""
        return None if self.profit is None else ratio(self.profit, self.costed_sales)


def _rows(expr: ir.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = expr.to_pyarrow().to_pylist()
    return rows


def _line_totals(lines: ir.Table, by: list[str]) -> ir.Table:
    return lines.group_by(by).aggregate(
        sales=lines.item_price.sum(),
        promotions=lines.promotion_discount.sum(),
        orders=lines.amazon_order_id.nunique(),
        units=lines.quantity.sum(),
    )


def _finance_totals(fin: ir.Table, by: list[str]) -> ir.Table:
    return fin.group_by(by).aggregate(
        refunds=fin.refund.sum(),
        fees=fin.fee.sum(),
        refunded_orders=fin.refund_order.nunique(),
    )


def scope_tables(source: TableSource, scope: SalesScope) -> tuple[ir.Table, ir.Table]:
    """The scope's order lines and finance lines, materialised once when the source can
    (decrypted and reduced to the latest state a single time) for the several aggregations of
    one report; otherwise the plain expressions."""
    lines, fin = order_lines(source, scope), finance_lines(source, scope)
    materialize = getattr(source, "materialize", None)
    if materialize is None:
        return lines, fin
    return materialize(lines), materialize(fin)


def sales_totals(
    source: TableSource,
    scope: SalesScope,
    costs: Costs | None = None,
    tables: tuple[ir.Table, ir.Table] | None = None,
    skus: pl.DataFrame | None = None,
) -> dict[str, Totals]:
    """KPI totals per currency (sorted by currency), with gross profit from the tenant's
    `product_costs` (`costs`: an override). `tables`: from `scope_tables`; `skus`: the
    scope's `sku_table` when the caller has it."""
    lines, fin = tables or (order_lines(source, scope), finance_lines(source, scope))
    profits = {}
    if skus is not None:
        profits = currency_profit(skus)
    elif _cost_rows(source, costs).height:  # no costs at all: no per-SKU pass needed
        profits = currency_profit(sku_table(source, scope, costs, (lines, fin)))
    line_rows = {r["currency"]: r for r in _rows(_line_totals(lines, ["currency"]))}
    fin_rows = {r["currency"]: r for r in _rows(_finance_totals(fin, ["currency"]))}
    out: dict[str, Totals] = {}
    for cur in sorted(set(line_rows) | set(fin_rows)):
        lr, fr = line_rows.get(cur, {}), fin_rows.get(cur, {})
        p = profits.get(cur)
        costed = p is not None and p.profit is not None
        out[cur] = Totals(
            currency=cur,
            sales=money(lr.get("sales")),
            promotions=money(lr.get("promotions")),
            orders=int(lr.get("orders") or 0),
            units=int(lr.get("units") or 0),
            refunds=money(fr.get("refunds")),
            refunded_orders=int(fr.get("refunded_orders") or 0),
            fees=money(fr.get("fees")),
            cogs=p.cogs if p is not None and costed else None,
            uncosted_units=p.uncosted_units if p is not None else 0,
            costed_sales=p.costed_sales if p is not None and costed else None,
            costed_net=p.costed_net if p is not None and costed else None,
        )
    return out


def profit_table(totals: Mapping[str, Totals]) -> pl.DataFrame:
    """One row per currency: sales, refunds, fees, net proceeds, then sales, COGS, gross profit
    and margin of the costed SKUs, and the units without a cost (null profit: none costed)."""
    rows = [
        {"currency": cur, "sales": t.sales, "refunds": t.refunds, "fees": t.fees,
         "net": t.net_proceeds, "costed_sales": t.costed_sales, "cogs": t.cogs,
         "profit": t.profit, "margin": None if t.margin is None else float(t.margin),
         "uncosted_units": t.uncosted_units}
        for cur, t in totals.items()
    ]  # fmt: skip
    money_type = pl.Decimal(38, 2)
    return pl.DataFrame(
        rows,
        schema={"currency": pl.String, "sales": money_type, "refunds": money_type,
                "fees": money_type, "net": money_type, "costed_sales": money_type,
                "cogs": money_type, "profit": money_type, "margin": pl.Float64,
                "uncosted_units": pl.Int64},
    )  # fmt: skip


PROFIT_DEFINITIONS = (
    "Gross profit = net proceeds (sales - promotions - refunds - fees) - cost of goods, over "
    "the SKUs whose every unit sold has a cost on its sale day (product costs: the latest "
    "valid_from on or before that day, the marketplace's own cost first); margin = gross "
    "profit / sales of those SKUs. Units without a cost are counted, never costed at zero."
)


@dataclass(frozen=True)
class Tile:
    """One KPI tile: value, comparison value and relative change."""

    currency: str
    metric: str
    label: str
    kind: str  # "money" | "count" | "pct"
    value: Decimal | int | None
    previous: Decimal | int | None = None

    @property
    def change(self) -> float | None:
        """(value - previous) / |previous|, or None."""
        if self.value is None or self.previous is None or self.previous == 0:
            return None
        return float((Decimal(self.value) - Decimal(self.previous)) / abs(Decimal(self.previous)))


TILE_METRICS: tuple[tuple[str, str, str], ...] = (
    ("sales", "Sales", "money"),
    ("orders", "Orders", "count"),
    ("units", "Units", "count"),
    ("average_order_value", "Avg order value", "money"),
    ("refunds", "Refunds", "money"),
    ("refund_rate", "Refund rate", "pct"),
    ("fees", "Amazon fees", "money"),
    ("net_proceeds", "Net proceeds", "money"),
    ("profit", "Gross profit", "money"),
    ("margin", "Margin", "pct"),
)


def kpi_tiles(current: dict[str, Totals], previous: dict[str, Totals] | None) -> list[Tile]:
    """Tiles per currency; profit and margin only where some unit has a cost."""
    tiles = []
    for cur, t in current.items():
        p = None if previous is None else previous.get(cur, Totals(cur))
        for metric, label, kind in TILE_METRICS:
            if metric in ("profit", "margin") and t.profit is None:
                continue
            prev = None if p is None else getattr(p, metric)
            tiles.append(Tile(cur, metric, label, kind, getattr(t, metric), prev))
    return tiles


def _money_col(name: str) -> pl.Expr:
    return pl.col(name).fill_null(Decimal("0.00")).cast(pl.Decimal(38, 2))


def sku_table(
    source: TableSource,
    scope: SalesScope,
    costs: Costs | None = None,
    tables: tuple[ir.Table, ir.Table] | None = None,
) -> pl.DataFrame:
    """Per currency and SKU: sales, units, orders, refunds, fees, net, unit cost, COGS,
    profit, margin (`analysis.profit`: from `product_costs`, or `costs` as an override),
    costed and uncosted units, rank.

    Sorted by currency, then rank (1 = highest sales in that currency).
    """
    lines, fin = tables or (order_lines(source, scope), finance_lines(source, scope))
    by_sku = lines.group_by(["currency", "seller_sku"]).aggregate(
        asin=lines.asin.max(),
        title=lines.title.max(),
        sales=lines.item_price.sum(),
        promotions=lines.promotion_discount.sum(),
        units=lines.quantity.sum(),
        orders=lines.amazon_order_id.nunique(),
    )
    fin_sku = fin.group_by(["currency", "seller_sku"]).aggregate(
        refunds=fin.refund.sum(), fees=fin.fee.sum()
    )
    left = by_sku.to_polars()
    right = fin_sku.to_polars()
    df = left.join(right, on=["currency", "seller_sku"], how="full", coalesce=True)
    df = df.with_columns(
        *(_money_col(c) for c in ("sales", "promotions", "refunds", "fees")),
        pl.col("units").fill_null(0).cast(pl.Int64),
        pl.col("orders").fill_null(0).cast(pl.Int64),
    )
    df = df.with_columns(
        net=pl.col("sales") - pl.col("promotions") - pl.col("refunds") - pl.col("fees")
    )
    df = _fill_identities(source, df)
    df = with_profit(df, _cost_rows(source, costs), lines)
    df = df.with_columns(
        rank=pl.col("sales").rank(method="min", descending=True).over("currency").cast(pl.Int64),
    )
    cols = [
        "currency", "rank", "seller_sku", "asin", "title", "sales", "units", "orders",
        "promotions", "refunds", "fees", "net", "unit_cost", "cogs", "profit", "margin",
        "costed_units", "uncosted_units",
    ]  # fmt: skip
    return df.select(cols).sort(["currency", "rank", "seller_sku"])


def _fill_identities(source: TableSource, df: pl.DataFrame) -> pl.DataFrame:
    """ASIN and title of the SKUs without order lines in the period (fees or refunds only): the
    ASIN from the SKU's inventory snapshots, else its order lines of any date; the title from
    those order lines, else the catalog's latest for that ASIN. Per currency (its marketplaces).
    Reads nothing when every SKU already has both."""
    missing = df.filter(pl.col("asin").is_null() | pl.col("title").is_null())
    if missing.is_empty():
        return df
    skus = sorted(set(missing["seller_sku"].drop_nulls().to_list()))
    if not skus:
        return df
    currency = pl.DataFrame(
        {
            "marketplace_id": [m.marketplace_id for m in MARKETPLACES],
            "currency": [m.currency for m in MARKETPLACES],
        }
    )
    key = ["currency", "seller_sku"]
    inv = source.table("inventory_snapshots")
    inv = inv.filter(inv.seller_sku.isin(skus) & inv.asin.notnull())
    stocked = (
        inv.select("marketplace_id", "seller_sku", "asin")
        .to_polars()
        .join(currency, on="marketplace_id")
        .group_by(key)
        .agg(pl.col("asin").max().alias("stock_asin"))
    )
    items = source.table("order_items")
    items = items.filter(items.seller_sku.isin(skus))
    sold = (
        items.group_by(["currency", "seller_sku"])
        .aggregate(item_asin=items.asin.max(), item_title=items.title.max())
        .to_polars()
    )
    ids = stocked.join(sold, on=key, how="full", coalesce=True).select(
        *key,
        fill_asin=pl.coalesce("stock_asin", "item_asin"),
        fill_title=pl.col("item_title"),
    )
    out = df.join(ids, on=key, how="left").with_columns(
        asin=pl.coalesce("asin", "fill_asin"), title=pl.coalesce("title", "fill_title")
    )
    untitled = out.filter(pl.col("title").is_null() & pl.col("asin").is_not_null())
    if not untitled.is_empty():
        asins = sorted(set(untitled["asin"].to_list()))
        c = source.table("catalog_items")
        c = c.filter(c.asin.isin(asins) & c.title.notnull())
        catalog = (
            c.select("asin", "marketplace_id", "title", "fetched_at")
            .to_polars()
            .join(currency, on="marketplace_id")
            .sort("fetched_at", descending=True)
            .unique(["currency", "asin"], keep="first")
            .select("currency", "asin", catalog_title="title")
        )
        out = out.join(catalog, on=["currency", "asin"], how="left").with_columns(
            title=pl.coalesce("title", "catalog_title")
        )
    return out.select(df.columns)


def trend(
    source: TableSource,
    scope: SalesScope,
    every: str = "day",
    tables: tuple[ir.Table, ir.Table] | None = None,
) -> pl.DataFrame:
    """Sales, orders and units per currency and day (every="day") or ISO week ("week").

    Days without sales are present with zeros, so charts show gaps honestly. A week row starts
    on its Monday (`day`) and also carries the days of the period it covers: `first_day`,
    `last_day` and `days` (fewer than 7 where the period starts or ends mid-week, so a part week
    is not read as a slump).
    """
    lines = tables[0] if tables else order_lines(source, scope)
    grid = [scope.period.start + dt.timedelta(days=i) for i in range(scope.period.days)]
    daily = (
        lines.group_by(["currency", "day"])
        .aggregate(
            sales=lines.item_price.sum(),
            orders=lines.amazon_order_id.nunique(),
            units=lines.quantity.sum(),
        )
        .to_polars()
    )
    currencies = sorted(set(daily["currency"].to_list()))
    frame = pl.DataFrame(
        {"currency": [c for c in currencies for _ in grid], "day": grid * len(currencies)},
        schema={"currency": pl.String, "day": pl.Date},
    )
    df = frame.join(daily, on=["currency", "day"], how="left").with_columns(
        _money_col("sales"),
        pl.col("orders").fill_null(0).cast(pl.Int64),
        pl.col("units").fill_null(0).cast(pl.Int64),
    )
    if every == "week":
        # orders are counted per day; an order has one purchase day so weekly sums are exact
        df = (
            df.with_columns(week=pl.col("day").dt.truncate("1w"))
            .group_by(["currency", "week"])
            .agg(
                pl.col("sales").sum(),
                pl.col("orders").sum(),
                pl.col("units").sum(),
                pl.col("day").min().alias("first_day"),
                pl.col("day").max().alias("last_day"),
                pl.col("day").count().cast(pl.Int64).alias("days"),
            )
            .rename({"week": "day"})
        )
    elif every != "day":
        raise ReportError(f"unknown trend step {every!r}: use day or week")
    return df.sort(["currency", "day"])


def marketplace_split(
    source: TableSource, scope: SalesScope, tables: tuple[ir.Table, ir.Table] | None = None
) -> pl.DataFrame:
    """One row per marketplace with its own currency: sales, orders, units, refunds, fees, net."""
    lines, fin = tables or (order_lines(source, scope), finance_lines(source, scope))
    left = _line_totals(lines, ["marketplace_id", "currency"]).to_polars()
    right = _finance_totals(fin, ["marketplace_name", "currency"]).to_polars()
    names = {}
    for m in MARKETPLACES:
        for alias in (m.sales_channel, m.marketplace_id, m.code):
            names[alias] = m.marketplace_id
    right = right.with_columns(
        marketplace_id=pl.col("marketplace_name").replace_strict(
            names, default=pl.col("marketplace_name"), return_dtype=pl.String
        )
    ).drop("marketplace_name")
    right = right.group_by(["marketplace_id", "currency"]).agg(
        pl.col("refunds").sum(), pl.col("fees").sum(), pl.col("refunded_orders").sum()
    )
    df = left.join(right, on=["marketplace_id", "currency"], how="full", coalesce=True)
    codes = {m.marketplace_id: m.code for m in MARKETPLACES}
    df = df.with_columns(
        *(_money_col(c) for c in ("sales", "promotions", "refunds", "fees")),
        pl.col("orders").fill_null(0).cast(pl.Int64),
        pl.col("units").fill_null(0).cast(pl.Int64),
        marketplace=pl.col("marketplace_id").replace_strict(
            codes, default=pl.col("marketplace_id"), return_dtype=pl.String
        ),
    )
    df = df.with_columns(
        net=pl.col("sales") - pl.col("promotions") - pl.col("refunds") - pl.col("fees")
    )
    return df.select(
        "marketplace", "marketplace_id", "currency", "sales", "orders", "units", "refunds",
        "fees", "net",
    ).sort("marketplace")  # fmt: skip


def traffic(source: TableSource, scope: SalesScope) -> pl.DataFrame:
    """Sales & Traffic per marketplace: sessions, page views, units, unit session % and buy box %.

    Percentages are recomputed from the sums (units / sessions; buy box weighted by page views),
    never averaged across days. Returned as fractions (0.125 = 12.5 %).
    """
    st = _traffic_rows(source, scope)
    agg = st.group_by("marketplace_id").aggregate(
        sessions=st.sessions.sum(),
        page_views=st.page_views.sum(),
        units=st.units_ordered.sum(),
        order_items=st.total_order_items.sum(),
        buy_box_weighted=(st.buy_box_percentage * st.page_views).sum(),
        days=st.date.nunique(),
    )
    df = agg.to_polars()
    return _traffic_ratios(df).sort("marketplace_id")


def traffic_daily(source: TableSource, scope: SalesScope) -> pl.DataFrame:
    """Sales & Traffic per marketplace and day (for the conversion chart)."""
    st = _traffic_rows(source, scope)
    df = st.select(
        "marketplace_id",
        day=st.date,
        sessions=st.sessions,
        page_views=st.page_views,
        units=st.units_ordered,
        buy_box_weighted=st.buy_box_percentage * st.page_views,
    ).to_polars()
    return _traffic_ratios(df).sort(["marketplace_id", "day"])


def with_order_units(traffic: pl.DataFrame, marketplaces: pl.DataFrame) -> pl.DataFrame:
    """`traffic` with `order_units` beside Amazon's `units`: each marketplace's units counted
    from the orders (the Marketplaces table: local days, canceled orders excluded)."""
    if not traffic.height:
        return traffic.with_columns(order_units=pl.lit(0, pl.Int64))
    units = (
        marketplaces.group_by("marketplace_id").agg(order_units=pl.col("units").sum())
        if marketplaces.height
        else pl.DataFrame(schema={"marketplace_id": pl.String, "order_units": pl.Int64})
    )
    return traffic.join(units, on="marketplace_id", how="left").with_columns(
        pl.col("order_units").fill_null(0).cast(pl.Int64)
    )


UNITS_NOTE = (
    "Units (Sales & Traffic) are Amazon's count for the days of its report; units (orders) are "
    "counted from the orders by each marketplace's local day, canceled orders excluded (as in "
    "the Marketplaces table). They can differ by a few units: where Amazon cuts its report days "
    "at another hour than local midnight, orders placed close to midnight on the period's first "
    "and last days fall on different sides of it; Amazon also revises its latest days for up to "
    "three days."
)


def units_note(traffic: pl.DataFrame) -> str:
    """How the two unit columns of the traffic table are counted, and where they differ."""
    if not traffic.height:
        return ""
    differ = [
        f"{r['marketplace']} {r['units']:,} (Sales & Traffic) vs {r['order_units']:,} (orders)"
        for r in traffic.to_dicts()
        if r["units"] != r["order_units"]
    ]
    return UNITS_NOTE + (f" In this period: {'; '.join(differ)}." if differ else "")


def _traffic_rows(source: TableSource, scope: SalesScope) -> ir.Table:
    st = source.table("sales_traffic_by_date")
    st = st.filter(st.date >= scope.period.start, st.date <= scope.period.end)
    if scope.marketplace is not None:
        st = st.filter(st.marketplace_id == scope.marketplace.marketplace_id)
    if scope.currency:
        st = st.filter(st.currency == scope.currency)
    return st


def _traffic_ratios(df: pl.DataFrame) -> pl.DataFrame:
    codes = {m.marketplace_id: m.code for m in MARKETPLACES}
    return df.with_columns(
        pl.col("sessions").fill_null(0).cast(pl.Int64),
        pl.col("page_views").fill_null(0).cast(pl.Int64),
        pl.col("units").fill_null(0).cast(pl.Int64),
        marketplace=pl.col("marketplace_id").replace_strict(
            codes, default=pl.col("marketplace_id"), return_dtype=pl.String
        ),
        unit_session_pct=pl.when(pl.col("sessions") > 0)
        .then(pl.col("units") / pl.col("sessions"))
        .otherwise(None),
        buy_box_pct=pl.when(pl.col("page_views") > 0)
        .then(pl.col("buy_box_weighted") / pl.col("page_views") / 100)
        .otherwise(None),
    ).drop("buy_box_weighted")


def load_costs(path: str | Path) -> dict[tuple[str, str], Decimal]:
    """Read a cost file: CSV with columns `sku`, `currency`, `unit_cost` (header required)."""
    p = Path(path)
    out: dict[tuple[str, str], Decimal] = {}
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        need = {"sku", "currency", "unit_cost"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise ReportError(f"{p}: a cost file needs the header sku,currency,unit_cost")
        for n, row in enumerate(reader, start=2):
            try:
                cost = Decimal(row["unit_cost"].strip())
            except (InvalidOperation, AttributeError):
                raise ReportError(
                    f"{p} line {n}: unit_cost {row['unit_cost']!r} is not a number"
                ) from None
            out[(row["sku"].strip(), row["currency"].strip().upper())] = cost
    return out


@dataclass
class SalesReport:
    """Everything the sales notebook shows."""

    scope: SalesScope
    comparison: Period | None
    totals: dict[str, Totals]
    previous: dict[str, Totals] | None
    tiles: list[Tile]
    daily: pl.DataFrame
    weekly: pl.DataFrame
    skus: pl.DataFrame
    marketplaces: pl.DataFrame
    traffic: pl.DataFrame
    traffic_daily: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def build_sales_report(
    source: TableSource,
    scope: SalesScope,
    comparison: Period | None = None,
    costs: Costs | None = None,
) -> SalesReport:
    """Compute every table of the sales report."""
    tables = scope_tables(source, scope)
    skus = sku_table(source, scope, costs, tables)
    totals = sales_totals(source, scope, costs, tables, skus)
    previous = None
    if comparison is not None:
        prev_scope = SalesScope(comparison, scope.marketplace, scope.currency)
        previous = sales_totals(source, prev_scope, costs)
    have_costs = _cost_rows(source, costs).height > 0
    notes = cost_notes(currency_profit(skus), have_costs, override=costs is not None)
    marketplaces = marketplace_split(source, scope, tables)
    return SalesReport(
        scope=scope,
        comparison=comparison,
        totals=totals,
        previous=previous,
        tiles=kpi_tiles(totals, previous),
        daily=trend(source, scope, "day", tables),
        weekly=trend(source, scope, "week", tables),
        skus=skus,
        marketplaces=marketplaces,
        traffic=with_order_units(traffic(source, scope), marketplaces),
        traffic_daily=traffic_daily(source, scope),
        notes=notes,
    )
