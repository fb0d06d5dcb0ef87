"""Advertising report builders: ad spend, ad-attributed sales, ACoS, TACoS and ROAS.

Definitions (the notebooks print them under the tables):
- ad spend = sum of `cost` of Sponsored Products advertised products (`ads_product_daily`,
  latest pull of each day: attribution keeps moving for 14 days, the look-back re-pulls it);
- ad-attributed sales = sum of `sales_7d` (7-day attribution, Amazon's SP default);
- total sales = the sales report's sales: `item_price` of order lines purchased that
  marketplace-local day, canceled orders excluded (`sales.order_lines`);
- ACoS = ad spend / ad-attributed sales; TACoS = ad spend / total sales;
  ROAS = ad-attributed sales / ad spend; none of them when the denominator is 0.
- Ads report days are the profile's (= marketplace's) local days, as the sales report's days.
- Every money figure is per currency: amounts in different currencies are never added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from amzigo_lab.analysis.money import MARKETPLACES, money, ratio
from amzigo_lab.analysis.sales import SalesScope, order_lines
from amzigo_lab.analysis.source import TableSource

if TYPE_CHECKING:
    import ibis.expr.types as ir

ADS_DATASET = "ads_product_daily"
NO_DATA = "no ads data ingested"
KEYS = ("day", "marketplace_id", "seller_sku")
DEFINITIONS = (
    "Ad spend and ad-attributed sales (7-day attribution) from Sponsored Products reports, by "
    "the marketplace's day; the last 14 days may still move. ACoS = ad spend / ad sales; "
    "TACoS = ad spend / total sales (orders, canceled excluded); ROAS = ad sales / ad spend."
)


@dataclass(frozen=True)
class AdTotals:
    """Advertising totals of one currency."""

    currency: str
    ad_spend: Decimal
    ad_sales: Decimal
    total_sales: Decimal
    clicks: int
    impressions: int
    ad_orders: int

    @property
    def acos(self) -> Decimal | None:
        """Ad spend / ad-attributed sales."""
        return ratio(self.ad_spend, self.ad_sales)

    @property
    def tacos(self) -> Decimal | None:
        """Ad spend / total sales."""
        return ratio(self.ad_spend, self.total_sales)

    @property
    def roas(self) -> Decimal | None:
        """Ad-attributed sales / ad spend."""
        return ratio(self.ad_sales, self.ad_spend)


@dataclass
class AdsReport:
    """Every table of the Advertising section."""

    scope: SalesScope
    totals: dict[str, AdTotals] = field(default_factory=dict)
    daily: pl.DataFrame = field(default_factory=pl.DataFrame)
    marketplaces: pl.DataFrame = field(default_factory=pl.DataFrame)
    skus: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def empty(self) -> bool:
        """Whether no ads rows cover the scope."""
        return not self.totals

    def totals_frame(self) -> pl.DataFrame:
        """The per-currency totals as a table (with their ratios)."""
        rows = [
            {
                "currency": t.currency,
                "ad_spend": t.ad_spend,
                "ad_sales": t.ad_sales,
                "total_sales": t.total_sales,
                "acos": _float(t.acos),
                "tacos": _float(t.tacos),
                "roas": _float(t.roas),
            }
            for t in self.totals.values()
        ]
        return pl.DataFrame(rows)

    @property
    def note(self) -> str:
        """Why the section is empty (or "")."""
        return NO_DATA if self.empty else ""


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def ad_lines(source: TableSource, scope: SalesScope) -> ir.Table:
    """Advertised-product days in the scope (latest pull of each)."""
    ads = source.table(ADS_DATASET)
    lines = ads.filter(ads.date >= scope.period.start, ads.date <= scope.period.end)
    if scope.marketplace is not None:
        lines = lines.filter(lines.marketplace_id == scope.marketplace.marketplace_id)
    if scope.currency:
        lines = lines.filter(lines.currency == scope.currency)
    return lines.select(
        "marketplace_id",
        "currency",
        "seller_sku",
        "clicks",
        "impressions",
        day=lines.date,
        ad_spend=lines.cost.fill_null(0),
        ad_sales=lines.sales_7d.fill_null(0),
        ad_orders=lines.purchases_7d.fill_null(0),
    )


def _money(name: str) -> pl.Expr:
    return pl.col(name).fill_null(Decimal("0.00")).cast(pl.Decimal(38, 2))


def _ratio(num: str, den: str) -> pl.Expr:
    return (
        pl.when(pl.col(den) > 0)
        .then(pl.col(num).cast(pl.Float64) / pl.col(den).cast(pl.Float64))
        .otherwise(None)
    )


def ads_table(
    source: TableSource,
    scope: SalesScope,
    by: tuple[str, ...] = KEYS,
    lines: tuple[ir.Table, ir.Table] | None = None,
) -> pl.DataFrame:
    """Per currency and `by` (a subset of day, marketplace_id, seller_sku): ad spend, ad sales,
    total sales, clicks, impressions, ad orders, ACoS, TACoS, ROAS.

    Only groups with ad rows are listed (total sales alone is the sales report's business).
    """
    ads, orders = lines or (ad_lines(source, scope), order_lines(source, scope))
    keys = ["currency", *by]
    left = (
        ads.group_by(keys)
        .aggregate(
            ad_spend=ads.ad_spend.sum(),
            ad_sales=ads.ad_sales.sum(),
            clicks=ads.clicks.sum(),
            impressions=ads.impressions.sum(),
            ad_orders=ads.ad_orders.sum(),
        )
        .to_polars()
    )
    right = orders.group_by(keys).aggregate(total_sales=orders.item_price.sum()).to_polars()
    if left.is_empty():
        return left
    df = left.join(right, on=keys, how="left", coalesce=True)
    df = df.with_columns(
        *(_money(c) for c in ("ad_spend", "ad_sales", "total_sales")),
        *(pl.col(c).fill_null(0).cast(pl.Int64) for c in ("clicks", "impressions", "ad_orders")),
    )
    df = df.with_columns(
        acos=_ratio("ad_spend", "ad_sales"),
        tacos=_ratio("ad_spend", "total_sales"),
        roas=_ratio("ad_sales", "ad_spend"),
    )
    order = keys if "day" not in by else ["currency", *by]
    return df.sort(order)


def _with_code(df: pl.DataFrame) -> pl.DataFrame:
    """`marketplace`: the code a seller reads (US, UK, DE) beside the marketplace id."""
    return df.with_columns(
        marketplace=pl.col("marketplace_id").replace_strict(
            {m.marketplace_id: m.code for m in MARKETPLACES},
            default=pl.col("marketplace_id"),
            return_dtype=pl.String,
        )
    )


def build_ads_report(source: TableSource, scope: SalesScope) -> AdsReport:
    """Compute every table of the Advertising section (empty when no ads data is ingested)."""
    lines = (ad_lines(source, scope), order_lines(source, scope))
    skus = ads_table(source, scope, ("marketplace_id", "seller_sku"), lines)
    report = AdsReport(scope)
    if skus.is_empty():
        return report
    report.skus = _with_code(skus.sort(["currency", "ad_spend"], descending=[False, True]))
    report.daily = ads_table(source, scope, ("day",), lines)
    report.marketplaces = _with_code(ads_table(source, scope, ("marketplace_id",), lines))
    orders = lines[1]
    totals = ads_table(source, scope, (), lines)
    all_sales = (
        orders.group_by("currency").aggregate(total_sales=orders.item_price.sum()).to_polars()
    )
    sales_by_currency = {r["currency"]: r["total_sales"] for r in all_sales.to_dicts()}
    for row in totals.to_dicts():
        cur = row["currency"]
        report.totals[cur] = AdTotals(
            currency=cur,
            ad_spend=money(row["ad_spend"]),
            ad_sales=money(row["ad_sales"]),
            total_sales=money(sales_by_currency.get(cur)),
            clicks=int(row["clicks"]),
            impressions=int(row["impressions"]),
            ad_orders=int(row["ad_orders"]),
        )
    return report


#: How profit after ad spend is computed (printed under its table).
AFTER_ADS_RULE = (
    "Profit after ad spend = gross profit of the costed SKUs − all ad spend of the currency "
    "(spend on uncosted SKUs included, so it is never flattered); empty when no unit of the "
    "currency has a cost."
)


def profit_after_ads(totals: Mapping[str, Any], ads: AdsReport) -> pl.DataFrame:
    """Per currency: gross profit (the sales report's `Totals.profit`), ad spend and profit
    after ad spend (see AFTER_ADS_RULE)."""
    rows = []
    for cur in sorted(set(totals) | set(ads.totals)):
        t = totals.get(cur)
        spend = ads.totals[cur].ad_spend if cur in ads.totals else Decimal("0")
        profit = getattr(t, "profit", None) if t is not None else None
        rows.append(
            {
                "currency": cur,
                "gross_profit": profit,
                "ad_spend": spend,
                "profit_after_ads": None if profit is None else profit - spend,
            }
        )
    schema: dict[str, Any] = {
        "currency": pl.String,
        "gross_profit": pl.Decimal(38, 2),
        "ad_spend": pl.Decimal(38, 2),
        "profit_after_ads": pl.Decimal(38, 2),
    }
    return pl.DataFrame(rows, schema=schema)
