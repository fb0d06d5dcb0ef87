"""Incident response, run by the gateway: records, isolation, evidence, notification drafts.

Data policy 3.3: on a security incident Amzigo notifies Amazon within 24 hours of detection,
isolates affected systems, preserves evidence with a chain of custody and documents every
action. This module is the gateway-side half of `amzigo incident ...` (the CLI is a client).

* Incidents and their timeline live in `<home>/incidents.sqlite`; every row carries an
  HMAC-SHA256 under the catalog-row MAC key (`Lake.row_mac_key`), set when it is written and
  checked when it is read: a row edited outside amzigo-lab is reported (`show`, `timeline`)
  and a tampered gateway-mode row fails closed (deny-all).
* Every action is one timeline row AND one audit event (`incident.<kind>`, resource
  `incident:<id>`); the row keeps the audit event id so the two can be matched.
* Isolation never deletes data. It disables accounts, revokes sessions and tokens at the
  gateway, pauses ingestion/schedules for the scope (`<home>/state/incident-pauses.json`, read
  by the scheduler and `amzigo ingest`), can put the gateway in read-only or deny-all mode, and
  places a legal hold on every affected tenant (released when the incident closes). `restore`
  reverses each reversible action deliberately (sessions and tokens stay revoked: people log in
  again).
* Evidence bundles are files the gateway builds and signs with the home's Ed25519
  certificate-signing key; `amzigo_lab.client.evidence` verifies them with no home.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from amzigo_lab.client import evidence
from amzigo_lab.config import config_sections
from amzigo_lab.errors import AccessDenied, AmzigoError
from amzigo_lab.governance.held_records import describe as describe_held
from amzigo_lab.governance.held_records import held_records
from amzigo_lab.incident_pauses import pauses_path

if TYPE_CHECKING:
    from amzigo_lab.governance.audit import Alert
    from amzigo_lab.governance.context import Governance

DB_NAME = "incidents.sqlite"
NOTIFY_HOURS = 24
SEVERITIES = ("low", "medium", "high", "critical")
MODES = ("normal", "read-only", "deny-all")
#: Roles that may run incident commands (one of them).
RESPONDER_ROLES = frozenset({"compliance", "security_officer"})
#: Roles never disabled by an `all` isolation (someone must be able to respond).
KEEP_ROLES = RESPONDER_ROLES | {"admin"}
HOLD_DAYS = 365
DEFAULT_AUTO_OPEN: tuple[str, ...] = ()
#: The alert rules `[incident] auto_open` may name (amzigo_lab.governance.alerting).
ALERT_RULES = (
    "repeated_denials", "unusual_volume", "pii_outside_purpose", "locked_account_attempts",
    "audit_verification_failed", "break_glass", "policy_changed", "scheduled_job_failed",
)  # fmt: skip

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    closed_at TEXT,
    closed_by TEXT,
    close_note TEXT,
    notified_at TEXT,
    notified_by TEXT,
    notified_note TEXT,
    mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    incident TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    detail TEXT NOT NULL,
    audit_event TEXT NOT NULL,
    undone_at TEXT,
    mac TEXT NOT NULL,
    PRIMARY KEY (incident, seq)
);
CREATE TABLE IF NOT EXISTS gateway_mode (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    mode TEXT NOT NULL,
    incident TEXT NOT NULL,
    set_at TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS auto_opened (
    alert_id TEXT PRIMARY KEY,
    incident TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bundles (
    manifest_sha256 TEXT PRIMARY KEY,
    incident TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
"""
_INCIDENT_COLS = (
    "id", "title", "severity", "status", "detected_at", "opened_at", "opened_by", "source",
    "closed_at", "closed_by", "close_note", "notified_at", "notified_by", "notified_note",
)  # fmt: skip
_ACTION_COLS = ("incident", "seq", "at", "actor", "kind", "summary", "detail", "audit_event",
                "undone_at")  # fmt: skip


