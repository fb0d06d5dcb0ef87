"""The main job on the embedded default: what `amzigo demo` does, step by step.

0. initialise the home as a sandbox home (`amzigo init --sandbox`: refused on a home connected
   to Amazon, so a seller's lake never receives synthetic orders);
1. ingest weekly snapshots of the last weeks for one tenant with a PII purpose enabled (so
   partitions carry different ingestion dates and buyer PII has different deadlines);
2. ingest the account-health report of every tenant as of the same past weeks (a daily job
   keeps one reporting window per day; the weekly ones give the trend), then every stream of
   every sandbox tenant as of today (no PII);
3. purge as of today: expired PII partitions are crypto-erased, deleted and verified, and a
   signed destruction certificate is issued and verified; analytic data stays;
4. import product costs for every tenant from the sandbox catalogue (`<home>/demo-costs/`,
   as `amzigo costs import` would; one product in ten left uncosted), so reports show profit;
   generate the sales, reviews and inventory reports of the last 30 days and the
   account-health report (windows up to yesterday) for every tenant;
5. create demo users (one seller per tenant, an admin, an analyst, a compliance officer; the
   demo is the operator of its own home, so it creates them in-process) whose one-time
   credentials go to a 0600 file in the home, never to the terminal or git.
Serving the dashboards is the CLI's last step.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amzigo_lab.config import Settings
from amzigo_lab.home import init_home, release_gateway_cache_on_drop

#: The tenant whose buyer PII the demo ingests (for order fulfilment), to show its purge.
PII_TENANT = "acme-outdoor"
PII_PURPOSE = "order_fulfilment"
REPORTS = ("sales", "reviews", "inventory", "account_health")
CREDENTIALS_FILE = "demo-credentials.txt"
#: Review-request eligibility checks per tenant (one API call each, 1 rps at Amazon): enough to
#: show the review-request view without making the demo wait on them.
DEMO_SOLICITATION_CHECKS = 300

Say = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo produced, for the summary."""

    today: dt.date
    ingest_reports: list[Any] = field(default_factory=list)
    purge: dict[str, Any] = field(default_factory=dict)
    certificate: dict[str, Any] = field(default_factory=dict)
    reports: list[Path] = field(default_factory=list)
    users: list[tuple[str, str, str]] = field(default_factory=list)  # (user, roles, tenant)
    credentials: Path | None = None

    @property
    def ok(self) -> bool:
        """Whether every step succeeded."""
        ingested = all(r.ok for r in self.ingest_reports)
        return ingested and bool(self.certificate.get("ok", True))


def run_demo(
    settings: Settings,
    days: int = 60,
    pii_weeks: int = 5,
    say: Say = print,
    progress: Callable[[Any], None] | None = None,
    on_report: Callable[[int, int, Path], None] | None = None,
) -> DemoResult:
    """Run steps 1-5 on the home of `settings` (created if needed). `progress` receives the
    ingestion's `ProgressEvent`s; `on_report(done, total, path)` follows the reports."""
    from amzigo_lab.campaigns.rules import add_demo_rules
    from amzigo_lab.compliance.dsr import index_buyers
    from amzigo_lab.sandbox import SandboxServer, World
    from amzigo_lab.source import embedded_sandbox, ingest

    today = settings.sandbox_today or dt.datetime.now(dt.UTC).date()
    settings = dataclasses.replace(settings, sandbox_today=today)
    result = DemoResult(today)
    with init_home(settings, sandbox=True) as lake:  # = `amzigo init --sandbox`
        add_demo_rules(settings)  # `amzigo campaign plan --dry-run` has a campaign to show
        pii = dataclasses.replace(settings, pii_purposes=(PII_PURPOSE,))
        state = settings.state_dir / "sandbox"
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        for weeks_ago in range(pii_weeks, 0, -1):
            day = today - dt.timedelta(days=7 * weeks_ago)
            # the first snapshot reaches back to the start of the history; later ones continue
            # from the stored cursor, as a daily job would
            first = weeks_ago == pii_weeks
            backfill = max(7, days - 7 * weeks_ago) if first else 7
            say(f"ingesting {PII_TENANT} orders as of {day} (PII purpose: {PII_PURPOSE})")
            world = World(seed=settings.sandbox_seed, today=day)
            with SandboxServer(world, state, time_scale=1000, pii_role=True) as server:
                report = ingest(
                    lake, pii, tenants=[PII_TENANT], streams=["orders"], server=server,
                    backfill_days=backfill, progress=progress,
                )  # fmt: skip
            result.ingest_reports.append(report)
        for weeks_ago in range(pii_weeks, 0, -1):
            day = today - dt.timedelta(days=7 * weeks_ago)
            say(f"ingesting every tenant's account health as of {day}")
            world = World(seed=settings.sandbox_seed, today=day)
            with SandboxServer(world, state, time_scale=1000) as server:
                report = ingest(lake, settings, streams=["account_health"], server=server)
            result.ingest_reports.append(report)
        say(f"ingesting every stream of every tenant as of {today} ({days} days of history)")
        with embedded_sandbox(settings) as server:
            report = ingest(
                lake, settings, server=server, backfill_days=days,
                max_solicitation_checks=DEMO_SOLICITATION_CHECKS, progress=progress,
            )  # fmt: skip
            result.ingest_reports.append(report)
        index_buyers(lake)  # the data-subject blind index, as `amzigo ingest` keeps it
        say("importing demo product costs (as `amzigo costs import` does)")
        _demo_costs(lake, settings, today, days)
        say(f"purging everything past its deadline as of {today}")
        release_gateway_cache_on_drop(lake, "amzigo demo purge")  # a gateway of an earlier run
        result.purge, result.certificate = _purge(lake, today)
    say("generating reports")
    result.reports = _reports(settings, today, say, on_report)
    result.users, result.credentials = _demo_users(settings)
    return result


