"""Row MACs in compliance: a tampered row stops the purge (with an alert), certificates check
their row MAC and the published public key. Rows are edited with sqlite3, as an attacker would."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from amzigo_lab.cli import main
from amzigo_lab.compliance import purge, verify_certificate
from amzigo_lab.compliance.certificates import (
    export_certificate,
    public_pem,
    published_key_path,
    validate_certificate,
)
from amzigo_lab.lake import Lake
from amzigo_lab.lake.rowmac import TamperedRow
from tests.compliance.conftest import Clock, buyers, compliance_session

D0 = dt.date(2026, 3, 1)


def attack(lake: Lake, sql: str, args: tuple[object, ...] = ()) -> None:
    db = sqlite3.connect(lake.settings.catalog_path)
    try:
        assert db.execute(sql, args).rowcount == 1
        db.commit()
    finally:
        db.close()


def _two_tenants(lake: Lake) -> tuple[int, int]:
    a = lake.write("order_buyers", "acme", D0, buyers([D0]), "b1").partition_ids[0]
    b = lake.write("order_buyers", "bluebird", D0, buyers([D0], prefix="c"), "b1")
    return a, b.partition_ids[0]


def _audit(lake: Lake, action: str) -> list[object]:
    return list(lake.audit.log.search(action=action))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE partitions SET purge_date = '2099-01-01' WHERE id = ?",  # retention extended
        "UPDATE partitions SET state = 'dropped' WHERE id = ?",  # hidden from every purge
    ],
)
def test_purge_refuses_and_alerts_on_a_tampered_row(lake: Lake, clock: Clock, sql: str) -> None:
    acme, bluebird = _two_tenants(lake)
    attack(lake, sql, (acme,))
    clock.set_day(D0 + dt.timedelta(days=31))  # both deadlines are passed
    plan = purge(lake, dry_run=True).plan
    assert [p.id for p, _ in plan.refused] == [acme] and [p.id for p in plan.drop] == [bluebird]
    with pytest.raises(
        TamperedRow, match=rf"refusing to purge .*partition {acme} .*certificate cert-"
    ):
        purge(lake)
    # everything else due was purged and certified; the tampered row is neither dropped nor kept
    # silently: its key is intact (so nothing is certified on its word) and an alert is recorded
    assert lake.catalog.partition(bluebird).state == "dropped"
    assert lake.catalog.wrapped_keys([lake.catalog.partition(acme).key_id])
    alerts = _audit(lake, "compliance.purge_refused_tampered")
    assert len(alerts) == 1 and alerts[0].decision == "deny"  # type: ignore[attr-defined]
    assert alerts[0].resource == f"partition:{acme}"  # type: ignore[attr-defined]
    # the CLI fails too, naming the row
    lake.audit.close()  # type: ignore[attr-defined]
    result = CliRunner().invoke(main, ["purge", "--home", str(lake.settings.home)])
    assert result.exit_code != 0 and f"partition {acme}" in result.output


def _certified(lake: Lake, clock: Clock) -> str:
    _two_tenants(lake)
    clock.set_day(D0 + dt.timedelta(days=31))
    cert_id = purge(lake).certificate_id
    assert cert_id and verify_certificate(lake, cert_id)["ok"]
    return cert_id


def test_edited_certificate_row_fails_verify(lake: Lake, clock: Clock, tmp_path: Path) -> None:
    cert_id = _certified(lake, clock)
    # a column outside the signed body: the signature still verifies, the row MAC does not
    attack(lake, "UPDATE certificates SET reference = 'forged' WHERE id = ?", (cert_id,))
    report = verify_certificate(lake, cert_id)
    assert not report["ok"] and report["signature_ok"] and not report["row_mac_ok"]
    assert any("certificate row MAC mismatch" in p for p in report["problems"])
    assert [p.subject for p in lake.verify().problems] == [f"certificate {cert_id}"]
    with pytest.raises(TamperedRow, match=f"certificate {cert_id}"):
        export_certificate(lake, cert_id, tmp_path / "out")
    with pytest.raises(TamperedRow, match="refusing to validate"):
        validate_certificate(lake, cert_id, "bob")
    lake.audit.close()  # type: ignore[attr-defined]
    session = compliance_session(lake.settings.home)  # a compliance command: a named person
    cli = CliRunner().invoke(
        main,
        ["certificate", "verify", cert_id, "--home", str(lake.settings.home)],
        env={"AMZIGO_SESSION": session},
    )
    assert cli.exit_code == 1 and "row MAC mismatch" in cli.output


def test_validation_keeps_the_row_mac_valid(lake: Lake, clock: Clock) -> None:
    cert_id = _certified(lake, clock)
    validate_certificate(lake, cert_id, "bob")
    assert verify_certificate(lake, cert_id)["ok"] and lake.verify().ok


def test_published_public_key_must_match_the_signing_key(lake: Lake, clock: Clock) -> None:
    cert_id = _certified(lake, clock)
    published = published_key_path(lake)
    original = published.read_bytes()
    public_pem(Ed25519PrivateKey.generate().public_key(), published)  # swapped by an attacker
    report = verify_certificate(lake, cert_id)
    assert not report["ok"] and report["signature_ok"] and not report["public_key_ok"]
    assert any("does not match the signing key" in p for p in report["problems"])
    published.unlink()
    assert any("is missing" in p for p in verify_certificate(lake, cert_id)["problems"])
    published.write_bytes(original)
    assert verify_certificate(lake, cert_id)["ok"]


def test_rotation_keeps_certificates_and_rows_verifying(lake: Lake, clock: Clock) -> None:
    cert_id = _certified(lake, clock)
    lake.rotate_master_key()
    assert verify_certificate(lake, cert_id)["ok"]
    assert lake.verify().ok