class IncidentError(AmzigoError):
    """An incident command cannot do what was asked (the message says why and what next)."""


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _at(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def deadline_of(detected_at: str) -> str:
    """The Amazon notification deadline: detection + 24 hours."""
    return _iso(_at(detected_at) + dt.timedelta(hours=NOTIFY_HOURS))


@dataclass(frozen=True)
class Scope:
    """What an isolation covers: `user:NAME`, `tenant:ID`, `token:ID`, `credential:NAME`,
    `analysts` (all analyst access) or `all` (everything)."""

    kind: str
    target: str = ""

    @staticmethod
    def parse(text: str) -> Scope:
        """Parse a scope; IncidentError naming the forms otherwise."""
        text = text.strip()
        if text in ("analysts", "all"):
            return Scope(text)
        kind, _, target = text.partition(":")
        if kind in ("user", "tenant", "token", "credential") and target:
            return Scope(kind, target)
        raise IncidentError(
            f"unknown scope {text!r}: use user:NAME, tenant:ID, token:ID (a token id from the "
            "audit log, or s<session id>), credential:NAME, analysts or all"
        )

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind


class IncidentStore:
    """The gateway's incident table (`<home>/incidents.sqlite`, 0600), rows MAC'd."""

    def __init__(self, gov: Governance) -> None:
        self.gov = gov
        self.home = gov.settings.home
        path = self.home / DB_NAME
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- MACs ----------------------------------------------------------------------------------
    def _mac(self, table: str, values: dict[str, Any]) -> str:
        body = json.dumps([table, values], sort_keys=True, separators=(",", ":"))
        return hmac.new(self.gov.lake.row_mac_key(), body.encode(), hashlib.sha256).hexdigest()

    def _intact(self, table: str, row: sqlite3.Row, cols: tuple[str, ...]) -> bool:
        values = {c: row[c] for c in cols}
        return hmac.compare_digest(self._mac(table, values), str(row["mac"]))

    def _write_incident(self, values: dict[str, Any]) -> None:
        cols = ", ".join((*_INCIDENT_COLS, "mac"))
        marks = ", ".join("?" for _ in range(len(_INCIDENT_COLS) + 1))
        row = [values.get(c) for c in _INCIDENT_COLS]
        full = dict(zip(_INCIDENT_COLS, row, strict=True))
        self.db.execute(
            f"INSERT OR REPLACE INTO incidents({cols}) VALUES ({marks})",  # noqa: S608 - fixed
            (*row, self._mac("incidents", full)),
        )

    # -- records -------------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        """The gateway's clock."""
        return self.gov.lake.clock()

    def get(self, incident_id: str) -> dict[str, Any]:
        """One incident as a dict (with deadline and MAC check), or IncidentError."""
        row = self.db.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        if row is None:
            raise IncidentError(f"no incident {incident_id!r}: see `amzigo incident list`")
        return self._describe(row)

    def _describe(self, row: sqlite3.Row) -> dict[str, Any]:
        d = {c: row[c] for c in _INCIDENT_COLS}
        d["deadline"] = deadline_of(d["detected_at"])
        d["intact"] = self._intact("incidents", row, _INCIDENT_COLS)
        if d["notified_at"]:
            d["notification"] = "met" if d["notified_at"] <= d["deadline"] else "missed"
        else:
            left = _at(d["deadline"]) - self.now()
            d["notification"] = "due" if left.total_seconds() > 0 else "overdue"
            d["hours_left"] = round(left.total_seconds() / 3600, 1)
        return d

    def incidents(self, include_closed: bool = True) -> list[dict[str, Any]]:
        """Every incident (newest first)."""
        rows = self.db.execute("SELECT * FROM incidents ORDER BY opened_at DESC, id").fetchall()
        out = [self._describe(r) for r in rows]
        return out if include_closed else [d for d in out if d["status"] != "closed"]

    def record(
        self,
        incident_id: str,
        actor: str,
        kind: str,
        summary: str,
        detail: dict[str, Any] | None = None,
        *,
        tenant: str = "",
    ) -> dict[str, Any]:
        """Append one timeline row and its audit event (`incident.<kind>`). An audit log that
        cannot be written (the incident may be about it) does not stop the response: the row
        says `unaudited:<error>` and `show` flags it."""
        try:
            event_id = self.gov.emit(
                f"incident.{kind}",
                actor=actor,
                resource=f"incident:{incident_id}",
                tenant=tenant,
                purpose="security",
                reason=summary[:240],
            )
        except Exception as exc:  # recorded in the row; the evidence bundle shows the log's state
            event_id = f"unaudited:{type(exc).__name__}"
        seq = int(
            self.db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM actions WHERE incident = ?", (incident_id,)
            ).fetchone()[0]
        )
        values = {
            "incident": incident_id, "seq": seq, "at": _iso(self.now()), "actor": actor,
            "kind": kind, "summary": summary, "detail": json.dumps(detail or {}, sort_keys=True),
            "audit_event": event_id, "undone_at": None,
        }  # fmt: skip
        self._write_action(values)
        return values

    def _write_action(self, values: dict[str, Any]) -> None:
        cols = ", ".join((*_ACTION_COLS, "mac"))
        row = [values.get(c) for c in _ACTION_COLS]
        full = dict(zip(_ACTION_COLS, row, strict=True))
        self.db.execute(
            f"INSERT OR REPLACE INTO actions({cols}) VALUES (?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
            (*row, self._mac("actions", full)),
        )

    def timeline(self, incident_id: str) -> list[dict[str, Any]]:
        """The incident's actions in order, each with `intact` (its MAC verified)."""
        self.get(incident_id)
        rows = self.db.execute(
            "SELECT * FROM actions WHERE incident = ? ORDER BY seq", (incident_id,)
        ).fetchall()
        out = []
        for r in rows:
            d = {c: r[c] for c in _ACTION_COLS}
            d["detail"] = json.loads(d["detail"])
            d["intact"] = self._intact("actions", r, _ACTION_COLS)
            out.append(d)
        return out

    def _require_open(self, incident_id: str) -> dict[str, Any]:
        inc = self.get(incident_id)
        if inc["status"] == "closed":
            raise IncidentError(f"incident {incident_id} is closed")
        if not inc["intact"]:
            raise IncidentError(
                f"incident {incident_id}'s record fails its MAC (edited outside amzigo-lab): "
                "collect evidence and investigate before changing it"
            )
        return inc

    def _update(self, incident_id: str, **changes: Any) -> dict[str, Any]:
        inc = self.get(incident_id)
        values = {c: inc[c] for c in _INCIDENT_COLS}
        values.update(changes)
        self._write_incident(values)
        return self.get(incident_id)

    # -- open / close / notified ---------------------------------------------------------------
    def open(
        self,
        *,
        title: str,
        severity: str,
        actor: str,
        detected_at: dt.datetime | None = None,
        source: str = "manual",
    ) -> dict[str, Any]:
        """Open an incident; the 24-hour clock starts at detection (given, or now)."""
        title = " ".join(title.split())
        if not title:
            raise IncidentError("an incident needs a --title")
        if severity not in SEVERITIES:
            raise IncidentError(f"unknown severity {severity!r}; use {', '.join(SEVERITIES)}")
        now = self.now()
        detected = detected_at or now
        if detected > now + dt.timedelta(minutes=5):
            raise IncidentError("--detected-at is in the future")
        incident_id = f"INC-{now:%Y%m%d}-{secrets.token_hex(3)}"
        values = {
            "id": incident_id, "title": title[:200], "severity": severity, "status": "open",
            "detected_at": _iso(detected), "opened_at": _iso(now), "opened_by": actor,
            "source": source[:200],
        }  # fmt: skip
        self._write_incident(values)
        self.record(
            incident_id, actor, "opened",
            f"opened ({severity}) from {source}; detected {values['detected_at']}; Amazon "
            f"notification due by {deadline_of(values['detected_at'])}",
            {"title": values["title"], "severity": severity, "source": source},
        )  # fmt: skip
        return self.get(incident_id)

    def close_incident(self, incident_id: str, actor: str, note: str) -> dict[str, Any]:
        """Close: release the incident's legal holds (audited); refuse while isolation or a
        gateway mode is still active (restore first, deliberately)."""
        from amzigo_lab.compliance.holds import lift_hold

        self._require_open(incident_id)
        if not note.strip():
            raise IncidentError("closing needs a --note (root cause and remediation)")
        live = [a for a in self._reversible(incident_id) if a["kind"] != "hold"]
        if live:
            names = ", ".join(f"#{a['seq']} {a['summary']}" for a in live[:5])
            raise IncidentError(
                f"incident {incident_id} still has isolation in force ({names}): "
                f"`amzigo incident restore {incident_id}` first"
            )
        for a in self._reversible(incident_id):
            hold = a["detail"]["hold_id"]
            lift_hold(self.gov.lake, hold, actor=actor)
            self._undo(a)
            self.record(
                incident_id, actor, "hold_released",
                f"legal hold {hold} on tenant {a['detail']['tenant']} released at close",
                {"hold_id": hold}, tenant=a["detail"]["tenant"],
            )  # fmt: skip
        self._update(
            incident_id, status="closed", closed_at=_iso(self.now()), closed_by=actor,
            close_note=note.strip()[:2000],
        )  # fmt: skip
        self.record(incident_id, actor, "closed", f"closed: {' '.join(note.split())[:200]}")
        return self.get(incident_id)

    def mark_notified(
        self, incident_id: str, actor: str, at: dt.datetime | None, note: str
    ) -> dict[str, Any]:
        """Record when a person sent the notification to Amazon (met or missed)."""
        inc = self.get(incident_id)
        when = _iso(at or self.now())
        met = "met" if when <= inc["deadline"] else "missed"
        self._update(incident_id, notified_at=when, notified_by=actor, notified_note=note[:500])
        self.record(
            incident_id, actor, "notified",
            f"notification to Amazon sent by a person at {when}: deadline {inc['deadline']} "
            f"{met}", {"at": when, "deadline": inc["deadline"], "result": met},
        )  # fmt: skip
        return self.get(incident_id)

    # -- isolation -----------------------------------------------------------------------------
    def _reversible(self, incident_id: str) -> list[dict[str, Any]]:
        return [
            a for a in self.timeline(incident_id)
            if a["detail"].get("reverse") and a["undone_at"] is None
        ]  # fmt: skip

    def _undo(self, action: dict[str, Any]) -> None:
        values = {c: action[c] for c in _ACTION_COLS}
        values["detail"] = json.dumps(action["detail"], sort_keys=True)
        values["undone_at"] = _iso(self.now())
        self._write_action(values)

    def mode(self) -> str:
        """The gateway's mode; a row failing its MAC fails closed (deny-all)."""
        row = self.db.execute("SELECT * FROM gateway_mode WHERE id = 1").fetchone()
        if row is None:
            return "normal"
        if not self._intact("gateway_mode", row, ("id", "mode", "incident", "set_at")):
            return "deny-all"
        return str(row["mode"])

    def _set_mode(self, mode: str, incident_id: str) -> None:
        values = {"id": 1, "mode": mode, "incident": incident_id, "set_at": _iso(self.now())}
        self.db.execute(
            "INSERT OR REPLACE INTO gateway_mode(id, mode, incident, set_at, mac) "
            "VALUES (?, ?, ?, ?, ?)",
            (1, mode, incident_id, values["set_at"], self._mac("gateway_mode", values)),
        )

    def pauses(self) -> list[dict[str, Any]]:
        """Active ingestion/schedule pauses of every open incident."""
        out = []
        for inc in self.incidents(include_closed=False):
            for a in self._reversible(inc["id"]):
                if a["kind"] == "paused":
                    out.append({"incident": inc["id"], **a["detail"]["pause"]})
        return out

    def write_pauses(self) -> None:
        """Publish the pauses for the scheduler and `amzigo ingest` (0600 JSON, atomic)."""
        path = pauses_path(self.home)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"pauses": self.pauses()}, out, sort_keys=True)
        os.replace(tmp, path)


