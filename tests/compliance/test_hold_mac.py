"""Row MACs of legal holds and derived outputs: a hold inserted or edited with sqlite3 (as an
attacker would) keeps nothing, an edited derived output is deleted as due now; both are named."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from amzigo_lab.compliance import add_hold, purge, register_output
from amzigo_lab.compliance.retention import plan_purge
from amzigo_lab.config import Settings
from amzigo_lab.events import MemorySink
from amzigo_lab.home import open_lake
from amzigo_lab.lake import Lake
from amzigo_lab.lake.rowmac import TamperedRow, check_all
from tests.compliance.conftest import Clock, buyers

D0 = dt.date(2026, 3, 1)
DUE = D0 + dt.timedelta(days=31)  # both tenants' order_buyers partitions are due


def attack(lake: Lake, sql: str, args: tuple[object, ...] = ()) -> None:
    db = sqlite3.connect(lake.settings.catalog_path)
    try:
        assert db.execute(sql, args).rowcount == 1
        db.commit()
    finally:
        db.close()


def _audit(lake: Lake, action: str) -> list[object]:
    return list(lake.audit.log.search(action=action))  # type: ignore[attr-defined]


def _two_tenants(lake: Lake) -> tuple[int, int]:
    a = lake.write("order_buyers", "acme", D0, buyers([D0]), "b1").partition_ids[0]
    b = lake.write("order_buyers", "bluebird", D0, buyers([D0], prefix="c"), "b1")
    return a, b.partition_ids[0]


def _forged_hold(lake: Lake) -> None:
    attack(
        lake,
        "INSERT INTO legal_holds(id, tenant, dataset, reason, until, created_by, created_at) "
        "VALUES ('hold-forged', 'acme', NULL, 'keep it', '2099-01-01', 'alice', "
        "'2026-03-01T00:00:00.000000Z')",
    )


def _edited_hold(lake: Lake) -> None:
    hold = add_hold(lake, tenant="acme", reason="case 1", until=D0 + dt.timedelta(days=40),
                    actor="alice")  # fmt: skip
    assert lake.verify().ok
    attack(lake, "UPDATE legal_holds SET until = '2099-01-01' WHERE id = ?", (hold.id,))


@pytest.mark.parametrize("attack_kind", ["inserted", "until_edited"])
def test_tampered_hold_is_not_honoured_purge_drops_and_fails(
    lake: Lake, clock: Clock, attack_kind: str
) -> None:
    acme, bluebird = _two_tenants(lake)
    if attack_kind == "inserted":
        _forged_hold(lake)
        hold_id = "hold-forged"
    else:
        _edited_hold(lake)
        hold_id = lake.catalog.db.execute("SELECT id FROM legal_holds").fetchone()[0]
    # lake verify names the hold row
    subjects = [p.subject for p in lake.verify().problems if p.kind == "row_mac"]
    assert subjects == [f"legal hold {hold_id} (tenant acme, dataset *)"]
    clock.set_day(DUE + dt.timedelta(days=60))  # past the genuine until of the edited hold
    plan = plan_purge(lake)
    assert sorted(p.id for p in plan.drop) == sorted([acme, bluebird]) and not plan.kept
    assert [rp.row_id for rp in plan.holds_refused] == [hold_id]
    with pytest.raises(TamperedRow, match=rf"refusing to purge .*legal hold {hold_id} "):
        purge(lake)
    # the data the hold claimed is dropped (its own purge date passed), and certified
    assert lake.catalog.partition(acme).state == "dropped"
    assert lake.catalog.partition(bluebird).state == "dropped"
    assert not _audit(lake, "compliance.purge_kept")
    alerts = _audit(lake, "compliance.hold_refused_tampered")
    assert len(alerts) == 1 and alerts[0].decision == "deny"  # type: ignore[attr-defined]
    assert alerts[0].resource == f"hold:{hold_id}"  # type: ignore[attr-defined]
    # the tampered row is never re-sealed (not even by hold expiry)
    assert [p.subject for p in lake.verify().problems] == subjects


def test_untouched_hold_still_keeps_data(lake: Lake, clock: Clock) -> None:
    acme, _bluebird = _two_tenants(lake)
    add_hold(lake, tenant="acme", reason="case 2", until=dt.date(2030, 1, 1), actor="alice")
    clock.set_day(DUE)
    result = purge(lake)
    assert [p.id for p, _h in result.plan.kept] == [acme] and result.partitions_dropped == 1
    assert lake.catalog.partition(acme).state == "live" and lake.verify().ok


def test_edited_derived_purge_date_is_deleted_as_due_and_named(lake: Lake, clock: Clock) -> None:
    acme, _ = _two_tenants(lake)
    reports = lake.settings.home / "reports" / "acme"
    reports.mkdir(parents=True)
    report, other = reports / "r1.html", reports / "r2.html"
    for f in (report, other):
        f.write_text("<p>figures</p>")
    purge_date = lake.catalog.partition(acme).purge_date
    kept_for = dt.date(2030, 1, 1)
    out = register_output(lake, report, kind="report", tenant="acme", dataset="order_buyers",
                          purge_date=purge_date)  # fmt: skip
    register_output(lake, other, kind="report", tenant="acme", dataset="order_buyers",
                    purge_date=kept_for)  # fmt: skip
    assert lake.verify().ok
    attack(lake, "UPDATE derived_outputs SET purge_date = '2099-01-01' WHERE id = ?", (out.id,))
    assert [p.subject for p in lake.verify().problems] == [
        f"derived output {out.id} (tenant acme, dataset order_buyers)"
    ]
    clock.set_day(purge_date)
    with pytest.raises(TamperedRow, match=rf"derived output {out.id} .*certificate cert-"):
        purge(lake)
    assert not report.exists() and other.exists()  # the untampered one is not due yet
    alerts = _audit(lake, "compliance.output_refused_tampered")
    assert [a.resource for a in alerts] == [f"output:{out.id}"]  # type: ignore[attr-defined]
    assert "deleted and certified" in alerts[0].reason  # type: ignore[attr-defined]
    records = lake.catalog.db.execute(
        "SELECT record_json FROM destructions WHERE kind = 'derived_delete'"
    ).fetchall()
    assert any(out.id in r[0] and "failed: deleted as due now" in r[0] for r in records)


def test_tampered_derived_path_into_the_home_is_not_deleted(lake: Lake, clock: Clock) -> None:
    _two_tenants(lake)
    attack(
        lake,
        "INSERT INTO derived_outputs(id, kind, path, tenant, dataset, source_date, purge_date, "
        "created_at) VALUES ('out-forged', 'report', ?, 'acme', 'orders', '2026-03-01', "
        "'2026-03-01', '2026-03-01T00:00:00.000000Z')",
        (str(lake.settings.catalog_path.resolve()),),
    )
    clock.set_day(DUE)
    with pytest.raises(TamperedRow, match="derived output out-forged"):
        purge(lake)
    assert lake.settings.catalog_path.exists()
    alerts = _audit(lake, "compliance.output_refused_tampered")
    assert "NOT deleted" in alerts[0].reason  # type: ignore[attr-defined]


def test_rotation_re_macs_holds_and_outputs(lake: Lake, clock: Clock) -> None:
    acme, _ = _two_tenants(lake)
    add_hold(lake, tenant="acme", reason="case 3", until=dt.date(2030, 1, 1), actor="alice")
    report = lake.settings.home / "reports" / "r.html"
    report.parent.mkdir(parents=True)
    report.write_text("x")
    register_output(lake, report, kind="report", tenant="acme", dataset="order_buyers",
                    purge_date=dt.date(2030, 1, 1))  # fmt: skip
    old = lake.row_mac_key()
    lake.rotate_master_key()
    assert lake.verify().ok
    assert {p.table for p in check_all(lake.catalog.db, old)} >= {"legal_holds", "derived_outputs"}
    clock.set_day(DUE)
    result = purge(lake)
    assert [p.id for p, _h in result.plan.kept] == [acme] and report.exists()


def test_rotation_refuses_a_tampered_hold(lake: Lake) -> None:
    _forged_hold(lake)
    with pytest.raises(TamperedRow, match="rotate the master key over .*legal hold hold-forged"):
        lake.rotate_master_key()


def test_migration_macs_holds_and_outputs_once_and_audits_it(
    lake: Lake, settings: Settings, clock: Clock
) -> None:
    acme, _ = _two_tenants(lake)
    hold = add_hold(lake, tenant="acme", reason="case 4", until=dt.date(2030, 1, 1), actor="alice")
    report = lake.settings.home / "reports" / "r.html"
    report.parent.mkdir(parents=True)
    report.write_text("x")
    register_output(lake, report, kind="report", tenant="acme", dataset="order_buyers",
                    purge_date=dt.date(2030, 1, 1))  # fmt: skip
    lake.close()
    db = sqlite3.connect(settings.catalog_path)  # what an amzigo-lab of schema 3 left behind
    for table in ("legal_holds", "derived_outputs"):
        db.execute(f"ALTER TABLE {table} DROP COLUMN mac")
    db.execute("DELETE FROM meta WHERE key = 'hold_mac_migration'")
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    sink = MemorySink()
    with open_lake(settings, audit=sink, clock=clock) as migrated:
        assert migrated.catalog.schema_version == 4 and migrated.verify().ok
        done = migrated.catalog.get_meta("hold_mac_migration") or ""
        assert done.startswith("done ") and "1 legal_holds, 1 derived_outputs" in done
        clock.set_day(DUE)
        plan = plan_purge(migrated)
        assert [p.id for p, _h in plan.kept] == [acme] and not plan.holds_refused
    events = [e for e in sink.events if e["action"] == "catalog.row_mac_migration"]
    assert len(events) == 1 and events[0]["row_count"] == 2 and hold.id in events[0]["reason"]
    # afterwards, a forged hold is not sealed by resetting the marker
    db = sqlite3.connect(settings.catalog_path)
    db.execute("UPDATE meta SET value = 'pending' WHERE key = 'hold_mac_migration'")
    db.execute(
        "INSERT INTO legal_holds(id, tenant, reason, until, created_by, created_at) "
        "VALUES ('hold-forged', 'bluebird', 'x', '2099-01-01', 'alice', 'now')"
    )
    db.commit()
    db.close()
    with open_lake(settings, audit=MemorySink(), clock=clock) as again:
        subjects = sorted(p.subject for p in again.verify().problems)
        assert subjects == ["catalog meta hold_mac_migration", "legal hold hold-forged "
                            "(tenant bluebird, dataset *)"]  # fmt: skip
        assert [rp.row_id for rp in plan_purge(again).holds_refused] == ["hold-forged"]
