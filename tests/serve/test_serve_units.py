"""Unit tests of the serving pieces: kernel env, bind policy, parameter injection, data."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from tornado import web as tornado_web

from amzigo_lab.analysis.source import ReportError
from amzigo_lab.errors import ConfigError
from amzigo_lab.serve import app, tls, web
from amzigo_lab.serve.dashboard import (
    MAX_DAYS,
    DashboardWidgets,
    SellerDashboard,
    View,
    bound_view,
    show,
)
from amzigo_lab.serve.hooks import DASHBOARD_PURPOSE, inject_parameters
from amzigo_lab.serve.kernels import body_kernel_id, kernel_env
from amzigo_lab.serve.web import LoginThrottle, client_address, proxy_networks
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
    settings = c.Voila.tornado_settings
    assert settings["xsrf_cookies"] is True
    assert settings["xsrf_cookie_kwargs"]["secure"] is True
    assert settings["headers"]["Strict-Transport-Security"].startswith("max-age=31536000")
    assert c.VoilaExecutor.show_tracebacks is False
    assert "Voil" not in c.VoilaExecutor.cell_error_instruction  # no server flags for sellers
    plain = app.dashboard_config(Settings(home=Path("/h")), app.ServeOptions(no_tls=True))
    assert "Strict-Transport-Security" not in plain.Voila.tornado_settings["headers"]
    assert plain.Voila.tornado_settings["xsrf_cookie_kwargs"]["secure"] is False


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
    with pytest.raises(tornado_web.HTTPError):
        inject_parameters(_nb(False), {"tenant": "acme-outdoor"})
    shipped = nbformat.read(app.dashboards_dir() / app.SELLER_DASHBOARD, as_version=4)
    assert inject_parameters(shipped, {"tenant": "t1"}).cells[2].metadata["tags"] == [
        "injected-parameters"
    ]


def test_only_bound_sellers_get_a_tenant(serve_home: Home) -> None:
    """The servers ask the gateway (operator credential) for a seller's binding."""
    from amzigo_lab.client.directory import Directory

    directory = Directory(serve_home.settings.home)
    assert directory.seller_binding("sam", DASHBOARD_PURPOSE) == ("acme-outdoor", "")
    assert directory.seller_binding("ana", DASHBOARD_PURPOSE)[0] is None
    assert directory.seller_binding("nobody", DASHBOARD_PURPOSE) == (None, "unknown user")


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
    shown = ui.boxes["tiles"].value
    ref = re.search(r"the reference ([0-9a-f]{12})", shown)
    assert ref and "could not load the data of your account" in shown
    for detail in (str(tmp_path), "ConfigError", "acme-outdoor"):  # no detail in the page
        assert detail not in shown
    err = capfd.readouterr().err  # but in the operator's log, under the reference
    assert f"error ref {ref.group(1)}: load the data of acme-outdoor: ConfigError" in err
    assert "no-home" in err and "Traceback" in err
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


def test_the_period_is_at_most_a_year_and_never_in_the_future() -> None:
    d = dt.date
    latest = d(2026, 3, 8)
    ok = View(d(2026, 1, 1), d(2026, 3, 1), "UK")
    assert bound_view(ok, latest) == (ok, "")
    long, note = bound_view(View(d(2020, 1, 1), d(2026, 3, 7), "UK"), latest)
    assert (long.start, long.end, long.marketplace) == (d(2025, 3, 7), d(2026, 3, 7), "UK")
    assert (long.end - long.start).days + 1 == MAX_DAYS and "at most 366 days" in note
    future, note = bound_view(View(d(2026, 3, 1), d(2027, 1, 1)), latest)
    assert (future.start, future.end) == (d(2026, 3, 1), latest) and "after 2026-03-08" in note
    beyond, _ = bound_view(View(d(2027, 1, 1), d(2027, 2, 1)), latest)
    assert beyond.start == beyond.end == latest


def test_pickers_are_kept_within_bounds(serve_home: Home) -> None:
    board = SellerDashboard.open("acme-outdoor", str(serve_home.settings.home))
    ui = DashboardWidgets()
    ui.attach(board)
    ui.start.value = dt.date(2023, 1, 1)  # one refresh, with the start moved up
    assert ui.seq == 2 and ui.start.value == ui.end.value - dt.timedelta(days=MAX_DAYS - 1)
    assert "at most 366 days" in ui.status.value
    assert ui.end.max is not None and ui.end.max >= board.last_day


