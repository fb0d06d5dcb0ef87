"""Exceptions raised by the audit log; messages name ids and seqs, never event contents.

One branch of the package's exception tree (`amzigo_lab.errors`)::

    AmzigoError
    └── AuditError
        ├── AuditFieldError      (also a ValueError) an unknown, malformed or PII-like field
        ├── AuditIntegrityError  damaged, tampered with or rolled back
        └── AuditKeyError        a missing or malformed key
"""

from __future__ import annotations

from amzigo_lab.errors import AmzigoError


class AuditError(AmzigoError):
    """Base class of every error the audit package raises on purpose."""


class AuditFieldError(AuditError, ValueError):
    """An event field is unknown, malformed, too long or looks like personal data."""


class AuditIntegrityError(AuditError):
    """The log or its checkpoints are damaged, tampered with or rolled back."""


class AuditKeyError(AuditError):
    """A key is missing, malformed, or cannot unwrap a segment key."""
