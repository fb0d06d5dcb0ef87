"""Issue 16 item 6, data policy 7: the policy change log on a real home through its real gateway.

A change without a summary is refused and changes nothing; a change is logged, signed, in force
and verifies; editing a summary or dropping an entry fails verification, and so does a hand
edit of policy.toml; `amzigo login` shows the new version once; the ROPA names the version in
force; an analyst cannot change the policy and the refusal is audited.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner, Result

from amzigo_lab.cli import main
from amzigo_lab.compliance.certificates import signing_key
from amzigo_lab.config import Settings, load_settings
from amzigo_lab.governance.context import Governance
from amzigo_lab.governance.policy import Policy
from amzigo_lab.governance.policy_log import HEAD_META, LOG_FILE, gov_log
from amzigo_lab.home import init_home
from tests.governance.gov_fixtures import PASSWORD, cheap_hasher

USERS = {"cora": "compliance", "ana": "analyst", "sec": "security_officer", "newbie": "analyst"}
NEW_RULE = "analysts may no longer state review_requests"


@dataclass
class Home:
    settings: Settings
    secrets: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.settings.home

    def gov(self) -> Governance:
        return Governance.open(self.settings, hasher=cheap_hasher())

    def cli(self, user: str | None, *args: str, stdin: str | None = None) -> Result:
        env = {"AMZIGO_SESSION": self.tokens.get(user or ""), "AMZIGO_HOME": str(self.path)}
        return CliRunner().invoke(main, list(args), env=env, input=stdin)

    def json(self, user: str, *args: str) -> Any:
        res = self.cli(user, *args, "--json")
        assert res.exit_code == 0, res.output
        return json.loads(res.output)


def make_home(root: Path) -> Home:
    settings = load_settings(root / "home", env={})
    init_home(settings).close()
    home = Home(settings)
    with home.gov() as gov:
        for name, role in USERS.items():
            uri = gov.identity.add_user(name, [role], password=PASSWORD).provisioning_uri
            home.secrets[name] = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][
                0
            ]
            if name != "newbie":  # newbie logs in through the CLI in the test
                code = pyotp.TOTP(home.secrets[name]).now()
                home.tokens[name] = gov.identity.authenticate(name, PASSWORD, code).token
    return home


def edited_policy(home: Home, tmp: Path) -> Path:
    """The shipped policy with analysts' review_requests purpose removed."""
    text = Policy.default().text
    old = '"inventory_tracking", "review_requests"]'
    assert old in text
    out = tmp / "policy.toml"
    out.write_text(text.replace(old, '"inventory_tracking"]'), encoding="utf-8")
    return out


def change(home: Home, user: str, file: Path, summary: str, *extra: str) -> Result:
    return home.cli(user, "policy", "change", "--summary", summary, "--effective",
                    time.strftime("%Y-%m-%d", time.gmtime()), *extra, str(file))  # fmt: skip


def audit(home: Home, action: str) -> list[Any]:
    with home.gov() as gov:
        return list(gov.audit_log.search(action=action))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return make_home(tmp_path_factory.mktemp("policy-log"))


def test_init_records_version_1_and_it_verifies(home: Home) -> None:
    versions = home.json("ana", "policy", "log")  # any logged-in user may read the log
    assert [(v["version"], v["summary"], v["initial"], v["by"]) for v in versions] == [
        (1, "initial policy", True, "system")
    ]
    report = home.json("ana", "policy", "verify")
    assert report["ok"], report["problems"]


