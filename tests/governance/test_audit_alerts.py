"""Tests of the audit alert rules and sinks."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from amzigo_lab.governance.audit import (
    Alert,
    AuditEvent,
    AuditVerificationFailed,
    CommandSink,
    LockedAccountAttempts,
    PiiOutsidePurpose,
    RepeatedDenials,
    UnusualVolume,
    VerifyReport,
    WebhookSink,
    dispatch,
    evaluate,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(minutes: float, action: str, actor: str = "u-1", **kw: object) -> AuditEvent:
    return AuditEvent.new(
        action=action, actor=actor, clock=lambda: T0 + timedelta(minutes=minutes), **kw
    )


def test_repeated_denials_window() -> None:
    rule = RepeatedDenials(count=3, window=timedelta(minutes=5))
    events = [
        at(0, "data.denied", decision="deny"),
        at(1, "auth.login_failed", decision="deny"),
        at(10, "data.denied", decision="deny"),  # first two fell out of the window
        at(11, "data.denied", decision="deny"),
        at(12, "data.denied", decision="deny"),
        at(12, "data.denied", actor="u-2", decision="deny"),
        at(12, "data.read", decision="allow"),
    ]
    alerts = rule.evaluate(events)
    assert len(alerts) == 1
    assert alerts[0].actor == "u-1" and len(alerts[0].event_ids) == 3
    assert alerts[0].time == events[4].time


def test_unusual_volume_against_median() -> None:
    rule = UnusualVolume(factor=5, min_history=3)
    reads = [
        at(i, "data.read", resource="dataset:orders", decision="allow", row_count=100)
        for i in range(3)
    ]
    big = at(10, "data.read", resource="dataset:orders", decision="allow", row_count=600)
    other = at(11, "data.read", resource="dataset:fees", decision="allow", row_count=10_000)
    alerts = rule.evaluate([*reads, big, other])
    assert [a.event_ids for a in alerts] == [(big.event_id,)]
    assert "600 rows from dataset:orders" in alerts[0].detail
    assert UnusualVolume(factor=5, min_history=4).evaluate([*reads, big]) == []


def test_pii_outside_purpose() -> None:
    rule = PiiOutsidePurpose({"dataset:order_buyers"})
    ok = at(0, "data.read", resource="dataset:order_buyers", purpose="fulfilment", decision="allow")
    bad = at(1, "data.read", resource="dataset:order_buyers", purpose="marketing", decision="allow")
    denied = at(2, "data.read", resource="dataset:order_buyers", decision="deny")
    plain = at(3, "data.read", resource="dataset:orders", decision="allow")
    alerts = rule.evaluate([ok, bad, denied, plain])
    assert [a.event_ids for a in alerts] == [(bad.event_id,)]
    by_predicate = PiiOutsidePurpose(lambda r: r.endswith("_buyers"), allowed_purposes={"tax"})
    assert len(by_predicate.evaluate([ok, bad])) == 2


def test_locked_account_attempts() -> None:
    rule = LockedAccountAttempts(min_attempts=2, window=timedelta(minutes=30))
    events = [
        at(0, "auth.lockout", decision="deny"),
        at(1, "auth.login_failed", decision="deny"),
        at(2, "auth.login_failed", decision="deny"),
        at(3, "auth.login_failed", decision="deny"),  # already alerted for this lockout
        at(5, "auth.login_failed", actor="u-2", decision="deny"),  # never locked
        at(40, "auth.lockout", actor="u-3", decision="deny"),
        at(41, "auth.unlocked", actor="u-3"),
        at(42, "auth.login", actor="u-3", decision="allow"),
        at(42, "auth.login", actor="u-3", decision="allow"),
    ]
    alerts = rule.evaluate(events)
    assert [(a.actor, len(a.event_ids)) for a in alerts] == [("u-1", 2)]


def test_audit_verification_failed() -> None:
    rule = AuditVerificationFailed()
    failed = at(
        0,
        "audit.verify_failed",
        actor="system:audit",
        decision="deny",
        reason="chain break at record 7",
    )
    assert [a.detail for a in rule.evaluate([failed, at(1, "audit.verified")])] == [
        "chain break at record 7"
    ]
    bad = VerifyReport(False, 7, 7, "record 7 fails authentication")
    alerts = rule.check(bad, clock=lambda: T0)
    assert len(alerts) == 1 and "at record 7" in alerts[0].detail
    assert rule.check(VerifyReport(True, 9, None, "ok")) == []


def test_evaluate_sorts_alerts_by_time() -> None:
    events = [
        at(5, "data.read", resource="dataset:order_buyers", decision="allow"),
        at(0, "auth.lockout", decision="deny"),
        at(1, "auth.login", decision="allow"),
    ]
    alerts = evaluate(
        events, [PiiOutsidePurpose({"dataset:order_buyers"}), LockedAccountAttempts()]
    )
    assert [a.rule for a in alerts] == ["locked_account_attempts", "pii_outside_purpose"]
    assert json.loads(alerts[0].to_json())["actor"] == "u-1"


def test_command_sink_gets_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    code = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_bytes(sys.stdin.buffer.read())"
    sink = CommandSink([sys.executable, "-c", code, str(out)], timeout=30)
    alert = Alert("r", "u-1", "2025-03-01T09:00:00.000000Z", "detail", ("e1",))
    sink.send(alert)
    assert json.loads(out.read_text()) == alert.to_dict()
    failing = CommandSink([sys.executable, "-c", "raise SystemExit(3)"], timeout=30)
    failures = dispatch([alert], [failing, sink])
    assert len(failures) == 1 and failures[0][0] == alert


def test_webhook_sink_posts_json() -> None:
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sink = WebhookSink(f"http://127.0.0.1:{server.server_port}/alerts")
        alert = Alert("r", "u-1", "2025-03-01T09:00:00.000000Z", "detail")
        sink.send(alert)
    finally:
        server.shutdown()
        server.server_close()
    assert [json.loads(b) for b in received] == [alert.to_dict()]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/x", "http://", "javascript:x"])
def test_webhook_sink_refuses_other_schemes(url: str) -> None:
    with pytest.raises(ValueError):
        WebhookSink(url)
