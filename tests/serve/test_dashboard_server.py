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
from tests.serve.helpers import PASSWORD, Server, login, tls_handshake

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
    page.goto(server.base + RENDER)
    assert "/login" in page.url
    page.fill("#username", "sam")
    page.fill("#password", PASSWORD)
    page.fill("#code", server.home.code("sam"))
    started = time.perf_counter()
    page.click("#login-submit")
    sales = page.locator("#amz-tiles [data-metric='sales'][data-currency='USD'] .v")
    sales.wait_for(timeout=90_000)
    rendered = time.perf_counter() - started
    heading = page.locator("#amz-heading").inner_text()
    assert "acme-outdoor" in heading
    # default view: the 30 days ending at the newest order (2026-02-07 .. 2026-03-08)
    assert sales.inner_text() == "$231.00"
    seq = int(page.locator("#amz-status").get_attribute("data-seq"))
    page.locator(".amz-start input").fill("2026-03-01")
    page.wait_for_selector(f"#amz-status[data-seq='{seq + 1}']", timeout=30_000)
    page.locator(".amz-end input").fill("2026-03-07")
    page.wait_for_selector(f"#amz-status[data-seq='{seq + 2}']", timeout=30_000)
    assert sales.inner_text() == "$145.50"  # the hand-computed figure of tests/analysis/data.py
    assert "2026-03-01 – 2026-03-07" in page.locator("#amz-heading").inner_text()
    assert page.locator("#amz-products").count() == 1
    assert page.locator("#amz-sales-chart svg").count() >= 1
    # the marketplace picker: UK shows pounds only
    page.locator(".amz-market select").select_option("UK")
    page.wait_for_selector(f"#amz-status[data-seq='{seq + 3}']", timeout=30_000)
    assert "· UK" in page.locator("#amz-heading").inner_text()
    assert page.locator("#amz-tiles [data-currency='GBP']").count() > 0
    assert page.locator("#amz-tiles [data-currency='USD']").count() == 0
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


def test_users_without_a_seller_binding_get_403_and_no_kernel(server: Server) -> None:
    s, r = login(server, "ana")  # an analyst
    assert r.status_code == 302
    page = s.get(server.base + RENDER)
    assert page.status_code == 403
    assert "kernelId" not in page.text


def test_eleven_wrong_passwords_lock_the_account(server: Server) -> None:
    statuses = []
    for _ in range(11):
        _s, r = login(server, "lou", password="Wrong-Password-000", code="000000")
        statuses.append((r.status_code, "locked" in r.text))
    assert statuses[0] == (401, False)
    assert statuses[-1] == (403, True)
    _s, r = login(server, "lou")  # even the right password and code
    assert r.status_code == 403 and "locked" in r.text


def test_logout_ends_the_session(server: Server) -> None:
    s, r = login(server, "dee")
    assert r.status_code == 302
    assert s.get(server.base + "/voila/api/contents", allow_redirects=False).status_code == 200
    stale = s.cookies.copy()  # keep the old session cookie, as an attacker would
    s.get(server.base + "/logout")
    r = requests.get(
        server.base + RENDER, cookies=stale, verify=str(server.home.ca), allow_redirects=False
    )
    assert r.status_code == 302 and "/login" in r.headers["Location"]


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
