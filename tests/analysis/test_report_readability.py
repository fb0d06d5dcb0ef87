"""What a seller reads in the reports: part weeks drawn as part weeks, charts that say what
they leave out, Amazon's codes in words (each on the shared report fixtures, exact)."""

from __future__ import annotations

import datetime as dt

import pytest

from amzigo_lab.analysis import charts
from amzigo_lab.analysis.account_health import violation_label
from amzigo_lab.analysis.inventory import InventoryParams, build_inventory_report
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.reviews import build_reviews_report, with_state_labels
from amzigo_lab.analysis.sales import SalesScope, build_sales_report
from tests.analysis.data import END, START

PERIOD = Period(START, END)  # Sunday 1 March to Saturday 7 March 2026: two part weeks


@pytest.fixture(scope="module")
def weekly(acme):  # type: ignore[no-untyped-def]
    return build_sales_report(acme, SalesScope(PERIOD)).weekly


def test_each_week_says_which_days_of_the_period_it_covers(weekly) -> None:  # type: ignore[no-untyped-def]
    rows = {(r["currency"], r["day"]): r for r in weekly.to_dicts()}
    first, last = rows[("USD", dt.date(2026, 2, 23))], rows[("USD", dt.date(2026, 3, 2))]
    assert (first["first_day"], first["last_day"], first["days"]) == (START, START, 1)
    assert (last["first_day"], last["last_day"], last["days"]) == (dt.date(2026, 3, 2), END, 6)


def test_weekly_chart_draws_part_weeks_as_part_weeks(weekly) -> None:  # type: ignore[no-untyped-def]
    """A bar spans the days of its week inside the period (a 1-day week is a narrow, lighter
    bar, not a slump), from zero, and the axis ends where the period does."""
    spec = charts.weekly_sales(weekly).to_dict()
    enc = spec["spec"]["encoding"]
    assert enc["x"]["field"] == "first_day" and enc["x2"]["field"] == "end_day"
    assert enc["y2"] == {"datum": 0}
    rows = {r["day"]: r for r in spec["data"]["values"] if r["currency"] == "USD"}
    assert rows["2026-02-23"]["week"] == "part week"
    assert rows["2026-02-23"]["end_day"] == "2026-03-02"
    assert rows["2026-03-02"]["end_day"] == "2026-03-08"
    assert charts.to_svg(charts.weekly_sales(weekly)).startswith("<svg")


def test_days_of_cover_chart_says_what_it_leaves_out(acme) -> None:  # type: ignore[no-untyped-def]
    """The title says when only the most urgent SKUs are drawn, and the axis keeps room right
    of the longest bar or lead-time tick (a tick at the axis end read as the chart's border)."""
    params = InventoryParams(
        velocity_days=7, lead_times={"SKU-RED": 14, "SKU-GREEN": 2}, safety_stock={"SKU-GREEN": 0}
    )
    table = build_inventory_report(acme, END, params).table
    assert table.height == 5
    top = charts.days_of_cover(table, n=3).to_dict()
    assert top["title"] == "Days of cover against lead time: the 3 most urgent of 5 SKUs"
    domain = top["layer"][0]["encoding"]["x"]["scale"]["domain"]
    longest = max(table.head(3)["lead_time"].max(), table.head(3)["days_of_cover"].max())
    assert domain[0] == 0 and domain[1] > longest
    every = charts.days_of_cover(table).to_dict()
    assert every["title"] == "Days of cover against lead time"  # all 5 drawn: nothing left out
    assert every["layer"][0]["encoding"]["x"]["scale"]["domain"][1] > 120  # SKU-OLD: capped


def test_review_request_states_read_as_words(acme) -> None:  # type: ignore[no-untyped-def]
    counts = build_reviews_report(acme, PERIOD).request_counts
    assert with_state_labels(counts)["state_label"].to_list() == [
        "can be requested now",
        "window not open yet",
        "not eligible",
        "already requested",
        "buyer objected: never requested",
    ]


def test_violation_keys_read_as_words() -> None:
    assert violation_label("listingPolicyViolations") == "Listing policy violations"
    assert violation_label("warning:spammingSellerMessaging") == (
        "Warning: spamming seller messaging"
    )
    assert violation_label("foodAndProductSafetyIssues") == "Food and product safety issues"