def responder(gov: Governance, session: Any, action: str) -> str:
    """The session's user if they hold a responder role (compliance or security_officer);
    else audit the denial and raise AccessDenied."""
    who = gov.principal_of(session)
    roles = {r.name for r in gov.policy.effective_roles(who)}
    if not roles & RESPONDER_ROLES:
        gov._refuse(
            session, who, action,
            f"{action} needs the compliance or security_officer role",
            "ask an administrator for one (amzigo users add NAME --role security_officer)",
        )  # fmt: skip
    return str(session.user_id)


# -- isolation: what the gateway does for a scope ------------------------------------------------


class Isolator:
    """Carries out an isolation against the gateway's live state (token tables, identity)."""

    def __init__(self, store: IncidentStore, calls: Any) -> None:
        self.store = store
        self.calls = calls  # the gateway's token tables (amzigo_lab.gateway.calls.Calls)
        self.gov = store.gov

    def _users(self) -> list[Any]:
        return list(self.gov.identity.list_users())

    def _tenants_of_user(self, name: str) -> set[str]:
        user = self.gov.identity.get(name)
        tenants = set(self.gov.grants.tenants_of(name))
        if user.tenant:
            tenants.add(user.tenant)
        roles = {r.name for r in self.gov.policy.effective_roles(self.gov.principal(name))}
        if any(
            self.gov.policy.roles[r].tenants == "all" for r in roles if r in self.gov.policy.roles
        ):
            tenants |= self._all_tenants()
        return tenants

    def _all_tenants(self) -> set[str]:
        return {p.tenant for p in self.gov.lake.catalog.partitions()}

    def _disable(self, inc: str, actor: str, name: str) -> None:
        user = self.gov.identity.get(name)
        if str(getattr(user.status, "value", user.status)) == "disabled":
            return
        self.gov.identity.disable(name, actor=actor, reason=f"incident {inc}")
        self.store.record(
            inc, actor, "disabled",
            f"account {name} disabled and its sessions revoked",
            {"user": name, "reverse": "enable"},
        )  # fmt: skip

    def _revoke_kernels(self, inc: str, actor: str, users: set[str] | None) -> int:
        """Revoke kernel tokens whose login session belongs to `users` (None: all)."""
        revoked = 0
        for digest, login in list(self.calls.kernel_tokens.items()):
            owner = self.calls.login_owner(login)
            if users is None or owner in users:
                del self.calls.kernel_tokens[digest]
                revoked += 1
        if revoked:
            self.store.record(
                inc, actor, "tokens_revoked",
                f"{revoked} kernel token(s) revoked (their kernels stop at the next call)",
                {"kind": "kernel", "count": revoked, "users": sorted(users or [])},
            )  # fmt: skip
        return revoked

    def _revoke_services(self, inc: str, actor: str, tenants: set[str] | None) -> int:
        grants = self.calls.tokens.revoke_where(lambda g: tenants is None or g.tenant in tenants)
        if grants:
            self.store.record(
                inc, actor, "tokens_revoked",
                f"{len(grants)} service token(s) revoked: "
                + ", ".join(f"{g.actor}/{g.tenant}/{g.token_id}" for g in grants),
                {"kind": "service", "tokens": [g.token_id for g in grants]},
            )  # fmt: skip
        return len(grants)

    def _pause(self, inc: str, actor: str, tenants: list[str], why: str) -> None:
        self.store.record(
            inc, actor, "paused",
            f"ingestion and scheduled jobs paused for {', '.join(tenants)} ({why})",
            {"pause": {"tenants": tenants, "why": why}, "reverse": "unpause"},
        )  # fmt: skip
        self.store.write_pauses()

    def _hold(self, inc: str, actor: str, tenants: set[str], scope: Scope) -> list[str]:
        from amzigo_lab.compliance.holds import list_holds, place_hold

        already = {
            a["detail"]["tenant"] for a in self.store._reversible(inc) if a["kind"] == "hold"
        }
        until = self.store.now().date() + dt.timedelta(days=HOLD_DAYS)
        placed = []
        for tenant in sorted(tenants - already):
            hold = place_hold(
                self.gov.lake, tenant=tenant, until=until, actor=actor,
                reason=f"incident {inc}: evidence preserved ({scope})",
            )  # fmt: skip
            assert any(h.id == hold.id for h in list_holds(self.gov.lake))
            self.store.record(
                inc, actor, "hold",
                f"legal hold {hold.id} on tenant {tenant} (all datasets) until {until}",
                {"hold_id": hold.id, "tenant": tenant, "reverse": "release_on_close"},
                tenant=tenant,
            )  # fmt: skip
            placed.append(hold.id)
        return placed

    def isolate(self, inc: str, actor: str, scope: Scope | None, mode: str | None) -> None:
        """Isolate `scope` (and/or set the gateway mode) for incident `inc`."""
        self.store._require_open(inc)
        if scope is None and mode is None:
            raise IncidentError("isolate needs --scope and/or --mode")
        tenants: set[str] = set()
        if scope is not None:
            tenants = self._scope(inc, actor, scope)
            self._hold(inc, actor, tenants, scope)
        if mode is not None:
            if mode not in MODES[1:]:
                raise IncidentError(f"unknown mode {mode!r}; use read-only or deny-all")
            before = self.store.mode()
            self.store._set_mode(mode, inc)
            self.store.record(
                inc, actor, "mode",
                f"gateway mode {before} -> {mode}",
                {"mode": mode, "before": before, "reverse": "mode"},
            )  # fmt: skip
        self.store.record(
            inc, actor, "isolated",
            f"isolation of {scope or 'the gateway'} done"
            + (f"; mode {mode}" if mode else "")
            + (f"; tenants held: {', '.join(sorted(tenants))}" if tenants else ""),
            {"scope": str(scope) if scope else None, "tenants": sorted(tenants)},
        )  # fmt: skip

    def _scope(self, inc: str, actor: str, scope: Scope) -> set[str]:
        gov = self.gov
        if scope.kind == "user":
            gov.identity.get(scope.target)  # UnknownUser names it
            if scope.target == actor:
                raise IncidentError(
                    "you cannot isolate yourself: ask another responder (your sessions stay)"
                )
            tenants = self._tenants_of_user(scope.target)
            self._disable(inc, actor, scope.target)
            self._revoke_kernels(inc, actor, {scope.target})
            return tenants
        if scope.kind == "tenant":
            tenant = scope.target
            if tenant not in self._all_tenants():
                raise IncidentError(f"no tenant {tenant!r} in the lake; see `amzigo lake ls`")
            for user in self._users():
                if user.tenant == tenant and user.user_id != actor:
                    self._disable(inc, actor, user.user_id)
            self._revoke_services(inc, actor, {tenant})
            self._pause(inc, actor, [tenant], f"tenant:{tenant}")
            return {tenant}
        if scope.kind == "token":
            return self._token(inc, actor, scope.target)
        if scope.kind == "credential":
            names = [n for n, _c, _r in gov.lake.secret_names() if n.startswith("spapi.")]
            if scope.target not in names:
                raise IncidentError(
                    f"no SP-API credential {scope.target!r}; see `amzigo credentials list`"
                )
            # a tenant's refresh token reaches that tenant; the LWA app credentials reach all
            prefix = "spapi.refresh_token."
            tenant = scope.target.removeprefix(prefix) if scope.target.startswith(prefix) else "*"
            held = {tenant} if tenant != "*" else self._all_tenants()
            self._revoke_services(inc, actor, None if tenant == "*" else {tenant})
            self._pause(inc, actor, [tenant], f"credential:{scope.target} (rotate it)")
            return held
        if scope.kind == "analysts":
            analysts: set[str] = {
                u.user_id for u in self._users()
                if "analyst" in u.roles and not set(u.roles) & KEEP_ROLES
            }  # fmt: skip
            for name in sorted(analysts):
                self._disable(inc, actor, name)
            self._revoke_kernels(inc, actor, analysts)
            reached: set[str] = set()
            for name in analysts:
                reached |= self._tenants_of_user(name)
            return reached
        # everything: every account but responders and admins, every token, all ingestion
        for user in self._users():
            if not set(user.roles) & KEEP_ROLES:
                self._disable(inc, actor, user.user_id)
        self._revoke_kernels(inc, actor, None)
        self._revoke_services(inc, actor, None)
        self._pause(inc, actor, ["*"], "all")
        return self._all_tenants()

    def _token(self, inc: str, actor: str, token_id: str) -> set[str]:
        if token_id.startswith("s") and token_id[1:].isdigit():
            user = self.calls.revoke_session_id(int(token_id[1:]), actor, f"incident {inc}")
            if user is None:
                raise IncidentError(f"no live session {token_id}")
            self.store.record(
                inc, actor, "tokens_revoked",
                f"login session {token_id} of {user} revoked (and its kernel tokens)",
                {"kind": "session", "session": token_id, "user": user},
            )  # fmt: skip
            return self._tenants_of_user(user)
        kernels = [d for d in self.calls.kernel_tokens if d.startswith(token_id)]
        if len(token_id) >= 8 and kernels:
            users = {self.calls.login_owner(self.calls.kernel_tokens[d]) for d in kernels}
            for d in kernels:
                del self.calls.kernel_tokens[d]
            self.store.record(
                inc, actor, "tokens_revoked",
                f"kernel token {token_id} revoked", {"kind": "kernel", "token": token_id},
            )  # fmt: skip
            return set().union(*(self._tenants_of_user(u) for u in users if u))
        grants = (
            self.calls.tokens.revoke_where(lambda g: g.token_id.startswith(token_id))
            if len(token_id) >= 8
            else []
        )
        if not grants:
            raise IncidentError(
                f"no live token {token_id!r} (ids are the 12 hex digits after token: in the "
                "audit log, or s<session id>); it may already have expired"
            )
        self.store.record(
            inc, actor, "tokens_revoked",
            f"service token {token_id} revoked", {"kind": "service", "token": token_id},
        )  # fmt: skip
        return {g.tenant for g in grants}

    def restore(self, inc: str, actor: str, seqs: list[int] | None) -> list[str]:
        """Reverse the incident's reversible actions (all, or the `seqs` given); what was done.
        Holds stay until close; revoked sessions and tokens stay revoked."""
        self.store._require_open(inc)
        done = []
        for a in self.store._reversible(inc):
            if a["kind"] == "hold" or (seqs and a["seq"] not in seqs):
                continue
            how = a["detail"]["reverse"]
            if how == "enable":
                self.gov.identity.enable(a["detail"]["user"], actor=actor)
                what = f"account {a['detail']['user']} re-enabled (must log in again)"
            elif how == "unpause":
                what = f"ingestion resumed for {', '.join(a['detail']['pause']['tenants'])}"
            elif how == "mode":
                before = a["detail"]["before"]
                self.store._set_mode(before, inc)
                what = f"gateway mode {a['detail']['mode']} -> {before}"
            else:  # pragma: no cover - written by this module only
                continue
            self.store._undo(a)
            self.store.record(inc, actor, "restored", f"reversed #{a['seq']}: {what}",
                              {"of": a["seq"]})  # fmt: skip
            done.append(what)
        self.store.write_pauses()
        if not done:
            raise IncidentError(f"incident {inc} has nothing to restore")
        return done