#: Every this-many-th product of a demo catalogue gets no cost, so the reports show how
#: uncosted units are reported (margin only over costed units).
UNCOSTED_EVERY = 10


def _demo_costs(lake: Any, settings: Settings, today: dt.date, days: int) -> None:
    """A cost file per tenant from the sandbox catalogue's landed unit costs (one row per SKU
    and marketplace, valid from the start of the history), written to `<home>/demo-costs/` and
    imported like `amzigo costs import`; every UNCOSTED_EVERY-th product is left out."""
    from amzigo_lab.analysis.cost_file import cost_table, digest, parse_cost_file
    from amzigo_lab.datasets import PRODUCT_COSTS
    from amzigo_lab.sandbox import SELLERS, World

    world = World(seed=settings.sandbox_seed, today=today)
    folder = settings.home / "demo-costs"
    folder.mkdir(exist_ok=True, mode=0o700)
    # valid for a year back: before every order the demo ingests (the weekly PII snapshots
    # reach further back than `days`), so every sale of a costed product has its cost
    start = today - dt.timedelta(days=max(days, 365))
    for seller in SELLERS:
        lines = ["sku,marketplace,unit_cost,currency,valid_from"]
        for i, product in enumerate(world.catalog(seller.tenant)):
            if i % UNCOSTED_EVERY == UNCOSTED_EVERY - 1:
                continue
            for market in seller.marketplaces:
                cost = product.unit_cost_in(market)
                lines.append(f"{product.sku},{market.code},{cost},{market.currency},{start}")
        data = ("\n".join(lines) + "\n").encode()
        path = folder / f"{seller.tenant}.csv"
        path.write_bytes(data)
        rows = parse_cost_file(path.name, data)
        now = dt.datetime.now(dt.UTC)
        table = cost_table(rows, digest(data), now)
        lake.write(
            PRODUCT_COSTS.name, seller.tenant, today, table, f"demo-costs-{digest(data)[:40]}"
        )


def _purge(lake: Any, today: dt.date) -> tuple[dict[str, Any], dict[str, Any]]:
    from amzigo_lab.compliance.certificates import verify_certificate
    from amzigo_lab.compliance.retention import purge

    done = purge(lake, today)
    summary = done.to_dict(lake)
    verified: dict[str, Any] = {}
    if done.certificate_id:
        verified = verify_certificate(lake, done.certificate_id)
    return summary, verified


def _reports(
    settings: Settings,
    today: dt.date,
    say: Say,
    on_report: Callable[[int, int, Path], None] | None = None,
) -> list[Path]:
    from amzigo_lab.analysis.generate import generate
    from amzigo_lab.analysis.period import Period
    from amzigo_lab.sandbox import SELLERS

    # "as of" the sandbox's clock (its world is a snapshot taken at today 00:00 UTC): the 30
    # days ending at the latest local day complete in every marketplace, the same period for
    # every report; the inventory snapshot, review topics and account-health report fetched
    # today are the current state
    now = dt.datetime.combine(today, dt.time(0, 0), tzinfo=dt.UTC)
    period = Period.last_days(30, now=now)
    paths: list[Path] = []
    total = len(SELLERS) * len(REPORTS)
    for seller in SELLERS:
        for report in REPORTS:
            done = generate(settings, report, seller.tenant, period, extra={"now": now.isoformat()})
            say(f"  {done.html}")
            paths.append(done.html)
            if on_report is not None:
                on_report(len(paths), total, done.html)
    return paths


def _demo_users(settings: Settings) -> tuple[list[tuple[str, str, str]], Path]:
    """Create the demo users once; their one-time credentials go to a 0600 file in the home."""
    from amzigo_lab.governance.context import Governance
    from amzigo_lab.sandbox import SELLERS

    wanted: list[tuple[str, tuple[str, ...], str | None]] = [
        (f"seller-{s.tenant.split('-')[0]}", ("seller",), s.tenant) for s in SELLERS
    ]
    wanted += [
        ("admin-demo", ("admin",), None),
        ("analyst-demo", ("analyst",), None),
        ("compliance-demo", ("compliance",), None),
    ]
    path = settings.home / CREDENTIALS_FILE
    lines: list[str] = []
    with Governance.open(settings) as gov:
        existing = {u.user_id for u in gov.identity.list_users()}
        for user, roles, tenant in wanted:
            if user in existing:
                continue
            password = "demo-" + secrets.token_urlsafe(12)
            enrollment = gov.identity.add_user(  # changed at first login, expires in 72 h
                user, roles, tenant, password=password, actor="system:demo", one_time=True
            )
            if tenant is None and "analyst" in roles:
                for s in SELLERS:
                    gov.grants.grant(user, s.tenant, actor="system:demo")
            lines.append(
                f"user: {user}\nroles: {', '.join(roles)}\ntenant: {tenant or '-'}\n"
                f"password: {password}\ntotp: {enrollment.provisioning_uri}\n"
            )
    if lines:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(
                "# amzigo demo users: one-time passwords, to be changed at first login\n"
                "# (`amzigo login` or the web login asks for a new one); unused, they\n"
                "# expire after 72 h.\n"
                "# Add each totp URI to an authenticator app, or compute a code with:\n"
                "#     python -c \"import pyotp; print(pyotp.parse_uri('URI').now())\"\n"
                "# Delete this file after use.\n\n"
            )
            fh.write("\n".join(lines))
    return [(u, ",".join(r), t or "-") for u, r, t in wanted], path
