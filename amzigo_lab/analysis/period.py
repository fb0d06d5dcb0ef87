"""Report periods: inclusive ranges of marketplace-local days, their comparison periods, and
"as of": the latest complete local day.

Seller Central reports each marketplace in its own local day (US: America/Los_Angeles, UK:
Europe/London, DE: Europe/Berlin; see `money.MARKETPLACES`). A period's dates are local days:
an order belongs to the day of its purchase time in its marketplace's zone. A local day is
complete once it has ended in that zone; a period "as of" now ends at the latest day that is
complete in every marketplace it covers (so no marketplace shows a half day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from amzigo_lab.analysis.money import MARKETPLACES, MarketplaceInfo

COMPARISONS = ("previous_period", "previous_year", "none")


@dataclass(frozen=True)
class Period:
    """An inclusive range of marketplace-local dates."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period end {self.end} is before its start {self.start}")

    @classmethod
    def parse(cls, start: str | dt.date, end: str | dt.date) -> Period:
        """From ISO strings or dates."""
        return cls(_date(start), _date(end))

    @classmethod
    def last_days(
        cls,
        days: int,
        today: dt.date | None = None,
        *,
        now: dt.datetime | None = None,
        marketplace: MarketplaceInfo | None = None,
    ) -> Period:
        """The `days` days ending at the latest complete local day (`latest_complete_day`) of
        `marketplace` (None: of every marketplace) at `now`. `today` (a date) instead ends
        the period the day before it, whatever the zones."""
        if today is not None:
            end = today - dt.timedelta(days=1)
        else:
            end = latest_complete_day(now, [marketplace] if marketplace else None)
        return cls(end - dt.timedelta(days=days - 1), end)

    @property
    def days(self) -> int:
        """Number of days in the period."""
        return (self.end - self.start).days + 1

    @property
    def end_exclusive(self) -> dt.date:
        """The day after `end`."""
        return self.end + dt.timedelta(days=1)

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        end = self.start - dt.timedelta(days=1)
        return Period(end - dt.timedelta(days=self.days - 1), end)

    def previous_year(self) -> Period:
        """The same dates one year earlier (29 Feb -> 28 Feb)."""
        return Period(_year_back(self.start), _year_back(self.end))

    def label(self) -> str:
        """ "2026-03-01 – 2026-03-31"."""
        return f"{self.start.isoformat()} – {self.end.isoformat()}"

    def __str__(self) -> str:
        return f"{self.start.isoformat()}_{self.end.isoformat()}"


def comparison_period(period: Period, comparison: str) -> Period | None:
    """The comparison period: "previous_period", "previous_year", "none"/"" or "START..END"."""
    c = (comparison or "none").strip()
    if c == "previous_period":
        return period.previous()
    if c == "previous_year":
        return period.previous_year()
    if c == "none":
        return None
    if ".." in c:
        a, b = c.split("..", 1)
        return Period.parse(a, b)
    raise ValueError(
        f"unknown comparison {comparison!r}: use {', '.join(COMPARISONS)} or START..END"
    )


def _date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _year_back(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def utc_now(now: dt.datetime | None = None) -> dt.datetime:
    """`now` (naive means UTC) or the current time, as an aware UTC datetime."""
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.UTC)
    return now.astimezone(dt.UTC)


def parse_now(value: str | dt.datetime | None) -> dt.datetime:
    """A report's `now` parameter: "" / None = the current time; else an ISO timestamp
    (naive = UTC). Reports and the dashboard compute "as of" from it."""
    if isinstance(value, dt.datetime):
        return utc_now(value)
    text = str(value or "").strip()
    if not text:
        return utc_now()
    try:
        return utc_now(dt.datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"{value!r} is not a timestamp (YYYY-MM-DDTHH:MM[:SS][+00:00])") from None


def local_today(marketplace: MarketplaceInfo, now: dt.datetime | None = None) -> dt.date:
    """The marketplace's current local date."""
    return utc_now(now).astimezone(ZoneInfo(marketplace.timezone)).date()


def latest_complete_day(
    now: dt.datetime | None = None, marketplaces: Iterable[MarketplaceInfo] | None = None
) -> dt.date:
    """The latest local day that has ended in every one of `marketplaces` (default: all)."""
    markets = list(marketplaces or MARKETPLACES)
    return min(local_today(m, now) for m in markets) - dt.timedelta(days=1)


def is_current(
    end: dt.date,
    now: dt.datetime | None = None,
    marketplaces: Iterable[MarketplaceInfo] | None = None,
) -> bool:
    """Whether a period ending at `end` reaches the present (ends at or after the latest
    complete day): then the stock position is today's, not a past one."""
    return end >= latest_complete_day(now, marketplaces)


def day_rule(marketplaces: Iterable[MarketplaceInfo] | None = None) -> str:
    """The footer sentence stating how days are counted."""
    markets = list(marketplaces or MARKETPLACES)
    zones = ", ".join(f"{m.code} {m.timezone}" for m in markets)
    return (
        "Days are each marketplace's local day, as Seller Central reports them "
        f"({zones}): orders by purchase time, refunds and fees by posting time, both converted "
        "to the marketplace's zone; Sales & Traffic rows keep the day Amazon reported. A period "
        "ending 'as of' now ends at the latest day complete in every marketplace shown."
    )