# -- alert -> incident ---------------------------------------------------------------------------


def auto_open_rules(gov: Governance) -> tuple[set[str], str]:
    """`[incident] auto_open` (rule names) and `auto_severity` from config.toml."""
    cfg = config_sections(gov.settings).get("incident", {})
    rules = cfg.get("auto_open", list(DEFAULT_AUTO_OPEN))
    if not isinstance(rules, list):
        raise IncidentError("[incident] auto_open must be a list of alert rule names")
    unknown = sorted({str(r) for r in rules} - set(ALERT_RULES))
    if unknown:
        raise IncidentError(
            f"[incident] auto_open names unknown alert rule(s) {', '.join(unknown)}; rules: "
            + ", ".join(ALERT_RULES)
        )
    severity = str(cfg.get("auto_severity", "high"))
    return {str(r) for r in rules}, severity if severity in SEVERITIES else "high"


def auto_open_since(gov: Governance) -> dt.datetime | None:
    """`[incident] auto_open_since` (an ISO time, UTC unless it names a zone): alerts raised
    before it open no incident (an exercise on a used home, or auto_open turned on late)."""
    value = config_sections(gov.settings).get("incident", {}).get("auto_open_since")
    if value in (None, ""):
        return None
    try:
        return _at(value.isoformat() if isinstance(value, dt.datetime) else str(value))
    except ValueError:
        raise IncidentError(
            f'[incident] auto_open_since = {value!r}: give an ISO time, e.g. "2026-12-01T06:00:00Z"'
        ) from None


