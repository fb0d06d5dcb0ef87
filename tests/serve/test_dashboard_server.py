"""End to end against a real `amzigo dashboard` (Voila over TLS) with a real two-tenant home."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import time
import uuid
from pathlib import Path

import pytest
import requests
import websocket

from tests.analysis.data import OTHER, OTHER_MARKERS, PII_MARKERS
from tests.serve.conftest import ARTIFACTS
from tests.serve.helpers import PASSWORD, Home, Server, login, tls_handshake

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"
RENDER = "/voila/render/seller.ipynb"


def _kernel_id(page: str) -> str:
    found = re.search(r'"kernelId":\s*"([0-9a-f-]{36})"', page)
    assert found, "no kernel id in the rendered page"
    return found.group(1)


@pytest.fixture(scope="module")
def owner(server: Server) -> tuple[requests.Session, str]:
    """Seller `cyd` with a rendered dashboard: (session, kernel id)."""
    s, r = login(server, "cyd")
    assert r.status_code == 302, r.text
    page = s.get(server.base + RENDER, timeout=120)
    assert page.status_code == 200
    return s, _kernel_id(page.text)


@pytest.fixture(scope="module")
def attacker(server: Server) -> requests.Session:
    """Seller `bob` of the other tenant, logged in."""
    s, r = login(server, "bob")
    assert r.status_code == 302, r.text
    return s


def _ws(server: Server, s: requests.Session, kernel_id: str) -> websocket.WebSocket:
    cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies)
    return websocket.create_connection(
        f"wss://localhost:{server.port}/api/kernels/{kernel_id}/channels",
        sslopt={"ca_certs": str(server.home.ca)},
        cookie=cookie,
        origin=server.base,
        timeout=10,
    )


def _message(msg_type: str, code: str = "") -> str:
    """A Jupyter protocol message as a browser sends it over the kernel websocket."""
    content = {"code": code, "silent": False, "store_history": False} if code else {}
    header = {"msg_id": uuid.uuid4().hex, "session": uuid.uuid4().hex, "username": "",
              "msg_type": msg_type, "version": "5.3", "date": ""}  # fmt: skip
    return json.dumps(
        {"header": header, "parent_header": {}, "metadata": {}, "content": content,
         "channel": "shell"}
    )  # fmt: skip


def _pool(server: Server) -> tuple[list[str], dict[str, str]]:
    """(pooled kernels in the order they were warmed, kernel -> owner) from the server log."""
    text = server.log.read_text(errors="replace")
    warm = re.findall(r"pooled kernel ([0-9a-f-]{36}) is warm", text)
    owned = dict(re.findall(r"kernel ([0-9a-f-]{36}) owned by (\S+)", text))
    return warm, owned


@pytest.mark.browser
def test_seller_logs_in_sees_own_tenant_and_changes_dates(server: Server, browser: object) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.goto(server.base + RENDER)
    assert "/login" in page.url
    page.fill("#username", "sam")
    page.fill("#password", PASSWORD)
    page.fill("#code", server.home.code("sam"))
    started = time.perf_counter()
    with page.expect_response(lambda r: r.url.endswith(RENDER) and r.status == 200) as shown:
        page.click("#login-submit")
    csp = shown.value.headers["content-security-policy"]  # the dashboard page's own headers
    assert "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    assert shown.value.headers["strict-transport-security"].startswith("max-age=31536000")
    sales = page.locator("#amz-tiles [data-metric='sales'][data-currency='USD'] .v")
    sales.wait_for(timeout=90_000)
    rendered = time.perf_counter() - started
    heading = page.locator("#amz-heading").inner_text()
    assert "acme-outdoor" in heading
    # default view: the 30 days "as of" the data (2026-02-06 .. 2026-03-07): the newest order,
    # 2026-03-08 12:00 UTC, is 04:00 in Los Angeles, so 8 March is not complete there
    assert "2026-02-06 – 2026-03-07" in heading
    assert sales.inner_text() == "$211.00"
    seq = int(page.locator("#amz-status").get_attribute("data-seq"))
    page.locator(".amz-start input").fill("2026-03-01")  # the end is 2026-03-07 already
    page.wait_for_selector(f"#amz-status[data-seq='{seq + 1}']", timeout=30_000)
    assert sales.inner_text() == "$145.50"  # the hand-computed figure of tests/analysis/data.py
    assert "2026-03-01 – 2026-03-07" in page.locator("#amz-heading").inner_text()
    assert page.locator("#amz-products").count() == 1
    assert page.locator("#amz-sales-chart svg").count() >= 1
    # the marketplace picker: UK shows pounds only
    page.locator(".amz-market select").select_option("UK")
    page.wait_for_selector(f"#amz-status[data-seq='{seq + 2}']", timeout=30_000)
    assert "· UK" in page.locator("#amz-heading").inner_text()
    assert page.locator("#amz-tiles [data-currency='GBP']").count() > 0
    assert page.locator("#amz-tiles [data-currency='USD']").count() == 0
    # a period longer than a year is cut to 366 days ending at the chosen end, with a note
    page.locator(".amz-start input").fill("2024-01-01")
    page.wait_for_selector(f"#amz-status[data-seq='{seq + 3}']", timeout=30_000)
    assert "at most 366 days" in page.locator("#amz-status").inner_text()
    assert page.locator(".amz-start input").input_value() == "2025-03-07"
    assert "2025-03-07 – 2026-03-07" in page.locator("#amz-heading").inner_text()
    # the page offers a logout link, and the CSP blocked nothing it needs
    assert page.locator("#amz-logout").is_visible()
    violations = [m for m in console if "Content Security Policy" in m]
    assert violations == [], violations
    content = page.content()
    for marker in (OTHER, *OTHER_MARKERS, *PII_MARKERS):
        assert marker not in content, f"{marker!r} leaked into the seller's page"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    if not DOCS_IMG.exists():
        DOCS_IMG.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMG)
    print(f"login-to-rendered {rendered:.2f} s; screenshot {shot}")
    page.click("#amz-logout")  # ends the session: the dashboard asks for a login again
    page.wait_for_selector("#login-form")
    page.goto(server.base + RENDER)
    assert "/login" in page.url
    page.close()


def test_unauthenticated_requests_go_to_login(server: Server) -> None:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(server.home.ca)
    r = s.get(server.base + RENDER, allow_redirects=False)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert s.get(server.base + "/voila/files/seller.ipynb").status_code in (403, 404)
    assert s.get(server.base + "/api/kernels").status_code in (403, 404)


def test_other_seller_cannot_reach_the_kernel(
    server: Server, owner: tuple[requests.Session, str], attacker: requests.Session
) -> None:
    own, kernel_id = owner
    url = f"{server.base}/api/kernels/{kernel_id}"
    assert own.get(url).status_code == 200
    # REST
    assert attacker.get(url).status_code == 403
    xsrf = attacker.cookies.get("_xsrf")
    assert attacker.delete(url, headers={"X-XSRFToken": xsrf}).status_code == 403
    # websocket: refused for the attacker, accepted for the owner
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _ws(server, attacker, kernel_id)
    assert refused.value.status_code == 403
    _ws(server, own, kernel_id).close()
    # Voila's shutdown endpoint
    shut = attacker.post(f"{server.base}/voila/api/shutdown/{kernel_id}", data={"_xsrf": xsrf})
    assert shut.status_code == 403
    assert own.get(url).status_code == 200, "the owner's kernel must still be running"
    # no kernel listing shows it (Voila has none: 404)
    listing = attacker.get(f"{server.base}/api/kernels")
    assert listing.status_code in (200, 404) and kernel_id not in listing.text
    # and the attacker's own dashboard shows only their tenant (no kernel of the other)
    page = attacker.get(server.base + RENDER)
    assert page.status_code == 200 and _kernel_id(page.text) != kernel_id


def test_a_seller_cannot_run_code_in_their_own_kernel(
    server: Server, owner: tuple[requests.Session, str]
) -> None:
    own, kernel_id = owner
    ws = _ws(server, own, kernel_id)
    try:
        ws.send(_message("execute_request", "print('ran', 6 * 7)"))
        ws.send(_message("kernel_info_request"))  # answered in order, after the execute
        seen = []
        while "kernel_info_reply" not in seen:
            msg = ws.recv()
            if isinstance(msg, str):
                seen.append(json.loads(msg)["msg_type"])
    finally:
        ws.close()
    assert "execute_reply" not in seen and "stream" not in seen, seen


def test_pages_come_from_warm_kernels_nobody_could_reach_before(server: Server) -> None:
    deadline = time.monotonic() + 90
    while True:
        warm, owned = _pool(server)
        waiting = [k for k in warm if k not in owned]
        if waiting or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert waiting, "the server has no warm kernel waiting"
    s, r = login(server, "eve")
    assert r.status_code == 302
    pooled = waiting[0]  # the oldest warm kernel goes first
    # before its handover, a warm kernel is nobody's: invisible and unreachable
    assert s.get(f"{server.base}/api/kernels/{pooled}").status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _ws(server, s, pooled)
    assert refused.value.status_code == 403
    page = s.get(server.base + RENDER, timeout=120)
    assert page.status_code == 200 and _kernel_id(page.text) == pooled
    assert _pool(server)[1][pooled] == "eve"
    assert s.get(f"{server.base}/api/kernels/{pooled}").status_code == 200
    # the notebook ran to the end in that kernel: the dashboard's widgets are on the page
    assert "application/vnd.jupyter.widget-view+json" in page.text
    # and it works offline: nothing is loaded from another host (no CDN)
    external = re.findall(
        r"""(?:src|href)=["']?(?:https?:)?//|import\(["'](?:https?:)?//""", page.text
    )
    assert external == [] and "cdn" not in page.text.lower()


