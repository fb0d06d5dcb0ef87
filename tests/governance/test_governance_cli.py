"""The governance CLI through click's CliRunner on a real home, plus policy loading.

Administrative commands act as the $AMZIGO_SESSION user (checked by the home's gateway, which
each home starts on demand); the first admin is created by the owner with --break-glass.
"""

from __future__ import annotations

import getpass
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner

from amzigo_lab.cli import main
from amzigo_lab.config import load_settings
from amzigo_lab.errors import ConfigError
from amzigo_lab.governance.audit import AuditEvent
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


run_as = run


def add_user(home: Path, name: str, *extra: str, session: str | None = None) -> str:
    args = ("--break-glass", "bootstrap the first admin") if session is None else ()
    res = run(
        home, "users", "add", name, *extra, *args, "--password-stdin",
        stdin=PASSWORD + "\n", session=session,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    uri = next(line for line in res.output.splitlines() if line.startswith("otpauth://"))
    return urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]


#: What users choose at first login: `users add` sets a one-time password.
NEW_PASSWORD = "Quartz-Meadow-Lantern-58"


def login(home: Path, name: str, secret: str) -> str:
    code = pyotp.TOTP(secret).now()
    stdin = PASSWORD + "\n" + NEW_PASSWORD + "\n"  # the new one, read only if asked for
    res = run(home, "login", name, "--password-stdin", "--code", code, stdin=stdin)
    assert res.exit_code == 0, res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("export AMZIGO_SESSION=")
    return line.split("=", 1)[1]


@pytest.fixture
def admin(home: Path) -> str:
    """The session token of `admin1`, the first admin (created with --break-glass)."""
    return login(home, "admin1", add_user(home, "admin1", "--role", "admin"))


def events(home: Path, **query: str) -> list[AuditEvent]:
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as gov:
        return list(gov.audit_log.search(**query))


def test_users_login_audit_verify_and_search(home: Path, admin: str, tmp_path: Path) -> None:
    qr = tmp_path / "alice.png"
    secret = add_user(home, "alice", "--role", "analyst", "--qr", str(qr), session=admin)
    assert qr.read_bytes().startswith(b"\x89PNG") and (qr.stat().st_mode & 0o777) == 0o600
    cora = add_user(home, "cora", "--role", "compliance", session=admin)
    refused = run(home, "users", "grant", "alice", "--tenant", "acme", session=admin)
    assert refused.exit_code == 2 and "unknown tenant 'acme'" in refused.output
    assert "--new-tenant" in refused.output
    granted = run(
        home, "users", "grant", "alice", "--tenant", "acme", "--new-tenant", session=admin
    )
    assert granted.exit_code == 0, granted.output
    assert run(home, "users", "list").exit_code == 2  # nobody logged in
    listed = json.loads(run(home, "users", "list", "--json", session=admin).output)
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
    assert NEW_PASSWORD not in everything
    assert '"grant.added"' in everything and '"audit.search"' not in found.output


def test_seller_needs_tenant_and_weak_password_is_refused(home: Path, admin: str) -> None:
    def run(home: Path, *args: str, stdin: str) -> Any:
        return run_as(home, *args, stdin=stdin, session=admin)

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


def test_wrong_code_disable_and_unlock(home: Path, admin: str) -> None:
    secret = add_user(home, "dave", "--role", "analyst", session=admin)
    bad = run(home, "login", "dave", "--password-stdin", "--code", "000000", stdin=PASSWORD + "\n")
    assert bad.exit_code == 2 and "invalid username, password or code" in bad.output
    token = login(home, "dave", secret)
    assert run(home, "users", "disable", "dave", session=admin).exit_code == 0
    assert run(home, "audit", "search", session=token).exit_code == 2  # session revoked
    assert run(home, "users", "enable", "dave", session=admin).exit_code == 0
    assert run(home, "users", "unlock", "dave", session=admin).exit_code == 0
    changes = events(home, resource="user:dave")
    mine = [e for e in changes if e.action in ("user.disabled", "user.enabled", "auth.unlock")]
    assert mine and {e.actor for e in mine} == {"admin1"}, [e.action for e in changes]


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