def _raised_before(alert: Alert, since: dt.datetime | None) -> bool:
    try:
        return since is not None and _at(alert.time) < since
    except ValueError:  # an alert without a readable time is never skipped
        return False


def auto_open(store: IncidentStore, alerts: list[Alert]) -> list[str]:
    """Open an incident for each new alert of a rule in `[incident] auto_open` (one per rule
    and actor while it is open; a later alert joins its timeline), raised at or after
    `[incident] auto_open_since` if set. The incident ids touched."""
    rules, severity = auto_open_rules(store.gov)
    since = auto_open_since(store.gov)
    touched: list[str] = []
    for alert in alerts:
        if alert.rule not in rules or _raised_before(alert, since):
            continue
        aid = alert.alert_id
        if store.db.execute("SELECT 1 FROM auto_opened WHERE alert_id = ?", (aid,)).fetchone():
            continue
        key = f"alert:{alert.rule}:{alert.actor}"
        current = next(
            (i for i in store.incidents(include_closed=False) if i["source"] == key), None
        )
        if current is None:
            try:
                detected = _at(alert.time)
            except ValueError:
                detected = None
            inc = store.open(
                title=f"{alert.rule}: {alert.detail}"[:200], severity=severity,
                actor="system:alerts", detected_at=detected, source=key,
            )  # fmt: skip
            incident_id = str(inc["id"])
        else:
            incident_id = str(current["id"])
        store.record(
            incident_id, "system:alerts", "alert",
            f"alert {alert.rule} {aid[:12]} ({alert.actor}): {alert.detail}"[:240],
            {"alert_id": aid, "rule": alert.rule, "actor": alert.actor,
             "events": list(alert.event_ids)},
        )  # fmt: skip
        store.db.execute("INSERT INTO auto_opened VALUES (?, ?)", (aid, incident_id))
        touched.append(incident_id)
    return touched


