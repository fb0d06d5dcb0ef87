"""Review-request campaigns: rules, plan reasons, sends once and in window, DSR exclusions,
reconciliation after SIGKILL at each step, rate limit, CLI (--json), scheduler, ROPA."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from amzigo_lab.campaigns import CampaignStore, Rules, plan, run
from amzigo_lab.campaigns.engine import decide
from amzigo_lab.campaigns.rules import load_rules, parse_rules
from amzigo_lab.config import Settings, load_settings
from amzigo_lab.errors import ConfigError
from amzigo_lab.events import MemorySink
from amzigo_lab.home import init_home, open_lake
from amzigo_lab.lake import Lake
from amzigo_lab.sandbox import ReportTimings, SandboxServer, World
from amzigo_lab.sandbox.routes.solicitations import in_window
from amzigo_lab.sandbox.services import SolicitationLedger
from amzigo_lab.source.ingest import ingest

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 20)
SEED = 7
ACME = "acme-outdoor"
RULES = f'[campaigns."{ACME}"]\nenable = true\ndelay_days = 7\n'
NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def world() -> World:
    """The test world."""
    return World(seed=SEED, today=TODAY)


@pytest.fixture(scope="module")
def sandbox_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sandbox certificates, made once."""
    return tmp_path_factory.mktemp("sandbox")


def _server(world: World, state: Path, time_scale: float = 1000) -> SandboxServer:
    return SandboxServer(
        world, state, time_scale=time_scale, report_timings=ReportTimings(50, 50)
    ).start()


@pytest.fixture
def server(world: World, sandbox_state: Path) -> Iterator[SandboxServer]:
    """A fresh sandbox (empty solicitation ledger) per test."""
    running = _server(world, sandbox_state)
    yield running
    running.stop()


def _settings(home: Path) -> Settings:
    return load_settings(home, env={}, sandbox_seed=SEED, sandbox_today=TODAY)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, world: World, sandbox_state: Path) -> Path:
    """A home holding acme-outdoor's orders, order lines and financial events (ingested once)."""
    home = tmp_path_factory.mktemp("template") / "home"
    settings = _settings(home)
    running = _server(world, sandbox_state)
    try:
        with init_home(settings, audit=MemorySink()) as lake:
            report = ingest(
                lake, settings, [ACME], ["orders", "finances"], dt.date(2026, 9, 25),
                server=running, env={},
            )  # fmt: skip
            assert report.ok, report.to_dict()
    finally:
        running.stop()
    return home


@pytest.fixture
def settings(template: Path, tmp_path: Path) -> Settings:
    """A copy of the template home with campaigns enabled for acme-outdoor."""
    home = tmp_path / "home"
    shutil.copytree(template, home)
    (home / "config.toml").write_text(RULES, encoding="utf-8")
    return _settings(home)


@pytest.fixture
def lake(settings: Settings) -> Iterator[Lake]:
    """The copied home's lake with an in-memory audit sink."""
    lk = open_lake(settings, audit=MemorySink())
    yield lk
    lk.close()


def _send_plan(lake: Lake, settings: Settings) -> list[Any]:
    return [d for d in plan(lake, settings, [ACME], now=NOW)[0].decisions if d.decision == "send"]


def _ledger(server: SandboxServer) -> SolicitationLedger:
    return server.services.solicitations


def _assert_once_and_in_window(server: SandboxServer, world: World) -> None:
    attempts = _ledger(server).attempts
    assert attempts and max(attempts.values()) == 1, "an order was asked twice"
    for order_id in attempts:
        order = world.order(order_id)
        assert order is not None and in_window(order, world.now), order_id


