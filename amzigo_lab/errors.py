"""The exception hierarchy: one root, so callers (the CLI, the gateway) catch one class.
Every message says what went wrong and what to do next. (The sandbox's `ApiError` is the fake
Amazon's, not ours.)

::

    AmzigoError
    ├── ConfigError            an invalid setting (names the setting and the fix)
    ├── KeyProviderError       master key missing, wrong, or exposed
    ├── CatalogError           catalog unreadable, or from a newer version of amzigo-lab
    ├── InvalidName            a tenant id or dataset name that could escape a path or SQL
    ├── UnknownDataset         a dataset that is not declared in the registry
    ├── UnknownTenant          a tenant with no data in this home
    ├── SchemaMismatch         a table that does not match its dataset's declared schema
    ├── IntegrityError         a tampered, truncated or missing lake file
    ├── WriteError             a write that could not complete (nothing was made visible)
    ├── AccessDenied           (also a PermissionError) a read outside the caller's grants
    ├── IdentityError          logins and sessions (tree in governance/identity/errors.py)
    ├── AuditError             the audit log (tree in governance/audit/errors.py)
    └── GatewayError           the gateway cannot be reached or answered oddly (client/protocol.py)
"""

from __future__ import annotations


class AmzigoError(Exception):
    """Base class of every error amzigo-lab raises on purpose."""


class ConfigError(AmzigoError):
    """A setting is invalid; the message names the setting and how to fix it."""


class KeyProviderError(AmzigoError):
    """The master key is missing, wrong or readable by others."""


class CatalogError(AmzigoError):
    """The catalog cannot be used (corrupt, locked, or written by a newer version)."""


class InvalidName(AmzigoError, ValueError):
    """A tenant id, dataset name or key name that is not allowed."""


class UnknownDataset(AmzigoError, KeyError):
    """A dataset that is not declared in the registry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown dataset"


class UnknownTenant(AmzigoError, LookupError):
    """A tenant that has no data in this home."""


class SchemaMismatch(AmzigoError, ValueError):
    """A table does not match its dataset's declared schema; nothing was written."""


class IntegrityError(AmzigoError):
    """A lake file is tampered with, truncated, missing or cannot be decrypted."""


class WriteError(AmzigoError):
    """A write failed before its commit point; no partition was made visible."""


class AccessDenied(AmzigoError, PermissionError):
    """A read outside the caller's role, tenant or purpose."""
