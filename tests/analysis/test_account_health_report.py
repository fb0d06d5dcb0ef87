"""The account-health report: each metric against Amazon's target, breaches and trends, exact."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from amzigo_lab.analysis.account_health import (
    EMPTY,
    build_account_health_report,
    trend_charts,
    trend_svg,
    verdict,
    windows_as_of,
)
from amzigo_lab.analysis.money import marketplace
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.source import MemoryTableSource
from amzigo_lab.gateway.sources import LakeTableSource
from amzigo_lab.serve.dashboard import SellerDashboard, View
from tests.analysis.data import END, OTHER, START

LESS, MORE = "LESS_THAN", "GREATER_THAN"


@pytest.mark.parametrize(
    ("rates", "target", "condition", "want"),
    [
        ([0.005, 0.011], 0.01, LESS, "breach"),
        ([0.005, 0.01], 0.01, LESS, "breach"),  # at the threshold is not "less than"
        ([0.003, 0.006, 0.007], 0.01, LESS, "trending"),  # worse twice, past half-way
        ([0.001, 0.002, 0.003], 0.01, LESS, "ok"),  # worse twice, but far from 1 %: noise
        ([0.006, 0.007, 0.0065], 0.01, LESS, "ok"),  # one better window breaks the trend
        ([0.0085], 0.01, LESS, "near"),  # within 20 % of the target
        ([0.99, 0.97, 0.965], 0.95, MORE, "trending"),
        ([0.96, 0.95], 0.95, MORE, "breach"),
        ([0.955], 0.95, MORE, "near"),  # within 20 % of the 5 points above the target
        ([], 0.95, MORE, "ok"),
    ],
)
def test_verdicts(rates: list[float], target: float, condition: str, want: str) -> None:
    assert verdict(rates, target, condition) == want


def test_report_judges_every_window_up_to_as_of(acme: LakeTableSource) -> None:
    report = build_account_health_report(acme, END)
    rows = {(r["marketplace"], r["metric"], r["channel"]): r for r in report.current.to_dicts()}
    assert set(rows) == {
        ("US", "late_shipment_rate", ""),
        ("US", "valid_tracking_rate", ""),
        ("US", "pre_fulfillment_cancellation_rate", ""),
        ("UK", "order_defect_rate", "MFN"),
    }
    vtr = rows[("US", "valid_tracking_rate", "")]
    assert vtr["verdict"] == "breach" and vtr["rate_pct"] == pytest.approx(94.0)
    assert vtr["recent"] == "97.00% → 96.00% → 94.00%"  # the 14 March window is after as_of
    assert vtr["target"] == "> 95%" and vtr["windows"] == 3
    assert vtr["window"] == "2026-02-05 – 2026-03-06"  # 30 days
    late = rows[("US", "late_shipment_rate", "")]
    assert late["verdict"] == "trending" and late["recent"] == "3.00% → 3.40% → 3.70%"
    assert rows[("US", "pre_fulfillment_cancellation_rate", "")]["verdict"] == "near"
    assert rows[("UK", "order_defect_rate", "MFN")]["verdict"] == "ok"
    assert report.counts == {"breach": 1, "trending": 1, "near": 1, "ok": 1}
    assert report.current["verdict"].to_list()[:3] == ["breach", "trending", "near"]  # worst first
    assert report.violations["defects_count"].to_list() == [2]
    assert report.violations["kind"].to_list() == ["Listing policy violations"]  # not the API key
    assert report.violation_count == 2
    assert report.defects.select("marketplace", "channel", "total", "defects").rows() == [
        ("UK", "MFN", 1000, 2)
    ]
    assert report.ratings.select("marketplace", "account_status", "ahr_status").rows() == [
        ("US", "AT_RISK", "WARNED")
    ]
    # later, the 14 March window counts: valid tracking is back at 99 %
    later = build_account_health_report(acme, END + dt.timedelta(days=7))
    after = later.current.filter(pl.col("metric") == "valid_tracking_rate").row(0, named=True)
    assert after["verdict"] == "ok" and after["rate_pct"] == pytest.approx(99.0)
    charts = trend_charts(report, ("breach", "trending"))
    assert len(charts) == 2 and all(c.startswith("<svg") for c in charts)
    assert "US · Valid tracking rate" in charts[0] and "95%" in charts[0]


def test_a_period_reaching_the_present_keeps_its_end_and_judges_amazons_newest_report(
    acme: LakeTableSource,
) -> None:
    """Every report of the same period ends on the same day (the latest local day complete
    everywhere); Amazon's newest account-health windows end a day later (the day before it
    made the report), and a period reaching the present still judges them."""
    now = dt.datetime(2026, 3, 15, 0, 0, tzinfo=dt.UTC)  # Amazon's report of 14 March is in
    current = Period.last_days(30, now=now)
    assert current.end == dt.date(2026, 3, 13)  # Los Angeles: 14 March is not over
    assert windows_as_of(current, now) is None
    report = build_account_health_report(acme, windows_as_of(current, now))
    vtr = report.current.filter(pl.col("metric") == "valid_tracking_rate").row(0, named=True)
    assert vtr["verdict"] == "ok" and vtr["window"].endswith("2026-03-14")
    # one marketplace counts in its own days (London: 14 March is over); a past period ends
    # its windows at its end
    uk = marketplace("UK")
    assert windows_as_of(Period.last_days(30, now=now, marketplace=uk), now, uk) is None
    assert windows_as_of(current, now, uk) == current.end
    past = Period(START, END)
    assert windows_as_of(past, now) == END
    report = build_account_health_report(acme, windows_as_of(past, now))
    vtr = report.current.filter(pl.col("metric") == "valid_tracking_rate").row(0, named=True)
    assert vtr["verdict"] == "breach" and vtr["window"].endswith("2026-03-06")


def test_a_marketplace_filter_and_empty_reports_say_why(acme: LakeTableSource) -> None:
    uk = build_account_health_report(acme, END, marketplace("UK"))
    assert uk.current["marketplace"].to_list() == ["UK"] and uk.violations.height == 0
    early = build_account_health_report(acme, dt.date(2026, 2, 1))
    assert early.empty and early.reason == (
        "No account-health reporting window ends on or before 2026-02-01."
    )
    none = build_account_health_report(MemoryTableSource({}), END)
    assert none.empty and none.reason == EMPTY


def test_other_tenants_windows_never_count(report_lake) -> None:  # type: ignore[no-untyped-def]
    other = build_account_health_report(LakeTableSource(report_lake, OTHER), END)
    assert other.current["rate_pct"].to_list() == [pytest.approx(50.0)]


def test_dashboard_section_flags_breaches_and_trends(acme: LakeTableSource) -> None:
    board = SellerDashboard("acme-outdoor", acme, END, now=dt.datetime(2026, 3, 9, tzinfo=dt.UTC))
    assert board.as_of() == END
    before = END - dt.timedelta(days=1)  # a view ending before "as of" (END): windows to 6 March
    section = board.sections(View(END - dt.timedelta(days=6), before)).account_health
    assert "id='amz-health'" in section and "<td>BREACH</td>" in section
    assert "worsening toward target" in section and "near target" in section
    assert "1 other metric is within Amazon&#x27;s targets." in section
    assert "US AT_RISK (rating WARNED)" in section
    assert "Policy violations in the latest window: 2 (US Listing policy violations: 2)" in section
    assert section.count("<svg") == 2
    # a view reaching "as of" shows the latest windows (the 14 March one: valid tracking ok)
    latest = board.sections(View(END - dt.timedelta(days=6), board.as_of())).account_health
    assert "<td>BREACH</td>" not in latest
    assert "2 other metrics are within Amazon&#x27;s targets." in latest
    uk = board.sections(View(END - dt.timedelta(days=6), before, "UK")).account_health
    assert "Every metric reported (1) is within Amazon&#x27;s targets" in uk
    empty = SellerDashboard("acme-outdoor", acme, END).sections(
        View(dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    )
    assert "No account-health reporting window ends on or before 2026-01-31" in (
        empty.account_health
    )


def _svg_texts(svg: str) -> dict[str, list[tuple[float, str]]]:
    """(y, text) of the chart's labels by class ("tick", "value", "target")."""
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    out: dict[str, list[tuple[float, str]]] = {}
    for t in ET.fromstring(svg).iter(f"{ns}text"):
        out.setdefault(t.get("class", ""), []).append((float(t.get("y", "0")), t.text or ""))
    return out


