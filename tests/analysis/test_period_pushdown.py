"""Issue 17: the period filter runs below the latest-state window (`period_table`) for datasets
whose records never change their fixed date (an order's purchase date). The reports must be
identical to filtering after the window over every version ever ingested."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from amzigo_lab.analysis.money import MARKETPLACES
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.sales import SalesScope, build_sales_report
from amzigo_lab.analysis.source import FIXED_DATE_COLUMNS, period_bounds
from amzigo_lab.config import load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.gateway.sources import LakeTableSource
from amzigo_lab.home import init_home
from tests.analysis import data
from tests.analysis.data import COSTS, END, START


class FullHistory:
    """The builders' view without `period_table`: latest state over all history, then filter
    (what every report did before issue 17)."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def table(self, name: str) -> Any:
        return self._source.table(name)


def _same_report(a: Any, b: Any) -> None:
    assert a.totals == b.totals
    assert a.previous == b.previous
    assert a.tiles == b.tiles
    assert a.notes == b.notes
    for name in ("daily", "weekly", "skus", "marketplaces", "traffic", "traffic_daily"):
        assert_frame_equal(getattr(a, name), getattr(b, name))


PERIODS = [
    Period(START, END),
    Period(START, START),  # one day: A4's two versions, A3 canceled
    Period(dt.date(2026, 2, 22), dt.date(2026, 3, 8)),
    Period(dt.date(2026, 3, 8), dt.date(2026, 3, 31)),  # A5 only
    Period(dt.date(2025, 1, 1), dt.date(2025, 1, 31)),  # nothing
]


@pytest.mark.parametrize("period", PERIODS, ids=str)
def test_reports_identical_with_period_below_the_window(report_lake, period: Period) -> None:
    for tenant in (data.ACME, data.OTHER):
        fast = LakeTableSource(report_lake, tenant)
        slow = LakeTableSource(report_lake, tenant)
        markets = (None, *MARKETPLACES[:2]) if period == PERIODS[0] else (None,)
        for marketplace in markets:
            scope = SalesScope(period, marketplace)
            _same_report(
                build_sales_report(fast, scope, period.previous(), COSTS),
                build_sales_report(FullHistory(slow), scope, period.previous(), COSTS),
            )


def test_fixed_date_is_filtered_below_the_window(acme) -> None:
    """The period's bounds reach the scan (EXPLAIN shows them in the Arrow scan's filters),
    so the window only sorts the period's versions."""
    import ibis

    t = acme.period_table("order_items", Period(START, END))
    plan = acme.backend.con.sql("EXPLAIN " + ibis.to_sql(t, dialect="duckdb")).fetchall()
    text = "\n".join(str(r[1]) for r in plan)
    window, scan = text.index("WINDOW"), text.index("ARROW_SCAN")
    assert window < scan  # the scan sits below the window ...
    pushed = text[scan:].split("Filters:")[1]
    assert "purchase_date>=" in pushed and "purchase_date<" in pushed  # ... filtered there


def test_period_bounds_cover_every_marketplace_day() -> None:
    from zoneinfo import ZoneInfo

    period = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 7))
    lo, hi = period_bounds(period)
    zones = {m.timezone for m in MARKETPLACES} | {"Pacific/Kiritimati", "Etc/GMT+12", "UTC"}
    for zone in zones:
        first = dt.datetime.combine(period.start, dt.time(), ZoneInfo(zone))
        last = dt.datetime.combine(period.end, dt.time(23, 59, 59, 999999), ZoneInfo(zone))
        assert lo <= first.astimezone(dt.UTC) and last.astimezone(dt.UTC) < hi, zone