def test_a_change_without_a_summary_is_refused_and_changes_nothing(
    home: Home, tmp_path: Path
) -> None:
    before = (home.path / LOG_FILE).read_bytes()
    file = edited_policy(home, tmp_path)
    res = change(home, "cora", file, "   ")
    assert res.exit_code != 0
    assert "needs a summary" in res.output and "nothing changed" in res.output
    assert (home.path / LOG_FILE).read_bytes() == before
    assert not (home.path / "policy.toml").exists()  # the shipped default is still in force
    with home.gov() as gov:
        assert gov.policy.sha256 == Policy.default().sha256
    denied = [e for e in audit(home, "policy.change") if e.decision == "deny"]
    assert denied and denied[-1].actor == "cora" and "summary" in denied[-1].reason
    # and a date in the future is refused the same way
    res = home.cli("cora", "policy", "change", "--summary", "x", "--effective", "2999-01-01",
                   str(file))  # fmt: skip
    assert res.exit_code != 0 and "in the future" in res.output
    assert (home.path / LOG_FILE).read_bytes() == before


def test_an_analyst_cannot_change_the_policy_and_the_refusal_is_audited(
    home: Home, tmp_path: Path
) -> None:
    before = (home.path / LOG_FILE).read_bytes()
    res = change(home, "ana", edited_policy(home, tmp_path), "sneaky")
    assert res.exit_code != 0
    assert "compliance or security_officer role" in res.output
    assert (home.path / LOG_FILE).read_bytes() == before
    denied = [e for e in audit(home, "policy.change") if e.actor == "ana"]
    assert denied and denied[-1].decision == "deny"


def test_a_change_is_logged_signed_in_force_and_verifies_and_users_see_it_once(
    home: Home, tmp_path: Path
) -> None:
    file = edited_policy(home, tmp_path)
    answer = json.loads(change(home, "sec", file, NEW_RULE, "--json").output)
    assert answer["version"] == 2 and answer["by"] == "sec" and answer["summary"] == NEW_RULE
    assert (home.path / "policy.toml").read_text() == file.read_text()  # in force
    versions = home.json("ana", "policy", "log")
    assert [v["version"] for v in versions] == [1, 2] and versions[1]["initial"] is False
    assert home.json("cora", "policy", "verify")["ok"]
    diff = home.json("ana", "policy", "diff", "1", "2")
    assert (
        '-purposes = ["sales_analysis", "review_management", "inventory_tracking", '
        '"review_requests"]' in diff["policy_diff"]
    )
    assert diff["retention_diff"] == "" and diff["changes"][0]["summary"] == NEW_RULE
    text = home.cli("ana", "policy", "diff", "1", "2").output
    assert NEW_RULE in text and "+purposes" in text
    same = change(home, "sec", file, "again")
    assert same.exit_code != 0 and "no material change" in same.output
    recorded = audit(home, "policy.version")
    assert recorded[-1].actor == "sec" and "version 2" in recorded[-1].reason
    assert audit(home, "policy.changed")  # the existing digest event fires too
    with home.gov() as gov:  # the gateway enforces it: analysts lost the purpose
        assert "review_requests" not in gov.policy.roles["analyst"].purposes

    # the signature is the home's certificate-signing key's
    with home.gov() as gov:
        report = gov_log(gov).verify(signing_key(gov.lake).public_key(), gov.policy)
        assert report["ok"], report

    # login: version 2 and its summary, then nothing unread
    code = pyotp.TOTP(home.secrets["newbie"])
    first = home.cli(None, "login", "newbie", "--password-stdin", "--code", code.now(),
                     stdin=PASSWORD + "\n")  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "Policy version 2 (effective " in first.output
    # newbie never logged in before: the change is counted from the initial policy
    assert "1 change since the initial policy:" in first.output and NEW_RULE in first.output
    second = home.cli(None, "login", "newbie", "--password-stdin", "--code",
                      code.at(time.time() + 30), stdin=PASSWORD + "\n")  # fmt: skip
    assert second.exit_code == 0, second.output
    assert "Policy version 2" in second.output and "no changes since your last login" in (
        second.output
    )
    assert NEW_RULE not in second.output
    assert second.output.strip().splitlines()[-1].startswith("export AMZIGO_SESSION=")
    with home.gov() as gov:
        assert gov.identity.policy_seen("newbie") == 2

    # the record of processing names the version in force
    out = tmp_path / "ropa"
    res = home.cli("cora", "ropa", "--out", str(out), "--home", str(home.path))
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "ropa.json").read_text())
    assert doc["policy_version"]["version"] == 2
    assert doc["installation"]["policy_version"]["summary"] == NEW_RULE
    assert "Data policy in force: version 2" in (out / "ropa.html").read_text()


