"""The packaged notebooks, executed by papermill on a real encrypted home: outputs hold the
builders' numbers, no other tenant's identifiers, no buyer PII, and charts as inline SVG."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jupytext
import nbformat
import pytest
from click.testing import CliRunner

from amzigo_lab.analysis.generate import REPORTS, generate, notebook_path
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.source import ReportError
from amzigo_lab.cli import main
from amzigo_lab.events import MemorySink
from tests.analysis.data import ACME, END, OTHER_MARKERS, PII_MARKERS, START

pytestmark = pytest.mark.slow
PERIOD = Period(START, END)
# the report notebooks (the folder also holds other teams' notebooks, e.g. dashboards)
PACKAGED = sorted(
    Path(str(p)).stem
    for p in (resources.files("amzigo_lab") / "notebooks").iterdir()
    if str(p).endswith(".ipynb") and Path(str(p)).stem in REPORTS
)


@pytest.fixture(scope="module")
def generated(report_home: Path, report_settings, tmp_path_factory) -> dict:
    """Every report generated once: sales through the CLI (from another cwd), the rest via API."""
    out = tmp_path_factory.mktemp("out")
    results = {}
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path_factory.mktemp("cwd")):  # any cwd
        res = runner.invoke(
            main,
            [
                "report",
                "sales",
                "--tenant",
                ACME,
                "--start",
                str(START),
                "--end",
                str(END),
                "--home",
                str(report_home),
                "--out",
                str(out),
                "--json",
            ],
        )
    assert res.exit_code == 0, res.output
    results["sales_summary"] = json.loads(res.output)
    paths = results["sales_summary"]["paths"]
    results["sales"] = {Path(p).suffix: Path(p) for p in paths}
    sink = MemorySink()
    for name in ("reviews", "inventory", "account_health"):
        extra = {"velocity_days": 7, "lead_times": {"SKU-RED": 14}} if name == "inventory" else {}
        r = generate(report_settings, name, ACME, PERIOD, out_dir=out, extra=extra, audit=sink)
        results[name] = {p.suffix: p for p in r.paths()}
    results["audit"] = sink.events
    return results


def outputs_text(path: Path) -> str:
    nb = nbformat.read(str(path), as_version=4)
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            parts.append(json.dumps(o.get("data", {}), ensure_ascii=False) + o.get("text", ""))
    return "\n".join(parts)


@pytest.mark.parametrize("name", PACKAGED)
def test_every_packaged_notebook_runs(generated, name: str) -> None:
    files = generated[name]
    assert files[".ipynb"].name == f"{START}_{END}.ipynb"
    assert files[".ipynb"].parent == files[".ipynb"].parents[2] / ACME / name
    nb = nbformat.read(str(files[".ipynb"]), as_version=4)
    assert not [
        o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    # nothing on the kernel's stderr lands in the report (e.g. Arrow's buffer warnings)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert set(PACKAGED) == set(REPORTS)  # every report ships its notebook


@pytest.mark.parametrize("name", PACKAGED)
def test_no_pii_no_other_tenant_svg_charts_no_code(generated, name: str) -> None:
    nb_text = generated[name][".ipynb"].read_text(encoding="utf-8")
    html = generated[name][".html"].read_text(encoding="utf-8")
    for marker in (*PII_MARKERS, *OTHER_MARKERS):
        assert marker not in nb_text and marker not in html, marker
    assert ("<svg" in html or 'src="data:image/svg+xml' in html) and "image/svg+xml" in nb_text
    assert "open_source(" not in html  # code cells are hidden in the HTML
    assert not re.search(r"<script[^>]+src=\"https?://", html)  # nothing from a CDN


def test_report_json_says_what_was_written(generated) -> None:
    summary = generated["sales_summary"]
    assert summary["report"] == "sales" and summary["tenant"] == ACME
    assert summary["period"] == {"start": str(START), "end": str(END), "days": 7}
    assert summary["as_of"] == str(END) and summary["marketplace"] == "all"
    assert set(summary["files"]) == {"ipynb", "html"}
    assert all(Path(p).exists() for p in summary["paths"])
    assert not [p for p in Path(summary["paths"][0]).parent.iterdir() if ".partial" in p.name]
    counts = summary["counts"]
    assert counts and all(isinstance(n, int) for sec in counts.values() for n in sec.values())
    assert sum(sec.get("charts", 0) for sec in counts.values()) >= 1


def test_account_health_numbers_match_builders(generated) -> None:
    text = outputs_text(generated["account_health"][".ipynb"])
    for expected in (
        "BREACH",
        "97.00% → 96.00% → 94.00%",  # valid tracking, the window after the period left out
        "worsening toward target",
        "3.00% → 3.40% → 3.70%",
        "near target",
        "Listing policy violations",  # in words, not Amazon's key
        "latest window; target 0",  # the policy-violations tile next to "Targets missed"
        "US AT_RISK",
    ):
        assert expected in text, expected


def test_sales_numbers_match_builders(generated) -> None:
    text = outputs_text(generated["sales"][".ipynb"])
    for expected in (
        "$145.50",
        "$48.50",
        "$20.00",
        "$14.43",
        "$108.57",
        "£48.00",
        "£45.30",
        "33.3%",
        "95.0%",
        "3.0%",
        "$65.50",
    ):
        assert expected in text, expected


def test_reviews_and_inventory_numbers(generated) -> None:
    rv = outputs_text(generated["reviews"][".ipynb"])
    assert "Broke quickly" in rv and "Soft" in rv and "2026-03-10" in rv
    assert re.search(r"already requested</td><td class='n'>2<", rv)  # in words
    assert "already_requested" not in rv
    inv = outputs_text(generated["inventory"][".ipynb"])
    assert "2026-06-19" in inv and "2.3" in inv and "critical" in inv  # SKU-BLUE reorder by
    assert [e["action"] for e in generated["audit"]] == ["report.generated"] * 3
    assert {e["actor"] for e in generated["audit"]} == {"svc:reports"}
    assert {e["purpose"] for e in generated["audit"]} == {
        "review_management",
        "inventory_tracking",
        "sales_analysis",
    }


def test_empty_tenant_fails_closed_naming_the_cell(report_settings, tmp_path) -> None:
    with pytest.raises(ReportError, match="tenant"):
        generate(report_settings, "sales", "", PERIOD, out_dir=tmp_path)
    # an unknown tenant is refused by the gateway before any kernel starts (no notebook left)
    sink = MemorySink()
    with pytest.raises(ReportError) as err:
        generate(report_settings, "reviews", "nobody-here", PERIOD, out_dir=tmp_path, audit=sink)
    msg = str(err.value)
    assert "'nobody-here' has no data" in msg and "--tenant" in msg
    assert not list(tmp_path.rglob("*.ipynb"))
    assert sink.events[0]["action"] == "report.failed"


@pytest.mark.parametrize("name", REPORTS)
def test_notebook_pairs_in_sync_and_without_outputs(name: str) -> None:
    ipynb = notebook_path(name)
    nb = nbformat.read(str(ipynb), as_version=4)
    assert all(
        not c.get("outputs") and not c.get("execution_count")
        for c in nb.cells
        if c.cell_type == "code"
    )
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    py = jupytext.read(str(ipynb.with_suffix(".py")))
    assert [c.source for c in py.cells] == [c.source for c in nb.cells]


def test_report_kernels_are_reached_over_curvezmq_only() -> None:
    """papermill runs reports in kernels whose channels are CurveZMQ-encrypted."""
    import asyncio

    from amzigo_lab.analysis.generate import encrypted_kernel_manager

    async def run() -> tuple[dict, str]:
        km = encrypted_kernel_manager()(kernel_name="python3")
        await km.start_kernel()
        try:
            client = km.client()
            client.start_channels()
            await client.wait_for_ready(timeout=60)
            out: list[str] = []
            await client.execute_interactive(
                "print(6 * 7)",
                timeout=60,
                output_hook=lambda m: out.append(m["content"].get("text", "")),
            )
            client.stop_channels()
            return km.get_connection_info(), "".join(out)
        finally:
            await km.shutdown_kernel(now=True)

    info, printed = asyncio.run(run())
    assert info["curve_publickey"] and info["curve_secretkey"]
    assert printed == "42\n"  # and the encrypted channels work


def test_report_service_reads_go_through_the_policy_and_are_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """svc:reports holds the seller role for one tenant, through a token the gateway minted:
    allowed reads are audited, buyer PII is refused (and the refusal audited) before any file
    opens; the kernel side has no token without `amzigo report`."""
    from amzigo_lab.analysis.notebook import open_source
    from amzigo_lab.client import service
    from amzigo_lab.client.protocol import TOKEN_ENV
    from amzigo_lab.config import load_settings
    from amzigo_lab.errors import AccessDenied
    from amzigo_lab.governance.context import Governance
    from amzigo_lab.home import init_home
    from tests.analysis.data import populate

    settings = load_settings(tmp_path / "home", env={})
    lake = init_home(settings, audit=MemorySink())
    try:
        populate(lake)
    finally:
        lake.close()
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ReportError, match="no service token"):
        open_source(ACME, str(settings.home), "service", "sales_analysis")
    minted = service.mint(settings.home, "svc:reports", ACME, ["sales_analysis"])
    monkeypatch.setenv(TOKEN_ENV, minted.token)
    source = open_source(ACME, str(settings.home), "service", "sales_analysis")
    assert source.table("orders").count().execute() > 0
    source.table("orders")  # audited once per dataset
    with pytest.raises(AccessDenied, match="order_buyers"):
        source.table("order_buyers")
    with pytest.raises(ReportError, match="purpose"):
        open_source(ACME, str(settings.home), "service", "marketing")
    service.revoke(minted.address, minted.token)
    with pytest.raises(AccessDenied, match="revoked"):
        source.table("order_items")
    with Governance.open(settings) as gov:
        events = gov.audit_log.search(actor="svc:reports", action="data.read")
    assert [(e.action, e.resource, e.decision) for e in events] == [
        ("data.read", "dataset:orders", "allow"),
        ("data.read", "dataset:order_buyers", "deny"),
    ]
    assert {(e.tenant, e.purpose) for e in events} == {(ACME, "sales_analysis")}


@pytest.mark.browser
def test_pdf_charts_fit_the_page(generated, tmp_path: Path) -> None:
    """Charts scale to A4's printable width: printed, no chart is wider than its box (nothing
    clipped: the weekly chart keeps its last week), and every PDF page keeps ink inside the
    margins (rendered to images with pdfium)."""
    import numpy as np
    import pypdfium2 as pdfium
    from playwright.sync_api import sync_playwright

    from amzigo_lab.analysis.generate import CHROMIUM_ARGS, find_chromium, to_pdf

    exe = find_chromium()
    assert exe, "the browser tests need Debian's chromium (.ci/run installs it)"
    html = generated["sales"][".html"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            # A4 (210 mm) less the 10 mm side margins, at 96 CSS px per inch
            page = browser.new_page(viewport={"width": round(190 / 25.4 * 96), "height": 1100})
            page.emulate_media(media="print")
            page.goto(html.resolve().as_uri(), wait_until="load")
            boxes = page.eval_on_selector_all(
                ".jp-RenderedSVG img",
                """imgs => imgs.map(img => {
                    const r = img.getBoundingClientRect();
                    const box = img.closest('.jp-OutputArea-output');
                    return {right: r.right, natural: img.naturalWidth, width: r.width,
                            room: document.documentElement.clientWidth,
                            overflow: box.scrollWidth - box.clientWidth};
                })""",
            )
        finally:
            browser.close()
    assert len(boxes) >= 2  # daily and weekly sales charts
    wide = [b for b in boxes if b["natural"] > b["room"]]
    assert wide, "no chart is wider than the page: the test would prove nothing"
    for b in boxes:
        assert b["right"] <= b["room"] + 0.5 and b["overflow"] <= 0, b
        assert b["width"] / b["natural"] <= 1.0001  # scaled down (never up), aspect kept
    pdf_path = to_pdf(html, tmp_path / "sales.pdf")
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        for i in range(len(pdf)):
            pixels = pdf[i].render(scale=1.0).to_numpy()[:, :, :3]
            ink = np.where((pixels.min(axis=2) < 200).any(axis=0))[0]
            margin = round(10 / 25.4 * 72) - 2  # 10 mm in PDF points, less antialiasing
            assert ink.size and ink.max() < pixels.shape[1] - margin, f"page {i + 1}"
    finally:
        pdf.close()


def test_sales_report_advertising_section(generated) -> None:
    """Ad spend, ad sales (latest pull), ACoS, TACoS (over all sales) and ROAS in the report."""
    text = outputs_text(generated["sales"][".ipynb"])
    assert "Advertising" in generated["sales"][".html"].read_text(encoding="utf-8")
    for expected in ("$12.34", "$20.00", "61.7%", "8.5%", "1.62"):
        assert expected in text, expected
    assert "no ads data ingested" not in text and "$777.00" not in text