def test_credentials_access_review_and_alerts(home: Path, admin: str, tmp_path: Path) -> None:
    add_user(home, "fred", "--role", "analyst", session=admin)
    res = run(
        home, "credentials", "set", "--tenant", "acme", "--stdin",
        stdin="client_id=amzn1.app.xyz\nclient_secret=s3cr3t-value\nrefresh_token=Atzr|tok\n",
        session=admin,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "s3cr3t-value" not in res.output
    again = run(
        home, "credentials", "set", "--tenant", "acme", "--stdin",
        stdin="refresh_token=Atzr|new\n", session=admin,
    )  # fmt: skip
    assert again.exit_code == 0
    listed = json.loads(run(home, "credentials", "list", "--json", session=admin).output)
    assert {c["name"] for c in listed} == {
        "spapi.lwa_client_id", "spapi.lwa_client_secret", "spapi.refresh_token.acme"
    }  # fmt: skip
    assert all(c["age_days"] == 0 and not c["rotate"] for c in listed)
    assert "s3cr3t" not in json.dumps(listed)
    out = tmp_path / "review"
    res = run(home, "access-review", "--out", str(out), "--json", session=admin)
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
    assert {e.actor for e in events if e.action in ("credentials.rotated", "access.review")} == {
        "admin1"
    }
    alerts = run(home, "alerts", "--json", session=admin)
    assert alerts.exit_code == 0, alerts.output
    assert [a["rule"] for a in json.loads(alerts.output)] == ["break_glass"]  # the bootstrap


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


# -- who may run administrative commands ------------------------------------------------------

CREDS = "refresh_token=Atzr|tok\n"
ADMIN_COMMANDS: list[tuple[tuple[str, ...], str | None]] = [
    (("users", "add", "zed", "--role", "analyst", "--password-stdin"), PASSWORD + "\n"),
    (("users", "grant", "ana", "--tenant", "bluebird-home", "--new-tenant"), None),
    (("users", "grant", "ana", "--tenant", "bluebird-home", "--revoke"), None),
    (("users", "disable", "ana"), None),
    (("users", "enable", "ana"), None),
    (("users", "unlock", "ana"), None),
    (("users", "passwd", "ana", "--password-stdin"), "Other-Harbor-Lamp-77\n"),
    (("credentials", "set", "--tenant", "acme", "--stdin"), CREDS),
]


def _state(home: Path) -> tuple[object, ...]:
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as gov:
        users = tuple((u.user_id, u.status) for u in gov.identity.list_users())
        secrets = tuple(n for n, _c, _r in gov.lake.secret_names() if n.startswith("spapi."))
        return users, gov.grants.tenants_of("ana"), secrets


def test_admin_commands_without_a_session_change_nothing(home: Path, admin: str) -> None:
    add_user(home, "ana", "--role", "analyst", session=admin)
    assert (
        run(
            home, "users", "grant", "ana", "--tenant", "acme", "--new-tenant", session=admin
        ).exit_code
        == 0
    )
    before = _state(home)
    for args, stdin in [*ADMIN_COMMANDS, (("access-review", "--out", str(home / "r")), None)]:
        res = run(home, *args, stdin=stdin)
        assert res.exit_code == 2, (args, res.output)
        assert "log in first: amzigo login NAME, then export AMZIGO_SESSION=" in res.output
    assert _state(home) == before and not (home / "r").exists()


def test_an_analyst_is_denied_and_the_denial_names_them(home: Path, admin: str) -> None:
    ana = login(home, "ana", add_user(home, "ana", "--role", "analyst", session=admin))
    before = _state(home)
    for args, stdin in [*ADMIN_COMMANDS, (("access-review", "--out", str(home / "r")), None)]:
        res = run(home, *args, stdin=stdin, session=ana)
        assert res.exit_code == 2, (args, res.output)
        assert "manage_users" in res.output or "access_review" in res.output, res.output
    assert _state(home) == before and not (home / "r").exists()
    denied = [e for e in events(home) if e.decision == "deny" and e.actor == "ana"]
    assert {e.action for e in denied} >= {
        "users.add", "users.grant", "users.disable", "users.enable", "users.unlock",
        "users.passwd", "credentials.set", "access.review",
    }  # fmt: skip
    assert not any(e.actor.startswith("local:") for e in events(home))


def test_an_admin_session_acts_as_that_admin(home: Path, admin: str) -> None:
    add_user(home, "ana", "--role", "analyst", session=admin)
    for args, stdin in ADMIN_COMMANDS:
        res = run(home, *args, stdin=stdin, session=admin)
        assert res.exit_code == 0, (args, res.output)
    changes = events(home, resource="user:ana") + events(home, action="credentials.*")
    kinds = {e.action for e in changes}
    assert {"user.created", "user.disabled", "user.enabled", "auth.unlock"} <= kinds
    assert {"grant.added", "grant.revoked", "auth.password_changed", "credentials.set"} <= kinds
    assert {e.actor for e in changes if e.action != "session.revoked"} == {"admin1"}


def test_break_glass_is_for_the_service_account_audited_and_alerted(
    home: Path, admin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = getpass.getuser()
    res = run(home, "users", "add", "zed", "--role", "admin", "--break-glass", "  ",
              "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert res.exit_code == 2 and "needs a reason" in res.output
    res = run(home, "users", "unlock", "admin1", "--break-glass", "INC-7", session=admin)
    assert res.exit_code == 2 and "unset AMZIGO_SESSION" in res.output
    res = run(home, "users", "unlock", "admin1", "--break-glass", "INC-7 admin locked out")
    assert res.exit_code == 0, res.output
    glass = events(home, action="admin.break_glass")
    assert [(e.actor, e.resource, e.reason) for e in glass[-1:]] == [
        (f"break-glass:{me}", "users.unlock", "INC-7 admin locked out")
    ]
    unlock = events(home, action="auth.unlock", resource="user:admin1")
    assert unlock[-1].actor == f"break-glass:{me}"
    alerts = json.loads(run(home, "alerts", "--json", "--no-send", session=admin).output)
    assert [a["rule"] for a in alerts] == ["break_glass", "break_glass"]
    assert "INC-7 admin locked out" in alerts[-1]["detail"]
    # a caller who cannot read the gateway's operator credential is not the service account
    from amzigo_lab.cli import auth
    from amzigo_lab.errors import AccessDenied

    def unreadable(home: Path) -> str:
        raise AccessDenied(f"only the service account of {home} may use the operator credential")

    monkeypatch.setattr(auth, "operator_token", unreadable)
    res = run(home, "users", "grant", "admin1", "--tenant", "acme", "--break-glass", "x")
    assert res.exit_code == 2 and "only the service account" in res.output
    assert len(events(home, action="admin.break_glass")) == 2


# -- one-time passwords: changed at first login (issue 18 item 4) -------------------------------


def test_first_cli_login_with_a_one_time_password_asks_for_a_new_one(
    home: Path, admin: str
) -> None:
    secret = add_user(home, "olga", "--role", "analyst", session=admin)
    totp = pyotp.TOTP(secret)
    # no new password given: refused, no session, told what to do
    res = run(
        home, "login", "olga", "--password-stdin", "--code", totp.now(), stdin=PASSWORD + "\n"
    )
    assert res.exit_code == 2 and "must choose a new password" in res.output, res.output
    assert "first login with a one-time password" in res.output
    assert "AMZIGO_SESSION=" not in res.output
    # with the next code (that one is spent) and the new password on the next line of stdin
    code = totp.at(time.time() + 30)  # the following step: within the accepted window
    stdin = PASSWORD + "\n" + NEW_PASSWORD + "\n"
    res = run(home, "login", "olga", "--password-stdin", "--code", code, stdin=stdin)
    assert res.exit_code == 0, res.output
    assert "password changed" in res.output
    token = res.output.strip().splitlines()[-1].split("=", 1)[1]
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as gov:
        assert gov.identity.validate_session(token).user_id == "olga"
        assert not gov.identity.get("olga").must_change_password
    changed = [e for e in events(home, resource="user:olga") if e.action == "auth.password_changed"]
    assert [e.reason.split()[0] for e in changed] == ["changed_at_login"]
    assert "one_time_password=True" in changed[0].reason


def test_a_policy_refused_new_password_gives_no_session(home: Path, admin: str) -> None:
    secret = add_user(home, "piet", "--role", "analyst", session=admin)
    stdin = PASSWORD + "\n" + "password123\n"
    code = pyotp.TOTP(secret).now()
    res = run(home, "login", "piet", "--password-stdin", "--code", code, stdin=stdin)
    assert res.exit_code == 2 and "password rejected" in res.output, res.output
    assert "AMZIGO_SESSION=" not in res.output


def test_lake_ls_and_verify_are_gateway_clients(home: Path, admin: str) -> None:
    ana = login(home, "ana", add_user(home, "ana", "--role", "analyst", session=admin))
    # an analyst lacks read_audit: refused by the gateway, audited under her name
    for args in (("lake", "ls"), ("lake", "verify")):
        res = run(home, *args, session=ana)
        assert res.exit_code == 2 and "read_audit" in res.output, res.output
        assert run(home, *args).exit_code == 2  # nobody logged in
    denied = {e.action for e in events(home, actor="ana") if e.decision == "deny"}
    assert {"lake.ls", "lake.verify"} <= denied
    res = run(home, "lake", "ls", "--json", session=admin)
    assert res.exit_code == 0 and json.loads(res.output) == [], res.output
    res = run(home, "lake", "verify", "--json", session=admin)
    assert res.exit_code == 0 and json.loads(res.output)["ok"] is True, res.output
    # an unknown or malformed tenant is an error naming it, not "the lake is empty"
    for tenant in ("../x", "nobody"):
        res = run(home, "lake", "ls", "--tenant", tenant, session=admin)
        assert res.exit_code == 2, res.output
        assert repr(tenant) in res.output and "amzigo lake ls" in res.output
        assert "empty" not in res.output and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1, res.output
    res = run(home, "lake", "ls", "--dataset", "nope", session=admin)
    assert res.exit_code == 2 and "nope" in res.output
    # the service account may list with break-glass (audited)
    res = run(home, "lake", "ls", "--break-glass", "INC-9 nobody can log in")
    assert res.exit_code == 0, res.output
    glass = events(home, action="admin.break_glass")
    assert glass[-1].resource == "lake.ls" and glass[-1].reason == "INC-9 nobody can log in"


def test_unknown_tenants_are_refused_for_grants_and_sellers(home: Path, admin: str) -> None:
    """A tenant the lake has never seen is a typo until --new-tenant says otherwise; a stored
    refresh token (or ingested data) makes it known."""
    add_user(home, "ana", "--role", "analyst", session=admin)
    res = run(home, "users", "grant", "ana", "--tenant", "acme-outdor", session=admin)
    assert res.exit_code == 2 and "unknown tenant 'acme-outdor'" in res.output
    res = run(
        home, "users", "add", "sal", "--role", "seller", "--tenant", "acme", "--password-stdin",
        stdin=PASSWORD + "\n", session=admin,
    )  # fmt: skip
    assert res.exit_code == 2 and "unknown tenant 'acme'" in res.output
    with Governance.open(load_settings(home, env={}), hasher=cheap_hasher()) as gov:
        assert gov.grants.tenants_of("ana") == frozenset()
        assert "sal" not in {u.user_id for u in gov.identity.list_users()}
    creds = run(
        home, "credentials", "set", "--tenant", "acme", "--stdin", stdin=CREDS, session=admin
    )
    assert creds.exit_code == 0, creds.output
    assert run(home, "users", "grant", "ana", "--tenant", "acme", session=admin).exit_code == 0
    revoke = run(
        home, "users", "grant", "ana", "--tenant", "acme-outdor", "--revoke", session=admin
    )
    assert revoke.exit_code == 0  # withdrawing a mistyped grant is always possible
