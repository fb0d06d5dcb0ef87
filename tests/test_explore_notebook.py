"""The README's example notebook (notebooks/explore.ipynb) runs headless under
`jupyter nbconvert --execute` from any directory, against a real home through the gateway, as
an analyst who sees only the granted tenant. The packaged copy the lab opens is the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import nbformat
import pyotp
import pytest

from amzigo_lab.config import load_settings
from amzigo_lab.events import MemorySink
from amzigo_lab.governance.context import Governance
from amzigo_lab.home import init_home
from tests.analysis.data import ACME, OTHER, OTHER_MARKERS, PII_MARKERS, populate

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "explore.ipynb"
PASSWORD = "correct horse battery staple 42"


def test_readme_names_the_notebook_and_the_lab_copy_is_the_same() -> None:
    assert "notebooks/explore.ipynb" in (REPO / "README.md").read_text(encoding="utf-8")
    ours = nbformat.read(str(NOTEBOOK), as_version=4)
    packaged = nbformat.read(str(REPO / "amzigo_lab" / "notebooks" / "explore.ipynb"), 4)
    assert [c.source for c in ours.cells] == [c.source for c in packaged.cells]
    assert not [c for c in ours.cells if c.cell_type == "code" and c.get("outputs")]


def test_explore_notebook_executes_from_any_directory(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "home", env={})
    lake = init_home(settings, audit=MemorySink())
    try:
        populate(lake)
    finally:
        lake.close()
    with Governance.open(settings) as gov:
        enrol = gov.identity.add_user("ana", ["analyst"], None, password=PASSWORD)
        secret = urllib.parse.parse_qs(urllib.parse.urlparse(enrol.provisioning_uri).query)
        gov.grants.grant("ana", ACME, actor="test")
        token = gov.identity.authenticate("ana", PASSWORD, pyotp.TOTP(secret["secret"][0]).now())
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    out = tmp_path / "executed.ipynb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMZIGO_") and k != "PYTHONPATH"}
    env.update(
        AMZIGO_HOME=str(settings.home),
        AMZIGO_SESSION=token.token,
        PYTHONPATH=str(REPO),  # the kernel imports this checkout's amzigo_lab
    )
    cmd = [
        sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
        str(NOTEBOOK), "--output", str(out), "--ExecutePreprocessor.timeout=180",
    ]  # fmt: skip
    done = subprocess.run(
        cmd, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=400, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    nb = nbformat.read(str(out), as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(json.dumps(o.get("data", {})) + o.get("text", "") for o in outputs)
    assert "order_items" in text and "SKU-RED" in text and ACME in text  # datasets, queries
    for marker in (*OTHER_MARKERS, *PII_MARKERS, OTHER):  # only the granted tenant, no PII
        assert marker not in text, marker
    assert not list(elsewhere.iterdir())  # nothing written where it ran
