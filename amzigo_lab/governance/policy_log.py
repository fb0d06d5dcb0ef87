"""The policy change log (data policy 7): every version of the data policy, dated, summarised,
signed and hash-chained, with what each user has already been shown.

What is versioned: the *policy content*, the access policy TOML in force (`<home>/policy.toml`,
or the shipped default) together with the retention rules (dataset -> rule, from
`amzigo_lab.datasets`, changed only by an upgrade). A change is *material* when the content's
SHA-256 changes: any byte of the policy file (comments included, so the text users read is the
text that was logged) or any dataset's retention rule. Nothing else is a policy version.

The log is `<home>/policy-log.jsonl`, one JSON entry per version, appended only:
`version` (1, 2, ...), `effective` (YYYY-MM-DD), `recorded_at`, `by`, `summary`, `origin`
(`init`: recorded when the home was created; `upgrade`: the policy found in force when the
change log was introduced, summary "initial policy"; `change`: `amzigo policy change`),
`initial`, the content and its `sha256`, `prev` (the SHA-256 of the previous entry as written)
and an Ed25519 `signature` over the rest, made with the home's certificate-signing key (the
key that signs destruction certificates and evidence bundles). The head (version and entry
hash) is also kept in the grants database, so dropping the last entry is detected too; while
the log does not end at that head (entries dropped, the file deleted or replaced) nothing is
appended to it and a deleted log is not re-created: restore it from backup.

A change needs a non-empty summary and an effective date no later than today (the new content
is enforced the moment it is recorded, so a future date would be false) and no earlier than
the previous version's; otherwise it is refused and nothing changes. Editing `policy.toml` by
hand still takes effect (the gateway reloads it and audits `policy.changed`), but the content
in force then differs from the log's head: `amzigo policy verify` fails until someone records
it with `amzigo policy change --summary ... <home>/policy.toml`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import difflib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from amzigo_lab.errors import ConfigError
from amzigo_lab.governance.grants import GRANTS_DB, GrantStore
from amzigo_lab.governance.policy import POLICY_FILE, Policy, load_policy

if TYPE_CHECKING:
    from amzigo_lab.config import Settings
    from amzigo_lab.governance.identity import IdentityStore
    from amzigo_lab.lake.store import Lake

FORMAT = "amzigo-policy-change/1"
LOG_FILE = "policy-log.jsonl"
HEAD_META = "policy_log_head"
INITIAL_SUMMARY = "initial policy"
MAX_SUMMARY = 1000
#: Audit action of a recorded version (its reason names version, digest and entry hash).
RECORDED = "policy.version"


class Governed(Protocol):
    """What the change log uses of an open home's governance: `governance.context.Governance`
    is one (and records version 1 through `record_current` when it loads the policy)."""

    settings: Settings
    lake: Lake
    grants: GrantStore
    identity: IdentityStore
    policy: Policy

    def emit(self, action: str, **fields: Any) -> str: ...

    def load_policy(self) -> Policy: ...


class PolicyChangeRefused(ConfigError):
    """A policy change that cannot be recorded (no summary, bad date, no change, bad TOML)."""


def retention_rules() -> dict[str, str]:
    """dataset -> "rule_name: description" of every registered dataset (the versioned part of
    the retention rules)."""
    from amzigo_lab.datasets import REGISTRY

    return {
        name: f"{spec.retention.name}: {spec.retention.describe()}"
        for name, spec in sorted(REGISTRY.items())
    }


def content_of(policy: Policy) -> dict[str, Any]:
    """The versioned content of a policy in force: its TOML text and the retention rules."""
    return {"policy_toml": policy.text, "retention": retention_rules()}


def canonical(body: dict[str, Any]) -> bytes:
    """The bytes that are hashed and signed (sorted keys, no spaces)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def content_sha256(content: dict[str, Any]) -> str:
    """The content digest that defines a version (a material change changes it)."""
    return hashlib.sha256(canonical(content)).hexdigest()


def entry_hash(entry: dict[str, Any]) -> str:
    """The SHA-256 of an entry as written (signature included): the next entry's `prev`."""
    return hashlib.sha256(canonical(entry)).hexdigest()


