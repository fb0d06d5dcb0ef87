"""The alert pipeline: rules evaluated where events are written, delivered once per sink.

`collect_alerts` evaluates every rule over the audit stream and verifies the log; a log that
cannot be opened, read or verified (a bad key, a flipped byte, a truncated or missing segment)
becomes an `audit_verification_failed` alert naming what is wrong, never an exception.

`deliver` sends alerts through a delivery ledger (`<home>/alerts.sqlite`, one row per
(alert id, sink)): an alert is delivered once per sink; a sink that fails is retried later
with exponential backoff while the sinks that took it are not sent it again.

`AlertPipeline` is what the gateway's timer drives: it re-evaluates when the log grew (at most
every `evaluate_every_seconds`), verifies every `verify_every_minutes`, runs promptly (within
a timer tick) after a security-relevant event, and retries failed deliveries when due.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amzigo_lab import readonly_db
from amzigo_lab.config import config_sections
from amzigo_lab.errors import ConfigError
from amzigo_lab.governance.audit import (
    AccountHealthBreach,
    Alert,
    AuditEvent,
    AuditVerificationFailed,
    BreakGlassUsed,
    CommandSink,
    LockedAccountAttempts,
    PiiOutsidePurpose,
    PolicyChanged,
    RepeatedDenials,
    Rule,
    ScheduledJobFailed,
    Sink,
    UnusualVolume,
    VerifyReport,
    WebhookSink,
    evaluate,
    sink_name,
    verify_log,
)
from amzigo_lab.governance.audit.alerts import POLICY_ACTIONS
from amzigo_lab.governance.audit.keys import public_key_path
from amzigo_lab.governance.policy import archived_policy

if TYPE_CHECKING:
    from amzigo_lab.config import Settings
    from amzigo_lab.governance.context import Governance

LEDGER_DB = "alerts.sqlite"
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 3600.0
#: Events after which the gateway evaluates at once instead of waiting for its interval.
SECURITY_ACTIONS = frozenset(
    {
        "policy.changed",
        "admin.break_glass",
        "audit.verify_failed",
        "audit.tail_repaired",
        "auth.lockout",
    }
)
#: Rules that always run, whatever `[alerts]` says (they cannot be configured away).
DEFAULT_RULES = ("policy_changed", "break_glass", "audit_verification_failed")


# -- rules and sinks from config.toml ---------------------------------------------------------


def _alerts_config(gov: Governance) -> dict[str, Any]:
    return dict(config_sections(gov.settings).get("alerts", {}))


def _num(cfg: dict[str, Any], key: str, default: float) -> float:
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise ConfigError(f"invalid [alerts] {key} = {v!r} in config.toml: expected > 0")
    return float(v)


def policy_purposes(home: Path) -> Callable[[str], tuple[str, ...] | None]:
    """Look up the PII purposes of an archived policy version by its digest (cached)."""
    cache: dict[str, tuple[str, ...] | None] = {}

    def lookup(digest: str) -> tuple[str, ...] | None:
        if digest not in cache:
            policy = archived_policy(home, digest)
            cache[digest] = policy.pii_purposes if policy is not None else None
        return cache[digest]

    return lookup


def alert_rules(gov: Governance) -> tuple[list[Rule], list[Sink]]:
    """Rules with thresholds from `[alerts]` in config.toml, and the configured sinks."""
    cfg = _alerts_config(gov)
    pii = {n for n, spec in gov.lake.registry.items() if spec.pii}

    def is_pii(resource: str) -> bool:
        names = resource.removeprefix("dataset:").split("+")
        return resource.startswith("dataset:") and any(n in pii for n in names)

    rules: list[Rule] = [
        RepeatedDenials(
            count=int(_num(cfg, "denials_count", 5)),
            window=dt.timedelta(minutes=_num(cfg, "denials_window_minutes", 10)),
        ),
        UnusualVolume(
            factor=_num(cfg, "volume_factor", 10),
            min_history=int(_num(cfg, "volume_min_history", 5)),
        ),
        PiiOutsidePurpose(
            pii_resources=is_pii,
            allowed_purposes=gov.policy.pii_purposes,
            purposes_for=policy_purposes(gov.settings.home),
        ),
        LockedAccountAttempts(window=dt.timedelta(minutes=_num(cfg, "locked_window_minutes", 60))),
        AuditVerificationFailed(),
        BreakGlassUsed(),
        PolicyChanged(),
        ScheduledJobFailed(),
        AccountHealthBreach(),
    ]
    return rules, configured_sinks(cfg)


def configured_sinks(cfg: dict[str, Any]) -> list[Sink]:
    """The sinks of an `[alerts]` section (a command and/or a webhook)."""
    sinks: list[Sink] = []
    command = cfg.get("command")
    if command:
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            raise ConfigError("[alerts] command must be a list of strings (argv, no shell)")
        sinks.append(CommandSink(command))
    if url := cfg.get("webhook_url"):
        try:
            sinks.append(WebhookSink(str(url)))
        except ValueError as exc:
            raise ConfigError(f"[alerts] webhook_url: {exc}") from None
    return sinks


# -- reading and verifying the log without ever raising ---------------------------------------


def _describe(exc: BaseException) -> str:
    """An exception as alert text (audit errors name segments and seqs, never contents)."""
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:500]


def verify_read_only(gov: Governance) -> VerifyReport:
    """Verify the home's log without opening it for writing (works when the writer cannot
    open it: a key that does not unwrap, a damaged open segment)."""
    from amzigo_lab.governance.auditing import AUDIT_SECRET, signing_key_path

    s = gov.settings
    return verify_log(
        s.audit_path,
        s.checkpoint_path,
        lambda: gov.lake.secret(AUDIT_SECRET, create=False),
        public_key_path(signing_key_path(s)),
        anchor=s.audit_anchor,
    )


def salvage_events(gov: Governance) -> list[AuditEvent]:
    """Every event that still decrypts and authenticates, read-only, segment by segment (for
    the rules when the log as a whole cannot be read: damage hides only what it destroyed;
    verification, not this, says what is wrong)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from amzigo_lab.governance.audit.keys import master_key, unwrap_segment_key
    from amzigo_lab.governance.audit.record import decode_record
    from amzigo_lab.governance.audit.segment import list_segments, scan_segment
    from amzigo_lab.governance.auditing import AUDIT_SECRET

    try:
        master = master_key(gov.lake.secret(AUDIT_SECRET, create=False))
        segments = list_segments(gov.settings.audit_path)
    except Exception:
        return []
    events: list[AuditEvent] = []
    for i, (_first, path) in enumerate(segments):
        try:
            aes = AESGCM(unwrap_segment_key(path, path.stem, master))
            scan = scan_segment(path.read_bytes(), path.stem, aes, is_open=i == len(segments) - 1)
            events.extend(decode_record(frame.record)[2] for frame in scan.frames)
        except Exception:  # noqa: S112 - this segment is the damage the alert names
            continue
    return events


