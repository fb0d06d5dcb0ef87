"""What every stream shares: its context, its result, record collection with quarantine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pyarrow as pa

from amzigo_lab.datasets import REGISTRY
from amzigo_lab.errors import AmzigoError
from amzigo_lab.source.client import ClientFactory, MalformedResponse

if TYPE_CHECKING:
    from amzigo_lab.source.ratelimit import Scheduler
    from amzigo_lab.source.sync import LakeGateway

C = TypeVar("C")
T = TypeVar("T")
#: Rows buffered before a batch is written.
FLUSH_ROWS = 50_000
_CENT = Decimal("0.01")


class InvalidRecord(AmzigoError, ValueError):
    """A record that does not fit its dataset (goes to the quarantine)."""


@dataclass
class ProgressEvent:
    """Something the progress display may show."""

    tenant: str
    stream: str
    kind: str  # "rows", "pages", "reports_pending", "status"
    value: Any = 0
    dataset: str = ""


Progress = Callable[[ProgressEvent], None]


@dataclass
class StreamResult:
    """The outcome of one stream for one tenant."""

    tenant: str
    stream: str
    status: str = "ok"  # ok | failed | pending (reports still in flight) | skipped
    rows: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    quarantined: int = 0
    pii_skipped_expired: int = 0
    reports_pending: int = 0
    reports_fatal: int = 0
    reports_discarded: int = 0  # vanished, or not the report requested: asked again
    events: dict[str, int] = field(default_factory=dict)  # events seen per kind (finances)
    error: str = ""
    seconds: float = 0.0

    def add_rows(self, dataset: str, n: int) -> None:
        """Count rows written to `dataset`."""
        self.rows[dataset] = self.rows.get(dataset, 0) + n


@dataclass
class StreamContext:
    """Everything a stream run needs for one tenant."""

    tenant: str
    marketplaces: tuple[str, ...]
    factory: ClientFactory
    scheduler: Scheduler
    store: LakeGateway
    today: dt.date  # ingest date of what is written
    now: dt.datetime  # the API's "now" (upper bound of time windows)
    since: dt.date | None  # explicit start of the windows (None: cursor or default backfill)
    backfill_days: int
    pii: bool
    time_scale: float
    report_wait: float  # seconds to wait for reports before leaving them pending
    max_solicitation_checks: int
    progress: Progress
    _clients: dict[tuple[type, str], Any] = field(default_factory=dict)

    def client(self, api_class: type[C], marketplace_id: str | None = None) -> C:
        """A cached checked client of `api_class` for this tenant."""
        mp = marketplace_id or self.marketplaces[0]
        key = (api_class, mp)
        if key not in self._clients:
            self._clients[key] = self.factory.client(api_class, self.tenant, mp)
        return self._clients[key]

    def call(self, operation: str, request: Callable[[], T]) -> T:
        """One rate-limited, retried request."""
        return self.scheduler.call(
            self.tenant, operation, request, lambda: self.factory.forget_token(self.tenant)
        )

    def start(self, cursor: dt.datetime | None, lookback: dt.timedelta) -> dt.datetime:
        """Start of a time window: --since, else cursor minus look-back, else the backfill."""
        if self.since is not None:
            return dt.datetime.combine(self.since, dt.time(), dt.UTC)
        if cursor is not None:
            return cursor - lookback
        first = self.now.date() - dt.timedelta(days=self.backfill_days)
        return dt.datetime.combine(first, dt.time(), dt.UTC)

    def emit(self, stream: str, kind: str, value: Any = 0, dataset: str = "") -> None:
        """Report progress."""
        self.progress(ProgressEvent(self.tenant, stream, kind, value, dataset))


class Stream(Protocol):
    """A stream family: fetches pages and writes one or more datasets."""

    @property
    def name(self) -> str:
        """The stream's name (its sync-state key)."""

    @property
    def datasets(self) -> tuple[str, ...]:
        """The datasets it writes."""

    def run(self, ctx: StreamContext, result: StreamResult) -> None:
        """Fetch and write; update `result`; raise to fail the stream (cursor unchanged)."""