# -- rules -----------------------------------------------------------------------------------
def test_rules_parse_and_bad_values_name_the_table(tmp_path: Path) -> None:
    rules = parse_rules(ACME, {"enable": True, "delay_days": 10, "exclude_skus": ["X-1"]})
    assert rules == Rules(ACME, True, (), 10, frozenset({"X-1"}), True)
    for bad, words in (
        ({"delay_days": 3}, "from 5 to 30 days"),
        ({"delay_days": 31}, "from 5 to 30 days"),
        ({"enable": "yes"}, "expected true or false"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"exclude_skus": [1]}, "list of strings"),
    ):
        with pytest.raises(ConfigError, match=words) as err:
            parse_rules(ACME, bad)
        assert f'[campaigns."{ACME}"]' in str(err.value)
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text(RULES + 'marketplaces = ["ATVPDKIKX0DER"]\n')
    assert load_rules(_settings(home))[ACME].marketplaces == ("ATVPDKIKX0DER",)


def test_decide_gives_the_first_reason_an_order_is_out() -> None:
    rules = Rules(ACME, True, ("M1",), 7, frozenset({"BAD"}), True)
    order = {
        "amazon_order_id": "o1",
        "marketplace_id": "M1",
        "order_status": "Shipped",
        "earliest_delivery_date": NOW - dt.timedelta(days=12),
        "latest_delivery_date": NOW - dt.timedelta(days=9),
        "delivered_date": (NOW - dt.timedelta(days=10)).date(),
    }
    assert decide(order, rules, NOW).decision == "send"
    cases = [
        ({**order, "marketplace_id": "M2"}, {}, "marketplace M2 is not in"),
        (order, {"objected": {"o1"}}, "buyer objected"),
        (order, {"erased": {"o1"}}, "buyer's data erased"),
        ({**order, "order_status": "Canceled"}, {}, "order status is Canceled"),
        (order, {"refunded": {"o1"}}, "refunded or returned"),
        (order, {"skus": frozenset({"BAD", "OK"})}, "excluded SKU BAD"),
        ({**order, "delivered_date": (NOW - dt.timedelta(days=3)).date()}, {}, "delay_days 7"),
        ({**order, "latest_delivery_date": NOW - dt.timedelta(days=31)}, {}, "too late"),
        ({**order, "earliest_delivery_date": None}, {}, "no delivery dates"),
    ]
    for case, kwargs, words in cases:
        d = decide(case, rules, NOW, **kwargs)
        assert d.decision == "skip" and words in d.reason, (d.reason, words)
    early = {**order, "earliest_delivery_date": NOW - dt.timedelta(days=4), "delivered_date": None}
    five = Rules(ACME, True, delay_days=5)
    assert "Amazon's window opens" in decide(early, five, NOW).reason


# -- plan and run ----------------------------------------------------------------------------
def test_plan_sends_only_inside_amazons_window(
    lake: Lake, settings: Settings, world: World
) -> None:
    plans = plan(lake, settings, now=NOW)
    acme = next(p for p in plans if p.tenant == ACME)
    counts = acme.counts()
    assert counts["send"] > 20 and counts["skip"] > 20
    for d in acme.decisions:
        order = world.order(d.amazon_order_id)
        assert order is not None and d.reason
        if d.decision == "send":
            assert in_window(order, world.now), d
            # delay_days counts from the delivery day (the lake keeps the date)
            delivered = order.delivered_at
            assert delivered is None or delivered.date() + dt.timedelta(7) <= NOW.date()
    reasons = {d.reason.split(":")[0] for d in acme.decisions}
    assert {"too early", "too late"} <= reasons
    assert all(not p.rules.enable and not p.decisions for p in plans if p.tenant != ACME)


