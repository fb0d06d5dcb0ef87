"""The home's audit sink: `AuditSink` (amzigo_lab.events) backed by the tamper-evident AuditLog.

Every layer emits through `AuditLogSink.emit`; the identity store reports through
`identity_event`. Values are sanitised into the audit schema's allow-list (identifiers,
short printable reasons, counts) so a stray value can never carry PII or break a log line:
e-mail-like text is redacted, control characters are dropped, identifiers are restricted to
the identifier alphabet. The log opens lazily on the first event.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from amzigo_lab.governance.audit import AuditEvent, AuditLog
from amzigo_lab.governance.audit.event import MAX_LEN

if TYPE_CHECKING:
    from amzigo_lab.config import Settings
    from amzigo_lab.lake.store import Lake

AUDIT_SECRET = "audit-segment-key"  # noqa: S105 - a secret's name
SIGNING_KEY = "audit-signing.pem"

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*")
_NOT_ID = re.compile(r"[^A-Za-z0-9_.:/=+#-]")
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def clean_reason(text: object) -> str:
    """Short printable text without e-mail addresses (the `reason` field)."""
    s = _NOT_PRINTABLE.sub(" ", str(text))
    s = _EMAIL.sub("[redacted]", s)
    return s[:MAX_LEN]


def clean_id(text: object) -> str:
    """An identifier in the audit alphabet ("" stays "")."""
    s = str(text)
    if not s:
        return ""
    s = _EMAIL.sub("redacted", s)
    s = _NOT_ID.sub("_", s)
    if not s[0].isalnum():
        s = "x" + s
    return s[:MAX_LEN]


def signing_key_path(settings: Settings) -> Path:
    """The Ed25519 checkpoint-signing key: in the keys folder, not beside the audit data."""
    return settings.home / "keys" / SIGNING_KEY


def open_audit_log(settings: Settings, lake: Lake) -> AuditLog:
    """Open the home's audit log; its segment-wrapping key is a lake secret."""
    key = lake.secret(AUDIT_SECRET)
    keys_dir = signing_key_path(settings).parent
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return AuditLog(
        settings.audit_path,
        settings.checkpoint_path,
        lambda: key,
        signing_key_path(settings),
        anchor=settings.audit_anchor,
        checkpoint_every_events=settings.audit_checkpoint_every_events,
        checkpoint_every_seconds=settings.audit_checkpoint_every_seconds,
    )


# identity event fields that go into `reason` as k=v (never secrets: the store sends none)
_IDENTITY_DETAIL = (
    "roles",
    "one_time_password",
    "before",
    "preset",
    "failed_count",
    "count",
    "locked_until",
    "attempted_user_hash",
    "rehashed",
)


class AuditLogSink:
    """An `AuditSink` writing durable, hash-chained events to the home's `AuditLog`."""

    def __init__(self, opener: Callable[[], AuditLog]) -> None:
        self._opener = opener
        self._log: AuditLog | None = None
        self._lock = threading.Lock()
        self.listeners: list[Callable[[AuditEvent], None]] = []
        """Called with every event written (e.g. the gateway's alert pipeline); a failing
        listener never fails the write."""

    @classmethod
    def for_log(cls, log: AuditLog) -> AuditLogSink:
        """A sink over an already open log."""
        sink = cls(lambda: log)
        sink._log = log
        return sink

    @property
    def log(self) -> AuditLog:
        """The audit log (opened on first use)."""
        with self._lock:
            if self._log is None:
                self._log = self._opener()
            return self._log

    def emit(
        self,
        action: str,
        *,
        actor: str = "system",
        resource: str = "",
        tenant: str = "",
        purpose: str = "",
        decision: str = "info",
        reason: str = "",
        row_count: int | None = None,
        session: str = "",
        request_id: str = "",
    ) -> str:
        """Append one event durably; return its event id. Raises if it cannot be written."""
        event = AuditEvent.new(
            action=action,
            actor=clean_id(actor) or "system",
            resource=clean_id(resource),
            tenant=clean_id(tenant),
            purpose=clean_id(purpose),
            decision=decision if decision in ("allow", "deny", "info") else "info",
            reason=clean_reason(reason),
            row_count=row_count,
            session=clean_id(session),
            request_id=clean_id(request_id),
        )
        self.log.append(event)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # noqa: S112 - the event is durable; listeners are hints
                continue
        return event.event_id

    def identity_event(self, action: str, fields: dict[str, object]) -> None:
        """The identity store's `on_event` callback: map its fields onto the audit schema."""
        user = fields.get("user")
        actor = fields.get("actor") or user or "anonymous"
        detail = [
            f"{k}={','.join(map(str, v)) if isinstance(v, list | tuple) else v}"
            for k in _IDENTITY_DETAIL
            if (v := fields.get(k)) not in (None, "", [])
        ]
        reason = " ".join(x for x in (str(fields.get("reason") or ""), *detail) if x)
        session = fields.get("session")
        self.emit(
            action,
            actor=str(actor),
            resource=f"user:{user}" if user else "",
            tenant=str(fields.get("tenant") or ""),
            decision=str(fields.get("decision") or "info"),
            reason=reason,
            session="" if session is None else f"s{session}",
        )

    def close(self) -> None:
        """Close the log (writes a final signed checkpoint) if it was opened."""
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
