"""The one small audit interface every layer may call to emit security-relevant events.

Layers below governance (lake, source, compliance) must not know how audit records are stored;
they call `AuditSink.emit`. Governance installs a sink backed by the tamper-evident audit log;
the default `NullSink` drops events (used only where no home is open, e.g. unit tests).
Fields are identifiers and counts only: never PII values.
"""

from __future__ import annotations

from typing import Protocol


class AuditSink(Protocol):
    """Receives audit events."""

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
    ) -> str:
        """Record one event; return its event id ("" when not recorded)."""


class NullSink:
    """Drops every event."""

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
    ) -> str:
        """Drop the event."""
        return ""


class MemorySink:
    """Keeps events in a list (tests, dry runs)."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

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
    ) -> str:
        """Append the event."""
        self.events.append(
            dict(
                action=action,
                actor=actor,
                resource=resource,
                tenant=tenant,
                purpose=purpose,
                decision=decision,
                reason=reason,
                row_count=row_count,
            )
        )
        return str(len(self.events))