class Collector:
    """Rows per dataset built from raw records; records that do not fit go to quarantine."""

    def __init__(self, ctx: StreamContext, stream: str, result: StreamResult) -> None:
        self.ctx = ctx
        self.stream = stream
        self.result = result
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.bad: list[tuple[str, Any, str]] = []
        self.floors: dict[str, dt.date | None] = {}
        self.buffered = 0

    def add(
        self, dataset: str, raw: Any, build: Callable[[], dict[str, list[dict[str, Any]]]]
    ) -> None:
        """Build the rows of one raw record (all or nothing)."""
        try:
            built = build()
            for name, rows in built.items():
                _check_required(name, rows)
        except (
            InvalidRecord,
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            ArithmeticError,
        ) as exc:
            self.bad.append((dataset, raw, f"{type(exc).__name__}: {exc}"))
            return
        for name, rows in built.items():
            self.rows.setdefault(name, []).extend(rows)
            self.buffered += len(rows)

    def flush(self, floors: dict[str, dt.date | None] | None = None, force: bool = False) -> None:
        """Write buffered rows (when enough are buffered, or `force`)."""
        if not force and self.buffered < FLUSH_ROWS:
            return
        floors = floors or {}
        for name, rows in self.rows.items():
            if not rows:
                continue
            table = self._table(name, rows)
            written = self.ctx.store.write(
                name, self.ctx.tenant, self.ctx.today, table, floors.get(name)
            )
            self.result.add_rows(name, written)
            self.ctx.emit(self.stream, "rows", written, name)
        self.rows = {}
        self.buffered = 0
        if self.bad:
            self.result.quarantined += len(self.bad)
            self.ctx.store.quarantine(self.stream, self.ctx.tenant, self.ctx.today, self.bad)
            self.ctx.emit(self.stream, "quarantined", len(self.bad))
            self.bad = []

    def _table(self, name: str, rows: list[dict[str, Any]]) -> pa.Table:
        schema = REGISTRY[name].schema
        try:
            return pa.Table.from_pylist(rows, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            good = []
            for row in rows:  # find the culprits one by one
                try:
                    pa.Table.from_pylist([row], schema=schema)
                except (
                    pa.ArrowInvalid,
                    pa.ArrowTypeError,
                    TypeError,
                    ValueError,
                    OverflowError,
                ) as exc:
                    self.bad.append((name, row, f"{type(exc).__name__}: {exc}"))
                else:
                    good.append(row)
            return pa.Table.from_pylist(good, schema=schema)


def _check_required(dataset: str, rows: list[dict[str, Any]]) -> None:
    spec = REGISTRY[dataset]
    for row in rows:
        for col in spec.columns:
            if not col.nullable and row.get(col.name) is None:
                raise InvalidRecord(f"{dataset}.{col.name} is missing")


# -- parsing helpers ------------------------------------------------------------------------
def ts(value: Any) -> dt.datetime | None:
    """An ISO 8601 timestamp (Z or offset; a bare date is midnight UTC) as aware UTC."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidRecord(f"timestamp expected, got {type(value).__name__}")
    text = value.replace("Z", "+00:00")
    moment = (
        dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
        if len(text) == 10
        else dt.datetime.fromisoformat(text)
    )
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def iso_z(moment: dt.datetime) -> str:
    """UTC ISO 8601 with a Z and whole seconds."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: Any) -> Decimal | None:
    """A money amount (string in the newer APIs, number in v0 and reports) as Decimal(…, 2)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidRecord(f"amount expected, got {type(value).__name__}")
    try:
        return Decimal(str(value)).quantize(_CENT)
    except InvalidOperation:
        raise InvalidRecord(f"invalid amount {value!r}") from None


def integer(value: Any) -> int | None:
    """An integer count."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRecord(f"integer expected, got {type(value).__name__}")
    return int(value)


def number(value: Any) -> float | None:
    """A float ratio."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRecord(f"number expected, got {type(value).__name__}")
    return float(value)


def page_list(payload: Any, *path: str) -> list[Any]:
    """The list at `path` in a page, or MalformedResponse (fails the stream).

    An empty payload (a 204, or `{}`) is no data: an empty list.
    """
    if payload is None or payload == {}:
        return []
    node = payload
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise MalformedResponse(f"page has no {'.'.join(path)}")
        node = node[key]
    if not isinstance(node, list):
        raise MalformedResponse(f"page field {'.'.join(path)} is not a list")
    return node
