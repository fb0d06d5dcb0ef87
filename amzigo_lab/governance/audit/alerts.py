"""Alert rules over audit events, and sinks that deliver alerts (a command or a webhook)."""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import subprocess
import urllib.parse
import urllib.request
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from amzigo_lab.governance.audit.event import AuditEvent, format_time, utc_now
from amzigo_lab.governance.audit.verify import VerifyReport

LOGIN_ACTIONS = ("auth.login", "auth.login_failed", "auth.mfa_failed")
READ_ACTIONS = ("data.read", "data.export")
PII_PURPOSES = ("fulfilment", "tax", "legal")


@dataclass(frozen=True)
class Alert:
    """A raised alert; `detail` names ids, resources and counts only, never PII values."""

    rule: str
    actor: str
    time: str
    detail: str
    event_ids: tuple[str, ...] = field(default=())

    @property
    def alert_id(self) -> str:
        """A stable id: the same finding raised on every evaluation gets the same id.

        Event-based alerts are named by their rule and events; an alert without events (a
        failed verification) by its rule and detail, so a damage that persists is one alert.
        """
        # checkpoint numbers move on as the log grows: the same damage keeps its id
        detail = re.sub(r"#\d+", "#", self.detail)
        basis = "|".join(self.event_ids) if self.event_ids else f"{self.actor}|{detail}"
        return hashlib.sha256(f"{self.rule}|{basis}".encode()).hexdigest()[:32]

    @staticmethod
    def from_dict(doc: Mapping[str, Any]) -> Alert:
        """Rebuild an alert from `to_dict` output."""
        return Alert(
            str(doc["rule"]),
            str(doc["actor"]),
            str(doc["time"]),
            str(doc["detail"]),
            tuple(str(e) for e in doc.get("event_ids", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        """The alert as a plain dict."""
        return {
            "alert_id": self.alert_id,
            "rule": self.rule,
            "actor": self.actor,
            "time": self.time,
            "detail": self.detail,
            "event_ids": list(self.event_ids),
        }

    def to_json(self) -> str:
        """The alert as compact JSON (what sinks deliver)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


class Rule(Protocol):
    """An alert rule: looks at a sequence of events, returns the alerts it raises."""

    name: str

    def evaluate(self, events: Sequence[AuditEvent]) -> list[Alert]:
        """The alerts raised by `events`."""
        ...


def _by_time(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """Events in time order (stable, so equal times keep log order)."""
    return sorted(events, key=lambda e: e.time)


@dataclass
class RepeatedDenials:
    """`count` denials (or failed logins) by one actor within `window`."""

    count: int = 5
    window: timedelta = timedelta(minutes=10)
    name: str = "repeated_denials"

    def evaluate(self, events: Sequence[AuditEvent]) -> list[Alert]:
        """One alert per burst of denials."""
        recent: dict[str, deque[AuditEvent]] = defaultdict(deque)
        alerts = []
        for ev in _by_time(events):
            if ev.decision != "deny" and not ev.action.endswith("_failed"):
                continue
            q = recent[ev.actor]
            q.append(ev)
            while ev.timestamp - q[0].timestamp > self.window:
                q.popleft()
            if len(q) >= self.count:
                minutes = self.window.total_seconds() / 60
                alerts.append(
                    Alert(
                        self.name,
                        ev.actor,
                        ev.time,
                        f"{len(q)} denials within {minutes:g} min (last: {ev.action})",
                        tuple(e.event_id for e in q),
                    )
                )
                q.clear()
        return alerts


@dataclass
class UnusualVolume:
    """A read returning more than `factor` x the actor's median rows for that dataset."""

    factor: float = 10.0
    min_history: int = 5
    actions: tuple[str, ...] = READ_ACTIONS
    name: str = "unusual_volume"

    def evaluate(self, events: Sequence[AuditEvent]) -> list[Alert]:
        """Compare each read with the actor's earlier reads of the same resource."""
        history: dict[tuple[str, str], list[int]] = defaultdict(list)
        alerts = []
        for ev in _by_time(events):
            if ev.action not in self.actions or ev.decision != "allow" or ev.row_count is None:
                continue
            past = history[(ev.actor, ev.resource)]
            if len(past) >= self.min_history:
                median = statistics.median(past)
                if ev.row_count > self.factor * max(median, 1):
                    alerts.append(
                        Alert(
                            self.name,
                            ev.actor,
                            ev.time,
                            f"{ev.action} of {ev.row_count} rows from {ev.resource}: more than "
                            f"{self.factor:g}x the median {median:g} of {len(past)} earlier reads",
                            (ev.event_id,),
                        )
                    )
            past.append(ev.row_count)
        return alerts


POLICY_ACTIONS = ("policy.loaded", "policy.changed")
_POLICY_SHA = re.compile(r"-> ([0-9a-f]{16,64})")


def policy_version(ev: AuditEvent) -> str | None:
    """The policy digest (prefix) a `policy.loaded`/`policy.changed` event put in force."""
    if ev.action not in POLICY_ACTIONS:
        return None
    m = _POLICY_SHA.search(ev.reason)
    return m.group(1) if m else None


@dataclass
class PiiOutsidePurpose:
    """An allowed read of a PII resource whose purpose the policy in force did not allow.

    A read is judged by the policy version in force when it happened: the last
    `policy.loaded`/`policy.changed` event before it names the version (its sha256), and
    `purposes_for(version)` gives that version's PII purposes. Reads before any policy event,
    or under a version `purposes_for` cannot find, are judged by `allowed_purposes` (and the
    alert says so).
    """

    pii_resources: Collection[str] | Callable[[str], bool]
    allowed_purposes: Collection[str] = PII_PURPOSES
    actions: tuple[str, ...] = READ_ACTIONS
    purposes_for: Callable[[str], Collection[str] | None] | None = None
    name: str = "pii_outside_purpose"

    def _is_pii(self, resource: str) -> bool:
        """True if `resource` is flagged as holding PII."""
        if callable(self.pii_resources):
            return bool(self.pii_resources(resource))
        return resource in self.pii_resources

    def evaluate(self, events: Sequence[AuditEvent]) -> list[Alert]:
        """One alert per offending read."""
        alerts = []
        version: str | None = None
        allowed: Collection[str] = self.allowed_purposes
        known = False
        for ev in _by_time(events):
            if ev.action in POLICY_ACTIONS:
                version = policy_version(ev)
                found = self.purposes_for(version) if self.purposes_for and version else None
                allowed, known = (
                    (found, True) if found is not None else (self.allowed_purposes, False)
                )
                continue
            if not (
                ev.action in self.actions
                and ev.decision == "allow"
                and self._is_pii(ev.resource)
                and ev.purpose not in allowed
            ):
                continue
            under = (
                f"policy {version[:16]} in force then"
                if version and known
                else f"policy {version[:16]} not archived, judged by the current one"
                if version
                else "no policy version recorded before it, judged by the current one"
            )
            alerts.append(
                Alert(
                    self.name,
                    ev.actor,
                    ev.time,
                    f"{ev.action} on PII resource {ev.resource} with purpose "
                    f"{ev.purpose or '(none)'}; allowed: {', '.join(sorted(allowed)) or '(none)'} "
                    f"({under})",
                    (ev.event_id,),
                )
            )
        return alerts


def _each_event(
    name: str,
    actions: tuple[str, ...],
    events: Sequence[AuditEvent],
    detail: Callable[[AuditEvent], str],
) -> list[Alert]:
    """One alert per event whose action is in `actions`, in time order."""
    return [
        Alert(name, ev.actor, ev.time, detail(ev), (ev.event_id,))
        for ev in _by_time(events)
        if ev.action in actions
    ]


@dataclass
class PolicyChanged:
    """Every change of the access policy (a new digest in force)."""

    actions: tuple[str, ...] = ("policy.changed",)
    name: str = "policy_changed"

    def evaluate(self, events: Sequence[AuditEvent]) -> list[Alert]:
        """One alert per `policy.changed` event; the detail names both digests."""
        return _each_event(
            self.name, self.actions, events, lambda ev: f"access policy changed: {ev.reason}"
        )


def _subject(ev: AuditEvent) -> str:
    """The account an auth event is about: `user:<id>` resource if present, else the actor.

    A lockout is done by the system (actor) to an account (resource); an admin unlock is done
    by the admin to the account: the rule follows the account.
    """
    return ev.resource[5:] if ev.resource.startswith("user:") else ev.actor


@dataclass
class LockedAccountAttempts:
    """Login attempts on an account within `window` after its lockout (until unlocked)."""

    min_attempts: int = 1
    window: timedelta = timedelta(hours=1)
    unlock_actions: tuple[str, ...] = ("auth.unlocked", "auth.unlock")
    name: str = "locked_account_attempts"

    def evaluate(self, events: Sequence[AuditEvent]) -> list[Alert]:
        """One alert per lockout that sees `min_attempts` further attempts."""
        locked: dict[str, tuple[datetime, list[str], bool]] = {}
        alerts = []
        for ev in _by_time(events):
            who = _subject(ev)
            if ev.action == "auth.lockout":
                locked[who] = (ev.timestamp, [], False)
            elif ev.action in self.unlock_actions:
                locked.pop(who, None)
            elif ev.action in LOGIN_ACTIONS and who in locked:
                since, ids, done = locked[who]
                if done or ev.timestamp - since > self.window:
                    continue
                ids.append(ev.event_id)
                if len(ids) >= self.min_attempts:
                    locked[who] = (since, ids, True)
                    alerts.append(
                        Alert(
                            self.name,
                            who,
                            ev.time,
                            f"{len(ids)} login attempt(s) on a locked account since "
                            f"{format_time(since)}",
                            tuple(ids),
                        )
                    )
        return alerts


@dataclass
class AuditVerificationFailed:
    """A failed audit verification, seen as an event or as a `VerifyReport`."""

    actions: tuple[str, ...] = ("audit.verify_failed",)
    name: str = "audit_verification_failed"

    def evaluate(self, events: Sequence[AuditEvent]) -> list[Alert]:
        """One alert per verification-failure event."""
        return [
            Alert(self.name, ev.actor, ev.time, ev.reason or ev.action, (ev.event_id,))
            for ev in _by_time(events)
            if ev.action in self.actions
            or (ev.action == "audit.verified" and ev.decision == "deny")
        ]

    def check(
        self,
        report: VerifyReport,
        *,
        actor: str = "system:audit",
        clock: Callable[[], datetime] = utc_now,
    ) -> list[Alert]:
        """An alert if `report` is not ok (its problem names seqs and segment ids only)."""
        if report.ok:
            return []
        at = "" if report.first_bad_seq is None else f" at record {report.first_bad_seq}"
        return [Alert(self.name, actor, format_time(clock()), f"{report.problem}{at}")]

    def unverifiable(
        self,
        problem: str,
        *,
        actor: str = "system:audit",
        clock: Callable[[], datetime] = utc_now,
    ) -> list[Alert]:
        """An alert for a log that could not be read or verified at all (`problem` says why)."""
        return [Alert(self.name, actor, format_time(clock()), f"audit log unverifiable: {problem}")]


@dataclass
class ScheduledJobFailed:
    """A scheduled job that failed, timed out, could not start, or missed runs."""

    actions: tuple[str, ...] = ("schedule.job_failed", "schedule.missed")
    name: str = "scheduled_job_failed"

    def evaluate(self, events: Sequence[AuditEvent]) -> list[Alert]:
        """One alert per failed or missed scheduled run (names the job, status, exit code)."""
        return _each_event(
            self.name, self.actions, events, lambda ev: f"{ev.resource}: {ev.reason}"
        )


@dataclass
class BreakGlassUsed:
    """Every break-glass administration (the operator acting without a person's session)."""

    actions: tuple[str, ...] = ("admin.break_glass",)
    name: str = "break_glass"

    def evaluate(self, events: Sequence[AuditEvent]) -> list[Alert]:
        """One alert per break-glass event; the detail names the command and the reason."""
        return _each_event(
            self.name,
            self.actions,
            events,
            lambda ev: f"break-glass {ev.resource}: {ev.reason or '(no reason)'}",
        )


@dataclass
class AccountHealthBreach:
    """A newly ingested account-health window that misses Amazon's target (ingestion writes
    one `account_health.breach` event per breaching window: marketplace, metric, rate, target
    and window only)."""

    actions: tuple[str, ...] = ("account_health.breach",)
    name: str = "account_health_breach"

    def evaluate(self, events: Sequence[AuditEvent]) -> list[Alert]:
        """One alert per breach event; the detail names the tenant and the breach."""
        return _each_event(
            self.name,
            self.actions,
            events,
            lambda ev: f"tenant {ev.tenant or '?'}: {ev.reason or ev.resource}",
        )


def evaluate(events: Sequence[AuditEvent], rules: Iterable[Rule]) -> list[Alert]:
    """Run every rule over `events`; alerts in time order."""
    alerts = [a for rule in rules for a in rule.evaluate(events)]
    return sorted(alerts, key=lambda a: a.time)


class Sink(Protocol):
    """Somewhere alerts are delivered."""

    def send(self, alert: Alert) -> None:
        """Deliver one alert; raise on failure."""
        ...


@dataclass(frozen=True)
class CommandSink:
    """Run a command (no shell) with the alert JSON on stdin."""

    argv: Sequence[str]
    timeout: float = 10.0

    @property
    def name(self) -> str:
        """How delivery records and messages name this sink (the program, no arguments)."""
        return f"command:{self.argv[0] if self.argv else '?'}"

    def send(self, alert: Alert) -> None:
        """Run the command; CalledProcessError or TimeoutExpired on failure."""
        subprocess.run(
            list(self.argv),
            input=alert.to_json().encode(),
            timeout=self.timeout,
            check=True,
            capture_output=True,
        )


@dataclass(frozen=True)
class WebhookSink:
    """POST the alert JSON to an http(s) URL."""

    url: str
    timeout: float = 5.0
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Only http and https URLs with a host are allowed."""
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("WebhookSink needs an http:// or https:// URL with a host")

    @property
    def name(self) -> str:
        """How delivery records and messages name this sink: the host and a digest of the
        URL (a webhook's path or query often carries its secret token)."""
        parts = urllib.parse.urlsplit(self.url)
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:8]
        return f"webhook:{parts.scheme}://{parts.hostname}#{digest}"

    def send(self, alert: Alert) -> None:
        """POST the alert; raises URLError/HTTPError on failure."""
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __post_init__
            self.url,
            data=alert.to_json().encode(),
            headers={"Content-Type": "application/json", **self.headers},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                raise OSError(f"webhook answered HTTP {response.status}")


def sink_name(sink: Sink) -> str:
    """A sink's stable name (its `name` attribute, else its class)."""
    name = getattr(sink, "name", None)
    return str(name) if name else type(sink).__name__


def dispatch(alerts: Iterable[Alert], sinks: Sequence[Sink]) -> list[tuple[Alert, Exception]]:
    """Send every alert to every sink; return the failures instead of raising."""
    failures: list[tuple[Alert, Exception]] = []
    for alert in alerts:
        for sink in sinks:
            try:
                sink.send(alert)
            except Exception as exc:  # a failing sink must not stop the others
                failures.append((alert, exc))
    return failures
