"""`amzigo lab`: JupyterLab over TLS behind the same login, for analysis roles only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.serve.helpers import Home, Server, login, make_home, start_dashboard


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("lab")
    home: Home = make_home(work / "home")
    server = start_dashboard(home, work, "--root", str(work / "notebooks"), command="lab")
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
    finally:
        ida.delete(f"{lab.base}/api/kernels/{kernel_id}", headers=headers)


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
