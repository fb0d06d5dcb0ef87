"""The alert pipeline: delivery once per sink with retries, damaged logs as alerts, policy
versions, default rules, and the gateway's continuous evaluation."""

from __future__ import annotations

import datetime as dt
import json
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.config import load_settings
from amzigo_lab.governance.alerting import (
    AlertPipeline,
    alert_rules,
    backoff,
    collect_alerts,
    deliver,
    policy_purposes,
)
from amzigo_lab.governance.audit import (
    Alert,
    AuditEvent,
    PiiOutsidePurpose,
    PolicyChanged,
    policy_version,
)
from amzigo_lab.governance.context import Governance
from amzigo_lab.governance.policy import POLICY_HISTORY, Policy
from tests.governance.gov_fixtures import cheap_hasher

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SHA1 = "a" * 64
SHA2 = "b" * 64


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    result = CliRunner().invoke(main, ["init", "--home", str(h)], env={"AMZIGO_SESSION": None})
    assert result.exit_code == 0, result.output
    return h


@pytest.fixture
def gov(home: Path) -> Iterator[Governance]:
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as g:
        yield g


def _reader(home: Path) -> dict[str, str | None]:
    """The CLI environment of a logged-in admin (`amzigo alerts` needs read_audit)."""
    import pyotp

    password = "Zq8!Violet-Tundra-Kettle"
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as g:
        uri = g.identity.add_user("ada", ["admin"], password=password).provisioning_uri
        token = g.identity.authenticate("ada", password, pyotp.parse_uri(uri).now()).token
    return {"AMZIGO_HOME": str(home), "AMZIGO_SESSION": token}


def _config(home: Path, text: str) -> None:
    with (home / "config.toml").open("a", encoding="utf-8") as fh:
        fh.write("\n" + text + "\n")


def _recorder(out: Path) -> list[str]:
    code = (
        "import sys, pathlib; p = pathlib.Path(sys.argv[1]); "
        "p.open('a').write(sys.stdin.read() + '\\n')"
    )
    return [sys.executable, "-c", code, str(out)]


def _dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@dataclass
class FakeSink:
    name: str
    fail: bool = False
    got: list[str] = field(default_factory=list)

    def send(self, alert: Alert) -> None:
        if self.fail:
            raise ConnectionError("connection refused")
        self.got.append(alert.alert_id)


# -- delivery ----------------------------------------------------------------------------------


def test_delivered_once_per_sink_and_a_failing_sink_is_retried_with_backoff(
    gov: Governance,
) -> None:
    gov.emit("admin.break_glass", actor="break-glass:root", resource="users.add", reason="x")
    alerts = collect_alerts(gov)
    assert [a.rule for a in alerts] == ["break_glass"]
    ok, down = FakeSink("ok"), FakeSink("hook", fail=True)

    first = deliver(gov, alerts, [ok, down], now=T0)
    assert [s for _a, s in first.sent] == ["ok"] and first.failed_sinks == ["hook"]
    assert first.waiting == 1
    again = deliver(gov, collect_alerts(gov), [ok, down], now=T0 + timedelta(seconds=5))
    assert not again.attempted and again.waiting == 1  # backoff: not due yet
    assert ok.got == [alerts[0].alert_id]

    later = deliver(gov, collect_alerts(gov), [ok, down], now=T0 + backoff(1))
    assert later.failed_sinks == ["hook"]  # still down: tried again, next wait doubles
    assert backoff(2) == 2 * backoff(1) and backoff(50) == timedelta(hours=1)
    down.fail = False
    done = deliver(gov, collect_alerts(gov), [ok, down], now=T0 + backoff(1) + backoff(2))
    assert [s for _a, s in done.sent] == ["hook"] and done.waiting == 0
    assert ok.got == down.got == [alerts[0].alert_id]  # each sink got it exactly once
    assert not deliver(gov, alerts, [ok, down], now=T0 + timedelta(days=1)).attempted