def test_trend_chart_labels_do_not_collide_and_the_axis_has_a_scale() -> None:
    """The hand-check: cobalt-tech DE late shipment 3.88 % was drawn next to its 4 % target
    label, and the y-axis had no scale."""
    days = [dt.date(2026, 11, d) for d in (9, 16, 23, 30)]
    svg = trend_svg(list(zip(days, [0.0309, 0.0301, 0.0350, 0.0388], strict=True)), 0.04, "DE")
    texts = _svg_texts(svg)
    [(value_y, value)] = texts["value"]
    [(target_y, target)] = texts["target"]
    assert (value, target) == ("3.88%", "target 4%")
    assert abs(value_y - target_y) >= 10  # a label is 10 px high: apart, not overlapping
    assert value_y > target_y  # the value below its target stays below it
    ticks = texts["tick"]
    assert [label for _, label in ticks] == ["3.0%", "3.5%", "4.0%"]
    assert [y for y, _ in ticks] == sorted((y for y, _ in ticks), reverse=True)  # up the axis
    # labels far apart stay beside their lines (92.68 % against a 95 % target)
    far = _svg_texts(trend_svg([(days[-1], 0.9268)], 0.95, "DE", "breach"))
    assert far["target"][0][0] < far["value"][0][0] - 30
    assert [label for _, label in far["tick"]] == ["93%", "94%", "95%"]
    # at the top of the box both labels still fit inside it
    top = _svg_texts(trend_svg([(days[-1], 0.0401)], 0.04, "x"))
    assert min(top["value"][0][0], top["target"][0][0]) >= 22
    assert abs(top["value"][0][0] - top["target"][0][0]) >= 10