def test_run_sends_each_due_order_once_and_audits_without_buyer_data(
    lake: Lake, settings: Settings, server: SandboxServer, world: World
) -> None:
    first = run(lake, settings, [ACME], server=server, limit=6)
    assert first.ok and len(first.sent) == 6, first.to_dict()
    second = run(lake, settings, [ACME], server=server, limit=6)
    assert second.ok and len(second.sent) == 6
    assert not {s["amazon_order_id"] for s in first.sent} & {
        s["amazon_order_id"] for s in second.sent
    }
    _assert_once_and_in_window(server, world)
    with CampaignStore.for_home(settings.state_dir) as store:
        assert store.counts() == {ACME: {"sent": 12}}
        assert len(store.runs()) == 2 and all(r["finished_at"] for r in store.runs())
    sent_events = [e for e in lake.audit.events if e["action"] == "campaign.sent"]  # type: ignore[attr-defined]
    assert len(sent_events) == 12
    assert all(e["purpose"] == "review_management" and e["tenant"] == ACME for e in sent_events)
    text = json.dumps(lake.audit.events)  # type: ignore[attr-defined]
    assert "@" not in text and "buyer_email" not in text
    # the lake shows them as requested (the reviews report's already_requested), once
    assert first.marked_in_lake == 6 and second.marked_in_lake == 6
    scan = lake.scan("solicitation_eligibility", [ACME]).latest().to_pylist()
    requested = {r["amazon_order_id"] for r in scan if r["requested"]}
    assert requested == {s["amazon_order_id"] for s in first.sent + second.sent}
    # the plan now shows them as sent, never as due
    states = {
        d.amazon_order_id: d.decision for d in plan(lake, settings, [ACME], now=NOW)[0].decisions
    }
    assert all(states[s["amazon_order_id"]] == "sent" for s in first.sent + second.sent)


