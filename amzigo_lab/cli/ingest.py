"""`amzigo ingest`, `amzigo sync status`, `amzigo sandbox serve`."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from amzigo_lab.cli.common import (
    MAX_BACKFILL_DAYS,
    PORT,
    SEED,
    console,
    handle_errors,
    home_option,
    json_option,
    print_json,
    settings_for,
)

if TYPE_CHECKING:  # the lake and the sources are imported by the commands that use them
    from amzigo_lab.source import IngestReport
    from amzigo_lab.source.streams import ProgressEvent


class _StreamsOption(click.Option):
    """`--streams`, whose help names the streams: read from the sources (which import the
    lake) when the help is shown, not when the CLI is imported."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if self.help is None:
            from amzigo_lab.source.streams import STREAMS

            self.help = f"Comma-separated streams (default all): {', '.join(STREAMS)}."
        return super().get_help_record(ctx)


class ProgressBoard:
    """Live table: rows per stream, pages, rate-limit waits, reports pending."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.waits = 0
        self.wait_seconds = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "wait":
            self.waits += 1
            self.wait_seconds += float(event.value)
            return
        row = self.rows.setdefault(
            (event.tenant, event.stream),
            {"status": "", "rows": 0, "pages": 0, "pending": 0, "quarantined": 0},
        )
        if event.kind == "status":
            row["status"] = event.value
        elif event.kind == "rows":
            row["rows"] += int(event.value)
        elif event.kind == "pages":
            row["pages"] += int(event.value)
        elif event.kind == "reports_pending":
            row["pending"] = int(event.value)
        elif event.kind == "quarantined":
            row["quarantined"] += int(event.value)

    def render(self) -> Table:
        """The current state as a table."""
        table = Table(
            "tenant", "stream", "status", "rows", "pages", "reports pending", "quarantined",
            title=f"ingesting: {self.waits} rate-limit waits ({self.wait_seconds:.1f} s)",
        )  # fmt: skip
        for (tenant, stream), r in sorted(self.rows.items()):
            table.add_row(
                tenant, stream, str(r["status"]), str(r["rows"]), str(r["pages"]),
                str(r["pending"]), str(r["quarantined"]),
            )  # fmt: skip
        return table


def print_summary(report: IngestReport) -> None:
    """The per-stream summary table and totals."""
    table = Table(
        "tenant", "stream", "status", "rows added", "quarantined", "reports pending", "seconds",
        "error", title=f"ingest from {report.source} (as of {report.today})",
    )  # fmt: skip
    for r in report.results:
        colour = {"ok": "green", "failed": "red", "pending": "yellow"}.get(r.status, "white")
        table.add_row(
            r.tenant, r.stream, f"[{colour}]{r.status}[/]", str(sum(r.rows.values())),
            str(r.quarantined), str(r.reports_pending), f"{r.seconds:.1f}",
            escape(r.error if len(r.error) <= 60 else r.error[:59] + "…"),
        )  # fmt: skip
    console.print(table)
    for r in report.results:  # the table cuts errors; each is printed whole, as plain text
        if r.error and len(r.error) > 60:
            console.print(f"error {r.tenant} {r.stream}: {escape(r.error)}", soft_wrap=True)
    rows = ", ".join(f"{k} {v}" for k, v in sorted(report.rows().items()) if v) or "nothing new"
    stats = report.scheduler
    console.print(
        f"added: {rows}\n{sum(stats.requests.values())} requests, {stats.waits} rate-limit waits "
        f"({stats.wait_seconds:.1f} s), {stats.throttled} throttled (429) and retried, "
        f"{report.quarantined} quarantined, {report.seconds:.1f} s"
    )


@click.command("ingest")
@click.option("--tenant", "tenants", multiple=True, help="Only this tenant (repeatable).")
@click.option("--streams", cls=_StreamsOption)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Fetch from this date instead of from the stored cursors.",
)
@click.option(
    "--backfill-days",
    default=30,
    show_default=True,
    type=click.IntRange(1, MAX_BACKFILL_DAYS),
    help=f"First-run history, 1 to {MAX_BACKFILL_DAYS} days (SP-API keeps about two years).",
)
@home_option
@json_option
@handle_errors
def ingest_cmd(
    tenants: tuple[str, ...],
    streams: str | None,
    since: dt.datetime | None,
    backfill_days: int,
    home: str | None,
    as_json: bool,
) -> None:
    """Ingest SP-API streams into the lake: from Amazon, or the local sandbox on a sandbox home.

    The home must exist (`amzigo init`) and have a source: `amzigo init --sandbox` or
    `amzigo credentials set`; otherwise this says what to do and exits 2.

    Resumes from the stored cursors and pending reports; a second run adds nothing new.

    Example:

        amzigo ingest --tenant acme-outdoor --streams orders,finances --since 2026-11-01
    """
    from amzigo_lab.compliance.dsr import index_buyers
    from amzigo_lab.home import open_lake
    from amzigo_lab.source import ingest
    from amzigo_lab.source.mode import describe

    settings = settings_for(home)
    names = [s.strip() for s in streams.split(",") if s.strip()] if streams else None
    board = ProgressBoard()
    start = since.date() if since else None
    chosen = list(tenants) or None
    with open_lake(settings) as lake:  # never creates a home or a key: `amzigo init` does
        mode = describe(lake)
        if as_json:
            report = ingest(lake, settings, chosen, names, start, backfill_days=backfill_days)
        else:
            with Live(board.render(), console=console, transient=True) as live:

                def progress(event: ProgressEvent) -> None:
                    board(event)
                    live.update(board.render())

                report = ingest(
                    lake, settings, chosen, names, start, progress, backfill_days=backfill_days
                )
        index_buyers(lake)  # keep the data-subject blind index current (PII datasets only)
    if as_json:
        print_json({**report.to_dict(), "mode": mode})
    else:
        print_summary(report)
        console.print(f"mode: {mode}")
    if not report.ok:
        raise SystemExit(1)


@click.group("sync")
def sync_group() -> None:
    """Inspect the durable sync state of the SP-API streams."""


@sync_group.command("status")
@home_option
@json_option
@handle_errors
def sync_status_cmd(home: str | None, as_json: bool) -> None:
    """Cursors, last run, quarantined counts and pending reports per tenant and stream.

    Example:

        amzigo sync status --json
    """
    from amzigo_lab.home import open_lake
    from amzigo_lab.source import sync_status

    with open_lake(settings_for(home)) as lake:
        rows = sync_status(lake)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no sync state yet: run `amzigo ingest`")
        return
    table = Table(
        "tenant", "stream", "cursor", "last run", "status", "rows", "quarantined",
        "pending reports", "cooldowns", title="sync status",
    )  # fmt: skip
    for r in rows:
        table.add_row(
            r["tenant"], r["stream"], str(r["cursor"]), r["last_run"], r["last_status"],
            str(r["last_rows"]), str(r["quarantined"]), str(r["pending_reports"]),
            str(r["cooldowns"]),
        )  # fmt: skip
    console.print(table)


@click.group("sandbox")
def sandbox_group() -> None:
    """The local fake SP-API (HTTPS + LWA) used when no Amazon credentials are configured."""


@sandbox_group.command("serve")
@click.option("--port", default=8443, show_default=True, type=PORT, help="Port on 127.0.0.1.")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), help="Simulated today.")
@click.option("--seed", type=SEED, help="World seed (default: the home's sandbox_seed).")
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.01, 10_000),
    help="Rate-limit clock speed-up (0.01 to 10000).",
)
@click.option("--pii-role", is_flag=True, help="Grant the PII role (BUYER/RECIPIENT data).")
@home_option
@handle_errors
def sandbox_serve_cmd(
    port: int,
    today: dt.datetime | None,
    seed: int | None,
    time_scale: float,
    pii_role: bool,
    home: str | None,
) -> None:
    """Serve the sandbox in the foreground until Ctrl-C (certificates under <home>/state/sandbox).

    Example:

        amzigo sandbox serve --port 8443 --today 2026-11-20 --seed 7
    """
    from amzigo_lab.sandbox import serve

    settings = settings_for(home)
    state = settings.state_dir / "sandbox"
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    console.print(f"sandbox on https://127.0.0.1:{port} (CA: {state}); Ctrl-C to stop")
    serve(
        state,
        port=port,
        seed=settings.sandbox_seed if seed is None else seed,
        today=today.date() if today else settings.sandbox_today,
        time_scale=time_scale or None,
        pii_role=pii_role,
    )


COMMANDS = (ingest_cmd, sync_group, sandbox_group)
