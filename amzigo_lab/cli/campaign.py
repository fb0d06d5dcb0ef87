"""`amzigo campaign plan|run|status`: review-request campaigns (operator commands).

They run in-process as the home's owner, like `ingest`: `run` needs the SP-API credentials
(encrypted store or environment; none: the embedded sandbox) and writes the campaign state;
`plan` and `status` read the lake's orders, the DSR tables and the state file, which only the
key holder may open. See docs/architecture.md (CLI) and amzigo_lab/campaigns.
"""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from amzigo_lab.cli.common import (
    console,
    handle_errors,
    home_option,
    json_option,
    print_json,
    settings_for,
)

#: Due orders listed by the text output of `campaign plan` (all with --all or --json).
TEXT_ROWS = 40


@click.group("campaign")
def campaign_group() -> None:
    """Review-request campaigns: Amazon's "request a review", sent once per order, on time.

    Rules per tenant live in <home>/config.toml:

    \b
        [campaigns."acme-outdoor"]
        enable = true
        marketplaces = ["ATVPDKIKX0DER"]
        delay_days = 7
        exclude_skus = ["GIFT-01"]
        exclude_refunded = true
    """


@campaign_group.command("plan")
@click.option("--tenant", "tenants", multiple=True, help="Only this tenant (repeatable).")
@click.option(
    "--dry-run/--no-dry-run",
    default=True,
    show_default=True,
    help="Plan only (the plan never sends; `campaign run` does).",
)
@click.option("--all", "show_all", is_flag=True, help="List skipped orders too (text output).")
@home_option
@json_option
@handle_errors
def plan_cmd(
    tenants: tuple[str, ...], dry_run: bool, show_all: bool, home: str | None, as_json: bool
) -> None:
    """What `campaign run` would send now, and why each recent order is in or out.

    Example:

        amzigo campaign plan --dry-run --tenant acme-outdoor --json
    """
    from amzigo_lab.campaigns import plan
    from amzigo_lab.home import open_lake

    if not dry_run:
        raise click.UsageError("`campaign plan` never sends: use `amzigo campaign run`")
    with open_lake(settings_for(home)) as lake:
        plans = plan(lake, lake.settings, list(tenants) or None)
    if as_json:
        print_json({"dry_run": True, "tenants": [p.to_dict() for p in plans]})
        return
    for p in plans:
        if not p.rules.enable:
            rule = escape(f'[campaigns."{p.tenant}"] enable = true')  # not rich markup
            console.print(f"{p.tenant}: campaigns disabled (set {rule} in config.toml)")
            continue
        counts = ", ".join(f"{k} {v}" for k, v in sorted(p.counts().items())) or "no orders"
        console.print(f"{p.tenant} as of {p.now:%Y-%m-%d %H:%M} UTC: {counts}")
        table = Table("order", "marketplace", "decision", "reason", title=f"plan: {p.tenant}")
        shown = [d for d in p.decisions if show_all or d.decision == "send"]
        for d in shown if show_all else shown[:TEXT_ROWS]:
            table.add_row(d.amazon_order_id, d.marketplace_id, d.decision, d.reason)
        if table.row_count:
            console.print(table)
        if len(shown) > table.row_count:
            console.print(
                f"  ... and {len(shown) - table.row_count} more due (--all lists every order, "
                "--json gives every decision)"
            )
        if not show_all:
            reasons: dict[str, int] = {}
            for d in p.decisions:
                if d.decision != "send":
                    key = d.reason.split(":")[0] if d.decision == "skip" else d.decision
                    reasons[key] = reasons.get(key, 0) + 1
            for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
                console.print(f"  out: {n} x {reason}")


@campaign_group.command("run")
@click.option("--tenant", "tenants", multiple=True, help="Only this tenant (repeatable).")
@click.option("--limit", type=int, help="Send at most this many per tenant.")
@home_option
@json_option
@handle_errors
def run_cmd(tenants: tuple[str, ...], limit: int | None, home: str | None, as_json: bool) -> None:
    """Send the review requests that are due (reconciling any interrupted send first).

    Exit 1 when a send is left uncertain or a call failed (the next run reconciles it).
    Schedulable: `[schedule.jobs.reviews]` cron = "30 * * * *", command = "campaign run".

    Example:

        amzigo campaign run --tenant acme-outdoor --json
    """
    from amzigo_lab.campaigns import run
    from amzigo_lab.home import open_lake

    with open_lake(settings_for(home)) as lake:
        report = run(lake, lake.settings, list(tenants) or None, limit=limit)
    if as_json:
        print_json(report.to_dict())
    else:
        console.print(
            f"campaign run {report.run_id} ({report.source}, as of {report.now}): "
            f"{len(report.sent)} sent, {len(report.refused)} refused, "
            f"{len(report.not_offered)} not offered, {len(report.uncertain)} uncertain, "
            f"{len(report.reconciled)} reconciled, {report.throttled_429} throttled (429), "
            f"{report.seconds:.1f} s"
        )
        for e in report.errors:
            console.print(f"[red]error[/]: {e}")
    if not report.ok:
        raise SystemExit(1)


@campaign_group.command("status")
@home_option
@json_option
@handle_errors
def status_cmd(home: str | None, as_json: bool) -> None:
    """Rules, sends per tenant and state, pending intents, latest runs.

    Example:

        amzigo campaign status --json
    """
    from amzigo_lab.campaigns import status
    from amzigo_lab.home import open_lake

    with open_lake(settings_for(home)) as lake:
        info = status(lake, lake.settings)
    if as_json:
        print_json(info)
        return
    table = Table("tenant", "enabled", "sent", "refused", "pending", title="campaigns")
    tenants = sorted({r["tenant"] for r in info["rules"]} | set(info["counts"]))
    enabled = {r["tenant"]: r["enable"] for r in info["rules"]}
    for t in tenants:
        c = info["counts"].get(t, {})
        table.add_row(
            t, "yes" if enabled.get(t) else "no", str(c.get("sent", 0)),
            str(c.get("refused", 0)), str(c.get("intent", 0)),
        )  # fmt: skip
    console.print(table)
    for r in info["runs"][:5]:
        state = "finished" if r["finished_at"] else "[yellow]unfinished[/]"
        console.print(f"run {r['run_id']} {r['started_at']} {r['source']} {state} {r['summary']}")


COMMANDS = (campaign_group,)