def test_a_failed_update_shows_a_reference_only(
    serve_home: Home, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    board = SellerDashboard.open("acme-outdoor", str(serve_home.settings.home))
    ui = DashboardWidgets()
    ui.attach(board)

    def boom(view: View) -> Any:
        raise RuntimeError("secret /srv/amzigo/path")

    monkeypatch.setattr(board, "iter_sections", boom)
    ui.market.value = "UK"
    assert "could not update the figures" in ui.status.value
    assert "secret" not in ui.status.value and "RuntimeError" not in ui.status.value
    assert "RuntimeError: secret /srv/amzigo/path" in capfd.readouterr().err


def test_login_throttle_counts_failures_per_address_in_a_window() -> None:
    now = [0.0]
    throttle = LoginThrottle(3, 60.0, clock=lambda: now[0], max_addresses=2)
    for _ in range(2):
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 0.0
    now[0] = 10.0
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 50.0  # until the first failure is 60 s old
    assert throttle.retry_after("10.0.0.2") == 0.0  # other addresses are not affected
    now[0] = 60.0
    assert throttle.retry_after("10.0.0.1") == 0.0  # the window slid past the first two
    throttle.failed("10.0.0.2")
    throttle.failed("10.0.0.3")  # only the 2 most recent addresses are remembered
    assert "10.0.0.1" not in throttle._failures
    assert LoginThrottle(0, 60.0).retry_after("x") == 0.0  # 0: no limit


def test_the_client_address_comes_from_trusted_proxies_only() -> None:
    proxies = proxy_networks(["10.0.0.0/24", "::1"])
    # no trusted proxy configured, or an untrusted peer: the header is anyone's to forge
    assert client_address("10.0.0.5", "198.51.100.7", ()) == "10.0.0.5"
    assert client_address("192.0.2.1", "198.51.100.7", proxies) == "192.0.2.1"
    assert client_address("10.0.0.5", None, proxies) == "10.0.0.5"
    # a trusted proxy: the nearest hop that is not a trusted proxy itself
    assert client_address("10.0.0.5", "198.51.100.7", proxies) == "198.51.100.7"
    assert client_address("10.0.0.5", "203.0.113.9, 198.51.100.7, 10.0.0.9", proxies) == (
        "198.51.100.7"
    )
    assert client_address("::1", "2001:db8::1", proxies) == "2001:db8::1"
    # garbage stops the walk at the last hop a trusted proxy vouched for
    assert client_address("10.0.0.5", "198.51.100.7, not-an-ip", proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", "10.0.0.8, 10.0.0.9", proxies) == "10.0.0.8"
    with pytest.raises(ValueError, match="not an IP address or network"):
        proxy_networks(["10.0.0.x"])


def test_session_bodies_name_kernels() -> None:
    from types import SimpleNamespace

    def handler(method: str, body: bytes) -> Any:
        return SimpleNamespace(request=SimpleNamespace(method=method, body=body))

    assert body_kernel_id(handler("POST", b'{"kernel": {"id": "k1"}}')) == "k1"
    assert body_kernel_id(handler("PATCH", b'{"kernel": {"id": "k1"}, "path": "a"}')) == "k1"
    assert body_kernel_id(handler("POST", b'{"kernel": {"name": "python3"}}')) is None
    assert body_kernel_id(handler("GET", b'{"kernel": {"id": "k1"}}')) is None
    assert body_kernel_id(handler("POST", b"not json")) is None
    assert body_kernel_id(handler("POST", b'["x"]')) is None


def test_a_server_error_page_has_a_reference_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real tornado server whose handler fails: the page shows a reference, the log has the
    exception under it."""
    import asyncio
    import logging

    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port

    class Failing(web.with_safe_errors(tornado_web.RequestHandler)):  # type: ignore[misc]
        log = logging.getLogger("amzigo.test.web")

        def get(self) -> None:
            raise RuntimeError("secret detail /srv/x.py")

    async def fetch() -> Any:
        sock, port = bind_unused_port()
        app = tornado_web.Application([(r"/", Failing)])
        server = HTTPServer(app)
        server.add_sockets([sock])
        try:
            return await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/", raise_error=False)
        finally:
            server.stop()

    import threading

    got: list[Any] = []  # in a thread of its own: the browser tests leave a loop running here
    with caplog.at_level(logging.ERROR, logger="amzigo.test.web"):
        runner = threading.Thread(target=lambda: got.append(asyncio.run(fetch())))
        runner.start()
        runner.join(30)
    response = got[0]
    page = response.body.decode()
    assert response.code == 500 and "Something went wrong" in page
    ref = re.search(r"id=\"amz-error-ref\">([0-9a-f]{12})<", page)
    assert ref is not None
    for detail in ("secret", "RuntimeError", "Traceback", ".py"):
        assert detail not in page
    assert f"error ref {ref.group(1)}" in caplog.text and "secret detail" in caplog.text


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


def test_dashboard_advertising_section(serve_home: Home) -> None:
    """Ad spend, ad sales (latest pull), ACoS, TACoS (over all sales) and ROAS; never another
    tenant's ads."""
    board = SellerDashboard.open("acme-outdoor", str(serve_home.settings.home))
    sections = board.sections(View(dt.date(2026, 3, 1), dt.date(2026, 3, 7)))
    ads = sections.advertising
    for expected in ("amz-advertising", "$12.34", "$20.00", "$145.50", "61.7%", "8.5%", "1.62"):
        assert expected in ads, expected
    assert "$777.00" not in ads
    assert "amz-profit-after-ads" in ads and "Profit after ad spend" in ads
    empty = board.sections(View(dt.date(2026, 2, 1), dt.date(2026, 2, 7))).advertising
    assert "no ads data ingested" in empty


def test_review_topic_changes_name_the_product_and_label_the_verdict(serve_home: Home) -> None:
    """The dashboard's review-topic table names each product (from its order lines: the
    dashboard does not load the catalog) and heads every column."""
    board = SellerDashboard.open("acme-outdoor", str(serve_home.settings.home))
    reviews = board.sections(View(dt.date(2025, 12, 1), dt.date(2026, 3, 7))).reviews
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", reviews)
    assert heads == [
        "Product", "ASIN", "Mkt", "Sentiment", "Topic", "Share %", "Change (points)", "Verdict"
    ]  # fmt: skip
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", reviews)
    rows = [cells[i : i + len(heads)] for i in range(0, len(cells), len(heads))]
    assert rows and ["Product SKU-BLUE", "B0BLUE", "US"] in [r[:3] for r in rows]
    assert all(r[7] in ("worse", "ok") for r in rows)