@dataclass
class AuditRead:
    """What could be read of the audit stream, and whether it verified."""

    events: list[AuditEvent] = field(default_factory=list)
    report: VerifyReport | None = None
    problem: str = ""
    """Why the events could not be read or the log not verified ("" if both worked)."""


def read_audit(gov: Governance, since: dt.datetime | None, *, verify: bool = True) -> AuditRead:
    """Events (since `since`, plus the policy events before it) and a verification report."""
    out = AuditRead()
    try:
        log = gov.audit_log
        out.events = log.search(since=since)
        if since is not None:  # the policy in force at `since` judges the first reads
            before = [e for e in log.search(until=since) if e.action in POLICY_ACTIONS]
            out.events = before[-1:] + out.events
    except Exception as exc:  # a damaged log is an alert, not a traceback
        out.problem = f"cannot read the audit log: {_describe(exc)}"
        lo = "" if since is None else since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        salvaged = salvage_events(gov)
        before = [e for e in salvaged if e.time < lo and e.action in POLICY_ACTIONS]
        out.events = before[-1:] + [e for e in salvaged if e.time >= lo]
    if not verify and not out.problem:
        return out
    try:
        out.report = gov.audit_log.verify() if not out.problem else verify_read_only(gov)
    except Exception as exc:
        try:
            out.report = verify_read_only(gov)
        except Exception as exc2:
            why = _describe(exc2 if out.problem else exc)
            out.problem = out.problem or f"cannot verify the audit log: {why}"
    return out