def test_cli_alerts_exits_nonzero_naming_the_failed_sink_and_does_not_resend(
    home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "paged.jsonl"
    _config(
        home,
        f"[alerts]\ncommand = {json.dumps(_recorder(out))}\nwebhook_url = {json.dumps(_dead_url())}",
    )
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as g:
        g.emit("admin.break_glass", actor="break-glass:root", resource="users.add", reason="x")
    env = _reader(home)
    for _ in range(2):
        res = CliRunner().invoke(main, ["alerts"], env=env)
        assert res.exit_code == 1, res.output
        assert "alert delivery failed for webhook:http://127.0.0.1#" in res.output
        assert res.exc_info is None or res.exc_info[0] is SystemExit
    paged = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["rule"] for p in paged] == ["break_glass"]  # the working sink got it once
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as g:
        sent = g.audit_log.search(action="alerts.sent")
    assert sent and sent[0].decision == "deny" and "webhook:" in sent[0].reason


# -- a damaged or unverifiable log is an alert ---------------------------------------------------


def _filled(home: Path) -> None:
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as g:
        for i in range(6):
            g.emit("data.read", actor=f"u-{i}", resource="dataset:orders", decision="allow")
        g.audit_log.seal()  # seg-0 sealed and signed; a new open segment follows
        for i in range(3):
            g.emit("data.read", actor=f"v-{i}", resource="dataset:orders", decision="allow")
        g.audit_log.checkpoint()


def _flip_key(audit: Path) -> None:
    key = sorted(audit.glob("*.key"))[0]
    doc = json.loads(key.read_text())
    doc["wrapped"] = ("0" if doc["wrapped"][0] != "0" else "1") + doc["wrapped"][1:]
    key.write_text(json.dumps(doc))


def _flip_record(audit: Path) -> None:
    seg = sorted(audit.glob("*.log"))[0]
    buf = bytearray(seg.read_bytes())
    buf[len(buf) - 20] ^= 0x01  # inside the last record's ciphertext
    seg.write_bytes(bytes(buf))


def _flip_open_tail(audit: Path) -> None:
    seg = sorted(audit.glob("*.log"))[-1]
    buf = bytearray(seg.read_bytes().rstrip(b"\0"))
    buf[len(buf) - 20] ^= 0x01  # the newest record of the open segment
    seg.write_bytes(bytes(buf) + b"\0" * 4096)


def _truncate(audit: Path) -> None:
    seg = sorted(audit.glob("*.log"))[0]
    seg.write_bytes(seg.read_bytes()[:-40])


def _drop_segment(audit: Path) -> None:
    seg = sorted(audit.glob("*.log"))[0]
    seg.unlink()
    seg.with_suffix(".key").unlink()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_flip_key, "cannot be unwrapped"),
        (_flip_record, "fails authentication"),
        (_flip_open_tail, "fails authentication"),
        (_truncate, "truncated or tampered"),
        (_drop_segment, "missing"),
    ],
    ids=["key-byte", "record-byte", "open-tail-byte", "truncated", "missing-segment"],
)
def test_a_damaged_log_is_an_accurate_alert_not_a_traceback(
    home: Path, tmp_path: Path, damage: object, expected: str
) -> None:
    _filled(home)
    env = _reader(home)  # its events stay after the last checkpoint, in the open segment
    damage(home / "audit")  # type: ignore[operator]
    out = tmp_path / "paged.jsonl"
    _config(home, f"[alerts]\ncommand = {json.dumps(_recorder(out))}")
    res = CliRunner().invoke(main, ["alerts", "--json"], env=env)
    deadline = time.monotonic() + 15  # refused below: the gateway's own timer pages
    while not (out.exists() and out.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    paged = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["rule"] for p in paged] == ["audit_verification_failed"]
    assert expected in paged[0]["detail"] and "write cut short" not in paged[0]["detail"]
    refused = res.exit_code == 2
    if refused:
        # damage in the segment the gateway appends to: the command cannot be audited, so it
        # is refused in one line; the gateway's timer pages the sinks by itself
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert expected in res.output and "run verify" in res.output
    else:
        assert res.exit_code == 0, res.output
        alerts = json.loads(res.output)
        bad = [a for a in alerts if a["rule"] == "audit_verification_failed"]
        assert len(bad) == 1, alerts
        assert expected in bad[0]["detail"], bad[0]["detail"]
    # the same damage found again is the same alert: not paged twice
    res = CliRunner().invoke(main, ["alerts"], env=env)
    assert res.exit_code == (2 if refused else 0), res.output
    assert len(out.read_text().splitlines()) == 1


