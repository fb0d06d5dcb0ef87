"""Generating report files: execute a packaged notebook with papermill, export HTML (code
hidden, no CDN scripts) and optionally PDF (Debian's chromium through playwright).

The notebooks ship inside the package (`amzigo_lab/notebooks`), so generation works from any
working directory. Runs happen under the reports service identity with the report's stated
purpose and are audited (`report.generated` / `report.failed`, identifiers only).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amzigo_lab.analysis.notebook import PURPOSES, SERVICE_ACTOR
from amzigo_lab.analysis.period import Period
from amzigo_lab.analysis.source import ReportError
from amzigo_lab.client.protocol import TOKEN_ENV
from amzigo_lab.names import tenant_id

if TYPE_CHECKING:
    from amzigo_lab.config import Settings

REPORTS = tuple(PURPOSES)
DEFAULT_TIMEOUT = 600
KERNEL = "python3"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip
_REMOTE_SCRIPT = re.compile(r"<script[^>]*\ssrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.I | re.S)


@dataclass
class GeneratedReport:
    """Paths written by one run and where the time went."""

    report: str
    tenant: str
    period: Period
    notebook: Path
    html: Path
    pdf: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    marketplace: str = ""
    comparison: str = ""
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: rows per table (full counts, not the rows shown) and charts, per notebook section
    sections: dict[str, dict[str, int]] = field(default_factory=dict)

    def paths(self) -> list[Path]:
        """Every file written."""
        return [p for p in (self.notebook, self.html, self.pdf) if p is not None]

    def summary(self) -> dict[str, Any]:
        """The machine-readable account of the run (`amzigo report --json`)."""
        return {
            "report": self.report,
            "tenant": self.tenant,
            "period": {
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
                "days": self.period.days,
            },
            "as_of": self.period.end.isoformat(),
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "marketplace": self.marketplace or "all",
            "comparison": self.comparison,
            "paths": [str(p) for p in self.paths()],
            "files": {p.suffix.lstrip("."): str(p) for p in self.paths()},
            "counts": self.sections,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


def notebook_path(report: str) -> Path:
    """The packaged notebook of a report."""
    if report not in REPORTS:
        raise ReportError(f"unknown report {report!r}; reports: {', '.join(REPORTS)}")
    return Path(str(resources.files("amzigo_lab") / "notebooks" / f"{report}.ipynb"))


def output_stem(out_dir: Path, tenant: str, report: str, period: Period) -> Path:
    """`<out>/<tenant>/<report>/<start>_<end>` (no suffix)."""
    return out_dir / tenant / report / str(period)


def generate(
    settings: Settings,
    report: str,
    tenant: str,
    period: Period,
    *,
    out_dir: Path | None = None,
    marketplace: str = "",
    comparison: str = "previous_period",
    costs_file: str = "",
    pdf: bool = False,
    timeout: int = DEFAULT_TIMEOUT,
    extra: dict[str, Any] | None = None,
    audit: Any = None,
    engine: str = "duckdb",
) -> GeneratedReport:
    """Execute the report notebook for one tenant and period; write .ipynb, .html (and .pdf).

    Every argument is checked before a kernel starts (`check_arguments`, then the gateway:
    the tenant has data, the marketplace is one of the tenant's). `engine`: where the sales
    report's builders compute, "duckdb" (default) or "spark" (`amzigo_lab.spark`). Files are
    written under temporary names and renamed only when the whole run succeeded: a failed run
    leaves no file behind.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        tenant, market = check_arguments(
            report, tenant, period, marketplace, comparison, costs_file, timeout
        )
        check_engine(report, engine)
    except ReportError as exc:
        if str(tenant or "").strip() and report in PURPOSES:
            _audit(audit, "report.failed", report, str(tenant), period, "error", str(exc))
        raise
    src = notebook_path(report)
    out_dir = (out_dir or settings.reports_dir).expanduser().resolve()
    stem = output_stem(out_dir, tenant, report, period)
    final = {".ipynb": stem.with_suffix(".ipynb"), ".html": stem.with_suffix(".html")}
    if pdf:
        final[".pdf"] = stem.with_suffix(".pdf")
    partial = {k: _partial_name(v) for k, v in final.items()}
    params: dict[str, Any] = {
        "tenant": tenant,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "marketplace": market,
        "comparison": comparison,
        "home": str(settings.home),
        "access": "service",
        "purpose": PURPOSES[report],
    }
    if engine != "duckdb":
        params["engine"] = engine
    if report == "sales" and costs_file:
        params["costs_file"] = str(Path(costs_file).expanduser().resolve())
    if report == "inventory":  # lead times and safety stock from the home's [inventory]
        params.update(inventory_parameters(settings, tenant))
    params.update(extra or {})
    sections: dict[str, dict[str, int]] = {}
    try:
        with _run_token(settings, tenant, report, timeout) as token:
            if market:
                check_marketplace(settings, token, report, tenant, market)
            timings["token"] = time.perf_counter() - t0
            stem.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _execute(src, partial[".ipynb"], params, timeout, stem.parent, {TOKEN_ENV: token})
        timings["execute"] = time.perf_counter() - t0
        sections = section_counts(partial[".ipynb"])
        t1 = time.perf_counter()
        partial[".html"].write_text(to_html(partial[".ipynb"]), encoding="utf-8")
        timings["html"] = time.perf_counter() - t1
        if pdf:
            t2 = time.perf_counter()
            to_pdf(partial[".html"], partial[".pdf"])
            timings["pdf"] = time.perf_counter() - t2
        for suffix, path in partial.items():
            path.replace(final[suffix])
    except Exception as exc:
        for path in partial.values():
            path.unlink(missing_ok=True)
        _audit(audit, "report.failed", report, tenant, period, "error", str(exc))
        raise
    result = GeneratedReport(
        report,
        tenant,
        period,
        final[".ipynb"],
        final[".html"],
        final.get(".pdf"),
        timings,
        marketplace=market,
        comparison=comparison,
        sections=sections,
    )
    register_outputs(settings, result)
    files = "+".join(p.suffix.lstrip(".") for p in result.paths())
    _audit(audit, "report.generated", report, tenant, period, "allow", f"files {files}")
    return result


def _partial_name(path: Path) -> Path:
    """A hidden temporary name next to `path` (renamed to `path` when the run succeeds)."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


#: Bounds of a report run's arguments.
MAX_PERIOD_DAYS = 731
MAX_TIMEOUT = 24 * 3600


def check_arguments(
    report: str,
    tenant: str,
    period: Period,
    marketplace: str = "",
    comparison: str = "previous_period",
    costs_file: str = "",
    timeout: int = DEFAULT_TIMEOUT,
) -> tuple[str, str]:
    """Check what can be checked without the gateway; (tenant id, marketplace code or "")."""
    from amzigo_lab.analysis.money import marketplace as find_marketplace
    from amzigo_lab.analysis.period import comparison_period

    if report not in REPORTS:
        raise ReportError(f"unknown report {report!r}; reports: {', '.join(REPORTS)}")
    if not str(tenant or "").strip():
        raise ReportError("--tenant is required: a report is about exactly one tenant")
    try:
        tenant = tenant_id(tenant)
    except ValueError as exc:
        raise ReportError(f"--tenant: {exc}") from None
    if period.days > MAX_PERIOD_DAYS:
        raise ReportError(
            f"the period {period.label()} spans {period.days} days: at most {MAX_PERIOD_DAYS}"
        )
    if not 1 <= int(timeout) <= MAX_TIMEOUT:
        raise ReportError(f"--timeout {timeout}: between 1 and {MAX_TIMEOUT} seconds")
    try:
        market = find_marketplace(marketplace)
    except ValueError as exc:
        raise ReportError(f"--marketplace: {exc}") from None
    try:
        comparison_period(period, comparison)
    except ValueError as exc:
        raise ReportError(f"--comparison: {exc}") from None
    if costs_file:
        if report != "sales":
            raise ReportError("--costs applies to the sales report only")
        from amzigo_lab.analysis.sales import load_costs

        try:
            load_costs(Path(costs_file).expanduser())
        except OSError as exc:
            raise ReportError(f"--costs {costs_file}: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, KeyError, ValueError) as exc:
            raise ReportError(f"--costs {costs_file}: not a CSV cost file ({exc})") from None
    return tenant, market.code if market else ""


#: Reports whose notebook takes the `engine` parameter (the others compute on DuckDB only).
ENGINE_REPORTS = ("sales",)


def check_engine(report: str, engine: str) -> None:
    """Refuse an unknown engine, or Spark for a report not ported to it (never a silent
    fallback to DuckDB)."""
    from amzigo_lab.analysis.notebook import ENGINES

    if engine not in ENGINES:
        raise ReportError(f"--engine {engine!r}: use {' or '.join(ENGINES)}")
    if engine != "duckdb" and report not in ENGINE_REPORTS:
        raise ReportError(
            f"--engine {engine}: only the {', '.join(ENGINE_REPORTS)} report runs on it so far; "
            f"the {report} report runs on duckdb"
        )
    if engine == "spark":
        import importlib.util

        if importlib.util.find_spec("pyspark") is None:
            raise ReportError(
                "--engine spark needs the spark extra: pip install 'amzigo-lab[spark]'"
            )


#: The dataset that tells which marketplaces a tenant has, per report.
MARKETPLACE_DATASET = {
    "sales": "sales_traffic_by_date",
    "reviews": "review_topics",
    "inventory": "inventory_snapshots",
    "account_health": "account_health_metrics",
}


def check_marketplace(settings: Settings, token: str, report: str, tenant: str, code: str) -> None:
    """Refuse a marketplace the tenant has no data in (asked of the gateway with the run's
    token: the read is checked against the policy and audited like the report's own)."""
    from amzigo_lab.analysis.money import marketplace_code
    from amzigo_lab.analysis.source import GatewayTableSource
    from amzigo_lab.client import protocol
    from amzigo_lab.client.transport import GatewayClient

    dataset = MARKETPLACE_DATASET[report]
    with GatewayClient(protocol.default_address(settings.home), token) as client:
        source = GatewayTableSource(client, tenant, PURPOSES[report])
        t = source.table(dataset)
        ids = t.select("marketplace_id").distinct().to_pyarrow().column(0).to_pylist()
    codes = sorted({marketplace_code(str(i)) for i in ids})
    if code not in codes:
        has = f"its {dataset} data: {', '.join(codes)}" if codes else f"no {dataset} data"
        raise ReportError(f"--marketplace {code} is not a marketplace of tenant {tenant!r} ({has})")


_TABLE = re.compile(r"<table class='amz'(?: id='([^']*)')? data-rows='(\d+)'")


def section_counts(notebook: Path) -> dict[str, dict[str, int]]:
    """Per section (the notebook's `##` headings): rows of each table (full counts, from
    `data-rows`) and the number of charts, read from the executed notebook."""
    out: dict[str, dict[str, int]] = {}
    section = "summary"
    for cell in _own_cells(notebook):
        source = "".join(cell.get("source", ""))
        if cell.get("cell_type") == "markdown":
            heading = next((ln for ln in source.splitlines() if ln.startswith("## ")), "")
            section = heading[3:].strip() or section
            continue
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            counts = out.setdefault(section, {})
            if "image/svg+xml" in data:
                counts["charts"] = counts.get("charts", 0) + 1
            markup = "".join(data.get("text/html", ""))
            for n, (ident, rows) in enumerate(_TABLE.findall(markup)):
                key = ident or f"table{n + 1}"
                counts[key] = counts.get(key, 0) + int(rows)
    return {k: v for k, v in out.items() if v}


def inventory_parameters(settings: Settings, tenant: str) -> dict[str, Any]:
    """The inventory notebook's stock-advice parameters from `<home>/config.toml` `[inventory]`
    (defaults without one); a bad setting raises ReportError naming it."""
    from amzigo_lab.analysis.inventory import params_from_config
    from amzigo_lab.config import config_sections

    section = config_sections(settings).get("inventory", {})
    return params_from_config(section, tenant_id(tenant)).as_parameters()


#: The dataset whose retention a report follows (reports hold Amazon data derived from it).
SOURCE_DATASET = {
    "sales": "orders",
    "reviews": "review_topics",
    "inventory": "inventory_snapshots",
    "account_health": "account_health_metrics",
}


def register_outputs(settings: Settings, result: GeneratedReport) -> None:
    """Register the report's files as derived outputs, so purges and deletion notices find them.

    The gateway records them (its catalog) with the earliest purge date of the tenant's source
    partitions: a report is never kept longer than the data it was derived from.
    """
    from amzigo_lab.client import protocol
    from amzigo_lab.client.service import home_action

    request = {
        "kind": "report",
        "tenant": result.tenant,
        "dataset": SOURCE_DATASET[result.report],
        "paths": [str(p) for p in result.paths()],
    }
    home_action(settings.home, protocol.OUTPUTS_REGISTER, request, operator=True)


def _audit(
    sink: Any, action: str, report: str, tenant: str, period: Period, decision: str, reason: str
) -> None:
    if sink is None:
        return
    sink.emit(
        action,
        actor=SERVICE_ACTOR,
        resource=f"report:{report}",
        tenant=tenant,
        purpose=PURPOSES[report],
        decision=decision,
        reason=f"period {period}; {reason}"[:200],
    )


@contextlib.contextmanager
def _run_token(settings: Settings, tenant: str, report: str, timeout: int) -> Iterator[str]:
    """A `svc:reports` token for this run's tenant and purpose, revoked when the run ends."""
    from amzigo_lab.client.service import mint, revoke
    from amzigo_lab.errors import UnknownTenant

    try:
        minted = mint(settings.home, SERVICE_ACTOR, tenant, [PURPOSES[report]], timeout + 120)
    except UnknownTenant as exc:
        raise ReportError(f"{exc}: check --tenant (amzigo lake ls lists the tenants)") from None
    try:
        yield minted.token
    finally:
        revoke(minted.address, minted.token)


#: Environment variables never given to a report kernel (it needs none of them).
_KERNEL_SECRETS = ("AMZIGO_MASTER_KEY", "AMZIGO_SESSION", TOKEN_ENV)


def kernel_manager(extra_env: dict[str, str] | None = None) -> type:
    """The encrypted kernel manager, giving its kernels `extra_env` (the run's token) and
    none of the caller's secrets."""
    base = encrypted_kernel_manager()
    extra = dict(extra_env or {})

    class RunKernelManager(base):  # type: ignore[misc,valid-type]
        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            env = dict(kw.pop("env", None) or os.environ)
            for name in _KERNEL_SECRETS:
                env.pop(name, None)
            env.update(extra)
            kw["env"] = env
            return await super()._async_pre_start_kernel(**kw)

    return RunKernelManager


@functools.cache
def encrypted_kernel_manager() -> type:
    """A jupyter_client kernel manager whose kernels are reached over CurveZMQ only: the
    report's code and outputs never cross local TCP in plain text."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class EncryptedKernelManager(AsyncKernelManager):
        @default("transport_encryption")
        def _transport_encryption_default(self) -> str:
            return "required"

    return EncryptedKernelManager


def _execute(
    src: Path,
    dest: Path,
    params: dict[str, Any],
    timeout: int,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> None:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    try:
        pm.execute_notebook(
            str(src),
            str(dest),
            parameters=params,
            kernel_name=KERNEL,
            execution_timeout=timeout,
            progress_bar=False,
            log_output=False,
            cwd=str(cwd),
            kernel_manager_class=kernel_manager(env),
        )
    except PapermillExecutionError as exc:
        raise ReportError(
            f"{src.stem} report failed in {_failed_cell(dest)}: {exc.ename}: "
            f"{_first_line(exc.evalue)}"
        ) from None
    except Exception as exc:  # kernel death, timeout, missing kernel
        kind = type(exc).__name__
        if "Timeout" in kind or isinstance(exc, TimeoutError):
            cause = f"no result within the {timeout} s execution timeout"
        else:
            cause = f"{kind}: {_first_line(str(exc))}"
        raise ReportError(f"{src.stem} report failed in {_failed_cell(dest)}: {cause}") from None


def _first_line(text: str) -> str:
    return (str(text).strip().splitlines() or [""])[0][:300]


_INSERTED = {"papermill-error-cell-tag", "injected-parameters"}


def _own_cells(path: Path) -> list[dict[str, Any]]:
    """The executed notebook's cells minus those papermill inserted (error banners, params)."""
    try:
        cells = list(json.loads(path.read_text(encoding="utf-8"))["cells"])
    except (OSError, ValueError, KeyError):
        return []
    return [c for c in cells if not _INSERTED & set(c.get("metadata", {}).get("tags", []))]


def _failed_cell(path: Path) -> str:
    """'cell N under "Heading" (`first code line`)' of the cell that failed or hung."""
    cells = _own_cells(path)
    for i, c in enumerate(cells):
        meta = c.get("metadata", {}).get("papermill", {})
        if c.get("cell_type") == "code" and (
            meta.get("exception") or meta.get("status") == "running"
        ):
            heading = ""
            for prev in reversed(cells[:i]):
                if prev.get("cell_type") == "markdown":
                    lines = "".join(prev.get("source", "")).strip().splitlines()
                    heading = lines[0].lstrip("# ").strip() if lines else ""
                    break
            code = next(
                (
                    ln.strip()
                    for ln in "".join(c.get("source", "")).splitlines()
                    if ln.strip() and not ln.strip().startswith("#")
                ),
                "",
            )
            where = f" under '{heading}'" if heading else ""
            return f"cell {i}{where} (`{code[:70]}`)"
    return "the notebook (before any cell ran)"


def to_html(notebook: Path) -> str:
    """The executed notebook as HTML with the code hidden and no remote scripts."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(nb)
    body = _REMOTE_SCRIPT.sub("", body)
    # inline scripts that would import from a CDN (mermaid loader) go too: reports are static
    body = _SCRIPT.sub(lambda m: "" if "https://" in m.group(0) else m.group(0), body)
    return body.replace("</head>", f"{PAGE_STYLE}</head>", 1)


#: Charts (SVG images with a viewBox) scale down to the page instead of running off its right
#: edge: on narrow screens and on A4/Letter paper (the PDF printed with `--pdf`).
PAGE_STYLE = """<style>
.jp-RenderedSVG img,.jp-RenderedImage img{max-width:100%;height:auto}
@media print{
  @page{margin:12mm 10mm}
  body,.jp-Notebook,.jp-Cell,.jp-OutputArea,.jp-OutputArea-output{max-width:100%;
    padding-left:0;padding-right:0;margin-left:0;margin-right:0}
  .jp-OutputArea-child,.jp-RenderedSVG,table{break-inside:avoid}
}
</style>"""


def find_chromium() -> str | None:
    """Debian's chromium, if installed."""
    for c in CHROMIUM_CANDIDATES:
        if Path(c).exists():
            return c
    return shutil.which("chromium")


def to_pdf(html: Path, dest: Path) -> Path:
    """Print the HTML to PDF with Debian's chromium (never a downloaded browser)."""
    exe = find_chromium()
    if exe is None:
        raise ReportError(
            "--pdf needs Debian's chromium: `apt-get install -y chromium` (not found at "
            f"{', '.join(CHROMIUM_CANDIDATES)} or on PATH)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ReportError("--pdf needs playwright: pip install 'amzigo-lab[dev]'") from None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(html.resolve().as_uri(), wait_until="load")
            page.pdf(
                path=str(dest),
                format="A4",
                print_background=True,
                margin={"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"},
            )
        finally:
            browser.close()
    return dest


def today_utc() -> dt.date:
    """Today's UTC date."""
    return dt.datetime.now(dt.UTC).date()
