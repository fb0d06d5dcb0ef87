"""Exceptions raised by the audit log; messages name ids and seqs, never event contents."""

from __future__ import annotations


class AuditError(Exception):
    """Base class of every error the audit package raises on purpose."""


class AuditFieldError(AuditError, ValueError):
    """An event field is unknown, malformed, too long or looks like personal data."""


class AuditIntegrityError(AuditError):
    """The log or its checkpoints are damaged, tampered with or rolled back."""


class AuditKeyError(AuditError):
    """A key is missing, malformed, or cannot unwrap a segment key."""
