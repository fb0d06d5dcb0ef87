"""`ingest()`: every stream of every tenant, into the lake, from Amazon or the embedded sandbox.

With Amazon credentials configured (encrypted store or environment) it talks to Amazon; on a
sandbox home (`amzigo init --sandbox`, source/mode.py) it starts the sandbox in-process (state
under `<home>/state/sandbox`, world from `sandbox_seed`/`sandbox_today`) and ingests from it.
A home with neither is refused: the sandbox is never used implicitly.

Tenants run in parallel worker threads (Amazon's limits are per selling partner); the streams of
one tenant run in order. The lake stays on the calling thread (see `sync.LakeGateway`).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from amzigo_lab.errors import AmzigoError, ConfigError
from amzigo_lab.incident_pauses import paused_tenants
from amzigo_lab.source.client import (
    ClientFactory,
    Connection,
    amazon_connection,
    sandbox_connection,
)
from amzigo_lab.source.ratelimit import Scheduler, SchedulerStats
from amzigo_lab.source.streams import STREAMS, ProgressEvent, StreamContext, StreamResult
from amzigo_lab.source.sync import LakeGateway

if TYPE_CHECKING:
    from amzigo_lab.config import Settings
    from amzigo_lab.lake.store import Lake
    from amzigo_lab.sandbox import SandboxServer

DEFAULT_BACKFILL_DAYS = 30
#: The embedded sandbox runs its clocks (rate limits, report processing) this much faster.
SANDBOX_TIME_SCALE = 1000.0
DEFAULT_REPORT_WAIT = 600.0  # seconds of API time to wait for reports before leaving them pending
DEFAULT_MAX_SOLICITATION_CHECKS = 2000


@dataclass
class IngestReport:
    """What one ingest did, per tenant and stream."""

    source: str
    today: dt.date
    results: list[StreamResult] = field(default_factory=list)
    scheduler: SchedulerStats = field(default_factory=SchedulerStats)
    seconds: float = 0.0
    sandbox_stats: dict[str, dict[str, int]] | None = None

    @property
    def ok(self) -> bool:
        """No stream failed (pending reports are not failures)."""
        return all(r.status != "failed" for r in self.results)

    def rows(self) -> dict[str, int]:
        """Rows added per dataset."""
        out: dict[str, int] = {}
        for r in self.results:
            for name, n in r.rows.items():
                out[name] = out.get(name, 0) + n
        return out

    @property
    def total_rows(self) -> int:
        """Rows added in all datasets."""
        return sum(self.rows().values())

    @property
    def quarantined(self) -> int:
        """Records sent to the quarantine."""
        return sum(r.quarantined for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "source": self.source,
            "today": self.today.isoformat(),
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "rows": self.rows(),
            "quarantined": self.quarantined,
            "requests": dict(self.scheduler.requests),
            "rate_limit_waits": self.scheduler.waits,
            "rate_limit_wait_seconds": round(self.scheduler.wait_seconds, 3),
            "throttled_429": self.scheduler.throttled,
            "retries": dict(self.scheduler.retries),
            "results": [asdict(r) for r in self.results],
        }


@contextmanager
def embedded_sandbox(
    settings: Settings, time_scale: float = SANDBOX_TIME_SCALE
) -> Iterator[SandboxServer]:
    """The in-process sandbox for this home's settings (PII role iff a PII purpose is set)."""
    from amzigo_lab.sandbox import SandboxServer, World

    world = World(seed=settings.sandbox_seed, today=settings.sandbox_today)
    state = settings.state_dir / "sandbox"
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    with SandboxServer(
        world, state, time_scale=time_scale, pii_role=bool(settings.pii_purposes)
    ) as server:
        yield server


