"""The exception hierarchy: one root, so callers (the CLI's `handle_errors`, the gateway's
`_on_home`) catch one class. Every message says what went wrong and what to do next.

Every error class of the package is in this tree (tests/test_error_tree.py checks it; the
module defining each is in brackets when it is not this one). Not ours on purpose: the
sandbox's errors (`ApiError`, ...: the fake Amazon's answers) and serve/hooks.py's
`NoParametersCell` (a tornado HTTP 400 of the Voila server).

::

    AmzigoError
    ├── ConfigError              an invalid setting (names the setting and the fix)
    │   ├── HardeningError       a hardened home used by the wrong OS user [hardening]
    │   └── PolicyChangeRefused  a policy change without a summary, or on a damaged change
    │                            log [governance.policy_log]
    ├── KeyProviderError         master key missing, wrong, or exposed
    ├── CatalogError             catalog unreadable, or from a newer version of amzigo-lab
    ├── InvalidName              (also a ValueError) a tenant id or dataset name that could
    │                            escape a path or SQL
    ├── UnknownDataset           (also a KeyError) a dataset not declared in the registry
    ├── UnknownTenant            (also a LookupError) a tenant with no data in this home
    ├── SchemaMismatch           (also a ValueError) a table that does not match its schema
    ├── IntegrityError           a tampered, truncated or missing lake file
    │   └── TamperedRow          catalog rows whose MAC does not match [lake.rowmac]
    ├── WriteError               a write that could not complete (nothing was made visible)
    ├── HotCacheBusy             a drop refused while another process holds decrypted copies
    │                            [lake.hot_cache]
    ├── AccessDenied             (also a PermissionError) a read outside the caller's grants
    │   └── NotLoggedIn          an administrative command without a session [cli.auth]
    ├── IdentityError            logins and sessions [governance.identity.errors]
    │   ├── InvalidCredentials   wrong user, password or code (one message for all three)
    │   ├── AccountLocked        too many failures
    │   ├── AccountDisabled      deprovisioned
    │   ├── PasswordRejected     (also a ValueError) a new password breaks a policy rule
    │   ├── PasswordExpired      the password must be changed first
    │   │   ├── PasswordChangeRequired   ... and a ticket completes the login
    │   │   └── OneTimePasswordExpired   a one-time password not changed in time
    │   ├── SessionExpired       idle or absolute timeout, revoked or unknown token
    │   ├── UnknownUser          (also a LookupError) no such user id
    │   ├── UserExists           the user id is taken
    │   ├── InvalidUserId        (also a ValueError) a malformed user id, role or tenant
    │   ├── SchemaTooNew         the identity database is from a newer amzigo-lab
    │   └── MissingDatabase      no identity database to read [governance.identity.standing]
    ├── AuditError               the audit log [governance.audit.errors]
    │   ├── AuditFieldError      (also a ValueError) an unknown, malformed or PII-like field
    │   ├── AuditIntegrityError  damaged, tampered with or rolled back
    │   └── AuditKeyError        a missing or malformed key
    ├── GatewayError             the gateway answered oddly [client.protocol]
    │   ├── GatewayUnavailable   no gateway answers at the address (named)
    │   ├── GatewayProtocolError a malformed request or answer
    │   ├── KeyServiceError      the unwrap endpoint failed (not a refusal) [client.scale]
    │   └── GatewayLocked        another gateway already serves this home [gateway.run]
    ├── QueryError               (also a ValueError) the engine rejected a query
    │                            [client.protocol]
    ├── SourceError              an SP-API / Ads API failure retries cannot fix [source.client]
    │   ├── MalformedResponse    a 2xx answer whose body is not JSON
    │   ├── EmptyErrorResponse   an error status with no parseable body
    │   ├── ReportMismatch       a report or document that is not the one requested
    │   ├── DownloadFailed       a report URL that gave no GZIP document [source.ads_client]
    │   └── UncertainOutcome     a create call that may or may not have happened
    │                            [campaigns.engine]
    ├── InvalidRecord            (also a ValueError) a record that does not fit its dataset;
    │                            goes to the quarantine [source.streams.base]
    ├── ComplianceError          a compliance operation refused or not completed
    │                            [compliance.common]
    ├── IncidentError            an incident command that cannot do what was asked
    │                            [governance.incidents]
    ├── ReportError              a report that cannot be built [analysis.source]
    ├── CostFileError            (also a ValueError) a cost file that cannot be imported
    │                            [analysis.cost_file]
    └── CampaignBusy             another campaign run of this home is in progress
                                 [campaigns.store]
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
