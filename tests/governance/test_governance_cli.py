"""The governance CLI through click's CliRunner on a real home, plus policy loading."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.config import load_settings
from amzigo_lab.errors import ConfigError
from amzigo_lab.governance.context import Governance
from amzigo_lab.governance.policy import Policy
from tests.governance.gov_fixtures import PASSWORD, cheap_hasher


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    result = CliRunner().invoke(main, ["init", "--home", str(h)], env={"AMZIGO_SESSION": None})
    assert result.exit_code == 0, result.output
    return h


def run(home: Path, *args: str, stdin: str | None = None, session: str | None = None):  # type: ignore[no-untyped-def]
    env = {"AMZIGO_SESSION": session, "AMZIGO_HOME": str(home)}
    return CliRunner().invoke(main, list(args), input=stdin, env=env)


def add_user(home: Path, name: str, *extra: str) -> str:
    res = run(home, "users", "add", name, *extra, "--password-stdin", stdin=PASSWORD + "\n")
    assert res.exit_code == 0, res.output
    uri = next(line for line in res.output.splitlines() if line.startswith("otpauth://"))
    return urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]


def login(home: Path, name: str, secret: str) -> str:
    code = pyotp.TOTP(secret).now()
    res = run(home, "login", name, "--password-stdin", "--code", code, stdin=PASSWORD + "\n")
    assert res.exit_code == 0, res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("export AMZIGO_SESSION=")
    return line.split("=", 1)[1]


def test_users_login_audit_verify_and_search(home: Path, tmp_path: Path) -> None:
    qr = tmp_path / "alice.png"
    secret = add_user(home, "alice", "--role", "analyst", "--qr", str(qr))
    assert qr.read_bytes().startswith(b"\x89PNG") and (qr.stat().st_mode & 0o777) == 0o600
    cora = add_user(home, "cora", "--role", "compliance")
    assert run(home, "users", "grant", "alice", "--tenant", "acme").exit_code == 0
    listed = json.loads(run(home, "users", "list", "--json").output)
    alice = next(u for u in listed if u["user"] == "alice")
    assert alice["grants"] == ["acme"] and alice["mfa_enrolled"] is True
    token = login(home, "alice", secret)
    # the password never reaches the audit log, the output or argv
    verify = run(home, "audit", "verify", "--json")
    assert verify.exit_code == 0, verify.output
    assert json.loads(verify.output)["ok"] is True
    # search needs a session with read_audit
    assert run(home, "audit", "search").exit_code == 2
    denied = run(home, "audit", "search", session=token)
    assert denied.exit_code == 2 and "read_audit" in denied.output
    cora_token = login(home, "cora", cora)
    found = run(home, "audit", "search", "--action", "auth.*", "--json", session=cora_token)
    assert found.exit_code == 0, found.output
    actions = {e["action"] for e in json.loads(found.output)}
    assert {"auth.login", "auth.mfa_enrolled"} <= actions
    everything = run(home, "audit", "search", "--json", session=cora_token).output
    assert PASSWORD not in everything and token not in everything
    assert '"grant.added"' in everything and '"audit.search"' not in found.output


def test_seller_needs_tenant_and_weak_password_is_refused(home: Path) -> None:
    res = run(
        home, "users", "add", "sam", "--role", "seller", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert res.exit_code == 2 and "--tenant" in res.output
    res = run(
        home,
        "users",
        "add",
        "sam",
        "--role",
        "seller",
        "--role",
        "analyst",
        "--tenant",
        "acme",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert res.exit_code == 2 and "cannot be combined" in res.output
    res = run(
        home, "users", "add", "bob", "--role", "analyst", "--password-stdin", stdin="password123\n"
    )
    assert res.exit_code == 2 and "password rejected" in res.output
    res = run(
        home, "users", "add", "bob", "--role", "wizard", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert res.exit_code == 2 and "unknown role" in res.output


def test_wrong_code_disable_and_unlock(home: Path) -> None:
    secret = add_user(home, "dave", "--role", "analyst")
    bad = run(home, "login", "dave", "--password-stdin", "--code", "000000", stdin=PASSWORD + "\n")
    assert bad.exit_code == 2 and "invalid username, password or code" in bad.output
    token = login(home, "dave", secret)
    assert run(home, "users", "disable", "dave").exit_code == 0
    assert run(home, "audit", "search", session=token).exit_code == 2  # session revoked
    assert run(home, "users", "enable", "dave").exit_code == 0
    assert run(home, "users", "unlock", "dave").exit_code == 0


def test_audit_verify_fails_on_tampering(home: Path) -> None:
    add_user(home, "erin", "--role", "analyst")
    settings = load_settings(home, env={})
    segs = sorted(settings.audit_path.glob("seg-*.log"))
    data = bytearray(segs[0].read_bytes())
    data[200] ^= 0x01
    segs[0].write_bytes(bytes(data))
    res = run(home, "audit", "verify", "--json")
    assert res.exit_code == 1
    assert (
        json.loads(
            res.output.split("\n", 1)[-1] if res.output.startswith("warning") else res.output
        )["ok"]
        is False
    )


def test_credentials_access_review_and_alerts(home: Path, tmp_path: Path) -> None:
    add_user(home, "fred", "--role", "analyst")
    res = run(
        home, "credentials", "set", "--tenant", "acme", "--stdin",
        stdin="client_id=amzn1.app.xyz\nclient_secret=s3cr3t-value\nrefresh_token=Atzr|tok\n",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "s3cr3t-value" not in res.output
    again = run(
        home, "credentials", "set", "--tenant", "acme", "--stdin", stdin="refresh_token=Atzr|new\n"
    )
    assert again.exit_code == 0
    listed = json.loads(run(home, "credentials", "list", "--json").output)
    assert {c["name"] for c in listed} == {
        "spapi.lwa_client_id", "spapi.lwa_client_secret", "spapi.refresh_token.acme"
    }  # fmt: skip
    assert all(c["age_days"] == 0 and not c["rotate"] for c in listed)
    assert "s3cr3t" not in json.dumps(listed)
    out = tmp_path / "review"
    res = run(home, "access-review", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    paths = json.loads(res.output)
    assert "fred" in Path(paths["csv"]).read_text() and "<table>" in Path(paths["html"]).read_text()
    settings = load_settings(home, env={})
    with Governance.open(settings, hasher=cheap_hasher()) as gov:
        events = gov.audit_log.search()
        with gov.lake as lake:
            assert lake.secret("spapi.refresh_token.acme", create=False) == b"Atzr|new"
    actions = [e.action for e in events]
    assert "credentials.rotated" in actions and "access.review" in actions
    alerts = run(home, "alerts", "--json")
    assert alerts.exit_code == 0 and json.loads(alerts.output) == []


def test_policy_override_is_validated_and_changes_are_audited(home: Path) -> None:
    settings = load_settings(home, env={})
    text = Policy.default().source
    assert text.endswith("policy.toml")
    shipped = (Path(__file__).parents[2] / "amzigo_lab/governance/policy.toml").read_text()
    with Governance.open(settings, hasher=cheap_hasher()) as gov:
        assert gov.policy.source.startswith("amzigo_lab/")
    (home / "policy.toml").write_text(
        shipped.replace('exclude = ["quarantine"]', "exclude = []", 1)
    )
    with Governance.open(settings, hasher=cheap_hasher()) as gov:
        changed = gov.audit_log.search(action="policy.changed")
        assert len(changed) == 1 and "(home)" in changed[0].reason
    with Governance.open(settings, hasher=cheap_hasher()) as gov:
        assert len(gov.audit_log.search(action="policy.changed")) == 1  # unchanged: no event
    (home / "policy.toml").write_text(
        shipped.replace('tenants = "granted"', 'tenants = "everyone"', 1)
    )
    with pytest.raises(ConfigError, match="tenants"):
        Governance.open(settings, hasher=cheap_hasher())
