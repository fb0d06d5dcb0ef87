"""`amzigo costs import|ls` through the home's gateway: who may, row-level errors with nothing
written, history, idempotent re-import, break-glass (issue 13 item 3)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.config import load_settings
from amzigo_lab.datasets import REGISTRY
from amzigo_lab.events import MemorySink
from amzigo_lab.lake import Lake
from tests.analysis import data
from tests.governance.test_governance_cli import add_user, events, login, run

TENANT = data.ACME


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    result = CliRunner().invoke(main, ["init", "--home", str(h)], env={"AMZIGO_SESSION": None})
    assert result.exit_code == 0, result.output
    lake = Lake.open(load_settings(h, env={}), REGISTRY, audit=MemorySink())
    try:  # the tenant has Amazon data before the gateway starts
        lake.write("orders", TENANT, data.END, data.table("orders", data.ORDERS_V2), "o1")
    finally:
        lake.close()
    return h


@pytest.fixture
def admin(home: Path) -> str:
    return login(home, "admin1", add_user(home, "admin1", "--role", "admin"))


def _rows(home: Path) -> int:
    lake = Lake.open(load_settings(home, env={}), REGISTRY, audit=MemorySink())
    try:
        return sum(p.row_count for p in lake.catalog.partitions("product_costs"))
    finally:
        lake.close()


def test_import_and_list_as_a_granted_analyst(home: Path, admin: str, tmp_path: Path) -> None:
    ana = login(home, "ana", add_user(home, "ana", "--role", "analyst", session=admin))
    f = tmp_path / "costs.csv"
    f.write_text(
        "sku,marketplace,currency,unit_cost,valid_from\n"
        "SKU-RED,,USD,8.00,2026-01-01\n"
        "SKU-RED,US,USD,9.00,2026-03-02\n"
        "SKU-GREEN,UK,GBP,5,\n"
    )
    # no grant on the tenant yet: refused, audited under her name, nothing written
    res = run(home, "costs", "import", str(f), "--tenant", TENANT, session=ana)
    assert res.exit_code == 2 and "sales_analysis access" in res.output, res.output
    assert "amzigo users grant" in res.output
    assert any(
        e.action == "costs.import" and e.decision == "deny" for e in events(home, actor="ana")
    )
    # an admin (manage_users) reads no seller data: refused too
    res = run(home, "costs", "ls", "--tenant", TENANT, session=admin)
    assert res.exit_code == 2 and "sales_analysis access" in res.output, res.output
    assert run(home, "users", "grant", "ana", "--tenant", TENANT, session=admin).exit_code == 0
    res = run(home, "costs", "import", str(f), "--tenant", TENANT, "--valid-from", "2026-02-01",
              session=ana)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"imported 3 cost rows (2 SKUs) for {TENANT} from costs.csv" in res.output
    assert _rows(home) == 3
    # the same file again: nothing written
    res = run(home, "costs", "import", str(f), "--tenant", TENANT, "--valid-from", "2026-02-01",
              session=ana)  # fmt: skip
    assert res.exit_code == 0 and "already imported" in res.output, res.output
    assert _rows(home) == 3
    # a new file corrects one key and adds history
    g = tmp_path / "april.csv"
    g.write_text("sku,marketplace,currency,unit_cost,valid_from\n"
                 "SKU-RED,US,USD,9.50,2026-03-02\nSKU-RED,US,USD,10,2026-04-01\n")  # fmt: skip
    assert run(home, "costs", "import", str(g), "--tenant", TENANT, session=ana).exit_code == 0
    res = run(home, "costs", "ls", "--tenant", TENANT, "--json", session=ana)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [(r["sku"], r["marketplace"], r["currency"], r["unit_cost"], r["valid_from"])
            for r in rows] == [
        ("SKU-GREEN", "UK", "GBP", "5.0000", "2026-02-01"),
        ("SKU-RED", "ALL", "USD", "8.0000", "2026-01-01"),
        ("SKU-RED", "US", "USD", "9.5000", "2026-03-02"),
        ("SKU-RED", "US", "USD", "10.0000", "2026-04-01"),
    ]  # fmt: skip
    assert len({r["source_sha256"] for r in rows}) == 2
    res = run(home, "costs", "ls", "--tenant", TENANT, session=ana)
    assert res.exit_code == 0 and "SKU-RED" in res.output and "in effect" in res.output
    imported = events(home, action="costs.imported")
    assert [(e.actor, e.tenant, e.row_count) for e in imported] == [
        ("ana", TENANT, 3), ("ana", TENANT, 0), ("ana", TENANT, 2),
    ]  # fmt: skip


def test_a_bad_file_names_its_rows_and_writes_nothing(
    home: Path, admin: str, tmp_path: Path
) -> None:
    ana = login(home, "ana", add_user(home, "ana", "--role", "analyst", session=admin))
    assert run(home, "users", "grant", "ana", "--tenant", TENANT, session=admin).exit_code == 0
    f = tmp_path / "bad.csv"
    f.write_text(
        "sku,currency,unit_cost,valid_from\n"
        + "".join(f"SKU-{i},USD,{i}.00,2026-03-01\n" for i in range(5))
        + "SKU-X,USD,abc,2026-03-01\n"  # row 7
    )
    res = run(home, "costs", "import", str(f), "--tenant", TENANT, session=ana)
    assert res.exit_code == 2, res.output
    assert "row 7: unit_cost 'abc' is not a number" in res.output
    assert "nothing was imported" in res.output and "Traceback" not in res.output
    assert _rows(home) == 0
    failed = events(home, action="costs.import_failed")
    assert failed and failed[-1].actor == "ana"
    x = tmp_path / "costs.xlsx"
    x.write_bytes(b"PK\x03\x04 not really")
    res = run(home, "costs", "import", str(x), "--tenant", TENANT, session=ana)
    from amzigo_lab.analysis.cost_file import xlsx_supported

    if not xlsx_supported():
        assert res.exit_code == 2 and "save the sheet as CSV" in res.output, res.output
    # unknown tenant
    res = run(home, "costs", "ls", "--tenant", "nobody", session=ana)
    assert res.exit_code == 2 and "nobody" in res.output


def test_a_seller_may_list_but_not_import(home: Path, admin: str, tmp_path: Path) -> None:
    sel = login(home, "sel", add_user(home, "sel", "--role", "seller", "--tenant", TENANT,
                                      session=admin))  # fmt: skip
    f = tmp_path / "c.csv"
    f.write_text("sku,currency,unit_cost,valid_from\nSKU-RED,USD,8,2026-01-01\n")
    res = run(home, "costs", "import", str(f), "--tenant", TENANT, session=sel)
    assert res.exit_code == 2 and "seller account" in res.output, res.output
    res = run(home, "costs", "ls", "--tenant", TENANT, session=sel)
    assert res.exit_code == 0 and "no product costs" in res.output, res.output
    res = run(home, "costs", "ls", "--tenant", "bluebird-home", session=sel)
    assert res.exit_code == 2 and "bound to tenant" in res.output, res.output


def test_break_glass_imports_as_the_operator(home: Path, tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("sku,currency,unit_cost,valid_from\nSKU-RED,USD,8,2026-01-01\n")
    assert run(home, "costs", "import", str(f), "--tenant", TENANT).exit_code == 2  # no session
    res = run(home, "costs", "import", str(f), "--tenant", TENANT, "--break-glass", "INC-3")
    assert res.exit_code == 0, res.output
    me = getpass.getuser()
    assert events(home, action="costs.imported")[-1].actor == f"break-glass:{me}"
    assert events(home, action="admin.break_glass")[-1].resource == "costs.import"
