"""Gross profit from the `product_costs` dataset: the effective unit cost of every unit sold.

Definitions (the sales notebook and the dashboard print them):
- The effective cost of a unit is the `product_costs` row of its SKU and currency whose
  `valid_from` is the latest on or before the sale's marketplace-local day, among rows for the
  sale's marketplace and rows for every marketplace (null); on the same `valid_from` the
  marketplace's own row wins. A cost in another currency never applies (nothing is converted).
- COGS = sum of units x effective unit cost.
- A (currency, SKU) row of the period is *costed* when every unit it sold has a cost. Gross
  profit = net proceeds - COGS of the costed rows only (rows that sold nothing in the period but
  carry refunds or fees count too, at zero COGS); margin = gross profit / sales of the same
  rows. A currency with no costed unit has no profit and no margin: never a margin that
  silently assumes a zero cost.
- Units without a cost are counted (`uncosted_units`) and named in a note.
- `amzigo report sales --costs FILE` replaces the dataset for one run: each (sku, currency) of
  the file applies to every day and marketplace.

Other report parts (ads: profit after ad spend) build on `sku_costs` and `currency_profit`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from amzigo_lab.analysis.money import money, ratio

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from amzigo_lab.analysis.source import TableSource

COST_DATASET = "product_costs"
#: (seller_sku, currency) -> unit cost (the `--costs FILE` override).
Costs = Mapping[tuple[str, str], Decimal]
_COST_SCHEMA: dict[str, Any] = {
    "sku": pl.String,
    "marketplace_id": pl.String,
    "currency": pl.String,
    "unit_cost": pl.Decimal(18, 4),
    "valid_from": pl.Date,
}
_EMPTY_SKU_COSTS: dict[str, Any] = {
    "currency": pl.String,
    "seller_sku": pl.String,
    "costed_units": pl.Int64,
    "uncosted_units": pl.Int64,
    "cogs": pl.Decimal(38, 2),
}


def cost_rows(source: TableSource, override: Costs | None = None) -> pl.DataFrame:
    """The cost history to apply: the tenant's `product_costs` (latest import per key), or
    the override file's costs valid on every day and marketplace."""
    if override is not None:
        rows = [
            {"sku": sku, "marketplace_id": None, "currency": cur, "unit_cost": cost,
             "valid_from": dt.date.min}
            for (sku, cur), cost in override.items()
        ]  # fmt: skip
        return pl.DataFrame(rows, schema=_COST_SCHEMA)
    table = source.table(COST_DATASET)
    df = table.select(*_COST_SCHEMA).to_polars()
    return df.cast(_COST_SCHEMA)


def sku_costs(lines: ir.Table, costs: pl.DataFrame) -> pl.DataFrame:
    """Per currency and SKU of the order lines `lines` (`sales.order_lines`): costed units,
    uncosted units and COGS of the costed units (at the effective cost of each sale's day)."""
    daily = (
        lines.group_by(["currency", "seller_sku", "marketplace_id", "day"])
        .aggregate(units=lines.quantity.sum())
        .to_polars()
    )
    if daily.height == 0:
        return pl.DataFrame(schema=_EMPTY_SKU_COSTS)
    daily = daily.with_columns(pl.col("units").cast(pl.Int64), pl.col("day").cast(pl.Date))
    candidates = daily.join(
        costs.rename({"sku": "seller_sku", "marketplace_id": "cost_marketplace"}),
        on=["seller_sku", "currency"],
        how="inner",
    ).filter(
        (pl.col("valid_from") <= pl.col("day"))
        & (
            pl.col("cost_marketplace").is_null()
            | (pl.col("cost_marketplace") == pl.col("marketplace_id"))
        )
    )
    key = ["currency", "seller_sku", "marketplace_id", "day"]
    effective = (
        candidates.with_columns(specific=pl.col("cost_marketplace").is_not_null())
        .sort([*key, "valid_from", "specific"], descending=[False] * 4 + [True, True])
        .group_by(key, maintain_order=True)
        .first()
        .select(*key, "unit_cost")
    )
    priced = daily.join(effective, on=key, how="left", nulls_equal=True)
    priced = priced.with_columns(
        line_cogs=(pl.col("unit_cost").cast(pl.Decimal(38, 4)) * pl.col("units")),
    )
    return (
        priced.group_by(["currency", "seller_sku"])
        .agg(
            costed_units=pl.col("units").filter(pl.col("unit_cost").is_not_null()).sum(),
            uncosted_units=pl.col("units").filter(pl.col("unit_cost").is_null()).sum(),
            cogs=pl.col("line_cogs").sum(),
        )
        .with_columns(
            pl.col("costed_units").cast(pl.Int64),
            pl.col("uncosted_units").cast(pl.Int64),
            pl.col("cogs").round(2).cast(pl.Decimal(38, 2)),
        )
        .sort(["currency", "seller_sku"])
    )


