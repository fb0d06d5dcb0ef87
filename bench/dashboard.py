"""Dashboard benchmark: login-to-rendered time and widget-update latency in a real browser.

Run: .venv/bin/python -m bench.dashboard [--reps 5] [--days 90]

A fresh home gets the `amzigo demo` data set (orders and order items for two tenants, --days of
history) plus the report fixtures (traffic, inventory, reviews); `amzigo dashboard` serves it
over TLS; Debian's chromium (Playwright, no download) logs in as one seller per repetition
(a TOTP code is single-use) and waits for the KPI tiles. Then it changes the start date
--reps times and measures until the tiles show the new period ("tiles") and until every
section is updated ("all sections"). Targets: first render <= 3 s, widget update <= 0.2 s.
Exit status is 0 even when a target is missed (the table says FAIL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import Row, log, median, render_table

CHROMIUM = "/usr/bin/chromium"


def _demo_data(home: Path, days: int, today: dt.date) -> None:
    from amzigo_lab.config import load_settings
    from amzigo_lab.events import MemorySink
    from amzigo_lab.home import open_lake
    from amzigo_lab.synthetic import items_for_orders, orders_for_day

    lake = open_lake(load_settings(home, env={}), audit=MemorySink())
    try:
        for tenant in ("acme-outdoor", "bluebird-home"):
            for offset in range(days, 0, -1):
                day = today - dt.timedelta(days=offset)
                orders = orders_for_day(7, tenant, day)
                lake.write("orders", tenant, day, orders, f"demo-{day}")
                lake.write("order_items", tenant, day, items_for_orders(7, orders), f"demo-{day}")
    finally:
        lake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from tests.serve.conftest import BROWSER_ARGS
    from tests.serve.helpers import PASSWORD, make_home, start_dashboard

    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    users = {f"seller{i}": (("seller",), "acme-outdoor") for i in range(args.reps)}
    log("building the home")
    home = make_home(work / "home", users)
    _demo_data(home.settings.home, args.days, dt.date(2026, 3, 9))
    server = start_dashboard(home, work)
    renders: list[float] = []
    tiles: list[float] = []
    full: list[float] = []
    try:
        with sync_playwright() as pw:
            for i, user in enumerate(users):
                ctx = pw.chromium.launch_persistent_context(
                    str(work / f"profile{i}"),
                    executable_path=CHROMIUM,
                    args=BROWSER_ARGS,
                    headless=True,
                    ignore_https_errors=True,
                )
                page = ctx.new_page()
                page.goto(f"{server.base}/voila/render/seller.ipynb")
                page.fill("#username", user)
                page.fill("#password", PASSWORD)
                page.fill("#code", home.code(user))
                t0 = time.perf_counter()
                page.click("#login-submit")
                page.locator("#amz-tiles .amz-tile").first.wait_for(timeout=120_000)
                renders.append(time.perf_counter() - t0)
                log(f"render {i + 1}: {renders[-1]:.2f} s")
                if i == 0:
                    for k in range(args.reps):
                        seq = int(page.locator("#amz-status").get_attribute("data-seq") or 0)
                        start = dt.date(2026, 2, 1) + dt.timedelta(days=k)
                        t1 = time.perf_counter()
                        page.locator(".amz-start input").fill(start.isoformat())
                        page.wait_for_selector(
                            f"#amz-tiles[data-period^='{start.isoformat()}_']", timeout=30_000
                        )
                        tiles.append(time.perf_counter() - t1)
                        page.wait_for_selector(f"#amz-status[data-seq='{seq + 1}']")
                        full.append(time.perf_counter() - t1)
                        log(f"update {k + 1}: tiles {tiles[-1]:.3f} s, all {full[-1]:.3f} s")
                ctx.close()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        Row("dashboard", "login to rendered (median)", median(renders), "s", target="<= 3 s",
            limit=3.0, on="value", samples=renders),
        Row("dashboard", "widget update, KPI tiles (median)", median(tiles), "s",
            target="<= 0.2 s", limit=0.2, on="value", samples=tiles),
        Row("dashboard", "widget update, all sections (median)", median(full), "s",
            target="info", samples=full),
    ]  # fmt: skip
    print(render_table(rows))


if __name__ == "__main__":
    main()
