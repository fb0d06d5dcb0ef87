"""Issue 16: the incident-response drill, end to end, on a real home with a real gateway.

A stolen analyst token is used (reads, then denied probes); the gateway's alert pipeline opens
an incident by itself; a security officer isolates the analyst (the next call with the token
fails), collects evidence that verifies offline, hands it over; a retention purge during the
incident keeps the held data; the notification draft names the right tenants and counts; the
notification is marked sent; restore and close work; every timeline action is in the audit log.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner

import amzigo_lab
from amzigo_lab.cli import main
from amzigo_lab.client import evidence, protocol
from amzigo_lab.client.transport import GatewayClient, ensure_gateway
from amzigo_lab.compliance.retention import purge
from amzigo_lab.errors import AccessDenied
from amzigo_lab.home import release_gateway_cache_on_drop
from tests.governance.gov_fixtures import PASSWORD, World, build_world

TIMELINE_OUT = Path("/tmp/amzigo-incident-drill-timeline.txt")


def _cli(world: World, token: str, *args: str) -> Any:
    env = {"AMZIGO_SESSION": token, "AMZIGO_HOME": str(world.settings.home)}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _json(world: World, token: str, *args: str) -> Any:
    result = _cli(world, token, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def drill_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = build_world(tmp_path_factory.mktemp("incident"))
    with world.governance() as gov:
        enrol = gov.identity.add_user("sec", ["security_officer"], None, password=PASSWORD)
        secret = urllib.parse.parse_qs(urllib.parse.urlparse(enrol.provisioning_uri).query)
        code = pyotp.TOTP(secret["secret"][0]).now()
        world.tokens["sec"] = gov.identity.authenticate("sec", PASSWORD, code).token
    with (world.settings.home / "config.toml").open("a") as fh:
        fh.write(
            "\n[alerts]\nevaluate_every_seconds = 1\ndenials_count = 3\n"
            '\n[incident]\nauto_open = ["repeated_denials", "audit_verification_failed"]\n'
            'contact = "Security officer on call, +1 555 0100"\n'
        )
    return world


def _wait_incident(world: World, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        rows = _json(world, world.tokens["sec"], "incident", "list")["incidents"]
        if rows or time.monotonic() > deadline:
            assert rows, "no incident was opened by the alert pipeline"
            return dict(rows[0])
        time.sleep(0.3)


def test_the_incident_drill(drill_world: World, tmp_path: Path) -> None:
    world = drill_world
    home = world.settings.home
    sec = world.tokens["sec"]
    stolen = world.tokens["ana"]
    started = time.monotonic()
    ensure_gateway(home)

    # 1. an attacker with ana's login token reads what ana may read, then probes for more
    wb = amzigo_lab.connect("sales_analysis", home=world.settings, token=stolen)
    read = wb.sql("SELECT * FROM orders", arrow=True)  # exfiltration
    stolen_rows = read.num_rows
    for _ in range(3):
        with pytest.raises(AccessDenied):
            amzigo_lab.connect("order_fulfilment", home=world.settings, token=stolen)

    # 2. the gateway's alert pipeline opens an incident by itself (repeated_denials)
    inc = _wait_incident(world)
    inc_id = inc["id"]
    assert inc["source"] == "alert:repeated_denials:ana"
    assert inc["opened_by"] == "system:alerts" and inc["notification"] == "due"
    listing = _cli(world, sec, "incident", "list")
    assert inc_id in listing.output and "notify Amazon by" in listing.output

    # an analyst (even the victim) cannot run incident commands; audited
    with (
        GatewayClient(ensure_gateway(home), world.tokens["nog"]) as nog,
        pytest.raises(AccessDenied, match="security_officer"),
    ):
        nog.action(protocol.INCIDENT_LIST, {})

    # 3. isolate the analyst: the stolen token stops working at once
    iso = _json(world, sec, "incident", "isolate", inc_id, "--scope", "user:ana")
    kinds = [a["kind"] for a in iso["actions"]]
    assert "disabled" in kinds and kinds.count("hold") == 2  # acme + globex (ana's grants)
    with pytest.raises(AccessDenied):
        wb.sql("SELECT count(*) FROM orders")
    with pytest.raises(AccessDenied):
        amzigo_lab.connect("sales_analysis", home=world.settings, token=stolen)

    # 4. evidence: collect, verify offline, hand over, verify again; tampering is caught
    bundle = tmp_path / "bundle"
    got = _json(world, sec, "incident", "evidence", "collect", inc_id, "--out", str(bundle))
    assert got["items"] >= 8
    names = {p.name for p in bundle.rglob("*")}
    assert {"manifest.json", "manifest.sig", "custody.jsonl", "events.jsonl"} <= names
    text = "".join(p.read_text() for p in bundle.rglob("*") if p.is_file())
    assert not [pii for pii in world.pii if pii in text]  # no PII plaintext
    assert "PRIVATE KEY" not in text and "password_hash" not in text
    handed = _cli(world, sec, "incident", "evidence", "handover", str(bundle),
                  "--to", "outside counsel", "--reason", "forensic review")  # fmt: skip
    assert handed.exit_code == 0, handed.output
    pub = home / "keys" / "certificate-signing.pub.pem"
    offline = tmp_path / "elsewhere"
    shutil.copytree(bundle, offline)
    report = evidence.verify_bundle(offline, pub.read_text())
    assert report["ok"], report["problems"]
    assert [c["event"] for c in report["custody"]] == ["collected", "handed_over"]
    ok = CliRunner().invoke(main, ["incident", "evidence", "verify", str(offline), "--key",
                                   str(pub)], env={"AMZIGO_HOME": str(tmp_path / "nohome")})  # fmt: skip
    assert ok.exit_code == 0 and "OK" in ok.output, ok.output
    with (offline / "catalog.json").open("a") as fh:
        fh.write(" ")
    bad = CliRunner().invoke(main, ["incident", "evidence", "verify", str(offline)])
    assert bad.exit_code == 1 and "catalog.json changed" in bad.output

    # 5. a retention purge during the incident keeps the held data
    with world.governance() as gov:
        release_gateway_cache_on_drop(gov.lake, "amzigo purge")  # as `amzigo purge` does
        result = purge(gov.lake, actor="system:retention")
        kept = {(p.tenant, p.dataset) for p, _why in result.plan.kept}
        left = {(p.tenant, p.dataset) for p in gov.lake.catalog.partitions("order_buyers")}
    assert {("acme", "order_buyers"), ("globex", "order_buyers")} <= kept
    assert {("acme", "order_buyers"), ("globex", "order_buyers")} <= left

    # 6. the notification draft names the right tenants and counts (never sent)
    draft = _json(world, sec, "incident", "notify-draft", inc_id)
    facts = draft["facts"]
    assert facts["suspects"] == ["ana"]
    assert facts["tenants"] == facts["tenants_read"] == ["acme", "globex"]
    assert "initech" not in draft["text"]
    exposed = {(x["tenant"], x["dataset"]): x for x in facts["exposed"]}
    assert set(exposed) == {("acme", "orders"), ("globex", "orders")}
    # acme holds 5 orders in 6 row versions (one order ingested twice): 5 orders affected
    assert [exposed[t, "orders"]["orders"] for t in ("acme", "globex")] == [5, 7]
    assert [exposed[t, "orders"]["row_versions"] for t in ("acme", "globex")] == [6, 7]
    assert "- acme, orders: 5 orders\n" in draft["text"]
    assert sum(r["rows"] for r in facts["rows"]) == stolen_rows
    assert f"{stolen_rows} rows" in draft["text"] and "Security officer on call" in draft["text"]
    assert facts["denials"] >= 3 and "never sends" in draft["text"]
    marked = _json(world, sec, "incident", "mark-notified", inc_id, "--note", "ticket 77")
    assert marked["notification"] == "met"

    # 7. close is refused while isolation is in force; restore, then close releases the holds
    early = _cli(world, sec, "incident", "close", inc_id, "--note", "x")
    assert early.exit_code != 0 and "restore" in early.output
    restored = _json(world, sec, "incident", "restore", inc_id)
    assert any("ana re-enabled" in r for r in restored["restored"])
    with pytest.raises(AccessDenied):  # the stolen session stays revoked
        amzigo_lab.connect("sales_analysis", home=world.settings, token=stolen)
    closed = _json(world, sec, "incident", "close", inc_id, "--note",
                   "token stolen from a shared notebook; rotated, MFA re-enrolled")  # fmt: skip
    assert closed["status"] == "closed"
    holds = _json(world, world.tokens["cora"], "hold", "list")
    assert not [h for h in holds if inc_id in h["reason"]]  # released

    # 8. the whole timeline is in the audit log, one event per action
    timeline = _json(world, sec, "incident", "timeline", inc_id)
    with world.governance() as gov:
        events = {e.event_id: e for e in gov.audit_log.search(resource=f"incident:{inc_id}")}
    for a in timeline:
        assert a["intact"]
        assert events[a["audit_event"]].action == f"incident.{a['kind']}"
    kinds = [a["kind"] for a in timeline]
    for expected in ("opened", "alert", "disabled", "hold", "isolated", "evidence_collected",
                     "custody", "notify_draft", "notified", "restored", "hold_released",
                     "closed"):  # fmt: skip
        assert expected in kinds
    TIMELINE_OUT.write_text(_cli(world, sec, "incident", "timeline", inc_id).output)
    assert time.monotonic() - started < 60


def test_deny_all_mode_and_token_scope(drill_world: World) -> None:
    world = drill_world
    home = world.settings.home
    sec = world.tokens["sec"]
    inc = _json(world, sec, "incident", "open", "--title", "tabletop: deny-all",
                "--severity", "low", "--detected-at", "2026-01-01T00:00:00Z")  # fmt: skip
    assert inc["notification"] == "overdue"
    with world.governance() as gov:
        session = gov.identity.validate_session(world.tokens["pia"], touch=False)
    iso = _json(world, sec, "incident", "isolate", inc["id"],
                "--scope", f"token:s{session.session_id}", "--mode", "deny-all")  # fmt: skip
    assert iso["mode"] == "deny-all"
    with pytest.raises(AccessDenied):
        amzigo_lab.connect("legal", home=world.settings, token=world.tokens["pia"])
    with pytest.raises(AccessDenied, match="deny-all"):  # everyone else too
        amzigo_lab.connect("sales_analysis", home=world.settings, token=world.tokens["mixed"])
    assert _json(world, sec, "incident", "list")["mode"] == "deny-all"  # responders still work
    _json(world, sec, "incident", "restore", inc["id"])
    with GatewayClient(ensure_gateway(home), world.tokens["mixed"]) as mixed:
        assert mixed.action(protocol.SESSION_CHECK, {})["user"] == "mixed"
    closed = _json(world, sec, "incident", "close", inc["id"], "--note", "tabletop done")
    assert closed["status"] == "closed" and closed["notification"] == "overdue"


def test_tenant_scope_pauses_revokes_and_read_only(drill_world: World) -> None:
    from amzigo_lab.client.service import operator_token
    from amzigo_lab.incident_pauses import job_paused, paused_tenants

    world = drill_world
    home = world.settings.home
    sec = world.tokens["sec"]
    address = ensure_gateway(home)
    with GatewayClient(address, operator_token(home)) as op:
        svc = op.action(
            protocol.SERVICE_MINT,
            {"actor": "svc:reports", "tenant": "acme", "purposes": ["sales_analysis"]},
        )["token"]
    inc = _json(world, sec, "incident", "open", "--title", "acme SP-API credential leaked",
                "--severity", "critical")  # fmt: skip
    iso = _json(world, sec, "incident", "isolate", inc["id"], "--scope", "tenant:acme",
                "--mode", "read-only")  # fmt: skip
    summaries = " | ".join(a["summary"] for a in iso["actions"])
    assert "account sam disabled" in summaries and "service token(s) revoked" in summaries
    assert paused_tenants(home) == {"acme": inc["id"]}
    assert job_paused(home, ["report", "--tenant", "acme"])
    assert job_paused(home, ["report", "--tenant", "globex"]) is None
    with GatewayClient(address, svc) as s, pytest.raises(AccessDenied, match="revoked"):
        s.table({"op": "latest", "dataset": "orders", "purpose": "sales_analysis"})
    with (
        GatewayClient(address, world.tokens["adm"]) as adm,
        pytest.raises(AccessDenied, match="read-only"),
    ):
        adm.action(protocol.USERS_ENABLE, {"name": "sam"})
    assert "account mixed disabled" in summaries  # bound to acme too
    wb = amzigo_lab.connect("sales_analysis", home=world.settings, token=world.tokens["nog"])
    assert wb.sql("SELECT 1 AS n", arrow=True).num_rows == 1  # reads go on in read-only
    restored = _json(world, sec, "incident", "restore", inc["id"])
    assert restored["mode"] == "normal" and paused_tenants(home) == {}
    assert any("sam re-enabled" in r for r in restored["restored"])
    with GatewayClient(address, world.tokens["adm"]) as adm:  # writes work again
        adm.action(protocol.USERS_UNLOCK, {"name": "sam"})
    closed = _json(world, sec, "incident", "close", inc["id"], "--note", "credential rotated")
    assert closed["status"] == "closed"


def test_edited_incident_rows_are_flagged_and_a_forged_mode_fails_closed(
    drill_world: World,
) -> None:
    import sqlite3

    world = drill_world
    home = world.settings.home
    sec = world.tokens["sec"]
    inc = _json(world, sec, "incident", "open", "--title", "row MAC check", "--severity", "low")
    db = sqlite3.connect(home / "incidents.sqlite")
    with db:
        db.execute("UPDATE incidents SET severity = 'low', title = 'nothing' WHERE id = ?",
                   (inc["id"],))  # fmt: skip
    shown = _json(world, sec, "incident", "show", inc["id"])
    assert shown["incident"]["intact"] is False
    refused = _cli(world, sec, "incident", "isolate", inc["id"], "--scope", "user:nog")
    assert refused.exit_code != 0 and "fails its MAC" in refused.output
    with db:  # a mode row written outside amzigo: the gateway denies everything
        db.execute("INSERT OR REPLACE INTO gateway_mode VALUES (1, 'normal', 'x', 'now', 'f')")
    with GatewayClient(ensure_gateway(home), sec) as client:
        listing = client.action(protocol.INCIDENT_LIST, {})
    assert listing["mode"] == "deny-all"
    with pytest.raises(AccessDenied, match="deny-all"):
        amzigo_lab.connect("sales_analysis", home=world.settings, token=world.tokens["nog"])
    with world.governance() as gov:
        ids = {e.resource for e in gov.audit_log.search(action="incident.opened")}
    assert f"incident:{inc['id']}" in ids
    with db:
        db.execute("DELETE FROM gateway_mode")
        db.execute("DELETE FROM incidents WHERE id = ?", (inc["id"],))
    db.close()


def test_kernel_tokens_credentials_analysts_and_everything(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from amzigo_lab.client.service import operator_token
    from amzigo_lab.incident_pauses import paused_tenants

    world = build_world(tmp_path_factory.mktemp("incident-scopes"))
    home = world.settings.home
    cora = world.tokens["cora"]  # compliance may respond too
    address = ensure_gateway(home)
    with GatewayClient(address, world.tokens["ana"]) as ana:
        kernel = ana.action(protocol.KERNEL_MINT, {})["token"]
    with GatewayClient(address, world.tokens["adm"]) as adm:
        adm.action(protocol.CREDENTIALS_SET, {"tenant": "globex", "values": {
            "client_id": "id", "client_secret": "s", "refresh_token": "r"}})  # fmt: skip

    inc = _json(world, cora, "incident", "open", "--title", "scopes", "--severity", "high")
    iso = _json(world, cora, "incident", "isolate", inc["id"],
                "--scope", "credential:spapi.refresh_token.globex")  # fmt: skip
    assert [a["detail"].get("tenant") for a in iso["actions"] if a["kind"] == "hold"] == ["globex"]
    assert paused_tenants(home) == {"globex": inc["id"]}

    iso = _json(world, cora, "incident", "isolate", inc["id"], "--scope", "analysts")
    disabled = sorted(a["detail"]["user"] for a in iso["actions"] if a["kind"] == "disabled")
    assert disabled == ["ana", "nog"]
    assert any("kernel token" in a["summary"] for a in iso["actions"])
    with pytest.raises(AccessDenied, match="kernel token"):
        amzigo_lab.connect("sales_analysis", home=world.settings, token=kernel)

    iso = _json(world, cora, "incident", "isolate", inc["id"], "--scope", "all")
    disabled = sorted(a["detail"]["user"] for a in iso["actions"] if a["kind"] == "disabled")
    assert disabled == ["mixed", "pia", "sam"]  # admins and responders stay; ana, nog already
    assert paused_tenants(home) == {"globex": inc["id"], "*": inc["id"]}
    holds = _json(world, cora, "hold", "list")
    assert sorted(h["tenant"] for h in holds) == ["acme", "globex", "initech"]  # one each

    restored = _json(world, cora, "incident", "restore", inc["id"])
    assert len(restored["restored"]) == 7  # 5 accounts, 2 pauses
    assert paused_tenants(home) == {}
    with world.governance() as gov:
        assert all(str(u.status.value) == "active" for u in gov.identity.list_users())
    _json(world, cora, "incident", "close", inc["id"], "--note", "scopes checked")
    assert _json(world, cora, "hold", "list") == []
    with GatewayClient(address, operator_token(home)) as op:
        op.action(protocol.SHUTDOWN, {})
