"""The gateway's wire protocol, shared by the gateway and its clients (no keys, no lake).

Transport: Arrow Flight (gRPC). Locally a Unix-domain socket (`grpc+unix://`), beyond the
machine TLS 1.2+ (`grpc+tls://`). Every call but `health` and `login` carries
`authorization: Bearer <token>`: a user's login session token (`amzigo login`), a service
token the gateway minted (`svc:reports`, `svc:dashboard`: one tenant, one purpose), or the
operator credential (the service account: shutdown, minting, break-glass administration).

Actions (JSON in, JSON out) and tickets (JSON) are named here once. Errors travel as a Flight
error whose `extra_info` is `{"type": <exception class name>, "message": ...}`; the client turns
them back into the same `amzigo_lab.errors` classes, so callers catch what they caught before.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from amzigo_lab import errors
from amzigo_lab.governance.identity import errors as identity_errors

#: Environment variable naming the gateway address (overrides the home's default socket).
ADDRESS_ENV = "AMZIGO_GATEWAY"
#: Environment variable holding a token for the gateway (a kernel's or a report run's).
TOKEN_ENV = "AMZIGO_TOKEN"  # noqa: S105 - a variable name

HEALTH = "health"
LOGIN = "login"
#: Finish a login answered `password_change_required` with a new password (no token needed).
LOGIN_CHANGE_PASSWORD = "login.change_password"  # noqa: S105 - an action name
SESSION_OPEN = "session.open"
SESSION_TENANTS = "session.tenants"
SESSION_REFRESH = "session.refresh"
SESSION_CLOSE = "session.close"
SESSION_CHECK = "session.check"
SESSION_END = "session.end"
AUDIT_EMIT = "audit.emit"
SELLER_BINDING = "seller.binding"
KERNEL_MINT = "kernel.mint"
KERNEL_REVOKE = "kernel.revoke"
SERVICE_MINT = "service.mint"
SERVICE_OBJECTIONS = "service.objections"
OUTPUTS_REGISTER = "outputs.register"
SERVICE_REVOKE = "service.revoke"
SHUTDOWN = "shutdown"
#: Administrative actions: a session whose roles hold the right, or the operator credential with
#: a break-glass reason (audited as `admin.break_glass`, actor `break-glass:<os user>`).
ADMIN_AUTHORIZE = "admin.authorize"
USERS_ADD = "users.add"
USERS_GRANT = "users.grant"
USERS_DISABLE = "users.disable"
USERS_ENABLE = "users.enable"
USERS_UNLOCK = "users.unlock"
USERS_PASSWD = "users.passwd"  # noqa: S105 - an action name
#: The CLI's client commands (`amzigo lake ls`, `hold ...`, `dsr ...`, ...): each acts as the
#: session's user holding a right (read_audit, access_review, manage_users) or the compliance
#: role; the rights ones also take break-glass. Answers are JSON; files to write (certificate
#: export, ROPA, access review) come back as their text and the CLI writes them.
LAKE_LS = "lake.ls"
LAKE_VERIFY = "lake.verify"
USERS_LIST = "users.list"
ACCESS_REVIEW = "access.review"
AUDIT_SEARCH = "audit.search"
ALERTS_RUN = "alerts.run"
CREDENTIALS_LIST = "credentials.list"
CREDENTIALS_SET = "credentials.set"
HOLD_ADD = "hold.add"
HOLD_LIST = "hold.list"
HOLD_RELEASE = "hold.release"
NOTICE_DELETE = "notice.delete"
CERTIFICATE_LIST = "certificate.list"
CERTIFICATE_SHOW = "certificate.show"
CERTIFICATE_EXPORT = "certificate.export"
CERTIFICATE_VERIFY = "certificate.verify"
CERTIFICATE_VALIDATE = "certificate.validate"
ROPA = "compliance.ropa"
DSR_EXPORT = "dsr.export"
DSR_RECTIFY = "dsr.rectify"
DSR_ERASE = "dsr.erase"
DSR_OBJECT = "dsr.object"
DSR_RESUME = "dsr.resume"
DSR_LIST = "dsr.list"
#: Product costs (`amzigo costs import|ls`): a person with sales_analysis access to the tenant's
#: `product_costs` (an analyst granted the tenant; import: not a seller account), or break-glass.
COSTS_IMPORT = "costs.import"
COSTS_LIST = "costs.list"
#: Distributed reads (Spark, Dask): plan a job (files + job token), end it.
SCALE_PLAN = "scale.plan"
SCALE_REVOKE = "scale.revoke"
#: Operator only: empty the gateway's hot cache so another process's drop may proceed.
HOT_CACHE_RELEASE = "hot_cache.release"
#: `amzigo incident ...`: a session whose user holds the compliance or security_officer role.
INCIDENT_OPEN = "incident.open"
INCIDENT_LIST = "incident.list"
INCIDENT_SHOW = "incident.show"
INCIDENT_CLOSE = "incident.close"
INCIDENT_ISOLATE = "incident.isolate"
INCIDENT_RESTORE = "incident.restore"
INCIDENT_EVIDENCE = "incident.evidence"
INCIDENT_CUSTODY = "incident.custody"
INCIDENT_NOTIFY_DRAFT = "incident.notify_draft"
INCIDENT_NOTIFIED = "incident.notified"
#: The data-policy change log (`amzigo policy ...`; amzigo_lab.gateway.policy_actions).
POLICY_LOG = "policy.log"
POLICY_DIFF = "policy.diff"
POLICY_CHANGE = "policy.change"
POLICY_VERIFY = "policy.verify"
#: What a gateway in an incident's deny-all mode still answers (plus every incident.* action).
DENY_ALL_ALLOWED = frozenset(
    {LOGIN, LOGIN_CHANGE_PASSWORD, SESSION_CHECK, SESSION_END, AUDIT_SEARCH, ALERTS_RUN,
     HOLD_LIST, LAKE_VERIFY, USERS_LIST, USERS_DISABLE, KERNEL_REVOKE, SERVICE_REVOKE,
     AUDIT_EMIT, SCALE_REVOKE, HOT_CACHE_RELEASE}
)  # fmt: skip
#: What a gateway in an incident's read-only mode refuses (changes to data, users, secrets).
READ_ONLY_REFUSED = frozenset(
    {USERS_ADD, USERS_GRANT, USERS_ENABLE, USERS_PASSWD, CREDENTIALS_SET, NOTICE_DELETE,
     DSR_ERASE, DSR_RECTIFY, DSR_OBJECT, OUTPUTS_REGISTER, SERVICE_MINT, COSTS_IMPORT,
     "certificate.validate", POLICY_CHANGE}
)  # fmt: skip
#: The audit action of a break-glass use (an alert rule fires on it).
BREAK_GLASS = "admin.break_glass"

TICKET_SQL = "sql"
TICKET_LATEST = "latest"

#: Large results for local clients (`gateway/bulk.py`): a ticket with `"bulk": 1` may be answered
#: with the schema alone, its metadata holding a one-time id under this key; the client fetches
#: the result from the bulk socket (send the id and a newline; read an 8-byte little-endian
#: length, then that many bytes of Arrow IPC stream; length `BULK_MISSING` = no such result).
BULK_META_KEY = b"amzigo.bulk"
BULK_ID_BYTES = 32
BULK_MISSING = -1
BULK_SOCKET_SUFFIX = "-bulk"

# Unix sockets have a 108-byte path limit; deep homes get a short path under the temp dir.
_MAX_SOCKET_PATH = 100


def runtime_dir(home: Path) -> Path:
    """Where a home's gateway keeps its lock, socket, operator token and log."""
    return home / "state" / "gateway"