# -- notification draft ----------------------------------------------------------------------------


def _suspects(store: IncidentStore, incident_id: str) -> set[str]:
    out: set[str] = set()
    for a in store.timeline(incident_id):
        d = a["detail"]
        if a["kind"] in ("disabled",) and d.get("user"):
            out.add(d["user"])
        if a["kind"] == "tokens_revoked" and d.get("user"):
            out.add(d["user"])
        if a["kind"] == "alert" and d.get("actor") and ":" not in d["actor"]:
            out.add(d["actor"])
    return out


def impact(store: IncidentStore, incident_id: str) -> dict[str, Any]:
    """Affected tenants, data categories and counts from the audit log: reads and denials by
    the incident's suspects from `[incident] lookback_hours` (72) before detection until now."""
    gov = store.gov
    inc = store.get(incident_id)
    cfg = config_sections(gov.settings).get("incident", {})
    lookback = dt.timedelta(hours=float(cfg.get("lookback_hours", 72)))
    since = _at(inc["detected_at"]) - lookback
    suspects = sorted(_suspects(store, incident_id))
    rows: dict[tuple[str, str], int] = defaultdict(int)  # (tenants read, dataset) -> rows
    reads = 0
    denials = 0
    tenants_read: set[str] = set()
    every = False
    for who in suspects:
        for e in gov.audit_log.search(actor=who, since=since):
            if e.action == "data.read" and e.decision == "allow":
                scope = e.tenant or e.reason.rpartition("tenants ")[2].strip() or "-"
                if scope == "all":
                    every = True
                else:
                    tenants_read |= {t for t in scope.split(",") if t and t != "-"}
                for ds in e.resource.removeprefix("dataset:").split("+"):
                    rows[(scope, ds)] += int(e.row_count or 0)
                reads += 1
            elif e.decision == "deny":
                denials += 1
    if every:
        tenants_read |= {p.tenant for p in gov.lake.catalog.partitions()}
    registry = gov.lake.registry
    categories = set()
    datasets = sorted({ds for _scope, ds in rows if ds in registry})
    for ds in datasets:
        spec = registry[ds]
        categories.add(
            f"{'buyer personal data (PII)' if spec.pii else 'non-personal business data'}"
            f" ({spec.origin} data: {ds})"
        )
    # distinct records (orders, buyers), never row versions: several ingested versions of
    # one order are one order affected
    exposed = [
        {"tenant": t, "dataset": ds, **held_records(gov.lake, ds, t)}
        for t in sorted(tenants_read) for ds in datasets
    ]  # fmt: skip
    held = sorted(
        {a["detail"]["tenant"] for a in store.timeline(incident_id) if a["kind"] == "hold"}
    )
    tenants = sorted(tenants_read | set(held))
    return {
        "since": _iso(since),
        "suspects": suspects,
        "tenants": tenants,
        "tenants_read": sorted(tenants_read),
        "rows": [{"tenants": t, "dataset": d, "rows": n} for (t, d), n in sorted(rows.items())],
        "exposed": exposed,
        "reads": reads,
        "denials": denials,
        "categories": sorted(categories),
        "held": held,
    }