# -- rules: the policy in force, defaults -------------------------------------------------------


def at(minutes: float, action: str, **kw: object) -> AuditEvent:
    kw.setdefault("actor", "u-1")
    return AuditEvent.new(action=action, clock=lambda: T0 + timedelta(minutes=minutes), **kw)  # type: ignore[arg-type]


def test_a_pii_read_is_judged_by_the_policy_in_force_at_its_time() -> None:
    versions = {SHA1[:16]: ("fulfilment", "marketing"), SHA2[:16]: ("fulfilment",)}
    rule = PiiOutsidePurpose(
        {"dataset:order_buyers"},
        allowed_purposes=("fulfilment", "marketing", "tax"),  # today's policy
        purposes_for=versions.get,
    )
    read = {"resource": "dataset:order_buyers", "decision": "allow"}
    events = [
        at(0, "policy.loaded", resource="policy", reason=f"sha256 - -> {SHA1[:16]} (home)"),
        at(1, "data.read", purpose="marketing", **read),  # allowed then
        at(2, "policy.changed", resource="policy", reason=f"sha256 {SHA1[:16]} -> {SHA2[:16]}"),
        at(3, "data.read", purpose="marketing", **read),  # not allowed then
        at(4, "data.read", purpose="tax", **read),  # allowed today, not then
    ]
    assert policy_version(events[2]) == SHA2[:16]
    alerts = rule.evaluate(events)
    assert [a.event_ids for a in alerts] == [(events[3].event_id,), (events[4].event_id,)]
    assert f"policy {SHA2[:16]} in force then" in alerts[0].detail
    # no version known: today's policy judges, and the alert says so
    unknown = PiiOutsidePurpose({"dataset:order_buyers"}, allowed_purposes=("fulfilment",))
    alerts = unknown.evaluate([at(0, "data.read", purpose="marketing", **read)])
    assert "judged by the current one" in alerts[0].detail


def test_policy_versions_are_archived_and_looked_up_by_the_digest_in_the_audit_stream(
    home: Path,
) -> None:
    shipped = Policy.default()
    changed = shipped.text.replace(
        "[purposes.legal]",
        '[purposes.legal_hold_review]\ndescription = "x"\npii = true\n\n[purposes.legal]',
        1,
    )
    assert changed != shipped.text
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as g:
        pass
    (home / "policy.toml").write_text(changed)
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as g:
        events = g.audit_log.search(action="policy.*")
        assert [e.action for e in events] == ["policy.loaded", "policy.changed"]
        lookup = policy_purposes(home)
        old, new = (policy_version(e) for e in events)
        assert old and new and lookup(old) == shipped.pii_purposes
        assert "legal_hold_review" in (lookup(new) or ())
        assert len(list((home / POLICY_HISTORY).glob("*.toml"))) == 2
        rules, _ = alert_rules(g)
        alerts = collect_alerts(g, rules=rules)
    assert [a.rule for a in alerts] == ["policy_changed"]
    assert old[:16] in alerts[0].detail and new[:16] in alerts[0].detail


def test_policy_change_break_glass_and_verification_failures_alert_by_default(
    gov: Governance,
) -> None:
    names = {getattr(r, "name", "") for r in alert_rules(gov)[0]}
    assert {"policy_changed", "break_glass", "audit_verification_failed"} <= names
    ev = at(0, "policy.changed", reason=f"sha256 {SHA1[:16]} -> {SHA2[:16]} (home)")
    assert len(PolicyChanged().evaluate([ev])) == 1


# -- the gateway's continuous evaluation -----------------------------------------------------------


