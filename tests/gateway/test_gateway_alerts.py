"""The gateway pushes alerts by itself: on its timer and promptly after security events."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from amzigo_lab.client import protocol
from amzigo_lab.client.service import operator_token
from amzigo_lab.client.transport import GatewayClient, ensure_gateway
from amzigo_lab.governance.policy import Policy
from tests.governance.gov_fixtures import build_world


def _paged(out: Path, rule: str, timeout: float = 30.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        lines = out.read_text().splitlines() if out.exists() else []
        found = [json.loads(x) for x in lines if json.loads(x)["rule"] == rule]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_gateway_pushes_alerts_without_anyone_running_the_alerts_command(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    world = build_world(tmp_path_factory.mktemp("gw-alerts"))
    home = world.settings.home
    out = home.parent / "paged.jsonl"
    code = (
        "import sys, pathlib; p = pathlib.Path(sys.argv[1]); "
        "p.open('a').write(sys.stdin.read() + '\\n')"
    )
    with (home / "config.toml").open("a") as fh:
        fh.write(f"\n[alerts]\ncommand = {json.dumps([sys.executable, '-c', code, str(out)])}\n")
    address = ensure_gateway(home)
    with GatewayClient(address, operator_token(home)) as op:  # break-glass: delivered at once
        glass = {"break_glass": "INC-9", "os_user": "svc", "name": "nog", "tenant": "acme"}
        assert op.action(protocol.USERS_GRANT, glass)["actor"] == "break-glass:svc"
    assert [a["detail"] for a in _paged(out, "break_glass", 0)] == [
        "break-glass users.grant: INC-9"
    ]

    shipped = Policy.default().text
    (home / "policy.toml").write_text(shipped.replace("Manages users", "Manages the users", 1))
    with GatewayClient(address, world.tokens["ana"]) as ana:  # the next call reloads the policy
        ana.action(protocol.SESSION_CHECK, {})
    changed = _paged(out, "policy_changed")  # pushed by the gateway's own timer
    assert len(changed) == 1 and "access policy changed" in str(changed[0]["detail"])
    time.sleep(1.5)
    assert len(_paged(out, "break_glass", 0)) == 1  # never delivered twice