def notify_draft(store: IncidentStore, incident_id: str, actor: str) -> dict[str, Any]:
    """The notification text for Amazon's security team, for a person to send (never sent)."""
    inc = store.get(incident_id)
    facts = impact(store, incident_id)
    cfg = config_sections(store.gov.settings).get("incident", {})
    contact = str(cfg.get("contact", "")) or f"{actor} (set [incident] contact in config.toml)"
    containment = [
        f"- {a['at']} {a['summary']}" + (" (since reversed)" if a["undone_at"] else "")
        for a in store.timeline(incident_id)
        if a["kind"] in ("disabled", "tokens_revoked", "paused", "mode", "hold")
    ] or ["- none recorded yet"]
    total = sum(r["rows"] for r in facts["rows"])
    per = [f"- {r['dataset']} ({r['tenants']}): {r['rows']} rows returned" for r in facts["rows"]]
    if facts["exposed"]:
        per.append(
            "Data held for the tenants read (each order, buyer or record counted once, however "
            "many versions were ingested):"
        )
        per += [f"- {x['tenant']}, {x['dataset']}: {describe_held(x)}" for x in facts["exposed"]]
    lines = [
        "DRAFT - for a person to review and send to Amazon's security team "
        "(security@amazon.com per the Data Protection Policy). amzigo-lab never sends it.",
        "",
        f"Subject: Security incident notification - {inc['id']} - {inc['title']}",
        "",
        f"What happened: {inc['title']} (severity {inc['severity']}).",
        f"Detected: {inc['detected_at']} (notification deadline {inc['deadline']}).",
        f"Status: {inc['status']}.",
        f"Accounts involved: {', '.join(facts['suspects']) or 'under investigation'}.",
        f"Affected tenants (seller accounts): {', '.join(facts['tenants']) or 'none identified'}.",
        f"Tenants whose data was read: {', '.join(facts['tenants_read']) or 'none'}.",
        f"Data read by the involved accounts since {facts['since']}: {total} rows returned in "
        f"{facts['reads']} reads (a row read twice counts twice); {facts['denials']} attempts "
        "denied.",
        *per,
        "Data categories: " + ("; ".join(facts["categories"]) or "none read"),
        "Containment done:",
        *containment,
        "Evidence: preserved under legal hold for tenants "
        f"{', '.join(facts['held']) or '(none)'}; signed evidence bundle with chain of custody.",
        f"Point of contact: {contact}.",
        "",
        "Amzigo will not communicate on Amazon's behalf to any regulator unless specifically "
        "authorised in writing.",
    ]
    store.record(
        incident_id, actor, "notify_draft",
        f"notification draft prepared ({len(facts['tenants'])} tenants, {total} rows); not sent",
        {"tenants": facts["tenants"], "rows": total},
    )  # fmt: skip
    return {"text": "\n".join(lines) + "\n", "facts": facts, "deadline": inc["deadline"]}


# -- evidence ------------------------------------------------------------------------------------


def _text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