def with_profit(skus: pl.DataFrame, costs: pl.DataFrame | None, lines: ir.Table) -> pl.DataFrame:
    """`skus` (per currency and SKU with sales, units and net) plus unit_cost (COGS / units,
    the average when the cost changed in the period), cogs, profit, margin, costed and
    uncosted units. Profit, margin and COGS are null on rows with an uncosted unit, and
    everywhere when there are no costs at all (`costs` None or empty)."""
    if costs is None or costs.height == 0:
        return skus.with_columns(
            unit_cost=pl.lit(None, pl.Decimal(38, 4)),
            cogs=pl.lit(None, pl.Decimal(38, 2)),
            profit=pl.lit(None, pl.Decimal(38, 2)),
            margin=pl.lit(None, pl.Float64),
            costed_units=pl.lit(0, pl.Int64),
            uncosted_units=pl.col("units"),
        )
    per_sku = sku_costs(lines, costs)
    df = skus.join(per_sku, on=["currency", "seller_sku"], how="left", nulls_equal=True)
    df = df.with_columns(
        pl.col("costed_units").fill_null(0),
        pl.col("uncosted_units").fill_null(0),
        pl.col("cogs").fill_null(Decimal("0.00")),
    )
    costed = pl.col("uncosted_units") == 0
    df = df.with_columns(
        cogs=pl.when(costed).then(pl.col("cogs")).otherwise(None).cast(pl.Decimal(38, 2)),
        unit_cost=pl.when(costed & (pl.col("costed_units") > 0))
        .then((pl.col("cogs").cast(pl.Float64) / pl.col("costed_units")).round(4))
        .otherwise(None)
        .cast(pl.Decimal(38, 4)),
    )
    df = df.with_columns(profit=(pl.col("net") - pl.col("cogs")).cast(pl.Decimal(38, 2)))
    return df.with_columns(
        margin=pl.when(pl.col("sales") != 0)
        .then(pl.col("profit").cast(pl.Float64) / pl.col("sales").cast(pl.Float64))
        .otherwise(None)
    )


@dataclass(frozen=True)
class CurrencyProfit:
    """Gross profit of one currency over its costed (currency, SKU) rows."""

    currency: str
    cogs: Decimal
    costed_sales: Decimal
    costed_net: Decimal
    costed_units: int
    uncosted_units: int
    uncosted_skus: tuple[str, ...]

    @property
    def profit(self) -> Decimal | None:
        """net proceeds - COGS of the costed rows; None when no unit has a cost."""
        return None if self.costed_units == 0 else self.costed_net - self.cogs

    @property
    def margin(self) -> Decimal | None:
        """profit / sales of the costed rows (a fraction)."""
        return None if self.profit is None else ratio(self.profit, self.costed_sales)


def currency_profit(skus: pl.DataFrame) -> dict[str, CurrencyProfit]:
    """Per currency, from a `with_profit` table."""
    out: dict[str, CurrencyProfit] = {}
    for cur in sorted(set(skus["currency"].to_list())):
        sub = skus.filter(pl.col("currency") == cur)
        costed = sub.filter(pl.col("profit").is_not_null())
        uncosted = sub.filter(pl.col("uncosted_units") > 0)
        out[cur] = CurrencyProfit(
            currency=cur,
            cogs=money(_sum(costed["cogs"])),
            costed_sales=money(_sum(costed["sales"])),
            costed_net=money(_sum(costed["net"])),
            costed_units=int(sub["costed_units"].sum()),
            uncosted_units=int(sub["uncosted_units"].sum()),
            uncosted_skus=tuple(sorted(str(s) for s in uncosted["seller_sku"].to_list())),
        )
    return out


def _sum(col: pl.Series) -> Decimal:
    return sum((Decimal(str(v)) for v in col.drop_nulls().to_list()), Decimal("0"))


def cost_notes(profits: Mapping[str, Any], have_costs: bool, override: bool = False) -> list[str]:
    """What the report says about costs: none imported, or units without a cost. `profits`:
    per currency, anything with `uncosted_units` and `profit` (`CurrencyProfit`, `Totals`)."""
    if not profits:
        return []
    if not have_costs:
        return [
            "No product costs for this tenant: profit and margin are not shown. Import them "
            "with `amzigo costs import FILE --tenant T`."
        ]
    where = "in the cost file" if override else "among the product costs (amzigo costs import)"
    notes = []
    for cur, p in profits.items():
        if p.uncosted_units:
            names: tuple[str, ...] = getattr(p, "uncosted_skus", ())
            skus = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
            skus = f" (SKU {skus})" if skus else ""
            scope = (
                "no profit or margin is shown"
                if p.profit is None
                else "profit and margin cover the costed SKUs only"
            )
            units = "1 unit has" if p.uncosted_units == 1 else f"{p.uncosted_units} units have"
            notes.append(f"{cur}: {units} no cost {where} on their sale day{skus}; {scope}.")
    return notes


def profit_summary(
    source: TableSource, lines: ir.Table, skus: pl.DataFrame, override: Costs | None = None
) -> tuple[pl.DataFrame, dict[str, CurrencyProfit], list[str]]:
    """The SKU table with profit columns, per-currency profit and the notes: one call for a
    report (`skus` from `sales.sku_table` without costs)."""
    costs = cost_rows(source, override)
    table = with_profit(skus, costs, lines)
    profits = currency_profit(table)
    return table, profits, cost_notes(profits, costs.height > 0, override is not None)


def as_dict(p: CurrencyProfit) -> dict[str, Any]:
    """JSON-ready figures (strings for money)."""
    return {
        "currency": p.currency,
        "cogs": str(p.cogs),
        "costed_sales": str(p.costed_sales),
        "profit": None if p.profit is None else str(p.profit),
        "margin": None if p.margin is None else float(p.margin),
        "costed_units": p.costed_units,
        "uncosted_units": p.uncosted_units,
    }
