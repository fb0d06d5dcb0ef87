"""`amzigo lab`: JupyterLab over TLS behind the same login, for analysis roles only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.serve.helpers import PASSWORD, Home, Server, login, make_home, start_dashboard

#: The lab under test blocks an address after this many failed logins within THROTTLE_WINDOW s.
THROTTLE_FAILURES = 3
THROTTLE_WINDOW = 10.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("lab")
    home: Home = make_home(work / "home")
    server = start_dashboard(
        home,
        work,
        "--root",
        str(work / "notebooks"),
        *("--address-max-failures", str(THROTTLE_FAILURES)),
        *("--address-window", str(THROTTLE_WINDOW)),
        *("--trusted-proxy", "127.0.0.1"),  # the test client plays the reverse proxy
        command="lab",
    )
    yield server
    server.stop()


def test_analyst_logs_in_and_finds_the_explore_notebook(lab: Server) -> None:
    s, r = login(lab, "ana")
    assert r.status_code == 302 and "/login" not in r.headers["Location"]
    contents = s.get(f"{lab.base}/api/contents")
    assert contents.status_code == 200
    assert [i["name"] for i in contents.json()["content"]] == ["explore.ipynb"]
    notebook = s.get(f"{lab.base}/api/contents/explore.ipynb").json()
    sources = "".join("".join(c["source"]) for c in notebook["content"]["cells"])
    assert "amzigo_lab.connect(" in sources


def test_analysts_see_and_reach_only_their_own_kernels_and_sessions(lab: Server) -> None:
    ida, r1 = login(lab, "ida")  # (a TOTP code is single-use: ana logged in above)
    kim, r2 = login(lab, "kim")
    assert r1.status_code == r2.status_code == 302
    headers = {"X-XSRFToken": ida.cookies.get("_xsrf"), "Referer": f"{lab.base}/lab"}
    created = ida.post(
        f"{lab.base}/api/sessions",
        json={"path": "explore.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    kernel_id = created.json()["kernel"]["id"]
    try:
        assert [k["id"] for k in ida.get(f"{lab.base}/api/kernels").json()] == [kernel_id]
        assert [s["kernel"]["id"] for s in ida.get(f"{lab.base}/api/sessions").json()] == [
            kernel_id
        ]
        assert kim.get(f"{lab.base}/api/kernels").json() == []
        assert kim.get(f"{lab.base}/api/sessions").json() == []
        assert kim.get(f"{lab.base}/api/kernels/{kernel_id}").status_code == 403
        # naming ida's kernel in a request body is refused too (and audited)
        kim_headers = {"X-XSRFToken": kim.cookies.get("_xsrf"), "Referer": f"{lab.base}/lab"}
        attach = {"path": "kim.ipynb", "type": "notebook", "kernel": {"id": kernel_id}}
        taken = kim.post(f"{lab.base}/api/sessions", json=attach, headers=kim_headers)
        assert taken.status_code == 403, taken.text
        own = kim.post(
            f"{lab.base}/api/sessions",
            json={"path": "kim.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
            headers=kim_headers,
        )
        assert own.status_code == 201, own.text
        kim_kernel = own.json()["kernel"]["id"]
        try:
            moved = kim.patch(
                f"{lab.base}/api/sessions/{own.json()['id']}",
                json={"kernel": {"id": kernel_id}},
                headers=kim_headers,
            )
            assert moved.status_code == 403, moved.text
            assert [k["id"] for k in kim.get(f"{lab.base}/api/kernels").json()] == [kim_kernel]
        finally:
            kim.delete(f"{lab.base}/api/kernels/{kim_kernel}", headers=kim_headers)
        assert [k["id"] for k in ida.get(f"{lab.base}/api/kernels").json()] == [kernel_id]
        denied = _audit(lab, action="kernel.access", actor="kim")
        assert [e.resource for e in denied if "request body" in str(e.reason)] == [
            f"kernel:{kernel_id}"
        ] * 2
        # an analyst cannot shut the lab down for everybody (File > Shut Down)
        assert kim.post(f"{lab.base}/api/shutdown", headers=kim_headers).status_code == 403
    finally:
        ida.delete(f"{lab.base}/api/kernels/{kernel_id}", headers=headers)


def _audit(lab: Server, **filters: str) -> list[Any]:
    """The lab home's audit events matching `filters` (read while the server runs)."""
    from amzigo_lab.governance.context import Governance

    with Governance.open(lab.home.settings) as gov:
        return list(gov.audit_log.search(**filters))