def test_versions_across_the_period_edge(tmp_path) -> None:
    """A record purchased in the period and updated (canceled) long after it, in a later
    partition, and a record purchased before the period and updated inside it: the period's
    report sees exactly the latest state of the first and never the second."""
    lake = init_home(load_settings(tmp_path / "home", env={}), audit=MemorySink())
    try:
        o, i = [], []
        o.append((dt.date(2026, 3, 2), [data._order("P1", "2026-03-02")]))
        i.append((dt.date(2026, 3, 2), [data._item("P1", 1, "2026-03-02", "S", "B", 1, "10")]))
        late = data._order("P1", "2026-03-02", "Canceled")
        late["last_update_date"] = data.ts("2026-04-20")
        o.append((dt.date(2026, 4, 20), [late]))
        item_late = data._item("P1", 1, "2026-03-02", "S", "B", 2, "20")
        item_late["last_update_date"] = data.ts("2026-04-20")
        i.append((dt.date(2026, 4, 20), [item_late]))
        old = data._item("P0", 1, "2026-02-27", "S", "B", 5, "50")
        o.append((dt.date(2026, 2, 27), [data._order("P0", "2026-02-27")]))
        i.append((dt.date(2026, 2, 27), [old]))
        old_upd = dict(old, last_update_date=data.ts("2026-03-03"), quantity_ordered=6)
        i.append((dt.date(2026, 3, 3), [old_upd]))
        n = 0
        for name, batches in (("orders", o), ("order_items", i)):
            for day, rows in batches:
                lake.write(name, "t1", day, data.table(name, rows), f"b{n}")
                n += 1
        for period in (
            Period(dt.date(2026, 3, 1), dt.date(2026, 3, 7)),
            Period.parse("2026-02-27", "2026-04-30"),
        ):
            scope = SalesScope(period)
            fast = build_sales_report(LakeTableSource(lake, "t1"), scope)
            slow = build_sales_report(FullHistory(LakeTableSource(lake, "t1")), scope)
            _same_report(fast, slow)
        march = build_sales_report(
            LakeTableSource(lake, "t1"), SalesScope(Period.parse("2026-03-01", "2026-03-07"))
        )
        assert march.totals == {}  # P1 was canceled later; P0 was bought before the period
        feb = build_sales_report(
            LakeTableSource(lake, "t1"), SalesScope(Period.parse("2026-02-27", "2026-02-27"))
        )
        assert feb.totals["USD"].units == 6  # P0's latest version, updated inside March
    finally:
        lake.close()


def test_fixed_date_columns_are_declared_and_utc() -> None:
    from amzigo_lab.datasets import REGISTRY

    for name, column in FIXED_DATE_COLUMNS.items():
        field = REGISTRY[name].schema.field(column)
        assert field.type == pa.timestamp(field.type.unit, tz="UTC") and not field.nullable
        assert column not in REGISTRY[name].natural_key


def test_in_period_equals_the_local_day_rule() -> None:
    """The fast period test (zone conversion only near the edges) agrees with converting every
    instant, for every marketplace alias and an unknown one, every 15 minutes around both edges
    (DST changes included)."""
    import ibis

    from amzigo_lab.analysis.sales import in_period, local_day

    markets = [a for m in MARKETPLACES for a in (m.marketplace_id, m.code, m.sales_channel)]
    markets.append("XX-unknown")
    rows = []
    for period in (
        Period.parse("2026-03-08", "2026-03-29"),
        Period.parse("2026-10-25", "2026-11-01"),
    ):
        for edge in (period.start, period.end + dt.timedelta(days=1)):
            base = dt.datetime.combine(edge, dt.time(), dt.UTC)
            for q in range(-4 * 40, 4 * 40):
                at = base + dt.timedelta(minutes=15 * q)
                rows += [{"ts": at, "m": m, "p": str(period)} for m in markets]
    t = ibis.memtable(pa.Table.from_pylist(rows))
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    for period in (
        Period.parse("2026-03-08", "2026-03-29"),
        Period.parse("2026-10-25", "2026-11-01"),
    ):
        day = local_day(t.ts, t.m)
        expr = t.select(
            fast=in_period(t.ts, t.m, period),
            slow=(day >= period.start) & (day <= period.end),
        )
        got = con.to_pyarrow(expr)
        assert got["fast"].to_pylist() == got["slow"].to_pylist()
        assert 0 < sum(got["fast"].to_pylist()) < got.num_rows