def test_the_pipeline_pushes_without_anyone_running_alerts_and_promptly_after_security_events(
    home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "paged.jsonl"
    _config(home, f"[alerts]\ncommand = {json.dumps(_recorder(out))}")
    now = [100.0]
    pipeline = AlertPipeline(evaluate_every=30, min_gap=1, monotonic=lambda: now[0])
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as g:
        pipeline.attach(g)
        assert pipeline.due()  # first tick
        assert not pipeline.run(g).attempted  # nothing to say yet
        now[0] += 2
        assert not pipeline.due()
        g.emit("data.read", actor="u-1", resource="dataset:orders", decision="allow")
        assert not pipeline.due()  # ordinary events wait for the interval
        g.emit("admin.break_glass", actor="break-glass:root", resource="users.add", reason="x")
        assert pipeline.due()  # a security-relevant event: at the next timer tick
        report = pipeline.run(g)
        assert [a.rule for a, _s in report.sent] == ["break_glass"]
        now[0] += 31
        assert pipeline.due() and not pipeline.run(g).attempted  # delivered once
    assert [json.loads(x)["rule"] for x in out.read_text().splitlines()] == ["break_glass"]


def test_since_keeps_the_policy_in_force_before_it(gov: Governance) -> None:
    gov.emit("data.read", actor="u-1", resource="dataset:orders", decision="allow")
    later = dt.datetime.now(dt.UTC) + timedelta(seconds=1)
    alerts = collect_alerts(gov, later)
    assert alerts == []


def test_a_dead_sink_is_tried_once_per_round_not_once_per_alert(gov: Governance) -> None:
    for reason in ("a", "b", "c"):
        gov.emit("admin.break_glass", actor="break-glass:root", resource="users.add", reason=reason)
    alerts = collect_alerts(gov)
    tries: list[str] = []

    @dataclass
    class Dead:
        name: str = "dead"

        def send(self, alert: Alert) -> None:
            tries.append(alert.alert_id)
            raise TimeoutError("timed out")

    ok = FakeSink("ok")
    report = deliver(gov, alerts, [Dead(), ok], now=T0)
    assert len(tries) == 1 and len(ok.got) == 3 and report.waiting == 3
    report = deliver(gov, alerts, [Dead(), ok], now=T0, retry_now=True)
    assert len(tries) == 2 and len(ok.got) == 3 and report.failed_sinks == ["dead"]


def test_rules_still_see_the_events_that_survive_the_damage(home: Path) -> None:
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as g:
        g.emit("admin.break_glass", actor="break-glass:root", resource="users.add", reason="x")
        for i in range(4):
            g.emit("data.read", actor=f"u-{i}", resource="dataset:orders", decision="allow")
        g.audit_log.seal()
        g.emit("policy.changed", resource="policy", reason=f"sha256 {SHA1[:16]} -> {SHA2[:16]}")
    _flip_record(home / "audit")  # the last record of the sealed segment
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as g:
        alerts = collect_alerts(g)
    assert sorted(a.rule for a in alerts) == [
        "audit_verification_failed", "break_glass", "policy_changed",
    ]  # fmt: skip


# -- torn tail or tampering -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "torn"),
    [("flip", False), ("zero_tag", True), ("zero_sector", True), ("cut", True)],
)
def test_only_a_write_cut_short_is_called_a_torn_tail(tmp_path: Path, how: str, torn: bool) -> None:
    from amzigo_lab.governance.audit.errors import AuditIntegrityError
    from tests.governance.test_audit import abandon, ev, frames, open_log, seg_path, verify

    log = open_log(tmp_path)
    log.append_many(ev(i) for i in range(3))
    log.checkpoint()
    log.append_many(ev(i, request_id="r" * 200) for i in range(3, 9))  # long frames, unsigned
    abandon(log)
    path = seg_path(tmp_path, 0)
    _, spans = frames(path)
    start, end = spans[-1]
    buf = bytearray(path.read_bytes())
    if how == "flip":
        buf[end - 30] ^= 0x01
    elif how == "zero_tag":
        buf[end - 16 : end] = bytes(16)
    elif how == "zero_sector":
        boundary = (start // 512 + 1) * 512
        assert boundary < end
        buf[boundary:end] = bytes(end - boundary)  # the frame's last sector never reached disk
    else:
        buf[start + 40 :] = bytes(len(buf) - start - 40)
    path.write_bytes(bytes(buf))
    report = verify(tmp_path)
    assert not report.ok and report.first_bad_seq == 8  # type: ignore[attr-defined]
    assert report.torn_tail is torn  # type: ignore[attr-defined]
    assert ("write cut short" in report.problem) is torn  # type: ignore[attr-defined]
    if torn:
        with open_log(tmp_path) as log2:  # repaired, and the repair audited
            assert log2.size == 9 and log2.search(action="audit.tail_repaired")
    else:
        with pytest.raises(AuditIntegrityError, match="fails authentication"):
            open_log(tmp_path)  # damage is not "repaired" away