def summary_of(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry without its content and signature (what `policy log` lists)."""
    keep = ("version", "effective", "recorded_at", "by", "summary", "origin", "initial", "sha256")
    return {k: entry.get(k) for k in keep}


@dataclass
class PolicyLog:
    """The change log of one home. `grants` keeps the head anchor; `key` signs entries."""

    home: Path
    grants: GrantStore
    key: Callable[[], Ed25519PrivateKey]
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    @property
    def path(self) -> Path:
        """`<home>/policy-log.jsonl`."""
        return self.home / LOG_FILE

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time across processes (the gateway, `amzigo init`)."""
        lock = self.home / (LOG_FILE + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def lines(self) -> list[str]:
        """The log's lines as written (none before the first version)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if line.strip()]

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, oldest first (ConfigError on a line that is not JSON: run verify)."""
        out = []
        for n, line in enumerate(self.lines(), 1):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise ConfigError(
                    f"{self.path} line {n} is not JSON: the change log was damaged; run "
                    "`amzigo policy verify` and restore it from backup"
                ) from None
        return out

    def head(self) -> dict[str, Any] | None:
        """The newest entry, or None before the first version."""
        entries = self.entries()
        return entries[-1] if entries else None

    def get(self, version: int) -> dict[str, Any]:
        """One version's entry; ConfigError naming the known versions."""
        entries = self.entries()
        if not 1 <= version <= len(entries):
            raise ConfigError(
                f"no policy version {version}: the log has versions 1..{len(entries)} "
                "(see `amzigo policy log`)"
            )
        return entries[version - 1]

    # -- writing --------------------------------------------------------------------------------
    def _append(
        self, content: dict[str, Any], *, summary: str, effective: dt.date, by: str, origin: str
    ) -> dict[str, Any]:
        entries = self.entries()
        prev = entry_hash(entries[-1]) if entries else ""
        body: dict[str, Any] = {
            "format": FORMAT,
            "version": len(entries) + 1,
            "effective": effective.isoformat(),
            "recorded_at": self.clock().astimezone(dt.UTC).isoformat(timespec="seconds"),
            "by": by,
            "summary": summary,
            "origin": origin,
            "initial": origin != "change",
            "sha256": content_sha256(content),
            "content": content,
            "prev": prev,
        }
        body["signature"] = base64.b64encode(self.key().sign(canonical(body))).decode()
        line = json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.grants.set_meta(HEAD_META, f"{body['version']}:{entry_hash(body)}")
        return body

    def _check_head(self, entries: list[dict[str, Any]]) -> None:
        """Refuse to write to a log that no longer ends at its recorded head (entries dropped
        or the file deleted): appending would hide that. Nothing is changed."""
        anchor = self.grants.get_meta(HEAD_META)
        expected = f"{len(entries)}:{entry_hash(entries[-1])}" if entries else None
        if anchor != expected:
            raise PolicyChangeRefused(
                f"the policy change log {self.path} does not end at its recorded head (version "
                f"{(anchor or '0').split(':')[0]}; the file has {len(entries)}): entries were "
                "dropped or the file replaced. Run `amzigo policy verify` and restore "
                "policy-log.jsonl from backup; nothing changed"
            )

    def ensure_initial(self, policy: Policy, *, origin: str) -> dict[str, Any] | None:
        """Record `policy` as version 1 ("initial policy") if the home never had a change log;
        the new entry, or None when there is one (or was: a deleted log is not re-created, so
        verify keeps reporting it)."""
        with self._locked():
            if self.lines() or self.grants.get_meta(HEAD_META) is not None:
                return None
            today = self.clock().astimezone(dt.UTC).date()
            return self._append(
                content_of(policy), summary=INITIAL_SUMMARY, effective=today, by="system",
                origin=origin,
            )  # fmt: skip

    def record_change(
        self, policy: Policy, *, summary: str, effective: dt.date | None, by: str
    ) -> dict[str, Any]:
        """Check and record a change to `policy`; PolicyChangeRefused (nothing written) if it
        has no summary or date, a date out of range, or no material change."""
        clean = " ".join(summary.split())
        if not clean:
            raise PolicyChangeRefused(
                'a policy change needs a summary of what changed and why (--summary "..."): '
                "data policy 7 requires every material change to be summarised; nothing changed"
            )
        if len(clean) > MAX_SUMMARY:
            raise PolicyChangeRefused(
                f"the summary is {len(clean)} characters; keep it under {MAX_SUMMARY} and put "
                "the detail in the policy file's comments; nothing changed"
            )
        if effective is None:
            raise PolicyChangeRefused(
                "a policy change needs an effective date (--effective YYYY-MM-DD); nothing changed"
            )
        content = content_of(policy)
        with self._locked():
            entries = self.entries()
            self._check_head(entries)
            today = self.clock().astimezone(dt.UTC).date()
            if effective > today:
                raise PolicyChangeRefused(
                    f"effective date {effective} is in the future: a change is enforced when it "
                    "is recorded, so record it on the day it takes effect; nothing changed"
                )
            if entries:
                head = entries[-1]
                if head["sha256"] == content_sha256(content):
                    raise PolicyChangeRefused(
                        f"no material change: the file is policy version {head['version']} "
                        "already (same content digest); nothing changed"
                    )
                if effective < dt.date.fromisoformat(head["effective"]):
                    raise PolicyChangeRefused(
                        f"effective date {effective} is before version {head['version']}'s "
                        f"({head['effective']}); nothing changed"
                    )
            return self._append(content, summary=clean, effective=effective, by=by, origin="change")

    # -- checking -------------------------------------------------------------------------------
    def verify(self, public: Ed25519PublicKey, in_force: Policy | None = None) -> dict[str, Any]:
        """Check the chain, every signature and content digest, the dates, the head anchor and
        (with `in_force`) that the policy in force is the head's content."""
        problems: list[str] = []
        prev = ""
        last_effective: dt.date | None = None
        lines = self.lines()
        entries: list[dict[str, Any]] = []
        for n, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
                if not isinstance(entry, dict):
                    raise ValueError
            except ValueError:
                problems.append(f"line {n}: not a JSON object")
                prev = hashlib.sha256(line.encode()).hexdigest()
                continue
            entries.append(entry)
            where = f"version {entry.get('version', '?')} (line {n})"
            if entry.get("version") != n:
                problems.append(f"{where}: expected version {n} (an entry was removed or moved)")
            if entry.get("prev") != prev:
                problems.append(f"{where}: does not chain to the entry before it")
            body = {k: v for k, v in entry.items() if k != "signature"}
            try:
                public.verify(base64.b64decode(str(entry.get("signature", "")), validate=True),
                              canonical(body))  # fmt: skip
            except (InvalidSignature, ValueError):
                problems.append(f"{where}: bad signature (the entry was altered after signing)")
            content = entry.get("content")
            if not isinstance(content, dict) or content_sha256(content) != entry.get("sha256"):
                problems.append(f"{where}: the content does not match its digest")
            if not str(entry.get("summary", "")).strip():
                problems.append(f"{where}: no summary")
            try:
                effective = dt.date.fromisoformat(str(entry.get("effective")))
            except ValueError:
                problems.append(f"{where}: effective date {entry.get('effective')!r} is not a date")
            else:
                if last_effective is not None and effective < last_effective:
                    problems.append(f"{where}: effective before the previous version")
                last_effective = effective
            prev = entry_hash(entry)
        anchor = self.grants.get_meta(HEAD_META)
        expected = f"{len(lines)}:{prev}" if lines else None
        if anchor != expected:
            problems.append(
                f"the log ends at version {len(lines)} but the recorded head is "
                f"{(anchor or 'none').split(':')[0]}: entries were dropped or added outside "
                "`amzigo policy change`"
            )
        head = entries[-1] if entries else None
        if in_force is not None:
            digest = content_sha256(content_of(in_force))
            if head is None:
                problems.append("the change log is empty: no policy version was recorded")
            elif head.get("sha256") != digest:
                problems.append(
                    f"the policy in force (content {digest[:16]}, {in_force.source}) is not "
                    f"version {head.get('version')}: it was changed outside `amzigo policy "
                    "change` (policy.toml edited, or retention rules changed by an upgrade); "
                    "record it with `amzigo policy change --summary ... --effective ... FILE`"
                )
        return {
            "ok": not problems,
            "versions": len(lines),
            "head": summary_of(head) if head else None,
            "problems": problems,
        }


def open_log(home: Path, lake: Lake, grants: GrantStore, clock: Any = None) -> PolicyLog:
    """The change log of a home, signing with its certificate-signing key."""
    from amzigo_lab.compliance.certificates import signing_key

    log = PolicyLog(home, grants, lambda: signing_key(lake))
    if clock is not None:
        log.clock = clock
    return log


def gov_log(gov: Governed) -> PolicyLog:
    """The change log of a governed home (its identity store's clock)."""
    return open_log(gov.settings.home, gov.lake, gov.grants, gov.identity._clock)


def record_at_init(lake: Lake) -> None:
    """`amzigo init`: record the home's policy as version 1 (no-op when one exists)."""
    home = lake.settings.home
    if (home / LOG_FILE).exists():  # re-running init (maybe as root) touches nothing here
        return
    origin = "upgrade" if (home / "identity.sqlite").exists() else "init"
    grants = GrantStore(home / GRANTS_DB)
    try:
        open_log(home, lake, grants).ensure_initial(load_policy(home), origin=origin)
    finally:
        grants.close()


def record_current(gov: Governed, policy: Policy) -> None:
    """(Governance.load_policy.) A home without a change log (created before it existed):
    record the policy in force as version 1, "initial policy", origin `upgrade`; audited."""
    from amzigo_lab.errors import AmzigoError

    log = gov_log(gov)
    if log.path.exists() or gov.grants.get_meta(HEAD_META) is not None:
        return
    try:
        entry = log.ensure_initial(policy, origin="upgrade")
    except AmzigoError as exc:  # e.g. the signing key is missing: never lock the home out
        gov.emit(RECORDED, resource="policy", decision="deny",
                 reason=f"version 1 not recorded: {exc}"[:480])  # fmt: skip
        return
    if entry is not None:
        _audit_recorded(gov, entry, "system")


def _audit_recorded(gov: Governed, entry: dict[str, Any], actor: str) -> None:
    gov.emit(
        RECORDED, actor=actor, resource="policy", decision="allow",
        reason=f"version {entry['version']} effective {entry['effective']} content "
        f"{entry['sha256'][:16]} entry {entry_hash(entry)[:16]}: {entry['summary']}"[:480],
    )  # fmt: skip


def change_policy(
    gov: Governed, text: str, *, summary: str, effective: dt.date | None, actor: str
) -> dict[str, Any]:
    """Validate `text` as the new policy, record it (signed) and put it in force by writing
    `<home>/policy.toml`. Refused (PolicyChangeRefused/ConfigError, nothing changed) when the
    TOML is invalid, the summary or date is missing or wrong, or nothing material changed."""
    home = gov.settings.home
    target = home / POLICY_FILE
    new = Policy.from_toml(text, str(target))  # ConfigError names the bad key
    log = gov_log(gov)
    record_current(gov, gov.policy)  # a log exists before the first change
    tmp = target.with_name(f"{POLICY_FILE}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    try:
        entry = log.record_change(new, summary=summary, effective=effective, by=actor)
        tmp.replace(target)  # logged first: a crash here leaves verify saying so
    finally:
        tmp.unlink(missing_ok=True)
    _audit_recorded(gov, entry, actor)
    gov.policy = gov.load_policy()  # audits policy.changed with the new digest
    return summary_of(entry)


def diff(log: PolicyLog, a: int, b: int) -> dict[str, Any]:
    """A readable unified diff of the policy content between versions `a` and `b`."""
    ea, eb = log.get(a), log.get(b)

    def lines(entry: dict[str, Any]) -> tuple[list[str], list[str]]:
        content = entry["content"]
        rules = [f"{k}: {v}\n" for k, v in sorted(content["retention"].items())]
        return content["policy_toml"].splitlines(keepends=True), rules

    (ta, ra), (tb, rb) = lines(ea), lines(eb)
    policy_diff = "".join(difflib.unified_diff(ta, tb, f"v{a}/policy.toml", f"v{b}/policy.toml"))
    retention_diff = "".join(difflib.unified_diff(ra, rb, f"v{a}/retention", f"v{b}/retention"))
    between = [summary_of(e) for e in log.entries()[min(a, b) : max(a, b)]]
    return {
        "a": summary_of(ea),
        "b": summary_of(eb),
        "changes": between if a < b else [],
        "policy_diff": policy_diff,
        "retention_diff": retention_diff,
    }


def notice(gov: Governed, user_id: str, *, mark: bool) -> dict[str, Any] | None:
    """The policy notice a user gets at login: the current version and the changes recorded
    since they last saw one (the initial version is not a change); with `mark`, they are now
    seen. None when the home has no change log yet."""
    entries = gov_log(gov).entries()
    if not entries:
        return None
    head = entries[-1]
    seen = gov.identity.policy_seen(user_id)
    unread = [summary_of(e) for e in entries[seen:] if not e.get("initial")]
    if mark and seen < head["version"]:
        gov.identity.mark_policy_seen(user_id, int(head["version"]))
    return {
        "version": head["version"],
        "effective": head["effective"],
        "unread": unread,
        "first": seen == 0,  # never logged in since the log began: no "last login" to speak of
    }


def in_force(gov: Governed) -> dict[str, Any] | None:
    """The version in force for the record of processing: version, effective date, summary,
    digest (None when the log is empty)."""
    head = gov_log(gov).head()
    return summary_of(head) if head else None
