"""The seller dashboard, as the notebook's kernel runs it (logic here, notebook thin).

`SellerDashboard.open(tenant, token=...)` is the governed, tenant-bound read, served by the
gateway: the pre-launch hook injects the tenant from the logged-in user's record and a
`svc:dashboard` token the server minted for that tenant; the gateway checks the token, asks the
policy which datasets the service may read for each purpose (sales_analysis,
inventory_tracking, review_management; never buyer PII), reduces ONLY that tenant's partitions
to their latest state and writes one `data.read` audit event per dataset with its row count.
The kernel receives Arrow into a private in-memory DuckDB and holds no key; widget updates
then query memory only (fast).

Rendering is offline and light: KPI tiles and tables are the report builders' HTML, charts are
small hand-written SVGs (importing altair costs 1.7 s and vl-convert's first call 0.6 s on this
machine, which alone would break the 3 s first-render target).
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
from amzigo_lab.analysis.reviews import topic_changes, topic_trends
from amzigo_lab.analysis.sales import (
    SalesScope,
    kpi_tiles,
    sales_totals,
    sku_table,
    traffic_daily,
    trend,
)
from amzigo_lab.analysis.source import ReportError

SERVICE_ACTOR = "svc:dashboard"
#: Dataset -> the purpose the dashboard reads it for.
DATASETS: dict[str, str] = {
    "orders": "sales_analysis",
    "order_items": "sales_analysis",
    "financial_events": "sales_analysis",
    "sales_traffic_by_date": "sales_analysis",
    "product_costs": "sales_analysis",
    "inventory_snapshots": "inventory_tracking",
    "review_trends": "review_management",
    "account_health_metrics": "sales_analysis",
    "account_health_violations": "sales_analysis",
    "account_health_rating": "sales_analysis",
    "ads_product_daily": "sales_analysis",
}
DEFAULT_DAYS = 30
#: The longest period the pickers may select (a year, leap day included).
MAX_DAYS = 366
ALERT_STATUSES = ("out", "critical", "reorder")
#: The most urgent alerts the stock section lists (the inventory report lists every SKU).
ALERT_ROWS = 30


@dataclass(frozen=True)
class View:
    """What the widgets selected."""

    start: dt.date
    end: dt.date
    marketplace: str = ""  # "" = all, else a marketplace code

    @property
    def period(self) -> Period:
        """The selected period (start and end swapped if given backwards)."""
        a, b = sorted((self.start, self.end))
        return Period(a, b)

    @property
    def market(self) -> MarketplaceInfo | None:
        """The selected marketplace, or None for all."""
        return next((m for m in MARKETPLACES if m.code == self.marketplace), None)


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


class ArrowSource:
    """A `TableSource` over Arrow tables registered on a private in-memory DuckDB (zero copy).

    (ibis' `create_table` from Arrow fails with duckdb 2.0.1, so `MemoryTableSource` can't be
    used here; registering the Arrow tables on the connection works.)
    """

    def __init__(self, tables: dict[str, Any], backend: Any = None) -> None:
        self.backend = backend or self.connect()
        self._tables = {}
        for name, data in tables.items():
            self.backend.con.register(name, data)
            self._tables[name] = self.backend.table(name)

    @staticmethod
    def connect() -> Any:
        """A private in-memory DuckDB (ibis backend) computing dates in UTC."""
        import ibis

        backend = ibis.duckdb.connect()
        # dates of UTC timestamps must not depend on the server's time zone
        backend.raw_sql("SET TimeZone = 'UTC'")
        return backend

    def table(self, name: str) -> Any:
        """The registered table `name`."""
        if name not in self._tables:
            raise ReportError(f"the dashboard did not load dataset {name!r}")
        return self._tables[name]


def require_tenant(tenant: str) -> str:
    """The injected tenant id, validated; ReportError when none was injected (fail closed)."""
    from amzigo_lab.names import tenant_id

    if not str(tenant or "").strip():
        raise ReportError("no tenant was injected: this dashboard is served only to sellers")
    return tenant_id(tenant)


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
        from amzigo_lab.client import protocol, service
        from amzigo_lab.client.transport import GatewayClient
        from amzigo_lab.client.workbench import home_path

        where = home_path(home or None)
        if token:
            address = protocol.default_address(where)
        else:
            minted = service.mint(
                where, SERVICE_ACTOR, tenant, sorted(set(DATASETS.values())), require_data=False
            )
            address, token = minted.address, minted.token
        backend = ArrowSource.connect()
        tables: dict[str, Any] = {}
        try:
            with GatewayClient(address, token) as client:
                for name, purpose in DATASETS.items():
                    ticket = {"op": protocol.TICKET_LATEST, "dataset": name, "purpose": purpose}
                    tables[name] = client.table(ticket)
        finally:
            service.revoke(address, token)
        items = tables["order_items"]
        last = None
        clock = dt.datetime.now(dt.UTC)
        if items.num_rows:
            import pyarrow.compute as pc

            newest = pc.max(items.column("purchase_date")).as_py()
            last = newest.date() if newest is not None else None
            if newest is not None:  # a day is complete once it is over AND the data is past it
                clock = min(clock, newest)
        params = params_from_parameters(inventory or {})
        return cls(tenant, ArrowSource(tables, backend), last, params, clock)

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
            n = int(report.violations["defects_count"].fill_null(0).sum())
            parts.append(render.note(f"Policy violations in the latest window: {n}."))
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
        return render.table_html(
            moved,
            [
                ("asin", "ASIN", "text"),
                ("marketplace", "Mkt", "text"),
                ("sentiment", "Sentiment", "text"),
                ("topic", "Topic", "text"),
                ("occurrence_percentage", "Share %", "float1"),
                ("change", "Change (points)", "float1"),
                ("verdict", "", "text"),
            ],
            table_id="amz-reviews",
        )


# -- tiny offline SVG charts -----------------------------------------------------------------

_W, _H, _L, _R, _T, _B = 560, 170, 64, 12, 24, 26


def _scale(values: list[float]) -> tuple[float, float]:
    lo = min(0.0, *values) if values else 0.0
    hi = max(values) if values else 1.0
    return lo, (hi if hi > lo else lo + 1.0)


def _frame(title: str, lo: float, hi: float, fmt: Any, days: list[dt.date]) -> list[str]:
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_W}' height='{_H}' "
        f"viewBox='0 0 {_W} {_H}' role='img' aria-label='{html.escape(title)}' "
        "style='font-family:sans-serif;font-size:10px;margin:4px 12px 8px 0'>",
        f"<text x='{_L}' y='14' font-size='12' font-weight='600'>{html.escape(title)}</text>",
        f"<line x1='{_L}' y1='{_H - _B}' x2='{_W - _R}' y2='{_H - _B}' stroke='#999'/>",
    ]
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        y = _H - _B - (_H - _T - _B) * frac
        out.append(
            f"<line x1='{_L}' y1='{y:.1f}' x2='{_W - _R}' y2='{y:.1f}' stroke='#eee'/>"
            f"<text x='{_L - 4}' y='{y + 3:.1f}' text-anchor='end' fill='#555'>"
            f"{html.escape(fmt(v))}</text>"
        )
    if days:
        last = len(days) - 1
        for i in sorted({0, len(days) // 2, last}):
            x = _x(i, len(days))
            anchor = "start" if i == 0 and last else "end" if i == last and last else "middle"
            out.append(
                f"<text x='{x:.1f}' y='{_H - 8}' text-anchor='{anchor}' fill='#555'>"
                f"{days[i].isoformat()}</text>"
            )
    return out


def _x(i: int, n: int) -> float:
    span = _W - _L - _R
    return _L + (span / 2 if n == 1 else span * i / (n - 1))


def _y(v: float, lo: float, hi: float) -> float:
    return _H - _B - (_H - _T - _B) * (v - lo) / (hi - lo)


def line_svg(points: list[tuple[dt.date, float]], title: str, fmt: Any) -> str:
    """A line chart of (day, value) points as an SVG string."""
    values = [v for _, v in points]
    lo, hi = _scale(values)
    out = _frame(title, lo, hi, fmt, [d for d, _ in points])
    coords = [(_x(i, len(points)), _y(v, lo, hi)) for i, (_, v) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    out.append(f"<polyline fill='none' stroke='#1f77b4' stroke-width='2' points='{path}'/>")
    for (x, y), (d, v) in zip(coords, points, strict=True):
        out.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2.5' fill='#1f77b4'>"
            f"<title>{d.isoformat()}: {html.escape(fmt(v))}</title></circle>"
        )
    out.append("</svg>")
    return "".join(out)


def bar_svg(points: list[tuple[dt.date, float]], title: str, fmt: Any) -> str:
    """A bar chart of (day, value) points as an SVG string."""
    values = [v for _, v in points]
    lo, hi = _scale(values)
    out = _frame(title, lo, hi, fmt, [d for d, _ in points])
    n = max(len(points), 1)
    width = min(18.0, max(1.0, (_W - _L - _R) / n * 0.7))
    for i, (d, v) in enumerate(points):
        x, y = _x(i, n), _y(v, lo, hi)
        out.append(
            f"<rect x='{x - width / 2:.1f}' y='{y:.1f}' width='{width:.1f}' "
            f"height='{_H - _B - y:.1f}' fill='#67a9cf'><title>{d.isoformat()}: "
            f"{html.escape(fmt(v))}</title></rect>"
        )
    out.append("</svg>")
    return "".join(out)


# -- the widgets -----------------------------------------------------------------------------

_CSS = """<style>
.amz-head{font-family:sans-serif;font-size:14px;color:#333;margin:2px 0 6px}
.amz-h2{font-family:sans-serif;font-size:15px;font-weight:600;margin:14px 0 4px}
.amz-row{display:flex;flex-flow:row wrap}
</style>"""


def _h2(text: str) -> str:
    return f"<div class='amz-h2'>{html.escape(text)}</div>"


#: The page's boxes (one `widgets.HTML` each, few widgets render faster): box -> (its heading,
#: the sections it shows in order). A box is set once its last section is computed.
BOXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "heading": ("", ("heading",)),
    "tiles": ("Key figures", ("tiles",)),
    "charts": ("Sales and traffic", ("sales_chart", "traffic_chart")),
    "products": ("Top products", ("products",)),
    "advertising": ("Advertising", ("advertising",)),
    "inventory": ("Inventory alerts", ("inventory",)),
    "reviews": ("Review-topic changes", ("reviews",)),
    "account_health": ("Account health", ("account_health",)),
}


def box_html(box: str, parts: dict[str, str]) -> str:
    """The HTML of one box from its sections' fragments."""
    title, names = BOXES[box]
    body = "".join(parts[n] for n in names)
    if box == "heading":
        return _CSS + body
    if len(names) > 1:
        body = f"<div class='amz-row'>{body}</div>"
    return _h2(title) + body


#: Each section's box: the box is set when this, its last section, is computed.
_BOX_OF_LAST = {names[-1]: box for box, (_, names) in BOXES.items()}
_LOADING = _h2(BOXES["tiles"][0]) + (
    "<div style='font-family:sans-serif;color:#777'>Loading your figures…</div>"
)


class DashboardWidgets:
    """The dashboard's widgets. Pickers update sections by SETTING `widgets.HTML` values
    (never by writing into Output widgets, which hangs Voila while a notebook executes)."""

    def __init__(self) -> None:
        import ipywidgets as w

        self.board: SellerDashboard | None = None
        self.start = w.DatePicker(description="From", layout=w.Layout(width="220px"))
        self.end = w.DatePicker(description="To", layout=w.Layout(width="220px"))
        self.market = w.Dropdown(
            options=[("All marketplaces", "")], value="", description="Marketplace"
        )
        self.start.add_class("amz-start")
        self.end.add_class("amz-end")
        self.market.add_class("amz-market")
        self.status = w.HTML(_status("loading…"))
        self.boxes = {name: w.HTML() for name in BOXES}
        self.boxes["heading"].value = _CSS
        self.boxes["tiles"].value = _LOADING
        self.seq = 0
        self._adjusting = False
        self.root = w.VBox(
            [
                self.boxes["heading"],
                w.HBox([self.start, self.end, self.market]),
                self.status,
                *(self.boxes[name] for name in BOXES if name != "heading"),
            ]
        )

    def attach(self, board: SellerDashboard) -> None:
        """Show `board`: set the pickers to its default view, then fill every section."""
        self.board = board
        view = board.default_view()
        self.market.options = [("All marketplaces", ""), *[(c, c) for c in board.marketplaces]]
        self.start.value, self.end.value = view.start, view.end
        latest = max(dt.datetime.now(dt.UTC).date(), board.last_day or view.end)
        for picker in (self.start, self.end):
            picker.max = latest  # the browser's picker offers no later day
        for picker in (self.start, self.end, self.market):
            picker.observe(self.refresh, names="value")
        self.refresh()

    def attach_or_report(
        self,
        tenant: str,
        home: str = "",
        token: str = "",
        inventory: dict[str, Any] | None = None,
    ) -> None:
        """Load `tenant`'s data and show it. On failure the seller sees that it failed and a
        reference id (no error type, message, path or value) and no data; the operator finds
        the details under that reference in the server's log (see `report_failure`)."""
        try:
            self.attach(SellerDashboard.open(tenant, home, token, inventory))
        except Exception as exc:  # shown instead of an endless "loading"
            message = report_failure(f"load the data of {tenant}", exc)
            self.boxes["tiles"].value = render.note(
                message.replace(f" of {tenant}", " of your account")
            )
            self.status.value = _status("failed")

    def refresh(self, *_: Any) -> None:
        """Recompute every section for the pickers' values (kept within `bound_view`); each
        box is sent when ready. A failure shows a plain message with a reference id."""
        import time

        board = self.board
        if self._adjusting or board is None or self.start.value is None or self.end.value is None:
            return
        t0 = time.perf_counter()
        view, note = self._bounded_view(board)
        try:
            parts: dict[str, str] = {}
            for name, value in board.iter_sections(view):
                parts[name] = value
                box = _BOX_OF_LAST.get(name)
                if box is not None:  # each assignment is sent to the browser at once
                    self.boxes[box].value = box_html(box, parts)
        except Exception as exc:
            self.seq += 1
            self.status.value = _status(report_failure("update the figures", exc), self.seq)
            return
        self.seq += 1
        done = f"updated in {time.perf_counter() - t0:.2f} s"
        self.status.value = _status(f"{note} {done}" if note else done, self.seq)

    def _bounded_view(self, board: SellerDashboard) -> tuple[View, str]:
        """The pickers' view within bounds; pickers moved back into bounds if they were not."""
        today = dt.datetime.now(dt.UTC).date()
        latest = max(today, board.last_day or today)
        view = View(self.start.value, self.end.value, self.market.value or "")
        bounded, note = bound_view(view, latest)
        if (bounded.start, bounded.end) != (self.start.value, self.end.value):
            self._adjusting = True  # no refresh per picker change: this one goes on
            try:
                self.start.value, self.end.value = bounded.start, bounded.end
            finally:
                self._adjusting = False
        return bounded, note


def bound_view(view: View, latest: dt.date) -> tuple[View, str]:
    """`view` with its period kept within bounds, and a note for the seller if it changed:
    nothing after `latest` (today, or the newest data if that is later), at most `MAX_DAYS`
    days (the start moves up to fit)."""
    start, end = sorted((view.start, view.end))
    notes = []
    if end > latest:
        end = latest
        notes.append(f"dates after {latest.isoformat()} are not available")
    start = min(start, end)
    if (end - start).days + 1 > MAX_DAYS:
        start = end - dt.timedelta(days=MAX_DAYS - 1)
        notes.append(f"a period is at most {MAX_DAYS} days")
    if not notes:
        return view, ""
    bounded = View(start, end, view.marketplace)
    return bounded, f"Period changed to {start.isoformat()} – {end.isoformat()}: " + (
        "; ".join(notes) + "."
    )


def report_failure(what: str, exc: BaseException) -> str:
    """Log `exc` with a new reference id to the operator's log (the kernel's real stderr,
    which is the server's log); return the plain message a seller sees instead."""
    import secrets
    import sys
    import traceback

    ref = secrets.token_hex(6)
    detail = "".join(traceback.format_exception(exc)).rstrip()
    print(
        f"amzigo dashboard: error ref {ref}: {what}: {type(exc).__name__}: {exc}\n{detail}",
        file=sys.__stderr__,
    )
    return (
        f"The dashboard could not {what}. Reload the page; if it keeps happening, tell your "
        f"administrator the reference {ref}."
    )


def _status(text: str, seq: int = 0) -> str:
    return (
        f"<span id='amz-status' data-seq='{seq}' class='amz-note' "
        f"style='font-family:sans-serif;font-size:11px;color:#777'>{html.escape(text)}</span>"
    )


def show(
    tenant: str, home: str = "", token: str = "", inventory: dict[str, Any] | None = None
) -> Any:
    """The seller dashboard for `tenant`, as the notebook displays it.

    Fails closed at once (an error, no widgets) when no tenant was injected. In a kernel, the
    widgets are returned empty and the data is loaded right after the cell finishes, on the
    kernel's own event loop (never a thread): Voila sends the page meanwhile, and the browser
    boots its scripts while the kernel reads the lake. The browser's first request reaches the
    kernel after that work (the kernel handles one thing at a time), so it finds the values
    set. Outside a kernel (tests, scripts) everything happens before returning.
    `inventory`: stock-advice parameters the server injected from the home's config.
    """
    tenant = require_tenant(tenant)
    ui = DashboardWidgets()
    loop = _kernel_loop()
    if loop is None:
        ui.attach(SellerDashboard.open(tenant, home, token, inventory))
    else:
        loop.call_later(0.01, ui.attach_or_report, tenant, home, token, inventory)
    return ui.root


def _kernel_loop() -> Any:
    """The event loop of the IPython kernel running this code; None outside a kernel."""
    import asyncio

    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
