"""Certificates (signature, tamper detection, HTML, key file) and the CLI via CliRunner."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from amzigo_lab.cli import main
from amzigo_lab.compliance import list_certificates, purge, verify_certificate
from amzigo_lab.compliance.certificates import export_certificate, key_path
from amzigo_lab.compliance.ropa import build_ropa
from amzigo_lab.config import load_settings
from amzigo_lab.governance.audit import AuditEvent
from amzigo_lab.governance.context import Governance
from amzigo_lab.home import init_home
from amzigo_lab.lake import Lake
from tests.compliance.conftest import Clock, buyers, cli_sessions
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


def _cli_home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "h"
    lake = init_home(load_settings(home, env={}), clock=Clock())
    lake.write("order_buyers", "acme", D0, buyers([D0, D0]), "b1")
    lake.write("orders", "acme", D0, orders(2), "o1")
    lake.audit.close()  # type: ignore[attr-defined]
    lake.close()
    return home, cli_sessions(home)


def _cli(home: Path, session: str | None = None) -> Callable[..., Result]:
    """`amzigo ARGS --home HOME` as the holder of `session` (None: nobody is logged in)."""

    def run(args: list[str], stdin: str | None = None) -> Result:
        env = {"AMZIGO_SESSION": session, "AMZIGO_USER": "alice"}  # AMZIGO_USER means nothing
        return CliRunner().invoke(main, [*args, "--home", str(home)], input=stdin, env=env)

    return run


def _events(home: Path, **query: str) -> list[AuditEvent]:
    from tests.governance.gov_fixtures import cheap_hasher

    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as gov:
        return list(gov.audit_log.search(**query))


HOLD = ["hold", "add", "--tenant", "acme", "--reason", "case 1", "--until", "2099-01-01"]


def test_cli_round(tmp_path: Path) -> None:
    home, tokens = _cli_home(tmp_path)
    run, alice, bob, carol = (
        _cli(home),
        *(_cli(home, tokens[u]) for u in ("alice", "bob", "carol")),
    )

    out = run(["purge", "--as-of", "2026-04-15", "--dry-run", "--json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.output)["plan"]["drop"]) == 1
    # nobody logged in: refused before anything happens; --as / --by / --break-glass are gone
    for args in (HOLD, ["hold", "release", "hold-0123456789abcdef"],
                 ["delete", "--tenant", "acme", "--notice", "AMZ-1"],
                 ["certificate", "validate", "cert-0123456789abcdef"]):  # fmt: skip
        out = run(args)
        assert out.exit_code == 2 and "log in first: amzigo login NAME" in out.output, out.output
    for extra in (["--as", "alice"], ["--by", "alice"], ["--break-glass", "case 1"]):
        out = run([*HOLD, *extra])
        assert out.exit_code == 2 and "No such option" in out.output
    assert json.loads(alice(["hold", "list", "--json"]).output) == []
    # an analyst is denied, audited under their name (listing too: holds are compliance data)
    out = carol([*HOLD, "--json"])
    assert out.exit_code == 2 and "compliance" in out.output
    assert carol(["hold", "list"]).exit_code == 2
    assert json.loads(alice(["hold", "list", "--json"]).output) == []
    denied = _events(home, actor="carol", action="hold.add")
    assert [e.decision for e in denied] == ["deny"]
    out = alice([*HOLD, "--json"])
    assert out.exit_code == 0, out.output
    hold_id = json.loads(out.output)["id"]
    listed = json.loads(alice(["hold", "list", "--json"]).output)
    assert [(h["id"], h["created_by"]) for h in listed] == [(hold_id, "alice")]
    out = alice(["hold", "list"])
    assert out.exit_code == 0 and "tenant=acme dataset=*" in out.output, out.output
    out = run(["purge", "--as-of", "2026-04-15"])
    assert out.exit_code == 0 and hold_id in out.output
    assert carol(["hold", "release", hold_id]).exit_code == 2
    assert bob(["hold", "release", hold_id]).exit_code == 0
    out = run(["purge", "--as-of", "2026-04-15", "--json"])
    cert_id = json.loads(out.output)["certificate_id"]
    assert cert_id
    listed = json.loads(alice(["certificate", "list", "--json"]).output)
    assert [c["id"] for c in listed] == [cert_id]
    for args in (["certificate", "list"], ["certificate", "show", cert_id], ["dsr", "list"]):
        out = run(args)  # nobody logged in
        assert out.exit_code == 2 and "log in first" in out.output, out.output
        out = carol(args)  # an analyst
        assert out.exit_code == 2 and "compliance role" in out.output, out.output
    assert alice(["certificate", "verify", cert_id]).exit_code == 0
    assert '"method_type": "Purge"' in alice(["certificate", "show", cert_id]).output
    out = alice(["certificate", "export", cert_id, "--out", str(tmp_path / "c")])
    assert out.exit_code == 0 and (tmp_path / "c" / f"{cert_id}.html").exists()
    assert (tmp_path / "c" / "certificate-signing.pub.pem").read_text().startswith("-----BEGIN")
    assert carol(["delete", "--tenant", "acme", "--notice", "AMZ-1"]).exit_code == 2
    out = alice(["delete", "--tenant", "acme", "--notice", "AMZ-1", "--json"])
    assert out.exit_code == 0, out.output
    notice_cert = json.loads(out.output)["certificate_id"]
    out = alice(["certificate", "validate", notice_cert])  # the performer cannot validate
    assert out.exit_code == 2
    out = bob(["certificate", "validate", notice_cert])
    assert out.exit_code == 0 and "validated by bob" in out.output, out.output
    out = alice(["ropa", "--out", str(tmp_path / "r")])
    assert out.exit_code == 0 and (tmp_path / "r" / "ropa.html").exists()
    assert json.loads(alice(["dsr", "list", "--json"]).output) == []
    denied = {e.action for e in _events(home, actor="carol") if e.decision == "deny"}
    assert {"certificate.list", "certificate.show", "dsr.list", "hold.list"} <= denied
    actors = {e.actor for e in _events(home) if e.action.startswith(("compliance.", "hold."))}
    assert not any(a.startswith("local:") for a in actors)


def test_cli_dsr(tmp_path: Path) -> None:
    home, tokens = _cli_home(tmp_path)
    run, alice, carol = _cli(home), _cli(home, tokens["alice"]), _cli(home, tokens["carol"])
    # PII never travels in argv: the options are gone; the subject comes from stdin or a file
    for args in (["dsr", "export", "--email", "b0@example.com"],
                 ["dsr", "erase", "--name", "Canary Buyer b0", "--postcode", "SW1A 1AA"],
                 ["dsr", "rectify", "--subject-stdin", "--set", "ship_city=Shelbyville"]):  # fmt: skip
        out = alice(args, stdin="email=b0@example.com\n")
        assert out.exit_code == 2 and "No such option" in out.output
    out = alice(["dsr", "export"])
    assert out.exit_code == 2 and "--subject-stdin or --subject-file" in out.output
    out = alice(["dsr", "export", "--subject-stdin"], stdin="phone=555\n")
    assert out.exit_code == 2 and "unknown key 'phone'" in out.output and "555" not in out.output
    # nobody logged in, or an analyst: refused, nothing recorded
    assert run(["dsr", "export", "--subject-stdin"], stdin="email=b0@example.com\n").exit_code == 2
    out = carol(["dsr", "export", "--subject-stdin"], stdin="email=b0@example.com\n")
    assert out.exit_code == 2 and "compliance" in out.output
    assert json.loads(alice(["dsr", "list", "--json"]).output) == []
    assert [e.decision for e in _events(home, actor="carol", action="dsr.export")] == ["deny"]
    # a compliance session works, from stdin or a file
    out = alice(["dsr", "export", "--subject-stdin", "--json"], stdin="email=b0@example.com\n")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["rows"] == 1
    out = alice(
        ["dsr", "rectify", "--subject-stdin"],
        stdin="# request 7\nemail=b0@example.com\nset.ship_city=Shelbyville\n",
    )
    assert out.exit_code == 0, out.output
    request = tmp_path / "request.txt"
    request.write_text("name=Canary Buyer b1\npostcode=SW1A 1AA\n")
    out = alice(["dsr", "object", "--subject-file", str(request)])
    assert out.exit_code == 0 and "1 order(s)" in out.output, out.output
    out = alice(["dsr", "erase", "--subject-stdin"], stdin="email=b0@example.com\n")
    assert out.exit_code == 0 and "certificate" in out.output, out.output
    assert alice(["dsr", "resume"]).exit_code == 0 and run(["dsr", "resume"]).exit_code == 2
    rows = json.loads(alice(["dsr", "list", "--json"]).output)
    assert [r["kind"] for r in rows] == ["export", "rectification", "objection", "erasure"]
    from amzigo_lab.retention_rules import add_months

    for r in rows:  # the CLI runs on the real clock: one calendar month after receipt
        received = dt.date.fromisoformat(r["received"])
        assert r["status"] == "completed" and r["deadline"] == add_months(received, 1).isoformat()
    dsr_events = _events(home, action="dsr.*")
    assert {e.actor for e in dsr_events if e.decision != "deny"} == {"alice"}
    assert "b0@example.com" not in repr([e.to_dict() for e in _events(home)])
    # the requests ran in the gateway: its log names actions and error classes, never a subject
    log = (home / "state" / "gateway" / "gateway.log").read_text()
    assert "dsr." in log or "ready" in log
    for pii in ("b0@example.com", "Canary Buyer", "SW1A", "Shelbyville"):
        assert pii not in log


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


# -- offline verification of an exported file (issue 18 item 3) --------------------------------


def _verify_offline(path: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`amzigo certificate verify FILE.json` in a process with no home (other cwd, no env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMZIGO_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    cmd = [sys.executable, "-c", "from amzigo_lab.cli import main; main()"]
    return subprocess.run(
        [*cmd, "certificate", "verify", str(path), *extra],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_exported_certificate_verifies_offline_and_edits_are_named(
    lake: Lake, clock: Clock, tmp_path: Path
) -> None:
    from amzigo_lab.client.certificate_file import verify_certificate_file

    cert_id = _purged(lake, clock)
    json_path, _html, pub = export_certificate(lake, cert_id, tmp_path / "out")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok = _verify_offline(json_path, elsewhere)
    assert ok.returncode == 0 and "VALID" in ok.stdout, ok.stdout + ok.stderr
    assert not (elsewhere / ".amzigo").exists()  # no home was created or needed
    # the public key passed explicitly, from another place
    moved = tmp_path / "keys" / "signer.pem"
    moved.parent.mkdir()
    moved.write_bytes(pub.read_bytes())
    pub.unlink()
    assert _verify_offline(json_path, elsewhere).returncode == 1  # no key beside it: said so
    assert _verify_offline(json_path, elsewhere, "--public-key", str(moved)).returncode == 0
    # edit one field: fails, naming the problem
    doc = json.loads(json_path.read_text())
    doc["items"][0]["rows"] += 1
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    bad = _verify_offline(forged, elsewhere, "--public-key", str(moved))
    assert bad.returncode == 1 and "INVALID" in bad.stdout
    assert "signature does not match the certificate body" in bad.stdout
    # an item that names a record the certificate does not cover is named as such
    doc = json.loads(json_path.read_text())
    doc["items"][0]["record_id"] = "drop-elsewhere"
    forged.write_text(json.dumps(doc))
    report = verify_certificate_file(forged, moved)
    assert report["status"] == "invalid"
    assert any(
        "items[0]: names destruction record 'drop-elsewhere'" in p for p in report["problems"]
    )
    # another signer's public key
    other = tmp_path / "other.pem"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from amzigo_lab.compliance.certificates import public_pem

    public_pem(Ed25519PrivateKey.generate().public_key(), other)
    report = verify_certificate_file(json_path, other)
    assert any("signed by another key" in p for p in report["problems"])


def test_offline_verifier_imports_no_lake_home_or_governance() -> None:
    code = (
        "import sys, amzigo_lab.client.certificate_file\n"
        "bad = [m for m in sys.modules if m.split('.')[:2] in "
        "(['amzigo_lab', 'lake'], ['amzigo_lab', 'home'], ['amzigo_lab', 'governance'])]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