def collect_alerts(
    gov: Governance,
    since: dt.datetime | None = None,
    *,
    verify: bool = True,
    rules: Sequence[Rule] | None = None,
) -> list[Alert]:
    """Every rule over the audit stream, and the log's verification, as alerts (never raises
    for a damaged log: that is an `audit_verification_failed` alert)."""
    if rules is None:
        rules = alert_rules(gov)[0]
    read = read_audit(gov, since, verify=verify)
    alerts = evaluate(read.events, rules)
    check = AuditVerificationFailed()
    if read.report is not None and not read.report.ok:
        alerts += check.check(read.report)
    elif read.problem:
        alerts += check.unverifiable(read.problem)
    return alerts


# -- delivery: once per (alert id, sink), retried with backoff --------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id TEXT NOT NULL,
    sink TEXT NOT NULL,
    rule TEXT NOT NULL,
    alert_time TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt TEXT NOT NULL,
    delivered_at TEXT,
    last_error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (alert_id, sink)
) STRICT
"""


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed delivery: 30 s doubling, capped at an hour."""
    return dt.timedelta(
        seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)
    )


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


class DeliveryLedger:
    """`<home>/alerts.sqlite`: which alert went to which sink, and which are still due."""

    def __init__(self, path: Path) -> None:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    @classmethod
    def of(cls, gov: Governance) -> DeliveryLedger:
        """The home's ledger."""
        return cls(gov.settings.home / LEDGER_DB)

    @staticmethod
    def count_in(home: Path) -> int | None:
        """Alerts raised in the ledger of `home`, read without creating or changing it
        (None: the home has no ledger yet, or it cannot be read)."""
        return readonly_db.count(
            home / LEDGER_DB, "SELECT COUNT(DISTINCT alert_id) FROM deliveries"
        )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def add(self, alerts: Sequence[Alert], sinks: Sequence[str], now: dt.datetime,
            delivered_before: str = "") -> int:  # fmt: skip
        """Record each (alert, sink) pair not seen before as due now; how many were new.

        Alerts at or before `delivered_before` (the pre-ledger high-water mark) count as
        delivered already."""
        new = 0
        with self._lock:
            for a in alerts:
                done = "before-ledger" if delivered_before and a.time <= delivered_before else None
                for sink in sinks:
                    cur = self._db.execute(
                        "INSERT INTO deliveries (alert_id, sink, rule, alert_time, payload,"
                        " next_attempt, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT DO NOTHING",
                        (a.alert_id, sink, a.rule, a.time, a.to_json(), _iso(now), done),
                    )
                    new += cur.rowcount
        return new

    def due(self, sinks: Sequence[str], now: dt.datetime, *, all_pending: bool = False
            ) -> list[tuple[Alert, str, int]]:  # fmt: skip
        """Undelivered (alert, sink, attempts so far), oldest alert first."""
        if not sinks:
            return []
        marks = ",".join("?" * len(sinks))
        sql = (
            "SELECT payload, sink, attempts FROM deliveries WHERE delivered_at IS NULL"  # noqa: S608
            f" AND sink IN ({marks})"
        )
        args: list[Any] = list(sinks)
        if not all_pending:
            sql += " AND next_attempt <= ?"
            args.append(_iso(now))
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY alert_time, alert_id, sink", args).fetchall()
        return [(Alert.from_dict(json.loads(p)), s, int(n)) for p, s, n in rows]

    def delivered(self, alert_id: str, sink: str, now: dt.datetime) -> None:
        """Mark one delivery done."""
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = ''"
                " WHERE alert_id = ? AND sink = ?",
                (_iso(now), alert_id, sink),
            )

    def failed(self, alert_id: str, sink: str, attempts: int, error: str, now: dt.datetime) -> None:
        """Record a failed attempt and when to try again."""
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET attempts = ?, next_attempt = ?, last_error = ?"
                " WHERE alert_id = ? AND sink = ?",
                (attempts, _iso(now + backoff(attempts)), error[:300], alert_id, sink),
            )

    def is_delivered(self, alert_id: str, sinks: Sequence[str]) -> bool:
        """Whether every one of `sinks` has taken the alert."""
        with self._lock:
            rows = self._db.execute(
                "SELECT sink FROM deliveries WHERE alert_id = ? AND delivered_at IS NOT NULL",
                (alert_id,),
            ).fetchall()
        return set(sinks) <= {r[0] for r in rows}

    def pending(self, sinks: Sequence[str]) -> int:
        """Undelivered (alert, sink) pairs for these sinks."""
        return len(self.due(sinks, dt.datetime.now(dt.UTC), all_pending=True))


