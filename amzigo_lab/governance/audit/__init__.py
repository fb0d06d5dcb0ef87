"""Tamper-evident audit log: hash-chained, encrypted, signed checkpoints kept apart, alerts."""

from amzigo_lab.governance.audit.alerts import (
    AccountHealthBreach,
    Alert,
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
    WebhookSink,
    dispatch,
    evaluate,
    policy_version,
    sink_name,
)
from amzigo_lab.governance.audit.checkpoint import Checkpoint
from amzigo_lab.governance.audit.errors import (
    AuditError,
    AuditFieldError,
    AuditIntegrityError,
    AuditKeyError,
)
from amzigo_lab.governance.audit.event import SCHEMA_VERSION, AuditEvent
from amzigo_lab.governance.audit.log import AuditLog
from amzigo_lab.governance.audit.record import GENESIS
from amzigo_lab.governance.audit.segment import SegmentInfo
from amzigo_lab.governance.audit.verify import VerifyReport, verify_log

__all__ = [
    "GENESIS",
    "SCHEMA_VERSION",
    "AccountHealthBreach",
    "Alert",
    "AuditError",
    "AuditEvent",
    "AuditFieldError",
    "AuditIntegrityError",
    "AuditKeyError",
    "AuditLog",
    "AuditVerificationFailed",
    "BreakGlassUsed",
    "Checkpoint",
    "CommandSink",
    "LockedAccountAttempts",
    "PiiOutsidePurpose",
    "PolicyChanged",
    "RepeatedDenials",
    "Rule",
    "ScheduledJobFailed",
    "SegmentInfo",
    "Sink",
    "UnusualVolume",
    "VerifyReport",
    "WebhookSink",
    "dispatch",
    "evaluate",
    "policy_version",
    "sink_name",
    "verify_log",
]