def collect_evidence(store: IncidentStore, incident_id: str, actor: str) -> dict[str, Any]:
    """Build and sign an evidence bundle: its files (name, text). No PII plaintext, no keys:
    audit events (allow-listed fields, never PII values), checkpoints and anchor records
    (hashes and signatures), catalog rows without wrapped keys, identity without password
    hashes or TOTP secrets, the alert ledger, policy and config digests, the policy change log."""
    from cryptography.hazmat.primitives import serialization

    from amzigo_lab.compliance.certificates import signing_key
    from amzigo_lab.governance.policy_log import LOG_FILE, in_force

    gov = store.gov
    home = gov.settings.home
    inc = store.get(incident_id)
    files: dict[str, str] = {}
    files["incident.json"] = _text({"incident": inc, "timeline": store.timeline(incident_id)})
    schedule_log = gov.settings.state_dir / "schedule.log"
    if schedule_log.exists():  # job outcomes (names, status, exit codes, stderr tails)
        files["schedule.log"] = schedule_log.read_text(encoding="utf-8")
    log = gov.audit_log
    cfg = config_sections(gov.settings).get("incident", {})
    since = _at(inc["detected_at"]) - dt.timedelta(hours=float(cfg.get("lookback_hours", 72)))
    events = [e.to_dict() for e in log.search(since=since)]  # the incident's window
    files["audit/events.jsonl"] = "".join(json.dumps(e, sort_keys=True) + "\n" for e in events)
    report = log.verify()
    files["audit/verify.json"] = _text(
        {"ok": report.ok, "report": getattr(report, "to_dict", lambda: str(report))()}
    )
    for ck in sorted(log.checkpoint_dir.glob("*.json")):  # hashes and signatures only
        files[f"audit/checkpoints/{ck.name}"] = ck.read_text(encoding="utf-8")
    files["audit/public-key.pem"] = log.public_key_path.read_text(encoding="utf-8")
    if log.anchor is not None and (log.anchor / "anchor.log").exists():
        files["audit/anchor.log"] = (log.anchor / "anchor.log").read_text(encoding="utf-8")
    parts = gov.lake.catalog.partitions()
    files["catalog.json"] = _text(
        [
            {"id": p.id, "dataset": p.dataset, "tenant": p.tenant,
             "ingest_date": p.ingest_date.isoformat(), "purge_date": p.purge_date.isoformat(),
             "rows": p.row_count, "bytes": p.bytes}
            for p in parts
        ]
    )  # fmt: skip
    from amzigo_lab.compliance.holds import list_holds

    files["holds.json"] = _text([h.to_dict() for h in list_holds(gov.lake)])
    files["identity.json"] = _text(
        {
            "users": [
                {"user": u.user_id, "roles": list(u.roles), "tenant": u.tenant,
                 "status": str(getattr(u.status, "value", u.status))}
                for u in gov.identity.list_users()
            ],
            "grants": gov.grants.all_grants(),
        }
    )  # fmt: skip
    ledger = home / "alerts.sqlite"
    alerts: list[dict[str, Any]] = []
    if ledger.exists():
        db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            alerts = [
                {k: r[k] for k in r.keys() if k != "payload"}  # noqa: SIM118 - sqlite3.Row
                | {"payload": json.loads(r["payload"])}
                for r in db.execute("SELECT * FROM deliveries ORDER BY alert_time")
            ]
        finally:
            db.close()
    files["alerts.json"] = _text(alerts)
    config_files = {}
    for name in ("policy.toml", "config.toml"):
        path = home / name
        if path.exists():
            config_files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    files["config.json"] = _text(
        {"files_sha256": config_files, "policy_version": gov.policy.version,
         "policy_sha256": gov.policy.sha256, "policy_log_version": (in_force(gov) or {}).get(
             "version"),
         "sections": sorted(config_sections(gov.settings))}
    )  # fmt: skip
    if gov.policy.text:  # the policy in force (the home's or the shipped one): no secret
        files["policy.toml"] = gov.policy.text
    policy_log = home / LOG_FILE  # every signed policy version (no secret)
    if policy_log.exists():
        files["policy-log.jsonl"] = policy_log.read_text(encoding="utf-8")
    key = signing_key(gov.lake)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = _iso(store.now())
    manifest = evidence.make_manifest(
        incident=incident_id, created_at=now, created_by=actor, files=files,
        public_key_pem=public.decode(),
    )  # fmt: skip
    manifest_text = evidence.canonical(manifest).decode()
    signature = evidence.b64(key.sign(evidence.canonical(manifest)))
    digest = hashlib.sha256(manifest_text.encode()).hexdigest()
    store.db.execute(
        "INSERT OR REPLACE INTO bundles VALUES (?, ?, ?, ?)", (digest, incident_id, now, actor)
    )
    entry = custody_entry(
        store, incident_id, actor, digest, prev="", event="collected", to=actor,
        reason="evidence collected by the gateway",
    )  # fmt: skip
    store.record(
        incident_id, actor, "evidence_collected",
        f"evidence bundle collected: {len(files)} items, manifest sha256 {digest[:16]}",
        {"manifest_sha256": digest, "items": len(files)},
    )  # fmt: skip
    out = [{"name": n, "text": t} for n, t in sorted(files.items())]
    out.append({"name": evidence.MANIFEST, "text": manifest_text})
    out.append({"name": evidence.SIGNATURE, "text": signature + "\n"})
    out.append({"name": evidence.CUSTODY, "text": json.dumps(entry, sort_keys=True) + "\n"})
    return {"files": out, "manifest_sha256": digest, "items": len(files)}


def custody_entry(
    store: IncidentStore,
    incident_id: str,
    actor: str,
    manifest_sha256: str,
    *,
    prev: str,
    event: str,
    to: str,
    reason: str,
) -> dict[str, Any]:
    """A signed custody-log entry (the gateway's key), chained to the previous line."""
    from amzigo_lab.compliance.certificates import signing_key

    known = store.db.execute(
        "SELECT incident FROM bundles WHERE manifest_sha256 = ?", (manifest_sha256,)
    ).fetchone()
    if known is None or known[0] != incident_id:
        raise AccessDenied(
            f"the bundle (manifest {manifest_sha256[:16]}) was not collected for {incident_id} "
            "by this gateway"
        )
    body = {
        "incident": incident_id, "manifest_sha256": manifest_sha256, "prev": prev,
        "event": event, "by": actor, "to": " ".join(to.split())[:200],
        "reason": " ".join(reason.split())[:500], "at": _iso(store.now()),
    }  # fmt: skip
    body["signature"] = evidence.b64(signing_key(store.gov.lake).sign(evidence.canonical(body)))
    if event != "collected":
        store.record(
            incident_id, actor, "custody",
            f"evidence {manifest_sha256[:16]} {event} to {body['to']}: {body['reason']}"[:240],
            {"manifest_sha256": manifest_sha256, "to": body["to"], "event": event},
        )  # fmt: skip
    return body
