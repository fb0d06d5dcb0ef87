"""The ROPA and the access review from the installation's facts: a home with buyer PII rows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.compliance.ropa import build_ropa, installation_facts, render_html
from amzigo_lab.gateway.commands import store_counts
from amzigo_lab.governance.access_review import review_rows, write_access_review
from tests.governance.gov_fixtures import BUYERS_PER_TENANT, USERS, World, build_world

PII_ROWS = sum(BUYERS_PER_TENANT.values())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("facts"))


def test_the_ropa_lists_the_pii_rows_held_and_where_copies_live(world: World) -> None:
    with world.governance() as gov:
        facts = installation_facts(gov.lake, store_counts(gov), gov.policy)
    ropa = build_ropa(world.settings.pii_purposes, facts)
    assert facts["pii_rows"] == PII_ROWS and facts["pii_datasets_with_rows"] == ["order_buyers"]
    buyers = next(d for d in ropa["datasets"] if d["dataset"] == "order_buyers")
    assert buyers["held_here"]["rows"] == PII_ROWS and buyers["held_here"]["tenants"] == 2
    assert buyers["purposes_enabled_here"] and ropa["pii_purposes_enabled"]  # not "none"
    assert "pii_processor" in facts["policy_pii_roles"]
    assert f"{PII_ROWS} buyer PII rows" in ropa["data_subjects"]
    assert any(f"{PII_ROWS} buyer PII rows are held" in w for w in facts["warnings"])
    where = {loc["name"]: loc for loc in facts["locations"]}
    assert {
        "reports", "DSR and other exports", "quarantine", "DSR staging", "audit log",
        "user store", "tenant grants", "alert delivery ledger",
    } <= set(where)  # fmt: skip
    assert where["user store"]["count"] == len(USERS)  # counted by the identity store
    assert where["tenant grants"]["count"] == sum(len(g) for _r, _t, g in USERS.values())
    assert where["campaign state"]["count"] is None  # never created: not created by the count
    assert not (world.settings.state_dir / "campaigns.sqlite").exists()
    assert where["audit log"]["count"] and "crypto-shredded" in where["audit log"]["retention"]
    assert all(loc["retention"] for loc in where.values())
    page = render_html(ropa)
    assert f"{PII_ROWS} buyer PII rows held in order_buyers" in page
    text = json.dumps(ropa) + page
    assert not [s for s in world.pii if s in text]  # counts only, never a value


def test_the_ropa_command_writes_the_installation_facts(tmp_path: Path) -> None:
    from tests.compliance.conftest import compliance_session

    world = build_world(tmp_path / "own")  # its own home: the command adds a user

    session = compliance_session(world.settings.home, "ropa-officer")  # a named person
    res = CliRunner().invoke(
        main,
        ["ropa", "--out", str(tmp_path / "r"), "--home", str(world.settings.home)],
        env={"AMZIGO_SESSION": session},
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "r" / "ropa.json").read_text())
    assert doc["installation"]["pii_rows"] == PII_ROWS
    counts = {loc["name"]: loc["count"] for loc in doc["installation"]["locations"]}
    assert counts["user store"] == len(USERS) + 1  # the gateway asked the identity store
    assert counts["tenant grants"] == sum(len(g) for _r, _t, g in USERS.values())


def test_the_access_review_shows_what_each_user_can_read_and_flags_pii_access(
    world: World, tmp_path: Path
) -> None:
    with world.governance() as gov:
        rows = {r["user"]: r for r in review_rows(gov)}
        pia, ana, mixed, sam = rows["pia"], rows["ana"], rows["mixed"], rows["sam"]
        assert pia["pii_readable"] and pia["pii_readable"][0].startswith("order_buyers[acme] for")
        assert {"pii_access", "pii_access_unused", "unused_grants"} <= set(pia["flags"])
        assert "orders[acme,globex]" in ana["can_read"] and not ana["pii_readable"]
        assert ana["unused_grants"] == ["acme", "globex"] and "pii_access" not in ana["flags"]
        assert not mixed["pii_readable"]  # the seller role masks the PII role
        assert "orders[acme]" in sam["can_read"] and not sam["unused_grants"]
        assert rows["adm"]["can_read"] == [] and rows["cora"]["pii_readable"] == []  # no data

        gov.emit(
            "data.read", actor="pia", resource="dataset:order_buyers", tenant="acme",
            purpose="order_fulfilment", decision="allow", reason="via sql; tenants acme",
        )  # fmt: skip
        gov.emit(
            "data.read", actor="ana", resource="dataset:orders", decision="allow",
            reason="via sql; tenants acme,globex",
        )  # fmt: skip
        rows = {r["user"]: r for r in review_rows(gov)}
        assert "pii_access_unused" not in rows["pia"]["flags"] and not rows["pia"]["unused_grants"]
        assert "pii_access" in rows["pia"]["flags"]  # still for the reviewer to confirm
        assert "unused_grants" not in rows["ana"]["flags"] and rows["ana"]["last_data_read"]
        later = review_rows(gov, dt.datetime.now(dt.UTC) + dt.timedelta(days=200))
        assert all("unused_grants" in r["flags"] for r in later if r["user"] in ("pia", "ana"))
        csv_path, html_path, n = write_access_review(gov, tmp_path, dt.date.today())
    assert n == len(USERS)
    assert "pii_access" in csv_path.read_text() and "order_buyers[acme]" in html_path.read_text()
    assert "can read buyer PII" in html_path.read_text()
