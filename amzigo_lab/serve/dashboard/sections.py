"""The seller dashboard's HTML sections (KPI tiles, charts, products, advertising, stock,
reviews, account health), computed over a tenant's data in memory.

KPI tiles and tables are the report builders' HTML; charts are the small SVGs of `svg`.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from amzigo_lab.analysis import render
from amzigo_lab.analysis.account_health import (
    RULES as HEALTH_RULES,
)
from amzigo_lab.analysis.account_health import (
    build_account_health_report,
    trend_charts,
)
from amzigo_lab.analysis.inventory import (
    STATUS_RULES,
    InventoryParams,
    InventoryReport,
    build_inventory_report,
    params_from_parameters,
)
from amzigo_lab.analysis.money import MARKETPLACES, MarketplaceInfo, fmt_money
from amzigo_lab.analysis.period import Period, day_rule, latest_complete_day
from amzigo_lab.analysis.profit import cost_notes, cost_rows
from amzigo_lab.analysis.reviews import item_titles, topic_changes, topic_trends
from amzigo_lab.analysis.sales import (
    SalesScope,
    kpi_tiles,
    sales_totals,
    sku_table,
    traffic_daily,
    trend,
)
from amzigo_lab.serve.dashboard.loading import load, require_tenant
from amzigo_lab.serve.dashboard.svg import bar_svg, line_svg
from amzigo_lab.serve.dashboard.view import DEFAULT_DAYS, View

ALERT_STATUSES = ("out", "critical", "reorder")
#: The most urgent alerts the stock section lists (the inventory report lists every SKU).
ALERT_ROWS = 30


@dataclass
class Sections:
    """The dashboard's HTML fragments (each goes into one `widgets.HTML`)."""

    heading: str
    tiles: str
    sales_chart: str
    traffic_chart: str
    products: str
    inventory: str
    reviews: str
    account_health: str
    advertising: str