def ingest(
    lake: Lake,
    settings: Settings,
    tenants: list[str] | None = None,
    streams: list[str] | None = None,
    since: dt.date | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    *,
    server: SandboxServer | None = None,
    connection: Connection | None = None,
    env: Mapping[str, str] | None = None,
    scheduler: Scheduler | None = None,
    backfill_days: int = DEFAULT_BACKFILL_DAYS,
    report_wait: float = DEFAULT_REPORT_WAIT,
    max_solicitation_checks: int = DEFAULT_MAX_SOLICITATION_CHECKS,
    sandbox_time_scale: float = SANDBOX_TIME_SCALE,
) -> IngestReport:
    """Ingest the chosen streams (default all) of the chosen tenants (default all configured).

    `server` ingests from a running sandbox; `connection` from an explicit connection; otherwise
    Amazon if credentials are configured, else (on a sandbox home only: `amzigo init
    --sandbox`) a sandbox started here. A home with neither is refused (source/mode.py).
    """
    unknown = [s for s in streams or [] if s not in STREAMS]
    if unknown:
        raise ConfigError(f"unknown stream {unknown[0]!r}; streams: {', '.join(STREAMS)}")
    paused = paused_tenants(settings.home)  # an open incident's isolation
    if "*" in paused or (tenants and any(t in paused for t in tenants)):
        which = "*" if "*" in paused else next(t for t in tenants or [] if t in paused)
        raise ConfigError(
            f"ingestion is paused by incident {paused[which]} "
            f"({'all tenants' if which == '*' else 'tenant ' + which}): a responder resumes it "
            "with `amzigo incident restore`"
        )
    kwargs: dict[str, Any] = dict(
        tenants=tenants, streams=streams, since=since, progress=progress, scheduler=scheduler,
        backfill_days=backfill_days, report_wait=report_wait,
        max_solicitation_checks=max_solicitation_checks,
    )  # fmt: skip
    from amzigo_lab.source import mode

    home_mode = mode.mode(lake)
    if server is not None:  # an explicit sandbox: never into a home connected to Amazon
        if home_mode == mode.AMAZON:
            mode.set_sandbox(lake)  # raises, naming the fix
        scale = float(server.limiter.time_scale or sandbox_time_scale)
        return _run(lake, settings, sandbox_connection(server, scale), server, **kwargs)
    if connection is None and home_mode != mode.SANDBOX:
        connection = amazon_connection(lake, env, tenants)
    if connection is not None:
        if connection.kind == "amazon":
            mode.mark_amazon(lake)
        elif home_mode == mode.AMAZON:
            mode.set_sandbox(lake)  # raises: a sandbox connection never feeds an Amazon home
        return _run(lake, settings, connection, None, **kwargs)
    if home_mode == mode.AMAZON:
        raise ConfigError(
            f"{settings.home} is connected to Amazon but no Amazon credentials were found"
            + (f" for {', '.join(tenants)}" if tenants else "")
            + ": it never falls back to the sandbox; run `amzigo credentials set` "
            "(see `amzigo credentials list`)"
        )
    if home_mode != mode.SANDBOX:
        raise ConfigError(mode.NO_SOURCE.format(home=f" --home {settings.home}"))
    with embedded_sandbox(settings, sandbox_time_scale) as running:
        return _run(
            lake, settings, sandbox_connection(running, sandbox_time_scale), running, **kwargs
        )


