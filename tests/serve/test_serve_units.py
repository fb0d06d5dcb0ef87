"""Unit tests of the serving pieces: kernel env, bind policy, parameter injection, data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import nbformat
import pytest
from tornado import web

from amzigo_lab.analysis.source import ReportError
from amzigo_lab.errors import ConfigError
from amzigo_lab.serve import app, tls
from amzigo_lab.serve.dashboard import DashboardWidgets, SellerDashboard, View, show
from amzigo_lab.serve.hooks import inject_parameters, seller_tenant
from amzigo_lab.serve.kernels import kernel_env
from tests.analysis.data import OTHER, OTHER_MARKERS, PII_MARKERS
from tests.serve.helpers import Home


def test_kernel_env_has_no_secrets_and_no_query_string() -> None:
    env = {
        "AMZIGO_HOME": "/h", "AMZIGO_MASTER_KEY": "k", "AMZIGO_SESSION": "s",
        "AWS_SECRET_ACCESS_KEY": "x", "VAULT_TOKEN": "t", "DB_PASSWORD": "p",
        "PATH": "/bin", "QUERY_STRING": "tenant=bluebird-home", "MY_KEY": "v",
    }  # fmt: skip
    out = kernel_env(env, ("CUSTOM_MASTER",))
    assert out["AMZIGO_HOME"] == "/h" and out["PATH"] == "/bin"
    assert out["QUERY_STRING"] == ""
    for name in ("AMZIGO_MASTER_KEY", "AMZIGO_SESSION", "AWS_SECRET_ACCESS_KEY", "VAULT_TOKEN",
                 "DB_PASSWORD", "MY_KEY"):  # fmt: skip
        assert name not in out
    assert "CUSTOM_MASTER" not in kernel_env({"CUSTOM_MASTER": "k"}, ("CUSTOM_MASTER",))


def test_plain_http_only_on_loopback() -> None:
    tls.check_bind("127.0.0.1", tls=False)
    tls.check_bind("0.0.0.0", tls=True)
    with pytest.raises(ConfigError, match="without TLS"):
        tls.check_bind("0.0.0.0", tls=False)
    with pytest.raises(ConfigError, match="both"):
        tls.resolve(Path("/nonexistent"), "cert.pem", None)


def test_dashboard_config_limits_files_and_culls() -> None:
    from amzigo_lab.config import Settings

    c = app.dashboard_config(Settings(home=Path("/h")), app.ServeOptions())
    assert c.VoilaConfiguration.file_allowlist == [r".*\.(png|jpg|jpeg|gif|svg)"]
    assert c.MappingKernelManager.cull_idle_timeout > 0
    assert c.VoilaConfiguration.preheat_kernel is False
    assert c.Voila.tornado_settings["xsrf_cookies"] is True


def _nb(tagged: bool) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    cell = nbformat.v4.new_code_cell('tenant = ""')
    if tagged:
        cell.metadata["tags"] = "parameters"  # a bare string: normalised to a list
    nb.cells = [cell, nbformat.v4.new_code_cell("print(tenant)")]
    return nb


def test_injection_after_the_parameters_cell_and_refusal_without_one() -> None:
    nb = inject_parameters(_nb(True), {"tenant": "acme-outdoor"})
    assert [c.metadata["tags"] for c in nb.cells] == [["parameters"], ["injected-parameters"], []]
    assert 'tenant = "acme-outdoor"' in nb.cells[1].source
    with pytest.raises(web.HTTPError):
        inject_parameters(_nb(False), {"tenant": "acme-outdoor"})
    shipped = nbformat.read(app.dashboards_dir() / app.SELLER_DASHBOARD, as_version=4)
    assert inject_parameters(shipped, {"tenant": "t1"}).cells[2].metadata["tags"] == [
        "injected-parameters"
    ]


def test_only_bound_sellers_get_a_tenant(serve_home: Home) -> None:
    from amzigo_lab.governance.context import Governance

    with Governance.open(serve_home.settings) as gov:
        assert seller_tenant(gov, "sam") == ("acme-outdoor", "")
        assert seller_tenant(gov, "ana")[0] is None
        assert seller_tenant(gov, "nobody")[0] is None


def test_dashboard_fails_closed_without_tenant(serve_home: Home) -> None:
    with pytest.raises(ReportError, match="no tenant"):
        SellerDashboard.open("", str(serve_home.settings.home))


def test_dashboard_sections_show_only_the_tenant(serve_home: Home) -> None:
    board = SellerDashboard.open("acme-outdoor", str(serve_home.settings.home))
    sections = board.sections(View(dt.date(2026, 3, 1), dt.date(2026, 3, 7)))
    text = "".join(vars(sections).values())
    assert (
        "data-metric='sales' data-currency='USD'><div class='l'>Sales</div><div class='v'>$145.50"
        in text
    )
    assert "<svg" in text
    for marker in (OTHER, *OTHER_MARKERS, *PII_MARKERS):
        assert marker not in text
    assert board.marketplaces == ["US", "UK"]


def test_show_fails_closed_at_once_and_fills_the_widgets_outside_a_kernel(
    serve_home: Home,
) -> None:
    with pytest.raises(ReportError, match="no tenant"):
        show("")
    root = show("acme-outdoor", str(serve_home.settings.home))
    html = "".join(getattr(w, "value", "") for w in root.children)
    assert "id='amz-tiles'" in html and "data-seq='1'" in html and "Loading" not in html
    assert "acme-outdoor" in html and OTHER not in html


def test_a_failed_load_says_so_in_the_page_and_shows_no_data(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ui = DashboardWidgets()
    ui.attach_or_report("acme-outdoor", str(tmp_path / "no-home"))
    assert "could not load your data (ConfigError)" in ui.boxes["tiles"].value
    assert str(tmp_path) not in ui.boxes["tiles"].value  # no server detail in the page
    assert "no-home" in capfd.readouterr().err  # but in the operator's log
    assert not (tmp_path / "no-home").exists()  # and nothing was created
    assert "failed" in ui.status.value and ui.board is None
    assert "amz-tile'" not in ui.boxes["tiles"].value


def test_changing_a_picker_recomputes_the_sections(serve_home: Home) -> None:
    board = SellerDashboard.open("acme-outdoor", str(serve_home.settings.home))
    ui = DashboardWidgets()
    ui.attach(board)
    assert ui.seq == 1 and "all marketplaces" in ui.boxes["heading"].value
    ui.market.value = "UK"
    assert ui.seq == 2 and "· UK" in ui.boxes["heading"].value
    assert "data-currency='GBP'" in ui.boxes["tiles"].value
    assert "data-currency='USD'" not in ui.boxes["tiles"].value


def test_rejected_certificate_errors_become_one_hint_a_minute() -> None:
    import logging

    now = [0.0]
    log_filter = tls.RejectedCertificateLog("trust ca.pem", every=60, clock=lambda: now[0])

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("tornado.general", logging.WARNING, "", 0, msg, (), None)

    rejected = "SSL Error on 30 ('127.0.0.1', 5): [SSL: SSLV3_ALERT_CERTIFICATE_UNKNOWN] x"
    first = record(rejected)
    assert log_filter.filter(first) and "trust ca.pem" in first.getMessage()
    assert not log_filter.filter(record(rejected))  # repeats within the minute are dropped
    assert not log_filter.filter(record(rejected))
    other = record("SSL Error on 31 ('127.0.0.1', 6): [SSL: UNSUPPORTED_PROTOCOL] y")
    assert log_filter.filter(other) and "UNSUPPORTED_PROTOCOL" in other.getMessage()
    now[0] = 61.0
    later = record(rejected)
    assert log_filter.filter(later) and "2 more since the last note" in later.getMessage()