def test_objected_and_erased_buyers_are_never_asked(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    due = _send_plan(lake, settings)
    objected, erased, later = due[0].amazon_order_id, due[1].amazon_order_id, due[2].amazon_order_id
    with lake.catalog.transaction() as db:
        db.execute(
            "INSERT INTO dsr_objected_orders VALUES (?, ?, 'dsr-objection-1')", (ACME, objected)
        )
        db.execute(
            "INSERT INTO dsr_requests(id, kind, subject_id, received_at, deadline, status, actor, "
            "detail_json) VALUES ('dsr-erasure-1', 'erasure', 'abc', '2026-11-19T00:00:00Z', "
            "'2026-12-19', 'completed', 'cora', ?)",
            (json.dumps({"orders": [[ACME, erased]], "token": "tok-1"}),),
        )
        # a later order of the erased buyer, indexed after the erasure under the same token
        db.execute("INSERT INTO dsr_index VALUES ('tok-1', ?, 99, ?)", (ACME, later))
    reasons = {
        d.amazon_order_id: d.reason for d in plan(lake, settings, [ACME], now=NOW)[0].decisions
    }
    assert reasons[objected] == "buyer objected (DSR objection)"
    assert reasons[erased] == reasons[later] == "buyer's data erased (DSR erasure)"
    report = run(lake, settings, [ACME], server=server, limit=10)
    asked = set(_ledger(server).attempts)
    assert report.ok and len(asked) == 10 and not asked & {objected, erased, later}
    # an objection recorded while a run is under way stops the orders not yet sent
    due = [d.amazon_order_id for d in _send_plan(lake, settings)]

    def object_mid_run(step: str, order_id: str) -> None:
        if step == "called" and order_id == due[0]:
            with lake.catalog.transaction() as db:
                db.execute(
                    "INSERT INTO dsr_objected_orders VALUES (?, ?, 'dsr-o-2')", (ACME, due[1])
                )

    mid = run(lake, settings, [ACME], server=server, limit=3, fault_hook=object_mid_run)
    assert [s["amazon_order_id"] for s in mid.sent] == [due[0], due[2]]
    assert due[1] not in _ledger(server).attempts


def test_refund_and_sku_exclusions(lake: Lake, settings: Settings) -> None:
    refunded = _refunded_order(lake)
    (settings.home / "config.toml").write_text(RULES + "exclude_refunded = false\n")
    before = {d.amazon_order_id: d for d in plan(lake, settings, [ACME], now=NOW)[0].decisions}
    (settings.home / "config.toml").write_text(RULES)
    after = {d.amazon_order_id: d for d in plan(lake, settings, [ACME], now=NOW)[0].decisions}
    assert after[refunded].reason == "refunded or returned (exclude_refunded)"
    assert "refunded" not in before[refunded].reason
    due = [d.amazon_order_id for d in before.values() if d.decision == "send"]
    items = lake.scan("order_items", [ACME]).arrow_dataset().to_table().to_pylist()
    sku = next(i["seller_sku"] for i in items if i["amazon_order_id"] == due[0])
    (settings.home / "config.toml").write_text(RULES + f'exclude_skus = ["{sku}"]\n')
    skipped = {d.amazon_order_id: d for d in plan(lake, settings, [ACME], now=NOW)[0].decisions}
    assert skipped[due[0]].reason == f"contains excluded SKU {sku}"


def _refunded_order(lake: Lake) -> str:
    rows = lake.scan("financial_events", [ACME]).arrow_dataset().to_table().to_pylist()
    refunded = sorted({r["amazon_order_id"] for r in rows if r["event_type"] == "Refund"})
    assert refunded, "the sandbox posts refunds"
    return refunded[0]


def test_not_offered_is_not_sent_and_a_refusal_is_final(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    due = _send_plan(lake, settings)
    sent_elsewhere, raced = due[0].amazon_order_id, due[1].amazon_order_id
    _ledger(server).record(sent_elsewhere)  # e.g. from Seller Central: no longer offered

    def hook(step: str, order_id: str) -> None:  # sent elsewhere between our check and call
        if step == "intent" and order_id == raced:
            _ledger(server).record(raced)

    report = run(lake, settings, [ACME], server=server, limit=3, fault_hook=hook)
    assert [n["amazon_order_id"] for n in report.not_offered] == [sent_elsewhere]
    assert [r["amazon_order_id"] for r in report.refused] == [raced]
    assert "HTTP 400" in report.refused[0]["detail"] and len(report.sent) == 1
    assert sent_elsewhere not in _ledger(server).attempts
    again = run(lake, settings, [ACME], server=server, limit=3)
    assert raced not in {s["amazon_order_id"] for s in again.sent}
    assert _ledger(server).attempts[raced] == 1


def test_a_refusal_while_still_offered_sends_nothing_and_stops_the_tenant(
    lake: Lake, settings: Settings, server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sp_api.api import Solicitations
    from sp_api.base.exceptions import SellingApiForbiddenException

    def forbidden(self: Any, order_id: str, **kwargs: Any) -> Any:
        raise SellingApiForbiddenException([{"code": "Unauthorized", "message": "no role"}])

    monkeypatch.setattr(
        Solicitations, "create_product_review_and_seller_feedback_solicitation", forbidden
    )
    report = run(lake, settings, [ACME], server=server, limit=3)
    assert not report.ok and not report.sent and not report.refused
    assert len(report.errors) == 1 and "HTTP 403" in report.errors[0]
    with CampaignStore.for_home(settings.state_dir) as store:
        assert not store.sends(ACME)  # nothing recorded as sent or refused: planned again later
    monkeypatch.undo()
    assert len(run(lake, settings, [ACME], server=server, limit=3).sent) == 3


def test_sends_stay_within_the_rate_limit(
    lake: Lake, settings: Settings, world: World, sandbox_state: Path
) -> None:
    slow = _server(world, sandbox_state, time_scale=20)  # 20 requests/s per operation, burst 5
    try:
        t0 = time.monotonic()
        report = run(lake, settings, [ACME], server=slow, limit=25)
        seconds = time.monotonic() - t0
    finally:
        slow.stop()
    assert report.ok and len(report.sent) == 25 and report.throttled_429 == 0
    # each operation: 25 requests, 5 in the burst, then 20/s: at least 1 s
    assert seconds >= (25 - 5) / 20
    assert report.requests["createProductReviewAndSellerFeedbackSolicitation"] == 25


# -- crash sweep -------------------------------------------------------------------------------
def _child(settings: Settings, step: str, server: SandboxServer, nth: int = 1) -> dict[str, Any]:
    where = {
        "time_scale": server.limiter.time_scale, "lwa_url": server.lwa_url,
        "endpoint": server.endpoint, "ca_path": str(server.ca_path),
    }  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMZIGO_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.campaigns.crash_child", str(settings.home), step,
         json.dumps(where), str(nth)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("step", ["intent", "called"])
def test_sigkill_at_each_step_never_sends_twice(
    step: str, settings: Settings, server: SandboxServer, world: World
) -> None:
    killed = _child(settings, step, server)
    order = killed["order"]
    ledger = _ledger(server)
    assert ledger.attempts[order] == (0 if step == "intent" else 1)
    with open_lake(settings, audit=MemorySink()) as lake:
        with CampaignStore.for_home(settings.state_dir) as store:
            assert [s.amazon_order_id for s in store.sends(ACME, "intent")] == [order]
        report = run(lake, settings, [ACME], server=server, limit=4)
        assert report.ok, report.to_dict()
        assert [r["amazon_order_id"] for r in report.reconciled] == [order]
        outcome = report.reconciled[0]["outcome"]
        if step == "intent":  # the call never left: still offered, so sent now, once
            assert outcome.startswith("cleared")
            assert order in {s["amazon_order_id"] for s in report.sent}
        else:  # the call went out: no longer offered, so counted as sent, not called again
            assert outcome == "sent"
            assert order not in {s["amazon_order_id"] for s in report.sent}
        with CampaignStore.for_home(settings.state_dir) as store:
            rows = store.by_order(ACME)
            assert rows[order].state == "sent" and not store.sends(ACME, "intent")
            assert [r["finished_at"] for r in store.runs()][1] is None  # the killed run
    assert ledger.attempts[order] == 1
    _assert_once_and_in_window(server, world)


def test_crash_sweep_kills_again_and_again_and_no_order_is_asked_twice(
    settings: Settings, server: SandboxServer, world: World
) -> None:
    killed = [
        _child(settings, step, server, nth)["order"]
        for step, nth in (("called", 3), ("intent", 2), ("intent", 1), ("called", 1))
    ]
    # the order killed after its intent is planned again first: it is killed again, at each step
    assert killed[1] == killed[2] == killed[3] != killed[0]
    with open_lake(settings, audit=MemorySink()) as lake:
        report = run(lake, settings, [ACME], server=server, limit=10)
        assert report.ok and len(report.reconciled) == 1  # each child reconciled the one before
    attempts = _ledger(server).attempts
    assert all(attempts[o] == 1 for o in killed)
    _assert_once_and_in_window(server, world)
    with CampaignStore.for_home(settings.state_dir) as store:
        rows = store.sends(ACME)
        assert not [r for r in rows if r.state != "sent"]
        assert {r.amazon_order_id for r in rows} == set(attempts)


def test_one_campaign_run_at_a_time(lake: Lake, settings: Settings, server: SandboxServer) -> None:
    from amzigo_lab.campaigns.store import CampaignBusy

    busy = pytest.raises(CampaignBusy, match="another `campaign run`")
    with CampaignStore.for_home(settings.state_dir) as held, held.exclusive(), busy:
        run(lake, settings, [ACME], server=server, limit=1)
    assert not _ledger(server).attempts
    assert run(lake, settings, [ACME], server=server, limit=1).sent


# -- CLI, scheduler, ROPA ------------------------------------------------------------------------
CLI_ENV = {"AMZIGO_SANDBOX_TODAY": "2026-11-20", "AMZIGO_SANDBOX_SEED": "7"}


def test_cli_json_embedded_sandbox_remembers_sends(settings: Settings) -> None:
    from amzigo_lab.cli import main

    runner = CliRunner()
    home = ["--home", str(settings.home)]
    planned = runner.invoke(main, ["campaign", "plan", "--dry-run", "--json", *home], env=CLI_ENV)
    assert planned.exit_code == 0, planned.output
    body = json.loads(planned.output)
    acme = next(t for t in body["tenants"] if t["tenant"] == ACME)
    assert body["dry_run"] and acme["counts"]["send"] > 0
    assert {"decision", "reason", "window_opens", "window_closes"} <= set(acme["decisions"][0])
    text = runner.invoke(main, ["campaign", "plan", *home], env=CLI_ENV)
    assert text.exit_code == 0 and "out:" in text.output and "too late" in text.output
    sent: list[str] = []
    for _ in range(2):  # each run starts a new embedded sandbox: it still remembers
        res = runner.invoke(main, ["campaign", "run", "--limit", "3", "--json", *home], env=CLI_ENV)
        assert res.exit_code == 0, res.output
        report = json.loads(res.output)
        assert report["source"] == "sandbox" and len(report["sent"]) == 3
        sent += [s["amazon_order_id"] for s in report["sent"]]
    assert len(set(sent)) == 6
    ledger = settings.state_dir / "sandbox" / f"solicitations-{SEED}.sent"
    assert sorted(ledger.read_text().split()) == sorted(sent)
    status = json.loads(
        runner.invoke(main, ["campaign", "status", "--json", *home], env=CLI_ENV).output
    )
    assert status["counts"] == {ACME: {"sent": 6}} and len(status["runs"]) == 2
    assert runner.invoke(main, ["campaign", "status", *home], env=CLI_ENV).exit_code == 0
    refused = runner.invoke(main, ["campaign", "plan", "--no-dry-run", *home], env=CLI_ENV)
    assert refused.exit_code == 2 and "never sends" in refused.output


def test_cli_plan_names_the_rule_to_set_and_refuses_an_unknown_tenant(settings: Settings) -> None:
    """The disabled-tenant hint once lost its `[campaigns."T"]` to rich markup ("(no  enable)"),
    and a mistyped tenant was planned as a disabled one (exit 0)."""
    from amzigo_lab.cli import main

    (settings.home / "config.toml").write_text("", encoding="utf-8")  # no rules at all
    runner = CliRunner()
    home = ["--home", str(settings.home)]
    off = runner.invoke(main, ["campaign", "plan", "--tenant", ACME, *home], env=CLI_ENV)
    assert off.exit_code == 0, off.output
    assert f'[campaigns."{ACME}"] enable = true' in off.output
    typo = runner.invoke(main, ["campaign", "plan", "--tenant", "acme-outdor", *home], env=CLI_ENV)
    assert typo.exit_code == 2 and "unknown tenant 'acme-outdor'" in typo.output
    assert ACME in typo.output and "Traceback" not in typo.output


def test_campaign_run_is_a_schedulable_job() -> None:
    from amzigo_lab.analysis.schedule import load_jobs
    from amzigo_lab.cli import main

    section = {"jobs": {"reviews": {"cron": "30 * * * *", "command": "campaign run --json"}}}
    jobs = load_jobs(section, known_commands=set(main.commands))
    assert [j.argv for j in jobs if j.name == "reviews"] == [("campaign", "run", "--json")]


def test_ropa_declares_the_review_management_activity(lake: Lake) -> None:
    from amzigo_lab.compliance.ropa import StoreCounts, build_ropa, installation_facts, render_html

    with CampaignStore.for_home(lake.settings.state_dir) as store:
        store.record_intent(ACME, "111-0000000-0000001", "ATVPDKIKX0DER", "run-1")
    counts = StoreCounts(
        users=None, grants=None, campaign_orders=CampaignStore.count_in(lake.settings.state_dir),
        alerts=None,
    )  # fmt: skip
    ropa = build_ropa((), installation_facts(lake, counts))
    activity = next(a for a in ropa["activities"] if a["purpose"] == "review_management")
    assert "createProductReviewAndSellerFeedbackSolicitation" in activity["description"]
    assert activity["personal_data"] is False and "objected" in activity["safeguards"]
    loc = next(x for x in ropa["installation"]["locations"] if x["name"] == "campaign state")
    assert loc["path"].endswith("campaigns.sqlite") and loc["personal_data"] is False
    assert loc["count"] == 1  # the order with a row, counted by the campaign store
    page = render_html(ropa)
    assert "Activity: review-request campaigns (purpose review_management)" in page


def test_demo_homes_get_a_campaign_once(tmp_path: Path) -> None:
    from amzigo_lab.campaigns.rules import add_demo_rules

    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text("# mine\nsandbox_seed = 7\n")
    settings = _settings(home)
    assert add_demo_rules(settings) and not add_demo_rules(settings)
    assert load_rules(settings)[ACME].enable
    assert (home / "config.toml").read_text().startswith("# mine\n")


def test_sandbox_ledger_remembers_across_restarts_and_counts_attempts(tmp_path: Path) -> None:
    path = tmp_path / "solicitations.sent"
    ledger = SolicitationLedger(path)
    ledger.attempt("o-1")
    assert ledger.record("o-1") and not ledger.record("o-1")
    again = SolicitationLedger(path)
    assert again.was_sent("o-1") and not again.was_sent("o-2") and not again.attempts
    assert ledger.attempts["o-1"] == 1


def test_an_erasure_records_its_orders_and_catches_the_buyers_later_orders(
    tmp_path: Path,
) -> None:
    import pyarrow as pa

    from amzigo_lab.compliance.dsr import erase_subject, erased_order_ids, index_buyers
    from tests.compliance.conftest import Clock, buyers, make_users

    d0 = dt.date(2026, 3, 1)
    settings = load_settings(tmp_path / "home", env={}, reports_dir=tmp_path / "home" / "r")
    lake = init_home(settings, clock=Clock())
    make_users(settings.home)
    try:
        lake.write("order_buyers", ACME, d0, buyers([d0, d0, None], prefix="a"), "b1")
        index_buyers(lake)
        erase_subject(lake, actor="alice", email="a1@example.com")
        assert erased_order_ids(lake, ACME) == {"a1"} and erased_order_ids(lake, "other") == set()
        later = buyers([None, None], prefix="a").slice(1)  # a1 again, with a new order
        later = later.set_column(0, "amazon_order_id", pa.array(["a1-later"]))
        lake.write("order_buyers", ACME, d0 + dt.timedelta(days=1), later, "b2")
        index_buyers(lake)
        assert erased_order_ids(lake, ACME) == {"a1", "a1-later"}
        detail = lake.catalog.db.execute(
            "SELECT detail_json FROM dsr_requests WHERE kind = 'erasure'"
        ).fetchone()[0]
        assert "@" not in detail and json.loads(detail)["orders"] == [[ACME, "a1"]]
    finally:
        close = getattr(lake.audit, "close", None)
        if close is not None:
            close()
        lake.close()


def test_the_lake_shows_the_request_over_ingestions_check_of_the_same_time(
    lake: Lake, settings: Settings, server: SandboxServer
) -> None:
    import pyarrow as pa

    from amzigo_lab.datasets import REGISTRY

    oid = _send_plan(lake, settings)[0].amazon_order_id
    order = next(
        o for o in lake.scan("orders", [ACME]).latest().to_pylist() if o["amazon_order_id"] == oid
    )
    checked = {
        "amazon_order_id": oid, "marketplace_id": order["marketplace_id"], "checked_at": NOW,
        "earliest_delivery_date": order["earliest_delivery_date"],
        "latest_delivery_date": order["latest_delivery_date"], "eligible": True,
        "requested": False,
    }  # fmt: skip
    schema = REGISTRY["solicitation_eligibility"].schema
    lake.write(
        "solicitation_eligibility",
        ACME,
        TODAY,
        pa.Table.from_pylist([checked], schema=schema),
        "i1",
    )
    report = run(lake, settings, [ACME], server=server, limit=1)
    assert [s["amazon_order_id"] for s in report.sent] == [oid] and report.marked_in_lake == 1
    latest = lake.scan("solicitation_eligibility", [ACME]).latest().to_pylist()
    assert [(r["requested"], r["eligible"]) for r in latest if r["amazon_order_id"] == oid] == [
        (True, False)
    ]
    assert run(lake, settings, [ACME], server=server, limit=0).marked_in_lake == 0  # once