@dataclass
class DeliveryReport:
    """One delivery round: what was sent, what failed (and will be retried), what waits."""

    sent: list[tuple[Alert, str]] = field(default_factory=list)
    failed: list[tuple[Alert, str, str]] = field(default_factory=list)
    """(alert, sink name, error) per failed attempt."""
    waiting: int = 0
    """Undelivered (alert, sink) pairs after this round (failed ones included)."""

    @property
    def failed_sinks(self) -> list[str]:
        """Names of the sinks that failed this round."""
        return sorted({s for _a, s, _e in self.failed})

    @property
    def attempted(self) -> bool:
        """Whether anything was sent or tried."""
        return bool(self.sent or self.failed)


def deliver(
    gov: Governance,
    alerts: Sequence[Alert],
    sinks: Sequence[Sink],
    *,
    now: dt.datetime | None = None,
    retry_now: bool = False,
) -> DeliveryReport:
    """Record new alerts for every sink, then send what is due (everything pending with
    `retry_now`, as `amzigo alerts` does); a sink's failure never stops the others."""
    if not sinks:
        return DeliveryReport()
    legacy = gov.grants.get_meta("alerts_sent_until") or ""
    return deliver_to(gov.settings.home, alerts, sinks, now=now, retry_now=retry_now, legacy=legacy)


def deliver_to(
    home: Path,
    alerts: Sequence[Alert],
    sinks: Sequence[Sink],
    *,
    now: dt.datetime | None = None,
    retry_now: bool = False,
    legacy: str = "",
) -> DeliveryReport:
    """`deliver` through the ledger of `home` (needs no open governance)."""
    now = now or dt.datetime.now(dt.UTC)
    report = DeliveryReport()
    if not sinks:
        return report
    by_name = {sink_name(s): s for s in sinks}
    ledger = DeliveryLedger(home / LEDGER_DB)
    try:
        ledger.add(alerts, list(by_name), now, legacy)
        down: set[str] = set()
        for alert, name, attempts in ledger.due(list(by_name), now, all_pending=retry_now):
            if name in down:  # one failure per sink and round: a dead webhook's timeouts
                continue  # must not hold up the gateway once per pending alert
            try:
                by_name[name].send(alert)
            except Exception as exc:  # a failing sink must not stop the others
                ledger.failed(alert.alert_id, name, attempts + 1, _describe(exc), now)
                report.failed.append((alert, name, _describe(exc)))
                down.add(name)
            else:
                ledger.delivered(alert.alert_id, name, now)
                report.sent.append((alert, name))
        report.waiting = ledger.pending(list(by_name))
    finally:
        ledger.close()
    return report


def alert_unopenable_log(settings: Settings, exc: BaseException) -> DeliveryReport:
    """Page the configured sinks (once per sink, through the ledger) that the audit log cannot
    be opened: the gateway refuses to start on such a log, so no timer would ever say it.
    Never raises: a bad `[alerts]` section or a dead sink must not hide the original error."""
    try:
        cfg = dict(config_sections(settings).get("alerts", {}))
        alert = Alert(
            rule="audit_verification_failed",
            actor="system:gateway",
            time=_iso(dt.datetime.now(dt.UTC)),
            detail=f"the gateway cannot open the audit log: {_describe(exc)}",
        )
        return deliver_to(settings.home, [alert], configured_sinks(cfg))
    except Exception:  # the caller reports `exc` itself
        return DeliveryReport()


