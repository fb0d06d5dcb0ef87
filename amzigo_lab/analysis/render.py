"""HTML for reports: KPI tiles and formatted tables (self-contained, printable, no scripts).

Every value is HTML-escaped. Money columns are formatted in the currency of their row.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import polars as pl

from amzigo_lab.analysis.money import fmt_money, fmt_pct
from amzigo_lab.analysis.sales import Tile

STYLE = """<style>
.amz-tiles{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0 14px}
.amz-tile{border:1px solid #ccd;border-radius:6px;padding:8px 12px;min-width:130px;
  page-break-inside:avoid;font-family:sans-serif}
.amz-tile .l{font-size:11px;color:#555;text-transform:uppercase;letter-spacing:.04em}
.amz-tile .v{font-size:20px;font-weight:600;margin:2px 0}
.amz-tile .c{font-size:11px}.amz-up{color:#1a7f37}.amz-down{color:#b2182b}.amz-flat{color:#777}
table.amz{border-collapse:collapse;font-family:sans-serif;font-size:12px;margin:4px 0 12px}
table.amz th{background:#f0f2f5;text-align:left !important;padding:4px 8px;
  border-bottom:1px solid #99a}
table.amz td{padding:3px 8px;border-bottom:1px solid #e3e5e8;text-align:left !important}
table.amz td.n{text-align:right !important;font-variant-numeric:tabular-nums}
.amz-note{font-size:11px;color:#555;font-family:sans-serif}
.amz-badge{padding:1px 6px;border-radius:8px;font-size:11px}
.amz-worse{color:#b2182b;font-weight:600}.amz-better{color:#1a7f37}
table.amz td.w{max-width:340px}
</style>"""

BAD_WHEN_UP = frozenset({"refunds", "refund_rate", "fees"})


_MOVE = re.compile(r"([▲▼■] [+−]?[\d,.]+ pts)")


def _cell(value: Any, kind: str, currency: str) -> str:
    """A cell's escaped HTML; `moves` text gets its "▲ +3.5 pts" parts marked as worse."""
    text = html.escape(_fmt(value, "text" if kind == "moves" else kind, currency))
    if kind == "moves":
        return _MOVE.sub(r"<span class='amz-worse'>\1</span>", text)
    return text


def _fmt(value: Any, kind: str, currency: str) -> str:
    if value is None:
        return "–"
    if kind == "money":
        return fmt_money(value, currency)
    if kind == "pct":
        return fmt_pct(value)
    if kind == "count":
        return f"{int(value):,}"
    if kind == "float1":
        return f"{float(value):,.1f}"
    if kind == "float2":
        return f"{float(value):,.2f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | float):
        return f"{value:,.2f}"
    return str(value)


def tiles_html(tiles: Sequence[Tile], comparison_label: str = "") -> str:
    """KPI tiles grouped by currency, each with its change against the comparison period."""
    out = [STYLE]
    currencies = list(dict.fromkeys(t.currency for t in tiles))
    for cur in currencies:
        out.append(f"<h4 style='font-family:sans-serif;margin:4px 0'>{html.escape(cur)}</h4>")
        out.append("<div class='amz-tiles'>")
        for t in (t for t in tiles if t.currency == cur):
            ctext, cls = tile_change(t)
            out.append(
                f"<div class='amz-tile' data-metric='{t.metric}' data-currency='{cur}'>"
                f"<div class='l'>{html.escape(t.label)}</div>"
                f"<div class='v'>{html.escape(_fmt(t.value, t.kind, cur))}</div>"
                f"<div class='c {cls}'>{html.escape(ctext)}</div></div>"
            )
        out.append("</div>")
    if comparison_label:
        out.append(f"<p class='amz-note'>Changes against {html.escape(comparison_label)}.</p>")
    return "".join(out)


def tile_change(t: Tile) -> tuple[str, str]:
    """A tile's change text and CSS class. Rates (refund rate, margin) move in percentage
    points ("▼ -1.2 pts vs 50.1%"), the rest relatively ("▲ +3.1% vs £90.39"); the arrow and
    colour follow the change as printed, so one too small to show is "■ 0.0%" (never "▼ -0.0%")."""
    if t.previous is None:
        return "no comparison", "amz-flat"
    if t.kind == "pct":
        if t.value is None:
            return "–", "amz-flat"
        shown, unit = round((float(t.value) - float(t.previous)) * 100, 1), " pts"
    else:
        change = t.change
        if change is None:
            return "–", "amz-flat"
        shown, unit = round(change * 100, 1), "%"
    previous = _fmt(t.previous, t.kind, t.currency)
    if shown == 0:
        return f"■ 0.0{unit} vs {previous}", "amz-flat"
    good = (shown > 0) != (t.metric in BAD_WHEN_UP)
    arrow = "▲" if shown > 0 else "▼"
    return f"{arrow} {shown:+.1f}{unit} vs {previous}", "amz-up" if good else "amz-down"


def table_html(
    df: pl.DataFrame,
    columns: Iterable[tuple[str, str, str]] | None = None,
    currency_col: str = "currency",
    currency: str = "",
    max_rows: int = 200,
    table_id: str = "",
    more: str = "",
) -> str:
    """A formatted table. `columns` = (column, header, kind); kinds: money, pct, count,
    float1, float2, text, moves (text whose "▲ +3.5 pts" parts are marked). Money uses the
    row's `currency_col` (or `currency`). Beyond `max_rows` a note says how many rows were
    left out ("+N more {more}" when `more` names them). The table carries its full row count
    (`data-rows`, read by the run summary)."""
    cols = list(columns or [(c, c, "text") for c in df.columns])
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in cols)
    rows = []
    for r in df.head(max_rows).to_dicts():
        cur = str(r.get(currency_col) or currency)
        cells = []
        for c, _, kind in cols:
            num = kind in ("money", "pct", "count", "float1", "float2")
            cls = " class='n'" if num else ""
            cells.append(f"<td{cls}>{_cell(r.get(c), kind, cur)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    left_out = ""
    if df.height > max_rows:
        n = df.height - max_rows
        text = f"+{n:,} more {more}".rstrip() if more else f"{n:,} more rows not shown."
        left_out = f"<p class='amz-note amz-more'>{html.escape(text)}</p>"
    ident = f" id='{html.escape(table_id)}'" if table_id else ""
    return (
        f"{STYLE}<table class='amz'{ident} data-rows='{df.height}'><thead><tr>{head}</tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>{left_out}"
    )


def facts_html(facts: Sequence[tuple[str, str, str]]) -> str:
    """Plain tiles: (label, value, small print) each, no comparison."""
    out = [STYLE, "<div class='amz-tiles'>"]
    for label, value, small in facts:
        out.append(
            f"<div class='amz-tile'><div class='l'>{html.escape(label)}</div>"
            f"<div class='v'>{html.escape(value)}</div>"
            f"<div class='c amz-flat'>{html.escape(small)}</div></div>"
        )
    out.append("</div>")
    return "".join(out)


def note(text: str) -> str:
    """A small explanatory paragraph."""
    return f"<p class='amz-note'>{html.escape(text)}</p>"