#: Where hardened homes keep their gateway socket (outside the 0700 home, so kernels reach it):
#: `<base>/<home digest>/gateway.sock`, the first base that exists and is owned by root.
HARDENED_SOCKET_BASES = (Path("/run/amzigo"), Path(tempfile.gettempdir()) / "amzigo-gateways")
SOCKET_NAME = "gateway.sock"


def home_identity(home: Path) -> str:
    """The identity of the folder at `home` now (device and inode): a home deleted and created
    again at the same path is another home, whose keys an old gateway must never serve. ""
    when it cannot be looked at (a hardened home seen by another user)."""
    try:
        st = os.stat(home)
    except OSError:
        return ""
    return f"{st.st_dev}:{st.st_ino}"


def home_digest(home: Path) -> str:
    """A short, stable name for a home (its resolved path's SHA-256, 20 hex digits)."""
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:20]


def _trusted_dir(path: Path, *, root_owned: bool) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_mode & 0o002:
        return False
    return not root_owned or (st.st_uid == 0 and not st.st_mode & 0o022)


def hardened_socket_dir(home: Path) -> Path | None:
    """The socket directory of a hardened home, found WITHOUT reading the home (a kernel user
    cannot): `<base>/<home_digest(home)>` under the first root-owned base where it exists (a
    directory someone else could have planted is never trusted). None for other homes."""
    digest = home_digest(home)
    for base in HARDENED_SOCKET_BASES:
        if _trusted_dir(base, root_owned=True) and _trusted_dir(base / digest, root_owned=False):
            return base / digest
    return None


