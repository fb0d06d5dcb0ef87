"""KPI tiles read as a seller reads Seller Central: rates move in percentage points, and a change
too small to print is flat, not a red "▼ -0.0%"."""

from __future__ import annotations

import re
from decimal import Decimal

from amzigo_lab.analysis import render
from amzigo_lab.analysis.sales import Tile


def _change(tile: Tile) -> tuple[str, str]:
    html = render.tiles_html([tile])
    found = re.search(r"<div class='c ([\w-]+)'>([^<]*)</div>", html)
    assert found, html
    return found.group(2), found.group(1)


def test_rates_move_in_points_money_and_counts_relatively() -> None:
    # the demo's cobalt-tech GBP margin went from 50.1 % to 48.9 %: 1.2 points, not "-2.5%"
    margin = Tile("GBP", "margin", "Margin", "pct", Decimal("0.489"), Decimal("0.501"))
    assert _change(margin) == ("▼ -1.2 pts vs 50.1%", "amz-down")
    refunds = Tile("USD", "refund_rate", "Refund rate", "pct", Decimal("0.035"), Decimal("0.031"))
    assert _change(refunds) == ("▲ +0.4 pts vs 3.1%", "amz-down")  # a rising refund rate is bad
    from_zero = Tile("EUR", "refund_rate", "Refund rate", "pct", Decimal("0.02"), Decimal("0"))
    assert _change(from_zero) == ("▲ +2.0 pts vs 0.0%", "amz-down")
    sales = Tile("GBP", "sales", "Sales", "money", Decimal("55306.75"), Decimal("55230.42"))
    assert _change(sales) == ("▲ +0.1% vs £55,230.42", "amz-up")
    orders = Tile("USD", "orders", "Orders", "count", 1644, 1778)
    assert _change(orders) == ("▼ -7.5% vs 1,778", "amz-down")


def test_a_change_too_small_to_print_is_flat() -> None:
    # cobalt-tech EUR margin 49.3 % vs 49.3 %: was "▼ -0.0%" in red
    margin = Tile("EUR", "margin", "Margin", "pct", Decimal("0.49301"), Decimal("0.49320"))
    assert _change(margin) == ("■ 0.0 pts vs 49.3%", "amz-flat")
    sales = Tile("EUR", "sales", "Sales", "money", Decimal("1000.00"), Decimal("1000.20"))
    assert _change(sales) == ("■ 0.0% vs €1,000.20", "amz-flat")


def test_no_comparison_and_no_value() -> None:
    assert _change(Tile("USD", "sales", "Sales", "money", Decimal("5"), None)) == (
        "no comparison",
        "amz-flat",
    )
    assert _change(Tile("USD", "sales", "Sales", "money", Decimal("5"), Decimal("0")))[0] == "–"
    assert _change(Tile("USD", "margin", "Margin", "pct", None, Decimal("0.3")))[0] == "–"