def test_users_without_a_seller_binding_get_a_plain_403_page_and_no_kernel(
    server: Server,
) -> None:
    s, r = login(server, "ana")  # an analyst
    assert r.status_code == 302
    page = s.get(server.base + RENDER)
    assert page.status_code == 403
    assert "kernelId" not in page.text
    assert 'id="amz-error"' in page.text and "Dashboards are for seller accounts" in page.text
    assert "id='amz-logout'" in page.text and "/logout" in page.text
    assert "HTTPError" not in page.text and "Traceback" not in page.text


def test_error_pages_show_no_internals(server: Server, attacker: requests.Session) -> None:
    missing = attacker.get(server.base + "/voila/render/no-such-dashboard.ipynb")
    assert missing.status_code == 404
    assert "amz-error-ref" in missing.text
    for internal in ("Traceback", "no-such-dashboard", 'File "', ".py"):
        assert internal not in missing.text


def _raw_cookies(r: requests.Response) -> dict[str, str]:
    """Set-Cookie headers of one response, by cookie name (attributes lowercased)."""
    out = {}
    for header in r.raw.headers.getlist("Set-Cookie"):
        out[header.split("=", 1)[0]] = header.lower()
    return out


def test_security_headers_and_cookie_attributes(
    server: Server, owner: tuple[requests.Session, str]
) -> None:
    own, kernel_id = owner
    plain = requests.Session()
    plain.trust_env = False
    plain.verify = str(server.home.ca)
    login_page = plain.get(server.base + "/login")
    for r in (
        login_page,
        own.get(f"{server.base}/api/kernels/{kernel_id}"),  # an API answer
        plain.get(server.base + "/voila/render/x.ipynb", allow_redirects=False),  # a redirect
        own.get(server.base + "/voila/render/x.ipynb"),  # an error page
    ):
        h = r.headers
        assert h["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        assert h["X-Frame-Options"] == "DENY" and h["Referrer-Policy"] == "no-referrer"
        csp = h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert "unsafe-eval" not in csp
        assert not re.search(r"https?:|wss?:|\*", csp), csp  # no other host, no wildcard
    xsrf = _raw_cookies(login_page)["_xsrf"]
    assert "secure" in xsrf and "samesite=strict" in xsrf
    _s, r = login(server, "kim")
    session = _raw_cookies(r)["amzigo_session"]
    assert "secure" in session and "httponly" in session and "samesite=strict" in session


@pytest.mark.browser
def test_a_dashboard_failure_shows_a_reference_not_the_error(
    server: Server, serve_home: Home, browser: object
) -> None:
    """Force the kernel's data load to fail (the home's policy stops granting the seller role
    review_management): the seller sees a plain message and a reference id; the error's
    details are only in the server log, under that reference."""
    from importlib import resources

    shipped = (resources.files("amzigo_lab") / "governance" / "policy.toml").read_text()
    seller = "[roles.seller]"
    head, tail = shipped.split(seller, 1)
    tail = tail.replace('"sales_analysis", "review_management", ', '"sales_analysis", ', 1)
    override = serve_home.settings.home / "policy.toml"
    override.write_text(head + seller + tail)
    try:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(server.base + "/logout")  # the browser's profile is shared between tests
        page.goto(server.base + RENDER)
        page.fill("#username", "gus")
        page.fill("#password", PASSWORD)
        page.fill("#code", server.home.code("gus"))
        page.click("#login-submit")
        page.wait_for_selector("#amz-status:has-text('failed')", timeout=90_000)
    finally:
        override.unlink()
    shown = page.locator("#rendered_cells").inner_text()
    page.close()
    logged = re.findall(r"error ref ([0-9a-f]{12}): load the data of acme-outdoor: (.*)",
                        server.log.read_text(errors="replace"))  # fmt: skip
    assert logged and "AccessDenied" in logged[-1][1]
    assert f"tell your administrator the reference {logged[-1][0]}" in shown
    assert "could not load the data of your account" in shown
    for internal in ("AccessDenied", "review_trends", "svc:dashboard", "Traceback", "Error"):
        assert internal not in shown


def _answer(r: requests.Response) -> tuple[int, str]:
    """Status and page of a login answer, without its (per-response) XSRF token."""
    return r.status_code, re.sub(r'name="_xsrf" value="[^"]*"', "", r.text)


def test_eleven_wrong_passwords_lock_the_account(server: Server) -> None:
    answers = []
    for _ in range(11):
        _s, r = login(server, "lou", password="Wrong-Password-000", code="000000")
        answers.append(_answer(r))
    assert answers[0][0] == 401 and "Login failed" in answers[0][1]
    assert len(set(answers)) == 1  # locking changes nothing a client can see ...
    _s, r = login(server, "lou")  # ... but the right password and code no longer get in
    assert _answer(r) == answers[0]


def test_every_login_failure_gets_the_same_answer_in_similar_time(server: Server) -> None:
    cases = {
        "unknown user": ("nobody-here", PASSWORD, "123456"),
        "wrong password": ("bob", "Wrong-Password-000", None),
        "wrong code": ("kim", PASSWORD, "000000"),
        "locked account": ("lou", PASSWORD, None),  # locked by the test above
    }
    answers, times = {}, {}
    for case, (user, password, code) in cases.items():
        started = time.perf_counter()
        _s, r = login(server, user, password=password, code=code or server.home.code(user))
        times[case] = time.perf_counter() - started
        answers[case] = _answer(r)
    assert len(set(answers.values())) == 1, answers
    assert next(iter(answers.values()))[0] == 401
    # every failure is answered no sooner than 1 s after it arrived (the login GET adds a bit)
    assert min(times.values()) >= 1.0 and max(times.values()) - min(times.values()) < 0.5, times


def test_logout_ends_the_session_and_only_that_users_kernels(
    server: Server, owner: tuple[requests.Session, str]
) -> None:
    own, cyd_kernel = owner
    s, r = login(server, "dee")
    assert r.status_code == 302
    page = s.get(server.base + RENDER, timeout=120)
    assert page.status_code == 200
    dee_kernel = _kernel_id(page.text)
    stale = s.cookies.copy()  # keep the old session cookie, as an attacker would
    s.get(server.base + "/logout")
    r = requests.get(
        server.base + RENDER, cookies=stale, verify=str(server.home.ca), allow_redirects=False
    )
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    # dee's kernel is shut down at logout; cyd's (started from another request) lives on,
    # including past the next background session check (every 15 s)
    log = server.log.read_text(errors="replace")
    assert f"Kernel shutdown: {dee_kernel}" in log
    time.sleep(16)
    assert f"Kernel shutdown: {cyd_kernel}" not in server.log.read_text(errors="replace")
    assert own.get(f"{server.base}/api/kernels/{cyd_kernel}").status_code == 200


def test_tls_1_1_is_refused_and_1_2_accepted(server: Server) -> None:
    assert not tls_handshake(server.port, ssl.TLSVersion.TLSv1_1)
    assert tls_handshake(server.port, ssl.TLSVersion.TLSv1_2)  # the same client, one version up


def test_a_busy_port_gives_a_clear_error_and_no_traceback(server: Server) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMZIGO_")}
        done = subprocess.run(
            [sys.executable, "-c", "from amzigo_lab.cli import main; main()", "dashboard",
             "--port", str(port), "--home", str(server.home.settings.home)],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_one_time_password_is_changed_before_any_session(server: Server) -> None:
    """First web login with a one-time password: a change-password form, no session cookie
    until a new password the policy accepts is set (issue 18 item 4)."""
    s, r = login(server, "ott")
    assert r.status_code == 200 and 'id="change-form"' in r.text, r.text[:500]
    assert "amzigo_session" not in s.cookies and "choose a new password" in r.text
    ticket = re.search(r'name="ticket" value="([^"]+)"', r.text)
    assert ticket
    form = {"_xsrf": s.cookies.get("_xsrf"), "ticket": ticket.group(1), "user": "ott", "next": "/"}

    def change(new: str, again: str | None = None) -> requests.Response:
        data = {**form, "new_password": new, "new_password2": again or new}
        return s.post(f"{server.base}/login", data=data, allow_redirects=False)

    r = change("Fresh-Orchard-Lantern-31", "Fresh-Orchard-Lantern-32")
    assert r.status_code == 400 and "differ" in r.text and 'id="change-form"' in r.text
    r = change("password123")
    assert r.status_code == 400 and "password rejected" in r.text
    assert "amzigo_session" not in s.cookies
    r = change("Fresh-Orchard-Lantern-31")
    assert r.status_code == 302, r.text[:500]
    assert "amzigo_session" in s.cookies
    page = s.get(server.base + RENDER, timeout=120)
    assert page.status_code == 200
    # the ticket was single use
    r = change("Other-Orchard-Lantern-77")
    assert r.status_code == 401 and "log in again" in r.text
