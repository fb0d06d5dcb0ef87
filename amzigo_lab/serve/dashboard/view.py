"""What the dashboard's pickers select (period and marketplace), and its bounds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from amzigo_lab.analysis.money import MARKETPLACES, MarketplaceInfo
from amzigo_lab.analysis.period import Period

DEFAULT_DAYS = 30
#: The longest period the pickers may select (a year, leap day included).
MAX_DAYS = 366


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
