"""`purge`: drops what is due, keeps what is held, derived outputs and quarantine too, resumes."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from amzigo_lab.compliance import (
    add_hold,
    index_buyers,
    list_certificates,
    plan_purge,
    purge,
    register_output,
    release_hold,
    verify_certificate,
)
from amzigo_lab.compliance.common import ComplianceError
from amzigo_lab.errors import AccessDenied
from amzigo_lab.home import open_lake
from amzigo_lab.lake import Lake
from tests.compliance.conftest import Clock, buyers, canary_hits
from tests.lake.helpers import orders

D0 = dt.date(2026, 3, 1)


def test_purge_drops_due_pii_and_keeps_analytics(lake: Lake, clock: Clock) -> None:
    lake.write("order_buyers", "acme", D0, buyers([D0 - dt.timedelta(days=2), None]), "b1")
    lake.write("orders", "acme", D0, orders(5), "o1")
    index_buyers(lake)
    # PII: one partition due D0-2+30, one due D0+30; orders due D0 + 18 months
    clock.set_day(D0 + dt.timedelta(days=28))
    result = purge(lake)
    assert result.partitions_dropped == 1 and result.rows_dropped == 1
    assert lake.scan("order_buyers").to_arrow().num_rows == 1
    clock.set_day(D0 + dt.timedelta(days=30))
    purge(lake)
    assert lake.scan("order_buyers").to_arrow().num_rows == 0
    assert lake.scan("orders").to_arrow().num_rows == 5
    assert lake.catalog.db.execute("SELECT count(*) FROM dsr_index").fetchone()[0] == 0
    # nothing of the fake buyers anywhere in the home, in any file
    needles = ["b0@example.com", "b1@example.com", "Canary Buyer b0", "Canary Wharf Lane"]
    assert canary_hits(lake.settings.home, needles) == []
    certs = list_certificates(lake)
    assert len(certs) == 2 and all(verify_certificate(lake, c.id)["ok"] for c in certs)
    # idempotent: nothing more due, no new certificate
    again = purge(lake)
    assert again.partitions_dropped == 0 and again.certificate_id is None


def test_dry_run_changes_nothing_and_reports_holds(lake: Lake, clock: Clock) -> None:
    lake.write("orders", "acme", D0, orders(3), "o1")
    lake.write("orders", "beta", D0, orders(2), "o1")
    hold = add_hold(lake, tenant="beta", reason="case 7", until=dt.date(2028, 1, 1), actor="alice")
    clock.set_day(dt.date(2027, 9, 1))
    result = purge(lake, dry_run=True)
    plan = result.to_dict(lake)["plan"]
    assert [p["tenant"] for p in plan["drop"]] == ["acme"]
    assert [(p["tenant"], p["hold"]) for p in plan["kept_under_hold"]] == [("beta", hold.id)]
    assert len(lake.catalog.partitions()) == 2 and list_certificates(lake) == []
    done = purge(lake)
    assert done.partitions_dropped == 1
    cert = list_certificates(lake)[0]
    assert cert.body["kept_under_legal_hold"][0]["hold"] == hold.id


def test_holds_win_then_expire_by_themselves(lake: Lake, clock: Clock) -> None:
    lake.write("order_buyers", "acme", D0, buyers([D0]), "b1")
    add_hold(
        lake,
        tenant="acme",
        dataset="order_buyers",
        reason="dispute 1",
        until=D0 + dt.timedelta(days=40),
        actor="alice",
    )
    clock.set_day(D0 + dt.timedelta(days=35))
    assert purge(lake).partitions_dropped == 0
    assert lake.scan("order_buyers").to_arrow().num_rows == 1
    clock.set_day(D0 + dt.timedelta(days=41))  # the hold expired on its own
    assert purge(lake).partitions_dropped == 1
    actions = [e.action for e in lake.audit.log.search(action="compliance.*")]  # type: ignore[attr-defined]
    assert "compliance.hold_added" in actions and "compliance.hold_expired" in actions
    assert "compliance.purge_kept" in actions


def test_hold_scope_and_release(lake: Lake, clock: Clock) -> None:
    for day in (D0, D0 + dt.timedelta(days=10)):
        lake.write("orders", "acme", day, orders(2), f"o{day}")
    hold = add_hold(
        lake,
        tenant="acme",
        dataset="orders",
        from_date=D0,
        to_date=D0,
        reason="audit",
        until=dt.date(2030, 1, 1),
        actor="bob",
    )
    clock.set_day(dt.date(2028, 1, 1))
    plan = plan_purge(lake)
    assert [p.ingest_date for p in plan.drop] == [D0 + dt.timedelta(days=10)]
    release_hold(lake, hold.id, actor="alice")
    assert len(plan_purge(lake).drop) == 2


def test_holds_need_the_compliance_role(lake: Lake) -> None:
    with pytest.raises(AccessDenied, match="compliance"):
        add_hold(lake, tenant="acme", reason="x", until=dt.date(2030, 1, 1), actor="carol")
    with pytest.raises(AccessDenied, match="unknown user"):
        add_hold(lake, tenant="acme", reason="x", until=dt.date(2030, 1, 1), actor="mallory")
    (lake.settings.home / "identity.sqlite").unlink()
    with pytest.raises(ComplianceError, match="no identity store"):
        add_hold(lake, tenant="acme", reason="x", until=dt.date(2030, 1, 1), actor="alice")


def test_derived_outputs_and_quarantine_follow_their_source(lake: Lake, clock: Clock) -> None:
    reports = lake.settings.home / "reports" / "acme" / "weekly"
    reports.mkdir(parents=True)
    report = reports / "2026-03-01.html"
    report.write_text("<p>secret sales figure 987654</p>")
    pid = lake.write("orders", "acme", D0, orders(2), "o1").partition_ids[0]
    src = lake.catalog.partition(pid)
    register_output(
        lake,
        report,
        kind="report",
        tenant="acme",
        dataset="orders",
        purge_date=src.purge_date,
        source_date=D0,
    )
    import pyarrow as pa

    from amzigo_lab.datasets import QUARANTINE

    q = pa.Table.from_pylist(
        [
            {
                "record_id": "r1",
                "stream": "orders",
                "dataset": "orders",
                "quarantined_at": clock.now,
                "reason": "bad total",
                "raw_json": json.dumps({"order": "quarantined-canary-77"}),
            }
        ],
        schema=QUARANTINE.schema,
    )
    lake.write("quarantine", "acme", D0, q, "q1")
    clock.set_day(src.purge_date - dt.timedelta(days=1))
    assert purge(lake).partitions_dropped == 0 and report.exists()
    clock.set_day(src.purge_date)
    result = purge(lake)
    assert result.outputs_deleted == 1 and not report.exists()
    assert result.to_dict(lake)["plan"]["drop_summary"]["quarantine"]["partitions"] == 1
    assert canary_hits(lake.settings.home, ["987654", "quarantined-canary-77"]) == []


class Crash(Exception):
    pass


def test_purge_resumes_after_a_crash(settings, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    from amzigo_lab.home import init_home

    steps: list[str] = []

    def hook(step: str) -> None:
        steps.append(step)
        if step == "keys_destroyed" and steps.count("keys_destroyed") == 2:
            raise Crash("killed half-way")

    lake = init_home(settings, clock=clock, fault_hook=hook)
    for i, day in enumerate(D0 + dt.timedelta(days=d) for d in range(6)):
        lake.write("orders", "acme", day, orders(2, prefix=f"x{i}-"), f"o{i}")
    clock.set_day(dt.date(2028, 1, 1))
    with pytest.raises(Crash):
        purge(lake, batch_size=2)
    states = sorted(p.state for p in lake.catalog.partitions(states=("live", "dropping")))
    assert states == ["dropping", "dropping", "live", "live"]
    lake.audit.close()  # type: ignore[attr-defined]
    lake.close()
    with open_lake(settings, clock=clock) as again:
        result = purge(again, batch_size=2)
        assert result.resumed and result.partitions_dropped == 4
        assert again.catalog.partitions(states=("live", "dropping")) == []
        cert = verify_certificate(again, result.certificate_id or "")
        assert cert["ok"]
        body = again.catalog.db.execute(
            "SELECT body_json FROM certificates WHERE id = ?", (result.certificate_id,)
        ).fetchone()[0]
        assert len(json.loads(body)["items"]) == 6  # the crashed part is certified too
        assert again.verify().ok
        again.audit.close()  # type: ignore[attr-defined]


def test_audit_segments_older_than_12_months_are_dropped(
    lake: Lake, clock: Clock, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from amzigo_lab.governance.audit import AuditEvent, AuditLog

    audit_clock = Clock(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    log = AuditLog(
        tmp_path / "audit",
        tmp_path / "ck",
        lambda: b"a" * 32,
        tmp_path / "sig.pem",
        clock=audit_clock,
        segment_max_records=2,
    )
    for i in range(5):
        log.append(
            AuditEvent.new(action="test.old", actor="system", reason=f"{i}", clock=audit_clock)
        )
    audit_clock.now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    clock.set_day(dt.date(2026, 6, 1))
    result = purge(lake, audit_log=log)
    assert result.audit_segments_dropped == 2 and result.certificate_id
    assert log.verify().ok
    log.close()
