"""Data policy 7 on the web: after a policy change, the dashboard's login shows the version in
force and the change's summary once (server-rendered, before going on); the next login goes
straight through. A real home, a real gateway, a real `amzigo dashboard` over TLS, no browser.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.governance.context import Governance
from amzigo_lab.governance.policy import Policy
from tests.serve.helpers import PASSWORD, Home, Server, cheap_hasher, login, make_home
from tests.serve.helpers import start_dashboard as start

SUMMARY = "Analysts no longer state review_requests <when> & why"


@pytest.fixture(scope="module")
def notice_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("policy-notice")
    users = {"sam": (("seller",), "acme-outdoor"), "cora": (("compliance",), None)}
    home = make_home(root / "home", users, fixtures=False)
    srv = start(home, root, "--warm-kernels", "0")
    yield srv
    srv.stop()


def _change_policy(home: Home, tmp: Path) -> None:
    with Governance.open(home.settings, hasher=cheap_hasher()) as gov:
        token = gov.identity.authenticate("cora", PASSWORD, home.code("cora")).token
    text = Policy.default().text.replace('"inventory_tracking", "review_requests"]',
                                         '"inventory_tracking"]')  # fmt: skip
    file = tmp / "policy.toml"
    file.write_text(text, encoding="utf-8")
    res = CliRunner().invoke(
        main,
        ["policy", "change", "--summary", SUMMARY, "--effective",
         dt.datetime.now(dt.UTC).date().isoformat(), str(file)],
        env={"AMZIGO_SESSION": token, "AMZIGO_HOME": str(home.settings.home)},
    )  # fmt: skip
    assert res.exit_code == 0, res.output


def test_the_web_login_shows_unread_policy_changes_once(
    notice_server: Server, tmp_path: Path
) -> None:
    server = notice_server
    _change_policy(server.home, tmp_path)
    s, r = login(server, "sam")
    assert r.status_code == 200, r.text
    assert "id='policy-notice'" in r.text
    assert (
        "Data policy version 2 (effective " in r.text
        and "1 change since the initial policy" in r.text
    )  # first login
    assert "review_requests &lt;when&gt; &amp; why" in r.text  # escaped, as written
    assert "<script" not in r.text  # server-rendered, nothing loaded from elsewhere
    assert "href='/'" in r.text  # on to where the user was going
    assert s.cookies.get("amzigo_session")  # logged in already
    # the next login: nothing unread, straight on
    code = pyotp.TOTP(server.home.totp["sam"]).at(time.time() + 30)
    _, again = login(server, "sam", code=code)
    assert again.status_code == 302, again.text