def test_tampering_with_the_log_fails_verification(home: Home, tmp_path: Path) -> None:
    policy_file = tmp_path / "next.toml"
    policy_file.write_text(Policy.default().text + "\n# next\n", encoding="utf-8")
    path = home.path / LOG_FILE
    original = path.read_text()
    lines = original.splitlines(keepends=True)
    assert len(lines) >= 2, "runs after the change test"

    def problems() -> list[str]:
        res = home.cli("ana", "policy", "verify", "--json")
        report = json.loads(res.output)
        assert (res.exit_code != 0) == (not report["ok"])
        return list(report["problems"])

    try:
        entry = json.loads(lines[1])  # edit a summary
        entry["summary"] = "nothing important"
        path.write_text(lines[0] + json.dumps(entry, sort_keys=True) + "\n")
        found = problems()
        assert any("bad signature" in p for p in found), found

        path.write_text(lines[0])  # drop the newest entry
        found = problems()
        assert any("recorded head" in p for p in found), found
        # ... and nothing can be appended to hide it
        res = change(home, "cora", policy_file, "after the drop")
        assert res.exit_code != 0 and "does not end at its recorded head" in res.output
        assert path.read_text() == lines[0]

        path.unlink()  # delete the log: it is not re-created as a fresh version 1
        with home.gov() as gov:
            assert gov_log(gov).entries() == []
        assert not path.exists()
        found = problems()
        assert any("recorded head is 2" in p for p in found), found

        path.write_text(lines[1])  # drop the first entry
        found = problems()
        assert any("does not chain" in p for p in found), found
    finally:
        path.write_text(original)
    assert problems() == []

    # a hand edit of policy.toml is enforced but is not a logged version: verify says so
    policy = home.path / "policy.toml"
    text = policy.read_text()
    try:
        policy.write_text(text + "\n# a comment is a material change too\n")
        found = problems()
        assert any("changed outside `amzigo policy change`" in p for p in found), found
    finally:
        policy.write_text(text)
    assert problems() == []
    with home.gov() as gov:
        assert gov.grants.get_meta(HEAD_META) is not None


def test_an_existing_home_records_its_policy_as_initial_on_upgrade(tmp_path: Path) -> None:
    from amzigo_lab.datasets import REGISTRY
    from amzigo_lab.lake.store import Lake

    settings = load_settings(tmp_path / "old", env={})
    Lake.init(settings, REGISTRY).close()  # a home from before the change log: no log, no head
    assert not (settings.home / LOG_FILE).exists()
    with Governance.open(settings, hasher=cheap_hasher()) as gov:
        [entry] = gov_log(gov).entries()
        assert entry["origin"] == "upgrade" and entry["initial"] is True
        assert entry["summary"] == "initial policy"
        assert any(
            e.action == "policy.version" for e in gov.audit_log.search(action="policy.version")
        )


def test_the_login_notice_counts_from_the_last_login_or_the_initial_policy() -> None:
    from amzigo_lab.cli.policy import notice_lines

    change = {"version": 2, "effective": "2026-11-01", "summary": "tighter PII"}
    head = {"version": 2, "effective": "2026-11-01"}
    returning = notice_lines({**head, "unread": [change], "first": False})
    assert returning[0].endswith("1 change since your last login:")
    assert "v2 (effective 2026-11-01): tighter PII" in returning[1]
    first = notice_lines({**head, "unread": [change], "first": True})
    assert first[0].endswith("1 change since the initial policy:")  # no earlier login to cite
    assert notice_lines({**head, "unread": [], "first": True}) == [
        "Policy version 2 (effective 2026-11-01)."
    ]
    assert notice_lines({**head, "unread": [], "first": False})[0].endswith(
        "no changes since your last login."
    )
    assert notice_lines(None) == []