def test_sellers_are_refused(lab: Server) -> None:
    s, r = login(lab, "sam")
    assert r.status_code == 403
    assert s.get(f"{lab.base}/api/contents").status_code == 403


def test_unauthenticated_and_plain_http_requests_get_nothing(lab: Server) -> None:
    r = requests.get(f"{lab.base}/api/contents", verify=str(lab.home.ca), allow_redirects=False)
    assert r.status_code in (302, 403)
    with pytest.raises(requests.ConnectionError):
        requests.get(lab.base.replace("https://", "http://") + "/lab", timeout=5)


def test_lab_root_inside_the_home_is_refused(tmp_path: Path) -> None:
    from amzigo_lab.config import load_settings
    from amzigo_lab.errors import ConfigError
    from amzigo_lab.serve.app import prepare_lab_root

    settings = load_settings(tmp_path / "home", env={})
    with pytest.raises(ConfigError, match="must not contain or be inside the home"):
        prepare_lab_root(tmp_path / "home" / "nb", settings)


def test_security_headers_cookies_and_logout_entry(lab: Server) -> None:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(lab.home.ca)
    login_page = s.get(f"{lab.base}/login")
    xsrf = next(h for h in login_page.raw.headers.getlist("Set-Cookie") if h.startswith("_xsrf"))
    assert "secure" in xsrf.lower() and "samesite=strict" in xsrf.lower()
    mia, r = login(lab, "mia")
    assert r.status_code == 302
    session = next(h for h in r.raw.headers.getlist("Set-Cookie") if h.startswith("amzigo_"))
    assert all(a in session.lower() for a in ("secure", "httponly", "samesite=strict"))
    page = mia.get(f"{lab.base}/lab")
    assert page.status_code == 200
    assert '"quitButton": true' in page.text  # File > Log Out (it opens /logout)
    for response in (login_page, page, mia.get(f"{lab.base}/api/contents")):
        h = response.headers
        assert h["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        assert h["X-Frame-Options"] == "DENY" and h["Referrer-Policy"] == "no-referrer"
        csp = h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "https:" not in csp and "*" not in csp


def test_a_throttled_address_gets_429_and_the_account_is_not_locked(lab: Server) -> None:
    """After THROTTLE_FAILURES failures from one address (127.0.0.1: every test here), that
    address gets 429 without any check, so the account it tries is not counted; once the window
    has passed, the right password and code get in (15 failures on `lee` would lock it)."""
    import time

    answers = []
    for _ in range(THROTTLE_FAILURES + 12):
        _s, r = login(lab, "lee", password="Wrong-Password-000", code="000000")
        answers.append(r.status_code)
        if r.status_code == 429:
            assert "Too many failed logins from your network address" in r.text
            assert int(r.headers["Retry-After"]) <= THROTTLE_WINDOW + 1
    assert answers[-12:] == [429] * 12 and 401 in answers
    deadline = time.monotonic() + THROTTLE_WINDOW + 5
    while True:
        _s, r = login(lab, "lee", password=PASSWORD)
        if r.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert r.status_code == 302, r.text


def test_behind_a_trusted_proxy_each_client_address_is_throttled_not_the_proxy(
    lab: Server,
) -> None:
    """The lab trusts 127.0.0.1 as its reverse proxy: failed logins forwarded for one client
    block that client only, whatever that client writes into X-Forwarded-For itself (the
    proxy appends the real address; the nearest untrusted hop counts); another client behind
    the same proxy logs in."""
    client = {"X-Forwarded-For": "198.51.100.7"}
    answers = [
        login(lab, "lee", password="Wrong-Password-000", code="000000", headers=client)[1]
        for _ in range(THROTTLE_FAILURES + 1)
    ]
    assert [r.status_code for r in answers] == [401] * THROTTLE_FAILURES + [429]
    forged = {"X-Forwarded-For": "203.0.113.99, 198.51.100.7"}  # a made-up hop of its own
    assert login(lab, "lee", password=PASSWORD, headers=forged)[1].status_code == 429
    other = {"X-Forwarded-For": "198.51.100.8"}  # (pat: lee's code may be used already)
    assert login(lab, "pat", password=PASSWORD, headers=other)[1].status_code == 302


def _run_in_kernel(lab: Server, s: requests.Session, kernel_id: str, code: str) -> str:
    """Execute `code` in a kernel over its websocket (as JupyterLab does); the printed text."""
    import json
    import uuid

    import websocket

    cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies)
    ws = websocket.create_connection(
        f"wss://localhost:{lab.port}/api/kernels/{kernel_id}/channels",
        sslopt={"ca_certs": str(lab.home.ca)},
        cookie=cookie,
        origin=lab.base,
        timeout=60,
    )
    header = {"msg_id": uuid.uuid4().hex, "session": uuid.uuid4().hex, "username": "",
              "msg_type": "execute_request", "version": "5.3", "date": ""}  # fmt: skip
    content = {"code": code, "silent": False, "store_history": False}
    ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {},
                        "content": content, "channel": "shell"}))  # fmt: skip
    out: list[str] = []
    try:
        while True:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != header["msg_id"]:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append(f"ERROR {msg['content']['ename']}: {msg['content']['evalue']}")
            elif msg["msg_type"] == "execute_reply":
                break
    finally:
        ws.close()
    return "".join(out)


