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

    def paths(self) -> list[Path]:
        """Every file written."""
        return [p for p in (self.notebook, self.html, self.pdf) if p is not None]


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
) -> GeneratedReport:
    """Execute the report notebook for one tenant and period; write .ipynb, .html (and .pdf)."""
    if not str(tenant or "").strip():
        raise ReportError("--tenant is required: a report is about exactly one tenant")
    tenant = tenant_id(tenant)
    src = notebook_path(report)
    out_dir = (out_dir or settings.reports_dir).expanduser().resolve()
    stem = output_stem(out_dir, tenant, report, period)
    stem.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    nb_out, html_out = stem.with_suffix(".ipynb"), stem.with_suffix(".html")
    params: dict[str, Any] = {
        "tenant": tenant,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "marketplace": marketplace,
        "comparison": comparison,
        "home": str(settings.home),
        "access": "service",
        "purpose": PURPOSES[report],
    }
    if report == "sales" and costs_file:
        params["costs_file"] = str(Path(costs_file).expanduser().resolve())
    if report == "inventory":  # lead times and safety stock from the home's [inventory]
        params.update(inventory_parameters(settings, tenant))
    params.update(extra or {})
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        with _run_token(settings, tenant, report, timeout) as token:
            timings["token"] = time.perf_counter() - t0
            _execute(src, nb_out, params, timeout, stem.parent, {TOKEN_ENV: token})
        timings["execute"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        html_out.write_text(to_html(nb_out), encoding="utf-8")
        timings["html"] = time.perf_counter() - t1
        pdf_out = None
        if pdf:
            t2 = time.perf_counter()
            pdf_out = to_pdf(html_out, stem.with_suffix(".pdf"))
            timings["pdf"] = time.perf_counter() - t2
    except Exception as exc:
        _audit(audit, "report.failed", report, tenant, period, "error", str(exc))
        raise
    result = GeneratedReport(report, tenant, period, nb_out, html_out, pdf_out, timings)
    register_outputs(settings, result)
    files = "+".join(p.suffix.lstrip(".") for p in result.paths())
    _audit(audit, "report.generated", report, tenant, period, "allow", f"files {files}")
    return result


def inventory_parameters(settings: Settings, tenant: str) -> dict[str, Any]:
    """The inventory notebook's stock-advice parameters from `<home>/config.toml` `[inventory]`
    (defaults without one); a bad setting raises ReportError naming it."""
    from amzigo_lab.analysis.inventory import params_from_config
    from amzigo_lab.config import config_sections

    section = config_sections(settings).get("inventory", {})
    return params_from_config(section, tenant_id(tenant)).as_parameters()


#: The dataset whose retention a report follows (reports hold Amazon data derived from it).
SOURCE_DATASET = {"sales": "orders", "reviews": "review_topics", "inventory": "inventory_snapshots"}


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
            f"{_first_line(exc.evalue)} (executed notebook with the traceback: {dest})"
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
    return _SCRIPT.sub(lambda m: "" if "https://" in m.group(0) else m.group(0), body)


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