def _run(
    lake: Lake,
    settings: Settings,
    connection: Connection,
    server: SandboxServer | None,
    *,
    tenants: list[str] | None,
    streams: list[str] | None,
    since: dt.date | None,
    progress: Callable[[ProgressEvent], None] | None,
    scheduler: Scheduler | None,
    backfill_days: int,
    report_wait: float,
    max_solicitation_checks: int,
) -> IngestReport:
    chosen = tenants or connection.tenants
    paused = paused_tenants(settings.home)  # an open incident's isolation (checked above)
    chosen = [t for t in chosen if t not in paused]
    missing = [t for t in chosen if t not in connection.refresh_tokens]
    if missing:
        raise ConfigError(
            f"tenant {missing[0]!r} has no SP-API credentials; configured: "
            f"{', '.join(connection.tenants) or 'none'}"
        )
    names = [n for n in STREAMS if streams is None or n in streams]
    scale = connection.time_scale
    if server is not None:
        today, now = server.world.today, server.world.now
    else:
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)  # Amazon: >= 2 min before now
        today = now.date()
    if since is not None and since > today:  # Amazon answers "'Before' must be ..." per stream
        raise ConfigError(
            f"--since {since} is after today ({today} on the {connection.kind}'s clock): "
            "give a day on or before it"
        )
    factory = ClientFactory(connection)
    for tenant in chosen:
        factory.forget_token(tenant)  # a token cached for another endpoint is useless here
    scheduler = scheduler or Scheduler(
        backoff=0.5 / scale, max_backoff=30.0 / scale, time_scale=scale
    )
    gateway = LakeGateway(lake)
    lock = threading.Lock()

    def report_progress(event: ProgressEvent) -> None:
        if progress is not None:
            with lock:
                progress(event)

    if progress is not None and scheduler.on_wait is None:
        scheduler.on_wait = lambda tenant, op, delay: report_progress(
            ProgressEvent(tenant, op, "wait", delay)
        )
    report = IngestReport(connection.kind, today, scheduler=scheduler.stats)
    started = time.monotonic()

    def work(tenant: str) -> None:
        ctx = StreamContext(
            tenant=tenant,
            marketplaces=tuple(connection.marketplaces.get(tenant, ())),
            factory=factory,
            scheduler=scheduler,
            store=gateway,
            today=today,
            now=now,
            since=since,
            backfill_days=backfill_days,
            pii=bool(settings.pii_purposes),
            time_scale=scale,
            report_wait=report_wait / scale,
            max_solicitation_checks=max_solicitation_checks,
            progress=report_progress,
        )
        for name in names:
            result = StreamResult(tenant, name)
            t0 = time.monotonic()
            report_progress(ProgressEvent(tenant, name, "status", "running"))
            try:
                STREAMS[name].run(ctx, result)
            except (AmzigoError, Exception) as exc:  # one stream's failure never stops the rest
                result.status = "failed"
                result.error = f"{type(exc).__name__}: {_message(exc)}"
            result.seconds = time.monotonic() - t0
            with lock:
                report.results.append(result)
            report_progress(ProgressEvent(tenant, name, "status", result.status))

    threads = [
        threading.Thread(target=work, args=(t,), name=f"ingest-{t}", daemon=True) for t in chosen
    ]
    for t in threads:
        t.start()
    gateway.serve(lambda: not any(t.is_alive() for t in threads))
    for t in threads:
        t.join()
    report.seconds = time.monotonic() - started
    report.results.sort(key=lambda r: (r.tenant, names.index(r.stream)))
    if server is not None:
        report.sandbox_stats = server.stats.snapshot()
    for r in report.results:
        lake.audit.emit(
            "source.ingest",
            resource=f"stream:{r.stream}",
            tenant=r.tenant,
            row_count=sum(r.rows.values()),
            reason=f"{connection.kind} status={r.status} quarantined={r.quarantined}",
        )
    _record_run(lake, report)
    return report


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    return str(message or exc)[:300]


def _record_run(lake: Lake, report: IngestReport) -> None:
    """Remember the last run of each stream (status, rows, error) in its sync state."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with lake.catalog.transaction():
        for r in report.results:
            state = lake.catalog.get_sync_state(r.tenant, r.stream)
            quarantined = int(state.get("quarantined_total", 0)) + r.quarantined
            state.update(
                last_run=stamp,
                last_status=r.status,
                last_rows=sum(r.rows.values()),
                last_error=r.error,
                quarantined_total=quarantined,
                source=report.source,
            )
            lake.catalog.put_sync_state(r.tenant, r.stream, state)