def audit_delivery(gov: Governance, report: DeliveryReport, actor: str) -> None:
    """Write `alerts.sent` for a round that sent or tried something (skipped if the log
    cannot be written: a damaged log is what the alert is about)."""
    if not report.attempted:
        return
    failed = report.failed_sinks
    with contextlib.suppress(Exception):
        gov.emit(
            "alerts.sent",
            actor=actor,
            resource="alerts",
            row_count=len(report.sent),
            decision="deny" if failed else "info",
            reason=(
                f"{len(report.failed)} delivery failure(s) to {', '.join(failed)}; retried later"
                if failed
                else "delivered"
            ),
        )


# -- the gateway's continuous evaluation ------------------------------------------------------


class AlertPipeline:
    """Evaluates and delivers alerts from a timer; `due()` is cheap (any thread), `run()`
    runs on the thread that owns the home."""

    def __init__(
        self,
        *,
        evaluate_every: float = 30.0,
        verify_every: float = 900.0,
        min_gap: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.evaluate_every = evaluate_every
        self.verify_every = verify_every
        self.min_gap = min_gap
        self._monotonic = monotonic
        self.urgent = False
        self._last_run: float | None = None
        self._last_verify: float | None = None
        self._last_size: int | None = None
        self.last_report: DeliveryReport | None = None
        #: Called (on the home thread) with every evaluation's alerts, sinks or not, while
        #: `wants_alerts(gov)` says so: the gateway opens incidents from them when
        #: `[incident] auto_open` names rules.
        self.on_alerts: list[Callable[[list[Alert]], Any]] = []
        self.wants_alerts: Callable[[Governance], bool] = lambda gov: False

    def attach(self, gov: Governance) -> None:
        """Watch the events `gov` writes: security-relevant ones make the pipeline due."""
        gov.sink.listeners.append(self.notice)

    def notice(self, event: AuditEvent) -> None:
        """A listener: flag security-relevant events for prompt evaluation."""
        if event.action in SECURITY_ACTIONS or (
            event.action == "audit.verified" and event.decision == "deny"
        ):
            self.urgent = True

    def due(self) -> bool:
        """Whether `run` has work: an urgent event, or the interval has passed."""
        if self._last_run is None:
            return True
        since = self._monotonic() - self._last_run
        return (self.urgent and since >= self.min_gap) or since >= self.evaluate_every

    def run(self, gov: Governance, *, urgent: bool = False, actor: str = "system:gateway"
            ) -> DeliveryReport:  # fmt: skip
        """Evaluate (if the log grew, or urgently), verify (if due), deliver what is due."""
        now = self._monotonic()
        urgent = urgent or self.urgent
        self.urgent = False
        self._last_run = now
        cfg = _alerts_config(gov)
        self.evaluate_every = _num(cfg, "evaluate_every_seconds", self.evaluate_every)
        self.verify_every = 60 * _num(cfg, "verify_every_minutes", self.verify_every / 60)
        rules, sinks = alert_rules(gov)
        hooks = self.on_alerts if self.on_alerts and self.wants_alerts(gov) else []
        if not sinks and not hooks:  # nowhere to push: `amzigo alerts` still lists them
            self.last_report = DeliveryReport()
            return self.last_report
        verify = self._last_verify is None or now - self._last_verify >= self.verify_every
        try:
            size: int | None = gov.audit_log.size
        except Exception:  # unreadable: evaluate (and verify) to raise the alert
            size, verify = None, True
        alerts: list[Alert] = []
        if urgent or verify or size is None or size != self._last_size:
            alerts = collect_alerts(gov, verify=verify, rules=rules)
            self._last_size = size
            if verify:
                self._last_verify = now
            for hook in hooks:
                hook(alerts)
        if not sinks:
            self.last_report = DeliveryReport()
            return self.last_report
        report = deliver(gov, alerts, sinks)
        audit_delivery(gov, report, actor)
        if report.attempted and size is not None and self._last_size == size:
            with contextlib.suppress(Exception):  # our own alerts.sent is no news
                if gov.audit_log.size == size + 1:
                    self._last_size = size + 1
        self.last_report = report
        return report
