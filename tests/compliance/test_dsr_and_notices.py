"""Data-subject requests through the blind index, and Amazon deletion notices."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from amzigo_lab.compliance import (
    delete_scope,
    index_buyers,
    list_certificates,
    objected_order_ids,
    register_output,
    verify_certificate,
)
from amzigo_lab.compliance.certificates import validate_certificate
from amzigo_lab.compliance.common import ComplianceError
from amzigo_lab.compliance.dsr import (
    erase_subject,
    export_subject,
    find_subject,
    list_requests,
    object_subject,
    read_export,
    rectify_subject,
    resume_requests,
)
from amzigo_lab.lake import Lake
from tests.compliance.conftest import Clock, buyers, canary_hits
from tests.lake.helpers import orders

D0 = dt.date(2026, 3, 1)
DELIV = [D0 - dt.timedelta(days=1), D0, None]


def _seed(lake: Lake) -> None:
    lake.write("order_buyers", "acme", D0, buyers(DELIV, prefix="a"), "b1")
    lake.write("order_buyers", "beta", D0, buyers(DELIV, prefix="z"), "b1")
    lake.write("orders", "acme", D0, orders(3, prefix="a"), "o1")
    index_buyers(lake)


def test_index_holds_no_plaintext_and_finds_by_email_or_name(lake: Lake) -> None:
    _seed(lake)
    rows = lake.catalog.db.execute("SELECT token FROM dsr_index").fetchall()
    assert rows and all(len(r[0]) == 64 for r in rows)
    assert canary_hits(lake.settings.home, ["a1@example.com", "Canary Buyer a1"]) == []
    by_mail = find_subject(lake, email="  A1@Example.com ")
    by_name = find_subject(lake, name="canary  buyer A1", postcode="sw1a1aa")
    assert by_mail.orders() == by_name.orders() == {"a1"}
    assert find_subject(lake, email="nobody@example.com").hits == []


def test_export_is_encrypted_registered_and_complete(lake: Lake) -> None:
    _seed(lake)
    files = export_subject(lake, actor="alice", email="a1@example.com")
    assert len(files) == 1
    path = Path(files[0]["path"])
    assert b"a1@example.com" not in path.read_bytes()
    data = read_export(path, files[0]["key"])
    assert [r["buyer_email"] for r in data["records"]["order_buyers"]] == ["a1@example.com"]
    assert [r["amazon_order_id"] for r in data["records"]["orders"]] == ["a1"]
    req = list_requests(lake)[0]
    assert req["kind"] == "export" and req["deadline"] == "2026-04-01"
    assert "@" not in req["subject_id"]
    events = lake.audit.log.search(action="dsr.*")  # type: ignore[attr-defined]
    assert events and all("example.com" not in str(e.to_dict()) for e in events)


def test_erase_rewrites_only_the_subjects_partition(lake: Lake) -> None:
    _seed(lake)
    export_subject(lake, actor="alice", email="a1@example.com")
    before = {p.id: p for p in lake.catalog.partitions("order_buyers")}
    target = find_subject(lake, email="a1@example.com").partitions()
    cert = erase_subject(lake, actor="alice", email="a1@example.com")
    assert cert is not None and verify_certificate(lake, cert.id)["ok"]
    after = {p.id: p for p in lake.catalog.partitions("order_buyers")}
    untouched = set(before) - set(target)
    assert untouched <= set(after)  # other partitions (and beta's) keep their ids and keys
    emails = set(lake.scan("order_buyers").to_arrow().column("buyer_email").to_pylist())
    assert "a1@example.com" not in emails and {"a0@example.com", "z1@example.com"} <= emails
    assert find_subject(lake, email="a1@example.com").hits == []
    assert (
        canary_hits(
            lake.settings.home, ["a1@example.com", "Canary Buyer a1", "1 Canary Wharf Lane a"]
        )
        == []
    )
    assert list(lake.settings.home.glob("exports/*")) == []  # the subject's export is gone


def test_rectify_and_object(lake: Lake) -> None:
    _seed(lake)
    n = rectify_subject(
        lake, actor="bob", email="a2@example.com", changes={"ship_address_line1": "9 New Road"}
    )
    assert n == 1
    rows = lake.scan("order_buyers", ["acme"]).to_arrow().to_pylist()
    fixed = [r for r in rows if r["buyer_email"] == "a2@example.com"]
    assert [r["ship_address_line1"] for r in fixed] == ["9 New Road"]
    assert canary_hits(lake.settings.home, ["2 Canary Wharf Lane a"]) == []
    with pytest.raises(ComplianceError, match="rectifiable"):
        rectify_subject(lake, actor="bob", email="a2@example.com", changes={"amazon_order_id": "x"})
    assert object_subject(lake, actor="bob", email="a0@example.com") == 1
    assert objected_order_ids(lake, "acme") == {"a0"}
    # a later order of the same buyer is excluded too once indexed
    lake.write(
        "order_buyers",
        "acme",
        D0 + dt.timedelta(days=1),
        buyers([None], prefix="a").set_column(
            0, "amazon_order_id", __import__("pyarrow").array(["a0-later"])
        ),
        "b2",
    )
    index_buyers(lake)
    assert objected_order_ids(lake, "acme") == {"a0", "a0-later"}
    assert {r["kind"] for r in list_requests(lake)} == {"rectification", "objection"}


class Crash(Exception):
    pass


def _crash_at(lake: Lake, step: str, run: Callable[[], object]) -> dict[str, Any]:
    """Run `run` with a crash injected at `step`; the one request it left, as listed."""

    def hook(at: str) -> None:
        if at == step:
            raise Crash()

    lake.fault_hook = hook
    with pytest.raises(Crash):
        run()
    lake.fault_hook = lambda _s: None
    (request,) = list_requests(lake)
    assert request["status"] == "in_progress"
    return request


@pytest.mark.parametrize("step", ["dsr_staged", "dsr_dropped"])
def test_an_erasure_interrupted_by_a_crash_is_completed_and_certified(
    lake: Lake, step: str
) -> None:
    _seed(lake)
    request = _crash_at(
        lake, step, lambda: erase_subject(lake, actor="alice", email="a1@example.com")
    )
    assert resume_requests(lake) == [request["id"]]
    emails = lake.scan("order_buyers", ["acme"]).to_arrow().column("buyer_email").to_pylist()
    assert sorted(emails) == ["a0@example.com", "a2@example.com"]
    assert list((lake.settings.state_dir / "dsr-staging").iterdir()) == []
    assert list_requests(lake)[0]["status"] == "completed"
    # one drop certified, whether it was made before the crash or by the resume
    cert = list_certificates(lake)[-1]
    assert cert.body["reference"] == request["id"] and verify_certificate(lake, cert.id)["ok"]
    assert len(cert.body["destruction_records"]) == 1
    assert canary_hits(lake.settings.home, ["a1@example.com"]) == []
    assert resume_requests(lake) == []  # nothing left to do


@pytest.mark.parametrize("step", ["dsr_staged", "dsr_dropped"])
def test_a_rectification_interrupted_by_a_crash_is_finished_by_resume(
    lake: Lake, step: str
) -> None:
    _seed(lake)
    change = {"ship_address_line1": "9 New Road"}
    request = _crash_at(
        lake,
        step,
        lambda: rectify_subject(lake, actor="bob", email="a2@example.com", changes=change),
    )
    stored = [n for n, _c, _r in lake.secret_names() if n.startswith("dsr-changes-")]
    assert len(stored) == 1
    assert canary_hits(lake.settings.home, ["9 New Road"]) == []  # the new value is encrypted
    assert resume_requests(lake) == [request["id"]]
    rows = lake.scan("order_buyers", ["acme"]).to_arrow().to_pylist()
    fixed = [r["ship_address_line1"] for r in rows if r["buyer_email"] == "a2@example.com"]
    assert fixed == ["9 New Road"] and len(rows) == 3
    assert list_requests(lake)[0]["status"] == "completed"
    assert [n for n, _c, _r in lake.secret_names() if n.startswith("dsr-changes-")] == []
    assert canary_hits(lake.settings.home, ["2 Canary Wharf Lane a"]) == []


def test_deletion_notice_deletes_every_instance_and_certifies(lake: Lake, clock: Clock) -> None:
    _seed(lake)
    home = lake.settings.home
    report = home / "reports" / "acme" / "daily" / "2026-03-01.html"
    report.parent.mkdir(parents=True)
    report.write_text("acme revenue 4242.17 a1@example.com")
    export = home / "exports" / "acme-orders.csv"
    export.parent.mkdir(parents=True)
    export.write_text("a0,1.50\n")
    register_output(
        lake, export, kind="export", tenant="acme", dataset="orders", purge_date=dt.date(2027, 9, 1)
    )
    with lake.catalog.transaction():
        lake.catalog.put_sync_state("acme", "orders", {"cursor": "2026-03-01"})
        lake.catalog.put_sync_state("beta", "orders", {"cursor": "2026-03-01"})
    result = delete_scope(lake, tenant="acme", notice="AMZ-42", actor="alice")
    assert result.partitions_dropped == 3 and result.outputs_deleted == 1
    assert result.sync_state_rows == 1 and not report.exists() and not export.exists()
    assert lake.catalog.partitions(tenants=["acme"]) == []
    assert len(lake.catalog.partitions(tenants=["beta"])) == 2
    assert canary_hits(home, ["a0@example.com", "a1@example.com", "4242.17", "a0,1.50"]) == []
    cert = list_certificates(lake)[-1]
    assert cert.body["validation_required"]
    pending = verify_certificate(lake, cert.id)  # intact, but pending validation is not OK
    assert not pending["ok"] and pending["status"] == "not yet valid" and pending["signature_ok"]
    with pytest.raises(ComplianceError, match="second person"):
        validate_certificate(lake, cert.id, "alice")
    validated = validate_certificate(lake, cert.id, "bob")
    assert validated.validation and validated.validation["validated_by"] == "bob"
    assert verify_certificate(lake, cert.id)["status"] == "valid"


def test_deletion_notice_keeps_held_data_and_says_so(lake: Lake) -> None:
    from amzigo_lab.compliance import add_hold

    _seed(lake)
    hold = add_hold(
        lake,
        tenant="acme",
        dataset="orders",
        reason="litigation",
        until=dt.date(2027, 1, 1),
        actor="alice",
    )
    result = delete_scope(lake, tenant="acme", notice="AMZ-43", actor="bob")
    assert [k["hold"] for k in result.kept_under_hold] == [hold.id]
    assert [p.dataset for p in lake.catalog.partitions(tenants=["acme"])] == ["orders"]


def test_pending_validation_is_not_yet_valid_offline(lake: Lake, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from amzigo_lab.cli import main
    from amzigo_lab.client.certificate_file import verify_certificate_file
    from amzigo_lab.compliance.certificates import export_certificate

    _seed(lake)
    delete_scope(lake, tenant="acme", notice="AMZ-7", actor="alice")
    cert = list_certificates(lake)[-1]
    assert cert.body["validation_required"]
    json_path = export_certificate(lake, cert.id, tmp_path / "pending")[0]
    report = verify_certificate_file(json_path)
    assert report["status"] == "not yet valid" and not report["ok"] and not report["problems"]
    res = CliRunner().invoke(main, ["certificate", "verify", str(json_path)])
    assert res.exit_code == 3 and "NOT YET VALID" in res.output, res.output
    validate_certificate(lake, cert.id, "bob")
    json_path = export_certificate(lake, cert.id, tmp_path / "validated")[0]
    assert verify_certificate_file(json_path)["status"] == "valid"
    assert CliRunner().invoke(main, ["certificate", "verify", str(json_path)]).exit_code == 0
    # a validation moved onto, or edited in, the file is caught
    doc = json.loads(json_path.read_text())
    doc["validation"]["validated_by"] = "mallory"
    json_path.write_text(json.dumps(doc))
    report = verify_certificate_file(json_path)
    assert report["status"] == "invalid"
    assert any(p.startswith("validation signature does not match") for p in report["problems"])