def test_one_login_carries_into_connect_and_logout_stops_the_kernel(lab: Server) -> None:
    from amzigo_lab.governance.context import Governance

    with Governance.open(lab.home.settings) as gov:
        gov.grants.grant("una", "acme-outdoor", actor="test")
    s, r = login(lab, "una")
    assert r.status_code == 302
    headers = {"X-XSRFToken": s.cookies.get("_xsrf"), "Referer": f"{lab.base}/lab"}
    created = s.post(
        f"{lab.base}/api/sessions",
        json={"path": "one-login.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    kernel_id = created.json()["kernel"]["id"]
    code = (
        "import os, amzigo_lab\n"
        "wb = amzigo_lab.connect('sales_analysis')\n"
        "print('USER', wb.user, wb.tenants('orders'))\n"
        "print('ROWS', wb.sql('SELECT count(*) AS n FROM orders')['n'][0] > 0)\n"
        "print('TOKEN', os.environ['AMZIGO_TOKEN'][:4])\n"
        "print('SECRETS', [k for k in os.environ if k in ('AMZIGO_SESSION', 'AMZIGO_MASTER_KEY')])\n"
    )
    out = _run_in_kernel(lab, s, kernel_id, code)
    assert "USER una ['acme-outdoor']" in out, out
    assert "ROWS True" in out and "TOKEN knl_" in out and "SECRETS []" in out, out
    # logging out ends the session: the kernel is shut down (its token revoked with it)
    assert s.get(f"{lab.base}/logout", allow_redirects=False).status_code == 302
    deadline = time.monotonic() + 30
    while f"Kernel shutdown: {kernel_id}" not in lab.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, lab.log.read_text(errors="replace")[-2000:]
        time.sleep(0.2)
    minted = _audit(lab, action="gateway.token", actor="una")
    assert minted and "kernel token" in str(minted[-1].reason)
