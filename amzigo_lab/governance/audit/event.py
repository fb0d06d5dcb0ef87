"""The audit event: a versioned schema with an allow-list of fields and no PII values."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from amzigo_lab.governance.audit.errors import AuditFieldError

SCHEMA_VERSION = "1.0"
"""Major.minor: minor for added optional fields, major for breaking changes."""

MAX_LEN = 256
DECISIONS = frozenset({"allow", "deny", "info"})

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/=+#-]*$")
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_VERSION = re.compile(r"^\d+\.\d+$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")

# Fields holding identifiers (token charset, no '@'); `reason` is short printable free text.
_ID_FIELDS = ("actor", "session", "resource", "tenant", "purpose", "request_id")
_REQUIRED_IDS = frozenset({"actor"})


def format_time(moment: datetime) -> str:
    """Render an aware datetime as UTC ISO-8601 with microseconds and a 'Z'."""
    if moment.tzinfo is None:
        raise AuditFieldError("time must be timezone-aware (UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse a time written by `format_time` back to an aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def utc_now() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(UTC)


def _check_text(name: str, value: object) -> str:
    """Common checks for every string field: type, length, charset, no e-mail addresses."""
    if not isinstance(value, str):
        raise AuditFieldError(f"field {name!r} must be a string")
    if len(value) > MAX_LEN:
        raise AuditFieldError(f"field {name!r} is longer than {MAX_LEN} characters")
    if not _PRINTABLE.match(value):
        raise AuditFieldError(
            f"field {name!r} contains control or non-ASCII characters (log injection guard)"
        )
    if _EMAIL.search(value):
        raise AuditFieldError(f"field {name!r} looks like an e-mail address (no PII in audit)")
    return value


@dataclass(frozen=True)
class AuditEvent:
    """One audit event; construct with `AuditEvent.new(...)`; validated on creation."""

    schema_version: str
    event_id: str
    time: str
    actor: str
    session: str
    action: str
    resource: str
    tenant: str
    purpose: str
    decision: str
    reason: str
    row_count: int | None
    request_id: str

    def __post_init__(self) -> None:
        """Validate every field against the allow-list rules."""
        for f in fields(self):
            if f.name != "row_count":
                _check_text(f.name, getattr(self, f.name))
        if not _VERSION.match(self.schema_version):
            raise AuditFieldError("field 'schema_version' must look like '1.0'")
        if self.schema_version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise AuditFieldError(f"unsupported schema major version {self.schema_version!r}")
        if not _HEX32.match(self.event_id):
            raise AuditFieldError("field 'event_id' must be 32 lowercase hex digits (uuid4)")
        if not _TIME.match(self.time):
            raise AuditFieldError(
                "field 'time' must be UTC ISO-8601 like 2026-01-02T03:04:05.000006Z"
            )
        if not _ACTION.match(self.action):
            raise AuditFieldError("field 'action' must look like 'area.verb' (lowercase)")
        for name in _ID_FIELDS:
            value = getattr(self, name)
            if value == "" and name not in _REQUIRED_IDS:
                continue
            if not _ID.match(value):
                raise AuditFieldError(f"field {name!r} must be an identifier ([A-Za-z0-9_.:/=+#-])")
        if self.decision not in DECISIONS:
            raise AuditFieldError(f"field 'decision' must be one of {sorted(DECISIONS)}")
        rc = self.row_count
        if rc is not None and (isinstance(rc, bool) or not isinstance(rc, int) or rc < 0):
            raise AuditFieldError("field 'row_count' must be a non-negative int or None")

    @classmethod
    def new(
        cls,
        *,
        action: str,
        actor: str,
        clock: Callable[[], datetime] | None = None,
        **fields_: Any,
    ) -> AuditEvent:
        """Build a validated event with a fresh uuid4 id and the clock's UTC time."""
        unknown = set(fields_) - _OPTIONAL_FIELDS
        if unknown:
            raise AuditFieldError(f"unknown audit field(s): {sorted(unknown)}")
        values: dict[str, Any] = {
            "session": "",
            "resource": "",
            "tenant": "",
            "purpose": "",
            "decision": "info",
            "reason": "",
            "row_count": None,
            "request_id": "",
        }
        values.update(fields_)
        moment = (clock or utc_now)()
        return cls(
            schema_version=SCHEMA_VERSION,
            event_id=uuid.uuid4().hex,
            time=format_time(moment),
            actor=actor,
            action=action,
            **values,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEvent:
        """Rebuild an event from its dict form, refusing unknown or missing fields."""
        unknown = set(data) - ALLOWED_FIELDS
        if unknown:
            raise AuditFieldError(f"unknown audit field(s): {sorted(unknown)}")
        missing = ALLOWED_FIELDS - set(data)
        if missing:
            raise AuditFieldError(f"missing audit field(s): {sorted(missing)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The event as a plain dict (the allow-listed fields only)."""
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    @property
    def timestamp(self) -> datetime:
        """The event time as an aware UTC datetime."""
        return parse_time(self.time)


_FIELD_NAMES = tuple(f.name for f in fields(AuditEvent))
ALLOWED_FIELDS = frozenset(_FIELD_NAMES)
_OPTIONAL_FIELDS = ALLOWED_FIELDS - {"schema_version", "event_id", "time", "actor", "action"}
