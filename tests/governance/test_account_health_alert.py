"""An account-health breach written by ingestion reaches the configured alert sinks, once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.config import load_settings
from amzigo_lab.governance.alerting import alert_rules, collect_alerts, deliver
from amzigo_lab.governance.context import Governance
from tests.governance.gov_fixtures import cheap_hasher

DE = "A1PA6795UKMFR9"


def test_a_breach_event_is_delivered_through_the_command_sink(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["init", "--home", str(home)], env={"AMZIGO_SESSION": None})
    assert result.exit_code == 0, result.output
    out = tmp_path / "alerts.jsonl"
    code = (
        "import sys, pathlib; p = pathlib.Path(sys.argv[1]); "
        "p.open('a').write(sys.stdin.read() + '\\n')"
    )
    with (home / "config.toml").open("a", encoding="utf-8") as fh:
        fh.write(f"\n[alerts]\ncommand = {json.dumps([sys.executable, '-c', code, str(out)])}\n")
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as gov:
        reason = f"{DE} valid_tracking_rate 93.10% misses target > 95% (window to 2026-11-30)"
        gov.emit(
            "account_health.breach",
            actor="system:ingest",
            resource=f"account_health:{DE}",
            tenant="cobalt-tech",
            reason=reason,
        )
        rules, sinks = alert_rules(gov)
        assert "account_health_breach" in [r.name for r in rules]
        alerts = [a for a in collect_alerts(gov) if a.rule == "account_health_breach"]
        assert len(alerts) == 1
        first = deliver(gov, alerts, sinks)
        assert len(first.sent) == 1 and not first.failed_sinks
        again = deliver(gov, collect_alerts(gov), sinks)
        assert not [a for a, _ in again.sent if a.rule == "account_health_breach"]
    [line] = out.read_text().splitlines()
    delivered = json.loads(line)
    assert delivered["rule"] == "account_health_breach"
    assert delivered["detail"] == f"tenant cobalt-tech: {reason}"
