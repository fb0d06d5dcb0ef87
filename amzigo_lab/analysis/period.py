"""Report periods: inclusive date ranges and their comparison periods."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

COMPARISONS = ("previous_period", "previous_year", "none")


@dataclass(frozen=True)
class Period:
    """An inclusive range of UTC dates."""

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
    def last_days(cls, days: int, today: dt.date | None = None) -> Period:
        """The `days` complete days before `today` (UTC)."""
        today = today or dt.datetime.now(dt.UTC).date()
        end = today - dt.timedelta(days=1)
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