def socket_path(home: Path) -> Path:
    """The Unix socket of the home's gateway (short enough for the kernel's limit)."""
    hardened = hardened_socket_dir(home)
    if hardened is not None:
        return hardened / SOCKET_NAME
    path = runtime_dir(home.resolve()) / SOCKET_NAME
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"amzigo-{os.getuid()}" / f"gw-{digest}.sock"


def bulk_socket_path(address: str) -> Path | None:
    """The bulk socket beside a local gateway's socket (None for a gateway over TCP)."""
    if not address.startswith("grpc+unix://"):
        return None
    sock = Path(address[len("grpc+unix://") :])
    return sock.with_name(sock.stem + BULK_SOCKET_SUFFIX + sock.suffix)


def default_address(home: Path) -> str:
    """$AMZIGO_GATEWAY, else the home's Unix socket."""
    given = os.environ.get(ADDRESS_ENV, "").strip()
    return given or f"grpc+unix://{socket_path(home)}"


def encode(payload: dict[str, Any]) -> bytes:
    """A request or ticket body."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def decode(body: bytes) -> dict[str, Any]:
    """A request or ticket body (a JSON object), or a ProtocolError."""
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise GatewayProtocolError("the request body is not JSON") from None
    if not isinstance(value, dict):
        raise GatewayProtocolError("the request body must be a JSON object")
    return value


class GatewayError(errors.AmzigoError):
    """The gateway cannot be reached or answered with something unexpected."""


class GatewayUnavailable(GatewayError):
    """No gateway answers at the address (the message names it and how to start one)."""


class GatewayProtocolError(GatewayError):
    """A malformed request or answer."""


class QueryError(errors.AmzigoError, ValueError):
    """The engine rejected a query (syntax, unknown column, bad cast): the message says why."""


#: Exceptions that cross the wire by name (anything else arrives as GatewayError).
_WIRE_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        identity_errors.IdentityError,
        identity_errors.InvalidCredentials,
        identity_errors.AccountLocked,
        identity_errors.AccountDisabled,
        identity_errors.PasswordExpired,
        identity_errors.OneTimePasswordExpired,
        identity_errors.SessionExpired,
        errors.AccessDenied,
        errors.UnknownDataset,
        errors.UnknownTenant,
        errors.ConfigError,
        errors.KeyProviderError,
        errors.CatalogError,
        errors.InvalidName,
        errors.IntegrityError,
        GatewayError,
        GatewayProtocolError,
        QueryError,
    )
}


def error_info(exc: BaseException) -> bytes:
    """The `extra_info` describing an error for the client."""
    name = type(exc).__name__
    for cls in type(exc).__mro__:
        if cls.__name__ in _WIRE_ERRORS:
            name = cls.__name__
            break
    else:
        name = "GatewayError"
    return encode({"type": name, "message": str(exc)})


def check_login_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """A `login` answer, or raise PasswordChangeRequired (with its ticket) when the gateway says
    the password must be changed first (finish with LOGIN_CHANGE_PASSWORD)."""
    if answer.get("password_change_required") is True:
        cls = identity_errors.PasswordChangeRequired
        exc = cls.__new__(cls)
        Exception.__init__(exc, str(answer.get("message") or "a new password is required"))
        exc.user_id = str(answer.get("user", ""))
        exc.ticket = str(answer.get("ticket", ""))
        exc.since = None
        exc.why = ""
        raise exc
    return answer


def error_from(extra_info: bytes | None, fallback: str) -> Exception:
    """The exception an `extra_info` describes (GatewayError when it describes none).

    Built without the class's own `__init__` (some take structured arguments): the message is
    the one the gateway wrote, which already says what to do next.
    """
    try:
        data = decode(extra_info or b"")
    except GatewayProtocolError:
        data = {}
    cls = _WIRE_ERRORS.get(str(data.get("type", "")), GatewayError)
    exc = cls.__new__(cls)
    Exception.__init__(exc, str(data.get("message") or fallback))
    return exc
