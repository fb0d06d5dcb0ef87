"""Certificates (signature, tamper detection, HTML, key file) and the CLI via CliRunner."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.compliance import list_certificates, purge, verify_certificate
from amzigo_lab.compliance.certificates import export_certificate, key_path
from amzigo_lab.compliance.ropa import build_ropa
from amzigo_lab.config import load_settings
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake
from tests.compliance.conftest import Clock, buyers, make_users
from tests.lake.helpers import orders

D0 = dt.date(2026, 3, 1)


def _purged(lake: Lake, clock: Clock) -> str:
    lake.write("order_buyers", "acme", D0, buyers([D0]), "b1")
    clock.set_day(D0 + dt.timedelta(days=31))
    cert_id = purge(lake).certificate_id
    assert cert_id
    return cert_id


def test_certificate_fields_signature_and_tamper_detection(
    lake: Lake, clock: Clock, tmp_path: Path
) -> None:
    cert_id = _purged(lake, clock)
    cert = list_certificates(lake)[0]
    body = cert.body
    assert body["sanitization"]["method_type"] == "Purge"
    assert body["sanitization"]["method"] == "cryptographic erase + file deletion"
    assert body["sanitization"]["tool"].startswith("amzigo-lab ")
    assert body["sanitization"]["verification_result"] == "pass"
    assert body["media"]["data_classification"].startswith("Confidential: Amazon buyer PII")
    assert body["audit_event_ids"] and body["performed_by"]["name"] == "system:retention"
    assert stat.S_IMODE(key_path(lake).stat().st_mode) == 0o600
    report = verify_certificate(lake, cert_id)
    assert report["ok"] and report["audit"].startswith(f"{len(body['audit_event_ids'])}/")
    paths = export_certificate(lake, cert_id, tmp_path / "out")
    assert "Certificate of sanitization" in paths[1].read_text()
    # edit the stored body: the signature no longer matches
    edited = dict(body, reference="forged")
    with lake.catalog.transaction() as db:
        db.execute(
            "UPDATE certificates SET body_json = ? WHERE id = ?", (json.dumps(edited), cert_id)
        )
    bad = verify_certificate(lake, cert_id)
    assert not bad["ok"] and not bad["signature_ok"]
    # restore it, then edit the covered destruction record instead
    with lake.catalog.transaction() as db:
        db.execute(
            "UPDATE certificates SET body_json = ? WHERE id = ?", (json.dumps(body), cert_id)
        )
        rid = next(iter(body["destruction_records"]))
        db.execute("UPDATE destructions SET record_json = record_json || ' ' WHERE id = ?", (rid,))
    bad = verify_certificate(lake, cert_id)
    assert not bad["ok"] and any("was changed" in p for p in bad["problems"])


def test_ropa_covers_every_pii_column() -> None:
    ropa = build_ropa(("order_fulfilment",))
    buyers_ds = next(d for d in ropa["datasets"] if d["dataset"] == "order_buyers")
    assert buyers_ds["personal_data"] and "30 days after order delivery" in buyers_ds["retention"]
    assert {c["name"] for c in buyers_ds["columns"] if c["personal"]} >= {
        "buyer_email",
        "ship_phone",
    }
    assert all(d["sharing"].startswith("none") for d in ropa["datasets"])


def test_cli_round(tmp_path: Path) -> None:
    home = tmp_path / "h"
    clock = Clock()
    lake = init_home(load_settings(home, env={}), clock=clock)
    make_users(home)
    lake.write("order_buyers", "acme", D0, buyers([D0]), "b1")
    lake.write("orders", "acme", D0, orders(2), "o1")
    lake.audit.close()  # type: ignore[attr-defined]
    lake.close()
    run = CliRunner().invoke
    h = ["--home", str(home)]

    out = run(main, ["purge", "--as-of", "2026-04-15", "--dry-run", "--json", *h])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.output)["plan"]["drop"]) == 1
    out = run(
        main,
        [
            "hold",
            "add",
            "--tenant",
            "acme",
            "--reason",
            "case 1",
            "--until",
            "2099-01-01",
            "--as",
            "carol",
            *h,
        ],
    )
    assert out.exit_code == 2 and "compliance" in out.output
    out = run(
        main,
        [
            "hold",
            "add",
            "--tenant",
            "acme",
            "--reason",
            "case 1",
            "--until",
            "2099-01-01",
            "--as",
            "alice",
            "--json",
            *h,
        ],
    )
    assert out.exit_code == 0, out.output
    hold_id = json.loads(out.output)["id"]
    assert json.loads(run(main, ["hold", "list", "--json", *h]).output)[0]["id"] == hold_id
    out = run(main, ["purge", "--as-of", "2026-04-15", *h])
    assert out.exit_code == 0 and hold_id in out.output
    assert run(main, ["hold", "release", hold_id, "--as", "bob", *h]).exit_code == 0
    out = run(main, ["purge", "--as-of", "2026-04-15", "--json", *h])
    cert_id = json.loads(out.output)["certificate_id"]
    assert cert_id
    listed = json.loads(run(main, ["certificate", "list", "--json", *h]).output)
    assert [c["id"] for c in listed] == [cert_id]
    assert run(main, ["certificate", "verify", cert_id, *h]).exit_code == 0
    assert '"method_type": "Purge"' in run(main, ["certificate", "show", cert_id, *h]).output
    out = run(main, ["certificate", "export", cert_id, "--out", str(tmp_path / "c"), *h])
    assert out.exit_code == 0 and (tmp_path / "c" / f"{cert_id}.html").exists()
    out = run(main, ["delete", "--tenant", "acme", "--notice", "AMZ-1", "--as", "alice", *h])
    assert out.exit_code == 0 and "certificate" in out.output
    out = run(main, ["ropa", "--out", str(tmp_path / "r"), *h])
    assert out.exit_code == 0 and (tmp_path / "r" / "ropa.html").exists()
    assert json.loads(run(main, ["dsr", "list", "--json", *h]).output) == []


def test_cli_dsr(tmp_path: Path) -> None:
    home = tmp_path / "h"
    lake = init_home(load_settings(home, env={}), clock=Clock())
    make_users(home)
    lake.write("order_buyers", "acme", D0, buyers([D0, D0]), "b1")
    lake.audit.close()  # type: ignore[attr-defined]
    lake.close()
    run = CliRunner().invoke
    h = ["--home", str(home), "--as", "alice"]
    out = run(main, ["dsr", "export", "--email", "b0@example.com", "--json", *h])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["rows"] == 1
    out = run(
        main, ["dsr", "rectify", "--email", "b0@example.com", "--set", "ship_city=Shelbyville", *h]
    )
    assert out.exit_code == 0, out.output
    assert run(main, ["dsr", "object", "--email", "b1@example.com", *h]).exit_code == 0
    out = run(main, ["dsr", "erase", "--email", "b0@example.com", *h])
    assert out.exit_code == 0 and "certificate" in out.output, out.output
    rows = json.loads(run(main, ["dsr", "list", "--json", "--home", str(home)]).output)
    assert [r["kind"] for r in rows] == ["export", "rectification", "objection", "erasure"]
    from amzigo_lab.retention_rules import add_months

    for r in rows:  # the CLI runs on the real clock: one calendar month after receipt
        received = dt.date.fromisoformat(r["received"])
        assert r["status"] == "completed" and r["deadline"] == add_months(received, 1).isoformat()


def test_certificate_still_verifies_after_audit_retention_removed_its_events(
    lake: Lake, clock: Clock
) -> None:
    cert_id = _purged(lake, clock)
    log = lake.audit.log  # the home's tamper-evident audit log
    log.seal()
    import time

    time.sleep(0.01)  # the cutoff must not be in the log clock's future
    dropped = log.drop_segments_before(dt.datetime.now(dt.UTC), min_age=dt.timedelta(0))
    assert dropped  # the segments holding the certificate's events are gone
    lake.audit.emit("compliance.checked", resource=f"certificate:{cert_id}")
    report = verify_certificate(lake, cert_id)
    assert report["ok"], report["problems"]
    assert "older than the retained log (audit retention)" in report["audit"]
    assert log.verify().ok
