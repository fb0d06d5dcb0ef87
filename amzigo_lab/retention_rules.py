"""Retention rules: how a partition's purge date follows from its rows and ingestion date.

Rules are computed at write time and stored per partition, so a purge only drops partitions.
A rule whose deadline depends on the rows (PII: 30 days after delivery) returns one date per
row; the writer then splits the batch into one partition per purge date.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` plus calendar months, clamped to the month's last day (31 Aug + 6 = 28/29 Feb)."""
    idx = day.month - 1 + months
    year, month = day.year + idx // 12, idx % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class MonthsAfterIngestion:
    """Keep for N calendar months after ingestion (Amazon non-PII data: 18)."""

    months: int

    @property
    def name(self) -> str:
        """The rule's name in the catalog and the record of processing."""
        return f"{self.months}_months_after_ingestion"

    @property
    def row_dependent(self) -> bool:
        """Whether rows of one ingestion day can have different purge dates."""
        return False

    def purge_dates(self, table: pa.Table, ingest_date: dt.date) -> pa.Array:
        """One purge date per row."""
        return pa.repeat(pa.scalar(self.purge_date(ingest_date), pa.date32()), table.num_rows)

    def purge_date(self, ingest_date: dt.date) -> dt.date:
        """The purge date of everything ingested on `ingest_date`."""
        return add_months(ingest_date, self.months)

    def describe(self) -> str:
        """Human-readable rule."""
        return f"deleted {self.months} calendar months after ingestion"


@dataclass(frozen=True)
class DaysAfterDelivery:
    """PII: N days after the order's delivery, and never later than N days after ingestion."""

    days: int
    delivery_column: str

    @property
    def name(self) -> str:
        """The rule's name in the catalog and the record of processing."""
        return f"{self.days}_days_after_delivery"

    @property
    def row_dependent(self) -> bool:
        """Whether rows of one ingestion day can have different purge dates."""
        return True

    def purge_dates(self, table: pa.Table, ingest_date: dt.date) -> pa.Array:
        """min(delivery, ingestion) + N days per row; undelivered rows: ingestion + N days."""
        delta = dt.timedelta(days=self.days)
        cap = ingest_date + delta
        delivered = table.column(self.delivery_column).cast(pa.date32())
        by_delivery = pc.add(delivered, pa.scalar(delta, pa.duration("s"))).cast(pa.date32())
        filled = pc.fill_null(by_delivery, pa.scalar(cap, pa.date32()))
        return pc.min_element_wise(filled, pa.scalar(cap, pa.date32()))

    def describe(self) -> str:
        """Human-readable rule."""
        return (
            f"deleted {self.days} days after order delivery, and at most {self.days} days "
            "after ingestion for rows ingested before delivery"
        )


@dataclass(frozen=True)
class WhileTenantActive:
    """Internal data the seller gave us (e.g. product costs): kept while the tenant is active.

    Not Amazon data, so the 18-month rule does not apply: the purge date is the far future
    (`KEPT_UNTIL`) and the retention purge never picks it. It goes with the tenant: a deletion
    of the whole tenant (`amzigo delete --tenant T` without --dataset, run when a seller
    leaves) or of this dataset (`--dataset NAME`) drops it, certified like any other drop.
    """

    @property
    def name(self) -> str:
        """The rule's name in the catalog and the record of processing."""
        return "while_tenant_active"

    @property
    def row_dependent(self) -> bool:
        """Whether rows of one ingestion day can have different purge dates."""
        return False

    def purge_dates(self, table: pa.Table, ingest_date: dt.date) -> pa.Array:
        """One purge date per row (all the far future)."""
        return pa.repeat(pa.scalar(self.purge_date(ingest_date), pa.date32()), table.num_rows)

    def purge_date(self, ingest_date: dt.date) -> dt.date:
        """`KEPT_UNTIL`: no date-based purge."""
        return KEPT_UNTIL

    def describe(self) -> str:
        """Human-readable rule."""
        return (
            "internal data, kept while the tenant is active; deleted with the tenant "
            "(amzigo delete --tenant T) or on request (--dataset), never by the Amazon purge"
        )


#: The purge date of data kept while its tenant is active (never reached by a purge).
KEPT_UNTIL = dt.date(9999, 12, 31)

RetentionRule = MonthsAfterIngestion | DaysAfterDelivery | WhileTenantActive