class SellerDashboard:
    """One tenant's dashboard data (in memory) and its HTML sections."""

    def __init__(
        self,
        tenant: str,
        source: Any,
        last_day: dt.date | None,
        params: InventoryParams | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        self.tenant = tenant
        self.source = source
        self.last_day = last_day
        #: lead times and safety stock (the server injects the home's `[inventory]` settings)
        self.params = params or InventoryParams()
        #: the clock of "as of": the data's (its newest order) when older than the load time;
        #: None: the current time
        self.now = now
        self.marketplaces = self._marketplaces()
        self._cache: dict[tuple[object, ...], str] = {}
        self._facts: dict[str, bool] = {}

    @classmethod
    def open(
        cls,
        tenant: str,
        home: str = "",
        token: str = "",
        inventory: dict[str, Any] | None = None,
    ) -> SellerDashboard:
        """Load `tenant`'s data from the gateway as `svc:dashboard` (fail closed).

        `token`: the service token the dashboard server minted for this seller's tenant and
        injected with the tenant (a kernel holds nothing else). Without one (scripts, tests on a
        home that is not hardened) a token is minted with the gateway's operator credential,
        which only the service account can read. The token is revoked once the data is loaded:
        widget updates compute on the kernel's copy. `inventory`: the stock-advice parameters
        (`InventoryParams.as_parameters`), injected by the server from the home's config.
        """
        tenant = require_tenant(tenant)
        data = load(tenant, home, token)
        params = params_from_parameters(inventory or {})
        return cls(tenant, data.source, data.last_day, params, data.clock)

    # -- choices for the widgets -------------------------------------------------------------
    def _marketplaces(self) -> list[str]:
        ids = set(self.source.table("orders").marketplace_id.to_pyarrow().to_pylist())
        return [m.code for m in MARKETPLACES if m.marketplace_id in ids]

    def markets(self, market: MarketplaceInfo | None = None) -> list[MarketplaceInfo]:
        """The marketplaces a view covers: the chosen one, else the tenant's (else all)."""
        if market is not None:
            return [market]
        mine = [m for m in MARKETPLACES if m.code in self.marketplaces]
        return mine or list(MARKETPLACES)

    def as_of(self) -> dt.date:
        """The latest local day complete in every marketplace of the tenant (the reports'
        "as of"), or the newest order's day when the data stops earlier."""
        end = latest_complete_day(self.now, self.markets())
        return min(end, self.last_day) if self.last_day else end

    def default_view(self, today: dt.date | None = None) -> View:
        """The 30 days ending "as of" (`as_of`); `today` instead ends them the day before."""
        end = today - dt.timedelta(days=1) if today else self.as_of()
        return View(end - dt.timedelta(days=DEFAULT_DAYS - 1), end, "")

    # -- sections ----------------------------------------------------------------------------
    def sections(self, view: View) -> Sections:
        """Every section for the selected view."""
        return Sections(**dict(self.iter_sections(view)))

    def iter_sections(self, view: View) -> Iterator[tuple[str, str]]:
        """(section name, HTML) in display order, most important first, so the widgets can
        show the key figures while the rest is computed."""
        period, market = view.period, view.market
        scope = SalesScope(period, market)
        previous = period.previous()
        where = market.code if market else "all marketplaces"
        yield (
            "heading",
            (
                f"<div class='amz-head' id='amz-heading'><b>{html.escape(self.tenant)}</b> · "
                f"{html.escape(period.label())} · {html.escape(where)}</div>"
                + render.note(day_rule(self.markets(market)))
            ),
        )
        current = sales_totals(self.source, scope)
        before = sales_totals(self.source, SalesScope(previous, market))
        tiles = render.tiles_html(kpi_tiles(current, before), previous.label())
        if not current:
            tiles += render.note(f"No orders in this period ({period.label()}, {where}).")
        for text in cost_notes(current, self._have_costs()):  # gross profit's coverage
            tiles += render.note(text)
        yield "tiles", f"<div id='amz-tiles' data-period='{period}'>{tiles}</div>"
        yield "sales_chart", self._sales_chart(scope)
        yield "traffic_chart", self._traffic_chart(scope)
        yield "products", self._products(scope)
        yield "advertising", self._advertising(scope, current)
        inv_key = ("inventory", period.end, view.marketplace)  # stock depends on the end only
        if inv_key not in self._cache:
            self._cache[inv_key] = self._inventory(self.stock(period, market))
        yield "inventory", self._cache[inv_key]
        rev_key = ("reviews", period.start, period.end, view.marketplace)
        if rev_key not in self._cache:
            self._cache[rev_key] = self._reviews(period, market)
        yield "reviews", self._cache[rev_key]
        # windows up to the period's end; a view reaching "as of" shows the latest report (its
        # windows end the day before it was made, which may be after the local "as of")
        health_end = None if period.end >= self.as_of() else period.end
        health_key = ("account_health", health_end, view.marketplace)
        if health_key not in self._cache:
            self._cache[health_key] = self._account_health(health_end, market)
        yield "account_health", self._cache[health_key]
        if len(self._cache) > 64:
            self._cache.clear()

    def _sales_chart(self, scope: SalesScope) -> str:
        daily = trend(self.source, scope, "day")
        if daily.height == 0:
            return render.note("No orders in this period: no sales to chart.")
        parts = []
        for cur in sorted(set(daily["currency"].to_list())):
            sub = daily.filter(pl.col("currency") == cur)
            points = [(d, float(v)) for d, v in zip(sub["day"], sub["sales"], strict=True)]
            parts.append(
                line_svg(points, f"Sales per day ({cur})", lambda v, c=cur: fmt_money(v, c))
            )
        return "<div id='amz-sales-chart'>" + "".join(parts) + "</div>"

    def _traffic_chart(self, scope: SalesScope) -> str:
        td = traffic_daily(self.source, scope)
        if td.height == 0:
            return render.note(
                "No Sales & Traffic data in this period (Amazon publishes a day's report a day "
                "or two later)."
            )
        per_day = td.group_by("day").agg(pl.col("sessions").sum(), pl.col("units").sum())
        per_day = per_day.sort("day")
        bars = [(d, float(s)) for d, s in zip(per_day["day"], per_day["sessions"], strict=True)]
        total_s = int(per_day["sessions"].sum())
        total_u = int(per_day["units"].sum())
        conv = f"{total_u / total_s * 100:.1f}%" if total_s else "–"
        return (
            "<div id='amz-traffic-chart'>"
            + bar_svg(bars, "Sessions per day", lambda v: f"{v:,.0f}")
            + render.note(f"{total_s:,} sessions, {total_u:,} units, unit session {conv}.")
            + "</div>"
        )

    def _have_costs(self) -> bool:
        if "have_costs" not in self._facts:
            self._facts["have_costs"] = cost_rows(self.source).height > 0
        return self._facts["have_costs"]

    def _products(self, scope: SalesScope) -> str:
        skus = sku_table(self.source, scope).filter(pl.col("rank") <= 10)
        if skus.height == 0:
            return render.note("No orders in this period: no products sold.")
        columns = [
            ("rank", "#", "count"),
            ("currency", "Cur.", "text"),
            ("seller_sku", "SKU", "text"),
            ("asin", "ASIN", "text"),
            ("sales", "Sales", "money"),
            ("units", "Units", "count"),
            ("refunds", "Refunds", "money"),
            ("net", "Net", "money"),
        ]
        if self._have_costs():  # empty cells: the SKU sold units without a cost that day
            columns += [("cogs", "COGS", "money"), ("profit", "Gross profit", "money"),
                        ("margin", "Margin", "pct")]  # fmt: skip
        return render.table_html(skus, columns, table_id="amz-products")

    def _advertising(self, scope: SalesScope, totals: Mapping[str, Any]) -> str:
        from amzigo_lab.analysis.ads import (
            AFTER_ADS_RULE,
            DEFINITIONS,
            build_ads_report,
            profit_after_ads,
        )

        ads = build_ads_report(self.source, scope)
        if ads.empty:
            return render.note(f"No advertising figures: {ads.note} for this period.")
        after = render.table_html(
            profit_after_ads(totals, ads),
            [
                ("currency", "Currency", "text"),
                ("gross_profit", "Gross profit", "money"),
                ("ad_spend", "Ad spend", "money"),
                ("profit_after_ads", "Profit after ad spend", "money"),
            ],
            table_id="amz-profit-after-ads",
        ) + render.note(AFTER_ADS_RULE)
        return (
            after
            + render.table_html(
                ads.totals_frame(),
                [
                    ("currency", "Currency", "text"),
                    ("ad_spend", "Ad spend", "money"),
                    ("ad_sales", "Ad sales", "money"),
                    ("total_sales", "Total sales", "money"),
                    ("acos", "ACoS", "pct"),
                    ("tacos", "TACoS", "pct"),
                    ("roas", "ROAS", "float2"),
                ],
                table_id="amz-advertising",
            )
            + render.note(DEFINITIONS)
        )

    def stock(self, period: Period, market: MarketplaceInfo | None) -> InventoryReport:
        """The stock advice for a period ending at `period.end`: the inventory report's own
        builder, parameters and clock (so the dashboard and the report agree)."""
        return build_inventory_report(self.source, period.end, self.params, market, self.now)

    def _inventory(self, report: InventoryReport) -> str:
        table = report.table
        if table.height == 0:
            return f"<div id='amz-inventory-empty'>{render.note(report.reason)}</div>"
        alerts = table.filter(pl.col("status").is_in(ALERT_STATUSES))
        label = render.note(
            f"As of {report.as_of.isoformat()}: {report.stock_label()}; {table.height} SKUs "
            f"tracked, {alerts.height} need action."
        )
        rules = render.note(STATUS_RULES.format(overstock=report.params.overstock_days))
        if alerts.height == 0:
            return (
                label + render.note("No stock alerts: every SKU is healthy or overstocked.") + rules
            )
        return (
            label
            + render.table_html(
                alerts,
                [
                    ("status", "Status", "text"),
                    ("marketplace", "Mkt", "text"),
                    ("seller_sku", "SKU", "text"),
                    ("on_hand", "On hand", "count"),
                    ("inbound", "Inbound", "count"),
                    ("days_of_cover", "Days of cover", "float1"),
                    ("lead_time", "Lead time", "count"),
                    ("reorder_quantity", "Reorder qty", "count"),
                    ("reorder_date", "Reorder by", "text"),
                ],
                max_rows=ALERT_ROWS,
                table_id="amz-inventory",
            )
            + rules
        )

    def _account_health(self, end: dt.date | None, market: MarketplaceInfo | None) -> str:
        """Each account-health metric against Amazon's target: breaches, trends toward one and
        near misses first (with their windows drawn), a count of the metrics that are fine."""
        report = build_account_health_report(self.source, end, market)
        if report.empty:
            return f"<div id='amz-health-empty'>{render.note(report.reason)}</div>"
        flagged = report.current.filter(pl.col("verdict") != "ok")
        fine = report.current.height - flagged.height
        statuses = ", ".join(
            f"{r['marketplace']} {r['account_status'] or '–'} (rating {r['ahr_status'] or '–'})"
            for r in report.ratings.to_dicts()
        )
        parts = [render.note(f"Account status: {statuses}.")] if statuses else []
        if flagged.height == 0:
            parts.append(
                render.note(
                    f"Every metric reported ({fine}) is within Amazon's targets, none worsening "
                    "toward one."
                )
            )
        else:
            parts.append(
                render.table_html(
                    flagged,
                    [
                        ("verdict_label", "Verdict", "text"),
                        ("marketplace", "Mkt", "text"),
                        ("label", "Metric", "text"),
                        ("channel", "Channel", "text"),
                        ("rate_pct", "Rate %", "float2"),
                        ("target", "Target", "text"),
                        ("recent", "Last windows", "text"),
                    ],
                    table_id="amz-health",
                )
            )
            charts = trend_charts(report, ("breach", "trending"))
            if charts:
                parts.append("<div class='amz-row'>" + "".join(charts) + "</div>")
            others = "1 other metric is" if fine == 1 else f"{fine} other metrics are"
            parts.append(render.note(f"{others} within Amazon's targets."))
        if report.violations.height:
            kinds = "; ".join(
                f"{r['marketplace']} {r['kind']}: {r['defects_count'] or 1}"
                for r in report.violations.to_dicts()
            )
            parts.append(
                render.note(
                    f"Policy violations in the latest window: {report.violation_count} ({kinds}); "
                    "Amazon's target is 0."
                )
            )
        parts.append(render.note(HEALTH_RULES))
        return "<div id='amz-account-health'>" + "".join(parts) + "</div>"

    def _reviews(self, period: Period, market: MarketplaceInfo | None) -> str:
        changes = topic_changes(topic_trends(self.source, period, market))
        moved = changes.filter(pl.col("change").is_not_null()).sort(
            pl.col("change").abs(), descending=True
        )
        if moved.height == 0:
            return render.note("No review-topic changes to compare in this period.")
        moved = moved.head(10).with_columns(
            verdict=pl.when(pl.col("worsening")).then(pl.lit("worse")).otherwise(pl.lit("ok"))
        )
        titles = item_titles(self.source, market)  # the catalog is not among its datasets
        moved = moved.join(titles, on=["asin", "marketplace"], how="left", maintain_order="left")
        return render.table_html(
            moved,
            [
                ("title", "Product", "text"),
                ("asin", "ASIN", "text"),
                ("marketplace", "Mkt", "text"),
                ("sentiment", "Sentiment", "text"),
                ("topic", "Topic", "text"),
                ("occurrence_percentage", "Share %", "float1"),
                ("change", "Change (points)", "float1"),
                ("verdict", "Verdict", "text"),
            ],
            table_id="amz-reviews",
        )
